"""A-XDR building blocks: the type tags, value wrappers and the length codec.

Shared by axdr.py (decoding, the public facade) and _axdr_encode.py; import them through
``tb_dlms.protocol.axdr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Tuple, Union

from .errors import DecodeError, LocalProtocolError

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


# The fixed-size number types: tag -> struct code (big-endian). The decoders and the fixed-layout
# unpacker (axdr.compile_fixed) read them from here.
FIXED_FORMATS = {
    5: "i", 6: "I", 13: "B", 15: "b", 16: "h", 17: "B", 18: "H",
    20: "q", 21: "Q", 22: "B", 23: "f", 24: "d",
}  # 13 bcd: the raw byte, as Gurux does; nibbles are the caller's business


def type_name(tag: int) -> str:
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


class DontCareType:
    """Type of the DONT_CARE singleton (tag 255, no content)."""

    _instance = None

    def __new__(cls) -> DontCareType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "DONT_CARE"

    def __reduce__(self) -> str:
        return "DONT_CARE"


DONT_CARE = DontCareType()


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
