"""xDLMS InitiateRequest / InitiateResponse and the conformance block.

These are A-XDR, carried as an OCTET STRING inside the user-information of the AARQ/AARE.
Layout (Blue Book, IEC 62056-5-3 xDLMS ASN.1):

InitiateRequest  ::= 0x01, dedicated-key OPTIONAL, response-allowed DEFAULT TRUE,
                     proposed-quality-of-service [0] OPTIONAL, proposed-dlms-version-number
                     Unsigned8, proposed-conformance, client-max-receive-pdu-size Unsigned16
InitiateResponse ::= 0x08, negotiated-quality-of-service [0] OPTIONAL, negotiated-dlms-version
                     Unsigned8, negotiated-conformance, server-max-receive-pdu-size Unsigned16,
                     vaa-name Integer16 (0x0007 for LN referencing)

A-XDR OPTIONAL/DEFAULT: 0x00 = absent (or default), 0x01 = present, followed by the value.
Conformance ::= [APPLICATION 31] IMPLICIT BIT STRING (SIZE(24)) -> 5F 1F 04 00 b0 b1 b2.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from ..axdr import decode_length, encode_length
from ..errors import DecodeError

INITIATE_REQUEST_TAG = 0x01
INITIATE_RESPONSE_TAG = 0x08
_CONFORMANCE_HEADER = b"\x5f\x1f\x04\x00"
# Flag keeps every composite value it builds for the life of the process; a meter can send any of
# 2**24 values, so only this many composites are kept (the constants of the code and a few meters').
_COMPOSITE_CACHE_LIMIT = 64


def _bit(n: int) -> int:
    # Bit 0 of the BIT STRING is the most significant bit of its first octet.
    return 1 << (23 - n)


class Conformance(IntFlag):
    """The 24-bit conformance block; the integer value is the three octets big-endian."""

    NONE = 0
    RESERVED_ZERO = _bit(0)
    GENERAL_PROTECTION = _bit(1)
    GENERAL_BLOCK_TRANSFER = _bit(2)
    READ = _bit(3)  # SN referencing only
    WRITE = _bit(4)  # SN
    UNCONFIRMED_WRITE = _bit(5)  # SN
    DELTA_VALUE_ENCODING = _bit(6)
    RESERVED_SEVEN = _bit(7)
    ATTRIBUTE0_SUPPORTED_WITH_SET = _bit(8)
    PRIORITY_MGMT_SUPPORTED = _bit(9)
    ATTRIBUTE0_SUPPORTED_WITH_GET = _bit(10)
    BLOCK_TRANSFER_WITH_GET_OR_READ = _bit(11)
    BLOCK_TRANSFER_WITH_SET_OR_WRITE = _bit(12)
    BLOCK_TRANSFER_WITH_ACTION = _bit(13)
    MULTIPLE_REFERENCES = _bit(14)
    INFORMATION_REPORT = _bit(15)  # SN
    DATA_NOTIFICATION = _bit(16)
    ACCESS = _bit(17)
    PARAMETERIZED_ACCESS = _bit(18)  # SN
    GET = _bit(19)
    SET = _bit(20)
    SELECTIVE_ACCESS = _bit(21)
    EVENT_NOTIFICATION = _bit(22)
    ACTION = _bit(23)

    @classmethod
    def _missing_(cls, value: object) -> Conformance:
        member: Conformance = super()._missing_(value)
        cache = cls._value2member_map_
        if len(cache) > len(cls._member_map_) + _COMPOSITE_CACHE_LIMIT:
            # Past the limit a composite is built anew each time instead of kept.
            for key in (value, member._value_):
                if cache.get(key) is member:
                    cache.pop(key, None)
        return member

    def encode(self) -> bytes:
        return _CONFORMANCE_HEADER + int(self).to_bytes(3, "big")

    @classmethod
    def decode_at(cls, data: bytes, offset: int) -> tuple[Conformance, int]:
        if data[offset:offset + 4] != _CONFORMANCE_HEADER:
            raise DecodeError("expected conformance block 5F 1F 04 00", offset)
        end = offset + 7
        if end > len(data):
            raise DecodeError("truncated conformance block", len(data))
        return cls(int.from_bytes(data[offset + 4:end], "big")), end

    @property
    def labels(self) -> tuple[str, ...]:
        """Hyphenated Blue Book names of the bits set, in bit order."""
        return tuple(str(m.name).lower().replace("_", "-") for m in _ORDERED if m & self)


_ORDERED = sorted((m for m in Conformance if m.value), key=lambda m: -m.value)

#: What a client proposes unless told otherwise: the LN services this stack implements.
DEFAULT_CLIENT_CONFORMANCE = (
    Conformance.GET | Conformance.SET | Conformance.ACTION | Conformance.SELECTIVE_ACCESS
    | Conformance.MULTIPLE_REFERENCES | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
    | Conformance.PRIORITY_MGMT_SUPPORTED | Conformance.ATTRIBUTE0_SUPPORTED_WITH_GET
)


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise DecodeError("truncated xDLMS initiate", len(data))


@dataclass(frozen=True)
class InitiateRequest:
    proposed_conformance: Conformance
    client_max_receive_pdu_size: int = 0xFFFF
    dlms_version: int = 6
    response_allowed: bool = True
    dedicated_key: bytes | None = None
    quality_of_service: int | None = None

    def __repr__(self) -> str:
        # The dedicated key travels ciphered; in clear here, it must not reach a log line.
        key = None if self.dedicated_key is None else "<hidden>"
        return (f"InitiateRequest(proposed_conformance={self.proposed_conformance!r}, "
                f"client_max_receive_pdu_size={self.client_max_receive_pdu_size}, "
                f"dlms_version={self.dlms_version}, response_allowed={self.response_allowed}, "
                f"dedicated_key={key}, quality_of_service={self.quality_of_service!r})")

    def encode(self) -> bytes:
        out = bytearray((INITIATE_REQUEST_TAG,))
        if self.dedicated_key is None:
            out.append(0)
        else:
            out.append(1)
            out += encode_length(len(self.dedicated_key))
            out += self.dedicated_key
        # DEFAULT TRUE: the default is sent as "absent".
        out += b"\x00" if self.response_allowed else b"\x01\x00"
        if self.quality_of_service is None:
            out.append(0)
        else:
            out += bytes((1, self.quality_of_service & 0xFF))
        out.append(self.dlms_version)
        out += Conformance(self.proposed_conformance).encode()
        out += self.client_max_receive_pdu_size.to_bytes(2, "big")
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> InitiateRequest:
        _need(data, 1)
        if data[0] != INITIATE_REQUEST_TAG:
            raise DecodeError(f"not an initiate-request (tag 0x{data[0]:02X})", 0)
        offset = 1
        _need(data, offset + 1)
        key = None
        if data[offset]:
            length, start = decode_length(data, offset + 1)
            _need(data, start + length)
            key = bytes(data[start:start + length])
            offset = start + length
        else:
            offset += 1
        _need(data, offset + 1)
        allowed = True
        if data[offset]:
            _need(data, offset + 2)
            allowed = bool(data[offset + 1])
            offset += 2
        else:
            offset += 1
        _need(data, offset + 1)
        qos = None
        if data[offset]:
            _need(data, offset + 2)
            qos = data[offset + 1] - 256 if data[offset + 1] > 127 else data[offset + 1]
            offset += 2
        else:
            offset += 1
        _need(data, offset + 1)
        version = data[offset]
        conformance, offset = Conformance.decode_at(data, offset + 1)
        _need(data, offset + 2)
        size = int.from_bytes(data[offset:offset + 2], "big")
        if offset + 2 != len(data):
            raise DecodeError("trailing bytes after initiate-request", offset + 2)
        return cls(conformance, size, version, allowed, key, qos)


@dataclass(frozen=True)
class InitiateResponse:
    negotiated_conformance: Conformance
    server_max_receive_pdu_size: int
    dlms_version: int = 6
    vaa_name: int = 0x0007
    quality_of_service: int | None = None

    def encode(self) -> bytes:
        qos = b"\x00" if self.quality_of_service is None else bytes(
            (1, self.quality_of_service & 0xFF))
        return b"".join((
            bytes((INITIATE_RESPONSE_TAG,)), qos, bytes((self.dlms_version,)),
            Conformance(self.negotiated_conformance).encode(),
            self.server_max_receive_pdu_size.to_bytes(2, "big"),
            self.vaa_name.to_bytes(2, "big", signed=True),
        ))

    @classmethod
    def decode(cls, data: bytes) -> InitiateResponse:
        _need(data, 1)
        if data[0] != INITIATE_RESPONSE_TAG:
            raise DecodeError(f"not an initiate-response (tag 0x{data[0]:02X})", 0)
        _need(data, 2)
        offset = 1
        qos = None
        if data[offset]:
            _need(data, 3)
            qos = data[2] - 256 if data[2] > 127 else data[2]
            offset = 3
        else:
            offset = 2
        _need(data, offset + 1)
        version = data[offset]
        conformance, offset = Conformance.decode_at(data, offset + 1)
        _need(data, offset + 4)
        size = int.from_bytes(data[offset:offset + 2], "big")
        vaa = int.from_bytes(data[offset + 2:offset + 4], "big", signed=True)
        if offset + 4 != len(data):
            raise DecodeError("trailing bytes after initiate-response", offset + 4)
        return cls(conformance, size, version, vaa, qos)
