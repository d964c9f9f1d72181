"""A-XDR encoding of COSEM ``Data`` (Blue Book, IEC 62056-6-2; A-XDR per IEC 61334-6).

Every value is a one-byte type tag followed by its content. Decoding is a dispatch dict from tag to
a small function ``(buf, pos, typed, depth) -> (value, new_pos)`` where ``pos`` points just past
the tag; the same functions read the tag-less contents of a compact-array. Errors: DecodeError
(with the offset) for anything the peer sent wrong, LocalProtocolError for values we cannot encode.
"""

from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Callable, Dict, Tuple, Union

from .cosem_datetime import CosemDate, CosemDateTime, CosemTime
from .errors import DecodeError, LocalProtocolError

__all__ = [
    "DONT_CARE",
    "BitString",
    "DataType",
    "Typed",
    "decode_data",
    "decode_length",
    "encode_data",
    "encode_into",
    "encode_length",
    "to_json",
]

Buffer = Union[bytes, bytearray, memoryview]


class DataType(IntEnum):
    NULL_DATA = 0
    ARRAY = 1
    STRUCTURE = 2
    BOOLEAN = 3
    BIT_STRING = 4
    DOUBLE_LONG = 5
    DOUBLE_LONG_UNSIGNED = 6
    OCTET_STRING = 9
    VISIBLE_STRING = 10
    UTF8_STRING = 12
    BCD = 13
    INTEGER = 15
    LONG = 16
    UNSIGNED = 17
    LONG_UNSIGNED = 18
    COMPACT_ARRAY = 19
    LONG64 = 20
    LONG64_UNSIGNED = 21
    ENUM = 22
    FLOAT32 = 23
    FLOAT64 = 24
    DATE_TIME = 25
    DATE = 26
    TIME = 27
    DONT_CARE = 255


def _name(tag: int) -> str:
    return DataType(tag).name.lower().replace("_", "-")


@dataclass(frozen=True)
class Typed:
    """A value with its explicit A-XDR type: what typed decoding returns and encoding honours."""

    type: DataType
    value: Any


@dataclass(frozen=True)
class BitString:
    """A bit-string as '0'/'1' characters, first character = most significant bit of byte 0."""

    bits: str

    def __post_init__(self) -> None:
        if not isinstance(self.bits, str) or self.bits.strip("01"):
            raise LocalProtocolError(f"bit-string must be made of '0' and '1': {self.bits!r}")

    @classmethod
    def from_bytes(cls, data: bytes, nbits: int) -> BitString:
        if not data:
            return cls("")
        return cls(format(int.from_bytes(data, "big"), f"0{len(data) * 8}b")[:nbits])

    def to_bytes(self) -> bytes:
        n = len(self.bits)
        nbytes = (n + 7) // 8
        if not n:
            return b""
        return (int(self.bits, 2) << (nbytes * 8 - n)).to_bytes(nbytes, "big")

    def __len__(self) -> int:
        return len(self.bits)

    def __str__(self) -> str:
        return self.bits


class _DontCare:
    """Type of the DONT_CARE singleton (tag 255, no content)."""

    _instance = None

    def __new__(cls) -> _DontCare:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DONT_CARE"

    def __reduce__(self) -> str:
        return "DONT_CARE"


DONT_CARE = _DontCare()


# ---- lengths ------------------------------------------------------------------------------------
def encode_length(n: int) -> bytes:
    """A-XDR / BER definite length: short form below 0x80, else 0x81..0x84 + big-endian bytes."""
    if n < 0x80:
        if n < 0:
            raise LocalProtocolError(f"negative length {n}")
        return bytes((n,))
    if n > 0xFFFFFFFF:
        raise LocalProtocolError(f"length {n} too large to encode")
    size = (n.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + n.to_bytes(size, "big")


def decode_length(buf: Buffer, offset: int) -> Tuple[int, int]:
    """Read a length at ``offset``; returns (length, new_offset). Checks only the length bytes."""
    try:
        first = buf[offset]
    except IndexError:
        raise DecodeError("truncated length", offset) from None
    if first < 0x80:
        return first, offset + 1
    size = first & 0x7F
    if size == 0 or size > 4:
        raise DecodeError(f"invalid length byte 0x{first:02x}", offset)
    end = offset + 1 + size
    if end > len(buf):
        raise DecodeError("truncated length", offset)
    return int.from_bytes(buf[offset + 1:end], "big"), end


# ---- decoding -----------------------------------------------------------------------------------
Decoder = Callable[[Buffer, int, bool, int], Tuple[Any, int]]


def _fixed(tag: int, fmt: str) -> Decoder:
    unpack = struct.Struct(fmt).unpack_from
    size = struct.calcsize(fmt)
    what = "truncated " + _name(tag)

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


def _span(buf: Buffer, pos: int, what: str) -> Tuple[int, int]:
    """Read a length and check that many bytes follow: returns (start, end)."""
    n, start = decode_length(buf, pos)
    end = start + n
    if end > len(buf):
        raise DecodeError(f"{what} of {n} bytes overruns the data", pos)
    return start, end


def _d_octets(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = _span(buf, pos, "octet-string")
    return bytes(buf[start:end]), end


def _d_visible(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = _span(buf, pos, "visible-string")
    # latin-1 maps every byte: a meter's stray non-ASCII byte must not lose the whole reading.
    return bytes(buf[start:end]).decode("latin-1"), end


def _d_utf8(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    start, end = _span(buf, pos, "utf8-string")
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


def _count(buf: Buffer, pos: int, depth: int, what: str) -> Tuple[int, int]:
    if depth <= 0:
        raise DecodeError(f"{what} nested deeper than the depth limit", pos)
    n, start = decode_length(buf, pos)
    if n > len(buf) - start:  # every element takes at least its tag byte
        raise DecodeError(f"{what} of {n} elements overruns the data", pos)
    return n, start


def _d_array(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    n, pos = _count(buf, pos, depth, "array")
    items: list[Any] = []
    append = items.append
    depth -= 1
    for _ in range(n):
        value, pos = _decode_one(buf, pos, typed, depth)
        append(value)
    return items, pos


def _d_structure(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    n, pos = _count(buf, pos, depth, "structure")
    items: list[Any] = []
    append = items.append
    depth -= 1
    for _ in range(n):
        value, pos = _decode_one(buf, pos, typed, depth)
        append(value)
    return tuple(items), pos


def _d_datetime(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemDateTime.from_buffer(buf, pos), pos + 12


def _d_date(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemDate.from_buffer(buf, pos), pos + 5


def _d_time(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    return CosemTime.from_buffer(buf, pos), pos + 4


_DECODERS: Dict[int, Decoder] = {
    0: _d_null, 1: _d_array, 2: _d_structure, 3: _d_bool, 4: _d_bits,
    5: _fixed(5, ">i"), 6: _fixed(6, ">I"), 9: _d_octets, 10: _d_visible, 12: _d_utf8,
    13: _fixed(13, ">B"),  # bcd: the raw byte, as Gurux does; nibbles are the caller's business
    15: _fixed(15, ">b"), 16: _fixed(16, ">h"), 17: _fixed(17, ">B"), 18: _fixed(18, ">H"),
    20: _fixed(20, ">q"), 21: _fixed(21, ">Q"), 22: _fixed(22, ">B"),
    23: _fixed(23, ">f"), 24: _fixed(24, ">d"),
    25: _d_datetime, 26: _d_date, 27: _d_time, 255: _d_dont_care,
}
_TYPES = {int(t): t for t in DataType}


def _decode_one(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    try:
        tag = buf[pos]
    except IndexError:
        raise DecodeError("truncated data: type tag missing", pos) from None
    dec = _DECODERS.get(tag)
    if dec is None:
        raise DecodeError(f"unknown A-XDR type tag {tag}", pos)
    value, pos = dec(buf, pos + 1, typed, depth)
    if typed:
        return Typed(_TYPES[tag], value), pos
    return value, pos


def decode_data(buf: Buffer, offset: int = 0, *, typed: bool = False,
                max_depth: int = 16) -> Tuple[Any, int]:
    """Decode one Data at ``offset``; returns (value, new_offset). See the module doc for types."""
    try:
        tag = buf[offset]
    except IndexError:
        raise DecodeError("truncated data: type tag missing", offset) from None
    dec = _DECODERS.get(tag)
    if dec is None:
        raise DecodeError(f"unknown A-XDR type tag {tag}", offset)
    value, pos = dec(buf, offset + 1, typed, max_depth)
    if typed:
        return Typed(_TYPES[tag], value), pos
    return value, pos


def _d_compact(buf: Buffer, pos: int, typed: bool, depth: int) -> Tuple[Any, int]:
    # Imported on first use: the compact-array module builds on this one (see its doc).
    from ._axdr_compact import decode_compact

    return decode_compact(buf, pos, typed, depth)


_DECODERS[19] = _d_compact


# ---- encoding -----------------------------------------------------------------------------------
_ENCODE_DEPTH = 64  # guards against cyclic lists; far beyond any real COSEM value
Encoder = Callable[[bytearray, Any, int], None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_encoder(tag: int, fmt: str) -> Encoder:
    st = struct.Struct(fmt)
    pack = st.pack
    bits = st.size * 8
    signed = fmt[1].islower()  # struct: lower case = signed
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    head = bytes((tag,))
    name = _name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not _is_int(v) or not lo <= v <= hi:
            raise LocalProtocolError(f"{name} needs an int in {lo}..{hi}, got {v!r}")
        out += head
        out += pack(v)

    return enc


def _float_encoder(tag: int, fmt: str) -> Encoder:
    pack = struct.Struct(fmt).pack
    head = bytes((tag,))
    name = _name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise LocalProtocolError(f"{name} needs a float, got {v!r}")
        try:
            data = pack(v)
        except (OverflowError, struct.error):
            raise LocalProtocolError(f"{name} cannot hold {v!r}") from None
        out += head
        out += data

    return enc


def _put_octets(out: bytearray, tag: int, data: bytes) -> None:
    out.append(tag)
    out += encode_length(len(data))
    out += data


def _e_null(out: bytearray, v: Any, depth: int) -> None:
    if v is not None:
        raise LocalProtocolError(f"null-data takes None, got {v!r}")
    out.append(0)


def _e_dont_care(out: bytearray, v: Any, depth: int) -> None:
    if v is not None and v is not DONT_CARE:
        raise LocalProtocolError(f"dont-care takes DONT_CARE, got {v!r}")
    out.append(255)


def _e_bool(out: bytearray, v: Any, depth: int) -> None:
    if not isinstance(v, bool):
        raise LocalProtocolError(f"boolean needs a bool, got {v!r}")
    out += b"\x03\x01" if v else b"\x03\x00"


def _e_octets(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
    elif isinstance(v, (CosemDateTime, CosemDate, CosemTime)) or type(v).__name__ == "Obis":
        data = v.to_bytes()  # clock and schedules carry date-time as octet-string(12)
    else:
        raise LocalProtocolError(f"octet-string needs bytes, got {v!r}")
    _put_octets(out, 9, data)


def _e_visible(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, (bytes, bytearray)):
        data = bytes(v)
    elif isinstance(v, str):
        try:
            data = v.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"visible-string cannot hold {v!r}: use utf8-string") from None
    else:
        raise LocalProtocolError(f"visible-string needs a str, got {v!r}")
    _put_octets(out, 10, data)


def _e_utf8(out: bytearray, v: Any, depth: int) -> None:
    if not isinstance(v, str):
        raise LocalProtocolError(f"utf8-string needs a str, got {v!r}")
    _put_octets(out, 12, v.encode("utf-8"))


def _e_str(out: bytearray, v: str, depth: int) -> None:
    if v.isascii():
        _put_octets(out, 10, v.encode("ascii"))
    else:
        _put_octets(out, 12, v.encode("utf-8"))


def _e_bits(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, str):
        v = BitString(v)
    if not isinstance(v, BitString):
        raise LocalProtocolError(f"bit-string needs a BitString, got {v!r}")
    out.append(4)
    out += encode_length(len(v.bits))
    out += v.to_bytes()


def _container(tag: int) -> Encoder:
    name = _name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not isinstance(v, (list, tuple)):
            raise LocalProtocolError(f"{name} needs a list or tuple, got {v!r}")
        if depth >= _ENCODE_DEPTH:
            raise LocalProtocolError(f"{name} nested deeper than {_ENCODE_DEPTH} levels")
        out.append(tag)
        out += encode_length(len(v))
        for item in v:
            _encode(out, item, depth + 1)

    return enc


def _e_datetime(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.datetime):
        v = CosemDateTime.from_datetime(v)  # Blue Book deviation sign
    if not isinstance(v, CosemDateTime):
        raise LocalProtocolError(f"date-time needs a CosemDateTime, got {v!r}")
    out.append(25)
    out += v.to_bytes()


def _e_date(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.date):
        v = CosemDate.from_date(v)
    if not isinstance(v, CosemDate):
        raise LocalProtocolError(f"date needs a CosemDate, got {v!r}")
    out.append(26)
    out += v.to_bytes()


def _e_time(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.time):
        v = CosemTime.from_time(v)
    if not isinstance(v, CosemTime):
        raise LocalProtocolError(f"time needs a CosemTime, got {v!r}")
    out.append(27)
    out += v.to_bytes()


def _e_compact(out: bytearray, v: Any, depth: int) -> None:
    from ._axdr_compact import encode_compact

    encode_compact(out, v, depth)


_TYPED: Dict[int, Encoder] = {
    0: _e_null, 1: _container(1), 2: _container(2), 3: _e_bool, 4: _e_bits,
    5: _int_encoder(5, ">i"), 6: _int_encoder(6, ">I"), 9: _e_octets, 10: _e_visible,
    12: _e_utf8, 13: _int_encoder(13, ">B"), 15: _int_encoder(15, ">b"),
    16: _int_encoder(16, ">h"), 17: _int_encoder(17, ">B"), 18: _int_encoder(18, ">H"),
    19: _e_compact, 20: _int_encoder(20, ">q"), 21: _int_encoder(21, ">Q"),
    22: _int_encoder(22, ">B"), 23: _float_encoder(23, ">f"), 24: _float_encoder(24, ">d"),
    25: _e_datetime, 26: _e_date, 27: _e_time, 255: _e_dont_care,
}


def _e_typed(out: bytearray, v: Typed, depth: int) -> None:
    enc = _TYPED.get(v.type)
    if enc is None:
        raise LocalProtocolError(f"unknown A-XDR type {v.type!r}")
    enc(out, v.value, depth)


def _e_ambiguous(out: bytearray, v: Any, depth: int) -> None:
    raise LocalProtocolError(
        f"ambiguous A-XDR type for int {v!r}: wrap it, e.g. Typed(DataType.LONG_UNSIGNED, {v!r})"
    )


_NATIVE: Dict[type, Encoder] = {
    type(None): _e_null, bool: _e_bool, int: _e_ambiguous, float: _TYPED[24],
    bytes: _e_octets, bytearray: _e_octets, memoryview: _e_octets, str: _e_str,
    tuple: _TYPED[2], list: _TYPED[1], BitString: _e_bits, CosemDateTime: _TYPED[25],
    CosemDate: _TYPED[26], CosemTime: _TYPED[27], _DontCare: _e_dont_care, Typed: _e_typed,
}


def _encode(out: bytearray, value: Any, depth: int) -> None:
    enc = _NATIVE.get(type(value))
    if enc is None:  # subclasses (IntEnum, namedtuple...) take their base's rule
        for base, candidate in _NATIVE.items():
            if base is not type(None) and isinstance(value, base):
                enc = candidate
                break
        else:
            raise LocalProtocolError(f"cannot encode {type(value).__name__} {value!r} as A-XDR")
    enc(out, value, depth)


def encode_into(out: bytearray, value: Any) -> None:
    """Append the A-XDR encoding of ``value`` to ``out`` (see the module doc for the rules)."""
    _encode(out, value, 0)


def encode_data(value: Any) -> bytes:
    """A-XDR bytes of ``value``: a Typed, or a native whose type is unambiguous (not a bare int)."""
    out = bytearray()
    _encode(out, value, 0)
    return bytes(out)


# ---- JSON ---------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """A JSON-ready rendering of a decoded value (see the project docs for the rules)."""
    if value is None or type(value) in (int, float, bool, str):
        return value
    if isinstance(value, Typed):
        return to_json(value.value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        # Serial numbers and meter ids often come as octet-strings of printable ASCII.
        if data.isascii() and data.decode("ascii").isprintable():
            return data.decode("ascii")
        return data.hex()
    if isinstance(value, BitString):
        return value.bits
    if isinstance(value, (CosemDateTime, CosemDate, CosemTime)):
        return value.isoformat()
    if value is DONT_CARE:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)  # IntEnum, ClockStatus...
    if isinstance(value, float):
        return float(value)
    return str(value)
