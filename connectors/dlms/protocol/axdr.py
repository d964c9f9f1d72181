"""A-XDR encoding of COSEM ``Data`` (Blue Book, IEC 62056-6-2; A-XDR per IEC 61334-6).

Every value is a one-byte type tag followed by its content. Decoding is a dispatch dict from tag to
a small function ``(buf, pos, typed, depth) -> (value, new_pos)`` where ``pos`` points just past
the tag; the same functions read the tag-less contents of a compact-array. Errors: DecodeError
(with the offset) for anything the peer sent wrong, LocalProtocolError for values we cannot encode.

This is the public module. Behind it: _axdr_types.py (DataType, Typed, BitString, DONT_CARE, the
length codec, the fixed-size formats), _axdr_decode.py (decode_data), _axdr_encode.py
(encode_data, encode_into, to_json), _axdr_compact.py (tag 19, wired into both here). None of
them imports this module.

``compile_fixed`` turns a known run of fixed-size values into one ``struct`` unpack with its
checks: the session's express path reads a steady GET-with-list answer with it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Optional, Tuple

from ._axdr_compact import decode_compact, encode_compact
from ._axdr_decode import DECODERS, decode_data
from ._axdr_encode import ENCODERS, encode_data, encode_into, to_json
from ._axdr_types import (
    DONT_CARE,
    FIXED_FORMATS,
    BitString,
    Buffer,
    DataType,
    Typed,
    decode_length,
    encode_length,
)
from .errors import LocalProtocolError

__all__ = [
    "DONT_CARE",
    "BitString",
    "DataType",
    "FixedRun",
    "Typed",
    "compile_fixed",
    "decode_data",
    "decode_length",
    "encode_data",
    "encode_into",
    "encode_length",
    "learn_fixed",
    "to_json",
]

# The compact-array codec builds on both the decoders and the encoders: wired in here, above all
# three, so none of the helper modules imports another that imports it back.
DECODERS[19] = decode_compact
ENCODERS[19] = encode_compact


class FixedRun:
    """Values of fixed-size types back to back, each behind one ``lead`` byte (a CHOICE of the
    enclosing APDU, say), read with one ``struct`` call. ``values`` returns them exactly as
    ``decode_data`` would, or None when a lead byte or a type tag differs."""

    __slots__ = ("_leads", "_unpack", "size", "tags")

    def __init__(self, tags: Sequence[int], lead: int) -> None:
        try:
            fmt = ">" + "".join("BB" + FIXED_FORMATS[tag] for tag in tags)
        except KeyError as exc:
            raise LocalProtocolError(f"A-XDR type tag {exc.args[0]} has no fixed size") from None
        layout = struct.Struct(fmt)
        self._unpack = layout.unpack_from
        self.size = layout.size  # bytes, lead bytes and tags included
        self.tags = tuple(tags)
        self._leads = (lead,) * len(self.tags)

    def values(self, buf: Buffer, pos: int) -> Optional[Tuple[Any, ...]]:
        """The values at ``pos`` (``size`` bytes must follow), or None if the layout differs."""
        fields = self._unpack(buf, pos)
        if fields[0::3] != self._leads or fields[1::3] != self.tags:
            return None
        return fields[2::3]


def compile_fixed(tags: Sequence[int], lead: int) -> FixedRun:
    """The ``FixedRun`` of these type tags (LocalProtocolError if one has no fixed size)."""
    return _fixed_run(tuple(tags), lead)


@lru_cache(maxsize=1024)
def _fixed_run(tags: Tuple[int, ...], lead: int) -> FixedRun:
    """One FixedRun per layout for the whole process: meters of one model share it."""
    return FixedRun(tags, lead)


def learn_fixed(buf: Buffer, pos: int, count: int, lead: int) -> Optional[FixedRun]:
    """The ``FixedRun`` that reads ``buf[pos:]`` when it is exactly ``count`` fixed-size values,
    each behind a ``lead`` byte; None when it is anything else."""
    tags = []
    for _ in range(count):
        if pos + 2 > len(buf) or buf[pos] != lead:
            return None
        code = FIXED_FORMATS.get(buf[pos + 1])
        if code is None:
            return None
        tags.append(buf[pos + 1])
        pos += 2 + struct.calcsize(">" + code)
    if pos != len(buf):
        return None
    return _fixed_run(tuple(tags), lead)
