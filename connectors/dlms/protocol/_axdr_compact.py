"""Compact-array (Blue Book data type 19): one type description, then tag-less packed elements.

    compact-array ::= SEQUENCE { contents-description TypeDescription,
                                 array-contents       OCTET STRING }

A TypeDescription is a type tag; an array adds its element count (Unsigned16) and the element's
description; a structure adds its field count (A-XDR length) and one description per field. The
contents hold the elements back to back, each encoded without its tag (and, inside, without the
counts of arrays and structures, which the description gives). The number of elements follows from
the contents length. Load profiles of some meters come this way.

Kept apart from the decoders and encoders it builds on; axdr.py registers it under tag 19.
"""

from __future__ import annotations

import struct
from typing import Any, Tuple

from ._axdr_decode import DECODERS, TYPES_BY_TAG, read_count, read_length
from ._axdr_encode import encode_into
from ._axdr_types import Buffer, DataType, Typed, encode_length, type_name
from .errors import DecodeError, LocalProtocolError

# A description: an int tag, (1, count, element) for an array, (2, (fields...)) for a structure.
Desc = Any  # int | tuple: kept loose, mypy cannot narrow it through type(desc) is int

_U16 = struct.Struct(">H")
# Smallest packed size of each simple type (strings: their one length byte).
_MIN_SIZE = {0: 0, 3: 1, 4: 1, 5: 4, 6: 4, 9: 1, 10: 1, 12: 1, 13: 1, 15: 1, 16: 2, 17: 1, 18: 2,
             20: 8, 21: 8, 22: 1, 23: 4, 24: 8, 25: 12, 26: 5, 27: 4, 255: 0}
_NODES_PER_BYTE = 8  # decoded values allowed per content byte: bounds the work of hostile input


def _read_desc(buf: Buffer, pos: int, depth: int) -> Tuple[Desc, int]:
    try:
        tag = buf[pos]
    except IndexError:
        raise DecodeError("truncated compact-array type description", pos) from None
    if tag == 1:
        if depth <= 0:
            raise DecodeError("compact-array description nested deeper than the depth limit", pos)
        try:
            count = _U16.unpack_from(buf, pos + 1)[0]
        except struct.error:
            raise DecodeError("truncated compact-array type description", pos) from None
        elem, end = _read_desc(buf, pos + 3, depth - 1)
        if count and _measure(elem)[0] == 0:
            raise DecodeError("compact-array describes an array of empty elements", pos)
        return (1, count, elem), end
    if tag == 2:
        n, p = read_count(buf, pos + 1, depth, "compact-array structure description")
        fields = []
        for _ in range(n):
            field, p = _read_desc(buf, p, depth - 1)
            fields.append(field)
        return (2, tuple(fields)), p
    if tag not in _MIN_SIZE:
        raise DecodeError(f"type tag {tag} not allowed in a compact-array description", pos)
    return tag, pos + 1


def _measure(desc: Desc) -> Tuple[int, int]:
    """(smallest packed size, number of decoded values) of one element."""
    if type(desc) is int:
        return _MIN_SIZE[desc], 1
    if desc[0] == 1:
        size, nodes = _measure(desc[2])
        return size * desc[1], nodes * desc[1] + 1
    size = nodes = 0
    for field in desc[1]:
        s, n = _measure(field)
        size += s
        nodes += n
    return size, nodes + 1


def _read_packed(buf: Buffer, pos: int, desc: Desc, typed: bool) -> Tuple[Any, int]:
    if type(desc) is int:
        value, pos = DECODERS[desc](buf, pos, typed, 1)
        return (Typed(TYPES_BY_TAG[desc], value) if typed else value), pos
    items: list[Any] = []
    if desc[0] == 1:
        elem = desc[2]
        for _ in range(desc[1]):
            value, pos = _read_packed(buf, pos, elem, typed)
            items.append(value)
        return (Typed(DataType.ARRAY, items) if typed else items), pos
    for field in desc[1]:
        value, pos = _read_packed(buf, pos, field, typed)
        items.append(value)
    return (Typed(DataType.STRUCTURE, tuple(items)) if typed else tuple(items)), pos


def decode_compact(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    """Decoder for tag 19 (``pos`` is just past the tag): a list of elements."""
    if depth <= 0:
        raise DecodeError("compact-array nested deeper than the depth limit", pos)
    desc, p = _read_desc(buf, pos, depth - 1)
    start, end = read_length(buf, p, "compact-array contents")
    size, nodes = _measure(desc)
    if size == 0:
        raise DecodeError("compact-array elements have no content", pos)
    if nodes * ((end - start) // size) > _NODES_PER_BYTE * (end - start) + 1024:
        raise DecodeError("compact-array description too large for its contents", pos)
    view = memoryview(buf)[:end]  # an element must not read past the contents
    items: list[Any] = []
    p = start
    while p < end:
        value, p = _read_packed(view, p, desc, typed)
        items.append(value)
    return items, end


# ---- encoding ----------------------------------------------------------------------------
def _container(v: Any) -> Tuple[int, Any]:
    """(tag, sequence) when v is an array/structure (typed or native), else (0, None)."""
    if isinstance(v, Typed):
        if v.type in (DataType.ARRAY, DataType.STRUCTURE):
            if not isinstance(v.value, (list, tuple)):
                raise LocalProtocolError(f"{type_name(v.type)} needs a list or tuple, got {v.value!r}")
            return int(v.type), v.value
        if v.type == DataType.COMPACT_ARRAY:
            raise LocalProtocolError("a compact-array cannot hold a compact-array")
        return 0, None
    if isinstance(v, tuple):
        return 2, v
    if isinstance(v, list):
        return 1, v
    return 0, None


def _describe(v: Any, depth: int) -> Desc:
    if depth > 16:
        raise LocalProtocolError("compact-array element nested too deep")
    tag, seq = _container(v)
    if tag == 1:
        if not seq:
            raise LocalProtocolError("cannot describe an empty array inside a compact-array")
        if len(seq) > 0xFFFF:
            raise LocalProtocolError(f"array of {len(seq)} elements too long for a compact-array")
        return (1, len(seq), _describe(seq[0], depth + 1))
    if tag == 2:
        return (2, tuple(_describe(x, depth + 1) for x in seq))
    tmp = bytearray()
    encode_into(tmp, v)  # the tag that v would be sent with (bare ints fail here, as they should)
    return tmp[0]


def _write_desc(out: bytearray, desc: Desc) -> None:
    if type(desc) is int:
        out.append(desc)
    elif desc[0] == 1:
        out.append(1)
        out += _U16.pack(desc[1])
        _write_desc(out, desc[2])
    else:
        out.append(2)
        out += encode_length(len(desc[1]))
        for field in desc[1]:
            _write_desc(out, field)


def _pack(out: bytearray, v: Any, desc: Desc) -> None:
    if type(desc) is int:
        tmp = bytearray()
        encode_into(tmp, v)
        if tmp[0] != desc:
            raise LocalProtocolError(f"compact-array element {v!r} is not a {type_name(desc)}")
        out += memoryview(tmp)[1:]
        return
    tag, seq = _container(v)
    parts = (desc[2],) * desc[1] if desc[0] == 1 else desc[1]
    if tag != desc[0] or len(seq) != len(parts):
        raise LocalProtocolError(f"compact-array element {v!r} does not match the first element")
    for item, part in zip(seq, parts):
        _pack(out, item, part)


def encode_compact(out: bytearray, value: Any, depth: int) -> None:
    """Encoder for Typed(COMPACT_ARRAY, [elements]): the first element gives the description."""
    if not isinstance(value, (list, tuple)) or not value:
        raise LocalProtocolError(f"compact-array needs a non-empty list, got {value!r}")
    desc = _describe(value[0], 0)
    if type(desc) is int and desc in (0, 255):
        raise LocalProtocolError("compact-array elements must have content")
    contents = bytearray()
    for item in value:
        _pack(contents, item, desc)
    out.append(19)
    _write_desc(out, desc)
    out += encode_length(len(contents))
    out += contents
