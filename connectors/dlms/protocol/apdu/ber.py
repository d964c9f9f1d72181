"""The small slice of BER (ITU-T X.690) the ACSE APDUs need.

AARQ/AARE/RLRQ/RLRE are BER-encoded (everything inside user-information is A-XDR). DLMS only
uses one-byte tags and definite lengths, so that is all this module accepts: a multi-byte tag or
an indefinite length is a DecodeError, never a guess. Every length is computed from the content
(the replaced system hard-coded the AARQ length for one password size).
"""

from __future__ import annotations

from collections.abc import Iterator

from .._axdr_types import decode_length, encode_length
from ..errors import DecodeError

# Universal tags used inside the ACSE fields.
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OBJECT_IDENTIFIER = 0x06
GRAPHIC_STRING = 0x19

# decode_length / encode_length: DLMS's BER definite length is byte for byte the A-XDR length,
# so the one codec in _axdr_types serves both (indefinite and > 4-byte lengths are refused).


def tlv(tag: int, content: bytes) -> bytes:
    """One tag-length-value element."""
    return bytes((tag,)) + encode_length(len(content)) + content


def read_tlv(data: bytes, offset: int, end: int) -> tuple[int, int, int]:
    """Read one element inside data[:end]; return (tag, content start, content end)."""
    if offset >= end:
        raise DecodeError("truncated BER element", offset)
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-byte BER tag 0x{tag:02X} is not used by DLMS", offset)
    length, start = decode_length(data, offset + 1)
    stop = start + length
    if stop > end:
        raise DecodeError(f"BER element 0x{tag:02X} overruns its container", offset)
    return tag, start, stop


def iter_tlvs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """Every element between start and end, in order."""
    offset = start
    while offset < end:
        tag, cstart, cend = read_tlv(data, offset, end)
        yield tag, cstart, cend
        offset = cend


def encode_integer(value: int) -> bytes:
    """Content octets of a BER INTEGER: minimal two's complement."""
    length = (value + (value < 0)).bit_length() // 8 + 1
    return value.to_bytes(length, "big", signed=True)


def decode_integer(data: bytes, start: int, end: int) -> int:
    if start >= end:
        raise DecodeError("empty BER INTEGER", start)
    if end - start > 8:
        raise DecodeError("BER INTEGER too large", start)
    return int.from_bytes(data[start:end], "big", signed=True)


def expect_single(data: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """The content of a constructed field must be exactly one element of type ``tag``."""
    inner, cstart, cend = read_tlv(data, start, end)
    if inner != tag:
        raise DecodeError(f"{what}: expected tag 0x{tag:02X}, got 0x{inner:02X}", start)
    if cend != end:
        raise DecodeError(f"{what}: trailing bytes", cend)
    return cstart, cend
