"""GET service APDUs (tags 0xC0 get-request, 0xC4 get-response), LN referencing.

Get-Request  ::= CHOICE { normal [1], next [2], with-list [3] }
Get-Response ::= CHOICE { normal [1], with-datablock [2], with-list [3] }
DataBlock-G  ::= last-block BOOLEAN, block-number Unsigned32,
                 result CHOICE { raw-data [0] OCTET STRING, data-access-result [1] ENUMERATED }

The with-list request encode and response decode are the poll loop's hot path: descriptors are
pre-encoded and results are read with one dict lookup and one decode_data call per item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Optional

from ..axdr import decode_data, decode_length, encode_length
from ..errors import DecodeError, LocalProtocolError
from .common import (
    DAR_BY_BYTE,
    AttributeDescriptor,
    DataAccessResult,
    Result,
    SelectiveAccess,
    decode_access,
    decode_attribute_descriptor,
    decode_get_data_result,
    encode_access,
    encode_get_data_result,
    expect_end,
    invoke_byte,
    pack_u32,
    service_head,
    u32,
)

GET_REQUEST_TAG = 0xC0
GET_RESPONSE_TAG = 0xC4
GET_DATA_CHOICE = 0  # Get-Data-Result: data (1: data-access-result)

GetItem = tuple[AttributeDescriptor, Optional[SelectiveAccess]]


@dataclass(frozen=True)
class GetRequestNormal:
    invoke_id: int
    descriptor: AttributeDescriptor
    access: SelectiveAccess | None = None
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        iip = invoke_byte(self.invoke_id, self.high_priority, self.confirmed)
        access = b"\x00" if self.access is None else self.access.encode()
        return bytes((GET_REQUEST_TAG, 1, iip)) + self.descriptor.wire + access


@dataclass(frozen=True)
class GetRequestNext:
    invoke_id: int
    block_number: int
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        iip = invoke_byte(self.invoke_id, self.high_priority, self.confirmed)
        return bytes((GET_REQUEST_TAG, 2, iip)) + pack_u32(self.block_number)


@dataclass(frozen=True)
class GetRequestWithList:
    invoke_id: int
    items: tuple[GetItem, ...]
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        iip = invoke_byte(self.invoke_id, self.high_priority, self.confirmed)
        parts = [bytes((GET_REQUEST_TAG, 3, iip)), encode_length(len(self.items))]
        for descriptor, access in self.items:
            parts.append(descriptor.wire)
            parts.append(b"\x00" if access is None else access.encode())
        return b"".join(parts)


class PreparedGetWithList:
    """A GET-with-list request whose items never change (a poll cycle sent every period): the
    items are encoded once, the whole APDU once per invoke-id byte (16 ids x 4 flag pairs at
    most), so sending it again is a dict look-up. Equal, byte for byte, to ``GetRequestWithList``.
    """

    __slots__ = ("_body", "_by_iip", "count", "items", "selective")

    def __init__(self, items: Sequence[GetItem]) -> None:
        self.items = tuple(items)
        if not self.items:
            raise LocalProtocolError("a GET-with-list needs at least one attribute")
        self.count = len(self.items)
        self.selective = any(access is not None for _, access in self.items)
        self._body = GetRequestWithList(0, self.items).encode()[3:]
        self._by_iip: dict[int, bytes] = {}

    def encode(self, invoke_id: int, high_priority: bool = True, confirmed: bool = True) -> bytes:
        iip = invoke_byte(invoke_id, high_priority, confirmed)
        raw = self._by_iip.get(iip)
        if raw is None:
            raw = self._by_iip[iip] = bytes((GET_REQUEST_TAG, 3, iip)) + self._body
        return raw

    # A sequence of its items, like the list it was prepared from.
    def __iter__(self) -> Iterator[GetItem]:
        return iter(self.items)

    def __len__(self) -> int:
        return self.count


@dataclass(frozen=True)
class GetResponseNormal:
    """``result`` is the decoded value (natives, or Typed when decoded with typed=True) or a
    DataAccessResult."""

    invoke_id: int
    result: Result
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        out = bytearray((GET_RESPONSE_TAG, 1,
                         invoke_byte(self.invoke_id, self.high_priority, self.confirmed)))
        encode_get_data_result(out, self.result)
        return bytes(out)


@dataclass(frozen=True)
class GetResponseWithDataBlock:
    """One block of a long response; the blocks' raw_data joined is the encoding of the
    normal result (one Data) or of the with-list results (count, then Get-Data-Results)."""

    invoke_id: int
    last_block: bool
    block_number: int
    raw_data: bytes | DataAccessResult
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        head = bytes((GET_RESPONSE_TAG, 2,
                      invoke_byte(self.invoke_id, self.high_priority, self.confirmed),
                      1 if self.last_block else 0)) + pack_u32(self.block_number)
        if isinstance(self.raw_data, DataAccessResult):
            return head + bytes((1, self.raw_data))
        return head + b"\x00" + encode_length(len(self.raw_data)) + bytes(self.raw_data)


@dataclass(frozen=True)
class GetResponseWithList:
    invoke_id: int
    results: tuple[Result, ...]
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        iip = invoke_byte(self.invoke_id, self.high_priority, self.confirmed)
        out = bytearray(with_list_response_head(iip, len(self.results)))
        for result in self.results:
            encode_get_data_result(out, result)
        return bytes(out)


def with_list_response_head(invoke_id_and_priority: int, count: int) -> bytes:
    """What a GetResponseWithList starts with: tag, choice, invoke-id-and-priority, item count;
    each item then is a Get-Data-Result, ``GET_DATA_CHOICE`` and the Data when it has one."""
    return bytes((GET_RESPONSE_TAG, 3, invoke_id_and_priority)) + encode_length(count)


def block_overhead(pdu_size: int) -> int:
    """Bytes a GetResponseWithDataBlock adds around its raw data (length octets included)."""
    return 9 + len(encode_length(pdu_size))  # C4 02 iip last block(4) choice + length


def encode_results_for_blocks(results: Sequence[Result], with_list: bool) -> bytes:
    """What the blocks carry: the Data of a normal response, or count + Get-Data-Results."""
    out = bytearray()
    if with_list:
        out += encode_length(len(results))
        for result in results:
            encode_get_data_result(out, result)
    else:
        if len(results) != 1:
            raise LocalProtocolError("a normal GET response carries exactly one result")
        encode_get_data_result(out, results[0])
        if out[0] == 1:
            raise LocalProtocolError("a data-access-result is never sent in data blocks")
        del out[0]  # raw-data carries the bare Data, without the Get-Data-Result choice
    return bytes(out)


def decode_block_payload(payload: bytes, with_list: bool, typed: bool) -> tuple[Result, ...]:
    """Inverse of encode_results_for_blocks, for the reassembled raw data."""
    if with_list:
        count, pos = decode_length(payload, 0)
        results: list[Result] = []
        for _ in range(count):
            result, pos = decode_get_data_result(payload, pos, typed)
            results.append(result)
    else:
        value, pos = decode_data(payload, 0, typed=typed)
        results = [value]
    if pos != len(payload):
        raise DecodeError("trailing bytes after the reassembled GET result", pos)
    return tuple(results)


# ---- decoding ---------------------------------------------------------------------------------
def decode_get_request(data: bytes) -> Any:
    choice, iid, hp, conf = service_head(data, "get-request")
    if choice == 1:
        descriptor, pos = decode_attribute_descriptor(data, 3)
        access, pos = decode_access(data, pos)
        expect_end(data, pos)
        return GetRequestNormal(iid, descriptor, access, hp, conf)
    if choice == 2:
        block = u32(data, 3)
        expect_end(data, 7)
        return GetRequestNext(iid, block, hp, conf)
    if choice == 3:
        count, pos = decode_length(data, 3)
        items = []
        for _ in range(count):
            descriptor, pos = decode_attribute_descriptor(data, pos)
            access, pos = decode_access(data, pos)
            items.append((descriptor, access))
        expect_end(data, pos)
        return GetRequestWithList(iid, tuple(items), hp, conf)
    raise DecodeError(f"unknown get-request choice {choice}", 1)


def decode_get_response(data: bytes, typed: bool = False) -> Any:
    choice, iid, hp, conf = service_head(data, "get-response")
    if choice == 1:
        result, pos = decode_get_data_result(data, 3, typed)
        expect_end(data, pos)
        return GetResponseNormal(iid, result, hp, conf)
    if choice == 3:
        count, pos = decode_length(data, 3)
        results: list[Result] = []
        append = results.append
        try:
            for _ in range(count):
                if data[pos] == 0:
                    value, pos = decode_data(data, pos + 1, typed=typed)
                    append(value)
                elif data[pos] == 1:
                    append(DAR_BY_BYTE[data[pos + 1]])
                    pos += 2
                else:
                    raise DecodeError(f"bad Get-Data-Result choice {data[pos]}", pos)
        except IndexError:
            raise DecodeError("truncated get-response-with-list", len(data)) from None
        expect_end(data, pos)
        return GetResponseWithList(iid, tuple(results), hp, conf)
    if choice == 2:
        if len(data) < 9:
            raise DecodeError("truncated get-response-with-datablock", len(data))
        last = data[3]
        if last > 1:
            raise DecodeError(f"bad BOOLEAN {last}", 3)
        block = u32(data, 4)
        raw: bytes | DataAccessResult
        if data[8] == 0:
            length, pos = decode_length(data, 9)
            if pos + length > len(data):
                raise DecodeError("truncated raw-data block", len(data))
            raw = bytes(data[pos:pos + length])
            pos += length
        elif data[8] == 1:
            if len(data) < 10:
                raise DecodeError("truncated data-access-result", len(data))
            raw, pos = DAR_BY_BYTE[data[9]], 10
        else:
            raise DecodeError(f"bad DataBlock-G result choice {data[8]}", 8)
        expect_end(data, pos)
        return GetResponseWithDataBlock(iid, bool(last), block, raw, hp, conf)
    raise DecodeError(f"unknown get-response choice {choice}", 1)




__all__ = [
    "GET_REQUEST_TAG",
    "GET_DATA_CHOICE",
    "GET_RESPONSE_TAG",
    "GetItem",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponseNormal",
    "GetResponseWithDataBlock",
    "GetResponseWithList",
    "PreparedGetWithList",
    "block_overhead",
    "decode_block_payload",
    "decode_get_request",
    "decode_get_response",
    "encode_access",
    "encode_results_for_blocks",
    "with_list_response_head",
]
