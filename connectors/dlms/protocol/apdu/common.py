"""Pieces shared by the GET, SET and ACTION APDUs (Blue Book / IEC 62056-5-3, LN referencing).

Cosem-Attribute-Descriptor ::= class-id Unsigned16, instance-id OCTET STRING (SIZE(6)),
                               attribute-id Integer8            (9 bytes, no length octets)
Cosem-Method-Descriptor    ::= same, with method-id Integer8
Selective-Access-Descriptor::= access-selector Unsigned8, access-parameters Data
Invoke-Id-And-Priority     ::= bits 0-3 invoke id, bit 6 service class (1 = confirmed),
                               bit 7 priority (1 = high)
Get-Data-Result            ::= CHOICE { data [0] Data, data-access-result [1] ENUMERATED }

Descriptors encode themselves once, at construction: the poll loop sends the same ones every
cycle, so the hot path is a bytes join.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Union

from ..axdr import decode_data, encode_data, encode_into
from ..errors import DecodeError, LocalProtocolError
from ..obis import Obis

_DESCRIPTOR = struct.Struct(">H6sb")
_U32 = struct.Struct(">I")
DESCRIPTOR_SIZE = _DESCRIPTOR.size  # 9


class _LabelledResult(IntEnum):
    """An enumerated result whose unknown values survive decoding (meters do send them)."""

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and 0 <= value <= 255:
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class DataAccessResult(_LabelledResult):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_GET_ABORTED = 15
    NO_LONG_GET_IN_PROGRESS = 16
    LONG_SET_ABORTED = 17
    NO_LONG_SET_IN_PROGRESS = 18
    DATA_BLOCK_NUMBER_INVALID = 19
    OTHER_REASON = 250


class ActionResult(_LabelledResult):
    SUCCESS = 0
    HARDWARE_FAULT = 1
    TEMPORARY_FAILURE = 2
    READ_WRITE_DENIED = 3
    OBJECT_UNDEFINED = 4
    OBJECT_CLASS_INCONSISTENT = 9
    OBJECT_UNAVAILABLE = 11
    TYPE_UNMATCHED = 12
    SCOPE_OF_ACCESS_VIOLATED = 13
    DATA_BLOCK_UNAVAILABLE = 14
    LONG_ACTION_ABORTED = 15
    NO_LONG_ACTION_IN_PROGRESS = 16
    OTHER_REASON = 250


# Byte -> member, so decoding a result is one dict lookup (unknown values via _missing_).
DAR_BY_BYTE = {n: DataAccessResult(n) for n in range(256)}
ACTION_RESULT_BY_BYTE = {n: ActionResult(n) for n in range(256)}


def _check_obis(value: Any) -> Obis:
    return value if isinstance(value, Obis) else Obis.parse(value)


def _pack_descriptor(kind: str, class_id: int, obis: Obis, member: int) -> bytes:
    if not 0 <= class_id <= 0xFFFF:
        raise LocalProtocolError(f"class id out of range 0..65535: {class_id}")
    if not -128 <= member <= 127:
        raise LocalProtocolError(f"{kind} id out of range -128..127 (Integer8): {member}")
    return _DESCRIPTOR.pack(class_id, obis.to_bytes(), member)


@dataclass(frozen=True)
class AttributeDescriptor:
    class_id: int
    obis: Obis
    attribute: int
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        obis = _check_obis(self.obis)
        object.__setattr__(self, "obis", obis)
        object.__setattr__(self, "wire", _pack_descriptor(
            "attribute", self.class_id, obis, self.attribute))

    def __str__(self) -> str:
        return f"{self.class_id}/{self.obis}/{self.attribute}"


@dataclass(frozen=True)
class MethodDescriptor:
    class_id: int
    obis: Obis
    method: int
    wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        obis = _check_obis(self.obis)
        object.__setattr__(self, "obis", obis)
        object.__setattr__(self, "wire", _pack_descriptor(
            "method", self.class_id, obis, self.method))

    def __str__(self) -> str:
        return f"{self.class_id}/{self.obis}/method {self.method}"


def _unpack_descriptor(data: bytes, offset: int) -> tuple[int, Obis, int]:
    end = offset + DESCRIPTOR_SIZE
    if end > len(data):
        raise DecodeError("truncated COSEM descriptor", len(data))
    class_id, raw, member = _DESCRIPTOR.unpack_from(data, offset)
    return class_id, Obis.from_bytes(raw), member


def decode_attribute_descriptor(data: bytes, offset: int) -> tuple[AttributeDescriptor, int]:
    return AttributeDescriptor(*_unpack_descriptor(data, offset)), offset + DESCRIPTOR_SIZE


def decode_method_descriptor(data: bytes, offset: int) -> tuple[MethodDescriptor, int]:
    return MethodDescriptor(*_unpack_descriptor(data, offset)), offset + DESCRIPTOR_SIZE


@dataclass(frozen=True)
class SelectiveAccess:
    """access-selector and its parameters (e.g. a profile-generic range or entry descriptor).

    ``parameters`` is anything encode_data accepts; decoded parameters are Typed so that they
    re-encode to the same bytes."""

    selector: int
    parameters: Any

    def encode(self) -> bytes:
        if not 0 <= self.selector <= 255:
            raise LocalProtocolError(f"access selector out of range 0..255: {self.selector}")
        return bytes((1, self.selector)) + encode_data(self.parameters)


def encode_access(access: SelectiveAccess | None) -> bytes:
    """The OPTIONAL access-selection: 00 when absent."""
    return b"\x00" if access is None else access.encode()


def decode_access(data: bytes, offset: int) -> tuple[SelectiveAccess | None, int]:
    try:
        flag = data[offset]
    except IndexError:
        raise DecodeError("truncated access-selection", offset) from None
    if flag == 0:
        return None, offset + 1
    if flag != 1:
        raise DecodeError(f"bad OPTIONAL flag {flag}", offset)
    if offset + 2 > len(data):
        raise DecodeError("truncated access-selector", len(data))
    params, end = decode_data(data, offset + 2, typed=True)
    return SelectiveAccess(data[offset + 1], params), end


# ---- invoke-id-and-priority -----------------------------------------------------------------
_HIGH_PRIORITY = 0x80
_CONFIRMED = 0x40


def invoke_byte(invoke_id: int, high_priority: bool, confirmed: bool) -> int:
    if not 0 <= invoke_id <= 15:
        raise LocalProtocolError(f"invoke id out of range 0..15: {invoke_id}")
    return invoke_id | (_HIGH_PRIORITY if high_priority else 0) | (_CONFIRMED if confirmed else 0)


def split_invoke_byte(byte: int) -> tuple[int, bool, bool]:
    """(invoke id, high priority, confirmed); reserved bits 4-5 are ignored as the spec asks."""
    return byte & 0x0F, bool(byte & _HIGH_PRIORITY), bool(byte & _CONFIRMED)


# ---- Get-Data-Result ------------------------------------------------------------------------
Result = Union[Any, DataAccessResult]


def encode_get_data_result(out: bytearray, value: Result) -> None:
    if isinstance(value, DataAccessResult):
        out.append(1)
        out.append(value)
    else:
        out.append(0)
        encode_into(out, value)


def decode_get_data_result(data: bytes, offset: int, typed: bool) -> tuple[Result, int]:
    try:
        choice = data[offset]
        if choice == 0:
            return decode_data(data, offset + 1, typed=typed)
        if choice == 1:
            return DAR_BY_BYTE[data[offset + 1]], offset + 2
    except IndexError:
        raise DecodeError("truncated Get-Data-Result", len(data)) from None
    raise DecodeError(f"bad Get-Data-Result choice {choice}", offset)


def u32(data: bytes, offset: int) -> int:
    if offset + 4 > len(data):
        raise DecodeError("truncated Unsigned32", len(data))
    value: int = _U32.unpack_from(data, offset)[0]
    return value


def pack_u32(value: int) -> bytes:
    if not 0 <= value <= 0xFFFFFFFF:
        raise LocalProtocolError(f"block number out of range: {value}")
    return _U32.pack(value)


def service_head(data: bytes, what: str) -> tuple[int, int, bool, bool]:
    """(choice, invoke id, high priority, confirmed) of a GET/SET/ACTION APDU."""
    if len(data) < 3:
        raise DecodeError(f"truncated {what}", len(data))
    return (data[1],) + split_invoke_byte(data[2])


def expect_end(data: bytes, pos: int) -> None:
    if pos != len(data):
        raise DecodeError("trailing bytes after APDU", pos)
