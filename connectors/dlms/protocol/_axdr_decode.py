"""A-XDR decoding (the decoders behind ``axdr.decode_data``; the compact-array decoder, tag 19,
is registered by axdr.py, which sits above both this module and _axdr_compact.py)."""

from __future__ import annotations

import struct
from typing import Any, Callable, Dict, Tuple

from ._axdr_types import (
    DONT_CARE,
    FIXED_FORMATS,
    BitString,
    Buffer,
    DataType,
    Typed,
    decode_length,
    type_name,
)
from .cosem_datetime import CosemDate, CosemDateTime, CosemTime
from .errors import DecodeError

Decoder = Callable[[Buffer, int, bool, int], Tuple[Any, int]]


def _fixed(tag: int, fmt: str) -> Decoder:
    unpack = struct.Struct(fmt).unpack_from
    size = struct.calcsize(fmt)
    what = "truncated " + type_name(tag)

    def dec(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
        try:
            return unpack(buf, pos)[0], pos + size
        except struct.error:
            raise DecodeError(what, pos) from None

    return dec


def _d_null(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return None, pos


def _d_dont_care(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return DONT_CARE, pos


def _d_bool(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    try:
        return buf[pos] != 0, pos + 1  # any non-zero byte is TRUE (BER); we send 0x01
    except IndexError:
        raise DecodeError("truncated boolean", pos) from None


def read_length(buf: Buffer, pos: int, what: str) -> Tuple[int, int]:
    """Read a length and check that many bytes follow: returns (start, end)."""
    n, start = decode_length(buf, pos)
    end = start + n
    if end > len(buf):
        raise DecodeError(f"{what} of {n} bytes overruns the data", pos)
    return start, end


def _d_octets(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = read_length(buf, pos, "octet-string")
    return bytes(buf[start:end]), end


def _d_visible(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = read_length(buf, pos, "visible-string")
    # latin-1 maps every byte: a meter's stray non-ASCII byte must not lose the whole reading.
    return bytes(buf[start:end]).decode("latin-1"), end


def _d_utf8(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = read_length(buf, pos, "utf8-string")
    try:
        return bytes(buf[start:end]).decode("utf-8"), end
    except UnicodeDecodeError:
        raise DecodeError("utf8-string is not valid UTF-8", pos) from None


def _d_bits(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    nbits, start = decode_length(buf, pos)
    end = start + (nbits + 7) // 8
    if end > len(buf):
        raise DecodeError(f"bit-string of {nbits} bits overruns the data", pos)
    return BitString.from_bytes(bytes(buf[start:end]), nbits), end


def read_count(buf: Buffer, pos: int, depth: int, what: str) -> Tuple[int, int]:
    if depth <= 0:
        raise DecodeError(f"{what} nested deeper than the depth limit", pos)
    n, start = decode_length(buf, pos)
    if n > len(buf) - start:  # every element takes at least its tag byte
        raise DecodeError(f"{what} of {n} elements overruns the data", pos)
    return n, start


def _items(buf: Buffer, pos: int, n: int, typed: bool, depth: int) -> Tuple[list[Any], int]:
    """n tagged elements, decode_data inlined: containers are the hot loop of every response."""
    items: list[Any] = []
    append = items.append
    get = DECODERS.get
    for _ in range(n):
        try:
            tag = buf[pos]
        except IndexError:
            raise DecodeError("truncated data: type tag missing", pos) from None
        dec = get(tag)
        if dec is None:
            raise DecodeError(f"unknown A-XDR type tag {tag}", pos)
        value, pos = dec(buf, pos + 1, typed, depth)
        append(Typed(TYPES_BY_TAG[tag], value) if typed else value)
    return items, pos


def _d_array(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    n, pos = read_count(buf, pos, depth, "array")
    return _items(buf, pos, n, typed, depth - 1)


def _d_structure(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    n, pos = read_count(buf, pos, depth, "structure")
    items, pos = _items(buf, pos, n, typed, depth - 1)
    return tuple(items), pos


def _d_datetime(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemDateTime.from_buffer(buf, pos), pos + 12


def _d_date(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemDate.from_buffer(buf, pos), pos + 5


def _d_time(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemTime.from_buffer(buf, pos), pos + 4


DECODERS: Dict[int, Decoder] = {
    0: _d_null, 1: _d_array, 2: _d_structure, 3: _d_bool, 4: _d_bits,
    9: _d_octets, 10: _d_visible, 12: _d_utf8,
    25: _d_datetime, 26: _d_date, 27: _d_time, 255: _d_dont_care,
}
DECODERS.update((tag, _fixed(tag, ">" + code)) for tag, code in FIXED_FORMATS.items())
TYPES_BY_TAG = {int(t): t for t in DataType}


def decode_data(buf: Buffer, offset: int = 0, *, typed: bool = False,
                max_depth: int = 16) -> Tuple[Any, int]:
    """Decode one Data at ``offset``; returns (value, new_offset). See the module doc for types."""
    try:
        if offset < 0:  # buf[-1] would silently read the last byte
            raise IndexError
        tag = buf[offset]
    except IndexError:
        raise DecodeError("truncated data: type tag missing", offset) from None
    dec = DECODERS.get(tag)
    if dec is None:
        raise DecodeError(f"unknown A-XDR type tag {tag}", offset)
    value, pos = dec(buf, offset + 1, typed, max_depth)
    if typed:
        return Typed(TYPES_BY_TAG[tag], value), pos
    return value, pos
