"""SET service APDUs (tags 0xC1 set-request, 0xC5 set-response), LN referencing.

Set-Request  ::= CHOICE { normal [1], with-first-datablock [2], with-datablock [3],
                          with-list [4], with-list-and-first-datablock [5] }
Set-Response ::= CHOICE { normal [1], datablock [2], last-datablock [3],
                          last-datablock-with-list [4], with-list [5] }

Only normal and with-list are implemented: the values this connector writes (clock, relay,
tariff parameters) fit one PDU. A block-transfer SET from a peer is a DecodeError that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ..axdr import decode_data, decode_length, encode_into, encode_length
from ..errors import DecodeError
from .common import (
    DAR_BY_BYTE,
    AttributeDescriptor,
    DataAccessResult,
    SelectiveAccess,
    decode_access,
    decode_attribute_descriptor,
    encode_access,
    expect_end,
    invoke_byte,
    service_head,
)

SET_REQUEST_TAG = 0xC1
SET_RESPONSE_TAG = 0xC5

SetItem = tuple[AttributeDescriptor, Optional[SelectiveAccess], Any]


@dataclass(frozen=True)
class SetRequestNormal:
    """``value``: a Typed, or a native that encode_data accepts (a bare int is ambiguous)."""

    invoke_id: int
    descriptor: AttributeDescriptor
    value: Any
    access: SelectiveAccess | None = None
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        out = bytearray((SET_REQUEST_TAG, 1,
                         invoke_byte(self.invoke_id, self.high_priority, self.confirmed)))
        out += self.descriptor.wire
        out += encode_access(self.access)
        encode_into(out, self.value)
        return bytes(out)


@dataclass(frozen=True)
class SetRequestWithList:
    """``items``: (descriptor, access or None, value) per attribute."""

    invoke_id: int
    items: tuple[SetItem, ...]
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        out = bytearray((SET_REQUEST_TAG, 4,
                         invoke_byte(self.invoke_id, self.high_priority, self.confirmed)))
        count = encode_length(len(self.items))
        out += count
        for descriptor, access, _ in self.items:
            out += descriptor.wire
            out += encode_access(access)
        out += count
        for _, _, value in self.items:
            encode_into(out, value)
        return bytes(out)


@dataclass(frozen=True)
class SetResponseNormal:
    invoke_id: int
    result: DataAccessResult
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        return bytes((SET_RESPONSE_TAG, 1,
                      invoke_byte(self.invoke_id, self.high_priority, self.confirmed),
                      self.result))


@dataclass(frozen=True)
class SetResponseWithList:
    invoke_id: int
    results: tuple[DataAccessResult, ...]
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        head = bytes((SET_RESPONSE_TAG, 5,
                      invoke_byte(self.invoke_id, self.high_priority, self.confirmed)))
        return head + encode_length(len(self.results)) + bytes(self.results)


def decode_set_request(data: bytes, typed: bool = False) -> Any:
    choice, iid, hp, conf = service_head(data, "set-request")
    if choice == 1:
        descriptor, pos = decode_attribute_descriptor(data, 3)
        access, pos = decode_access(data, pos)
        value, pos = decode_data(data, pos, typed=typed)
        expect_end(data, pos)
        return SetRequestNormal(iid, descriptor, value, access, hp, conf)
    if choice == 4:
        count, pos = decode_length(data, 3)
        heads = []
        for _ in range(count):
            descriptor, pos = decode_attribute_descriptor(data, pos)
            access, pos = decode_access(data, pos)
            heads.append((descriptor, access))
        values_count, pos = decode_length(data, pos)
        if values_count != count:
            raise DecodeError(f"set-request-with-list: {count} attributes, {values_count} "
                              "values", pos)
        items = []
        for descriptor, access in heads:
            value, pos = decode_data(data, pos, typed=typed)
            items.append((descriptor, access, value))
        expect_end(data, pos)
        return SetRequestWithList(iid, tuple(items), hp, conf)
    if choice in (2, 3, 5):
        raise DecodeError("set-request with data blocks is not supported", 1)
    raise DecodeError(f"unknown set-request choice {choice}", 1)


def decode_set_response(data: bytes, typed: bool = False) -> Any:
    choice, iid, hp, conf = service_head(data, "set-response")
    if choice == 1:
        if len(data) != 4:
            raise DecodeError("set-response-normal must be 4 bytes", min(len(data), 4))
        return SetResponseNormal(iid, DAR_BY_BYTE[data[3]], hp, conf)
    if choice == 5:
        count, pos = decode_length(data, 3)
        if pos + count != len(data):
            raise DecodeError("set-response-with-list: wrong number of results", pos)
        return SetResponseWithList(
            iid, tuple(DAR_BY_BYTE[b] for b in data[pos:]), hp, conf)
    if choice in (2, 3, 4):
        raise DecodeError("set-response with data blocks is not supported", 1)
    raise DecodeError(f"unknown set-response choice {choice}", 1)
