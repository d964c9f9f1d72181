"""ACTION service APDUs (tags 0xC3 action-request, 0xC7 action-response), LN referencing.

Action-Request  ::= CHOICE { normal [1], next-pblock [2], with-list [3], ... }
  normal        ::= invoke-id-and-priority, Cosem-Method-Descriptor,
                    method-invocation-parameters Data OPTIONAL
Action-Response ::= CHOICE { normal [1], with-pblock [2], with-list [3], next-pblock [4] }
  normal        ::= invoke-id-and-priority, result Action-Result,
                    return-parameters Get-Data-Result OPTIONAL

Only the normal forms are implemented (disconnect control, clock adjust, reset: small
parameters); the others are a DecodeError that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..axdr import decode_data, encode_into
from ..errors import DecodeError
from .common import (
    ACTION_RESULT_BY_BYTE,
    ActionResult,
    MethodDescriptor,
    Result,
    decode_get_data_result,
    decode_method_descriptor,
    encode_get_data_result,
    expect_end,
    invoke_byte,
    service_head,
)

ACTION_REQUEST_TAG = 0xC3
ACTION_RESPONSE_TAG = 0xC7


@dataclass(frozen=True)
class ActionRequestNormal:
    invoke_id: int
    descriptor: MethodDescriptor
    parameters: Any | None = None  # None = no parameters (not a null-data parameter)
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        out = bytearray((ACTION_REQUEST_TAG, 1,
                         invoke_byte(self.invoke_id, self.high_priority, self.confirmed)))
        out += self.descriptor.wire
        if self.parameters is None:
            out.append(0)
        else:
            out.append(1)
            encode_into(out, self.parameters)
        return bytes(out)


@dataclass(frozen=True)
class ActionResponseNormal:
    """``return_data``: None (absent), a value, or a DataAccessResult."""

    invoke_id: int
    result: ActionResult
    return_data: Result | None = None
    high_priority: bool = True
    confirmed: bool = True

    def encode(self) -> bytes:
        out = bytearray((ACTION_RESPONSE_TAG, 1,
                         invoke_byte(self.invoke_id, self.high_priority, self.confirmed),
                         self.result))
        if self.return_data is None:
            out.append(0)
        else:
            out.append(1)
            encode_get_data_result(out, self.return_data)
        return bytes(out)


def decode_action_request(data: bytes, typed: bool = False) -> Any:
    choice, iid, hp, conf = service_head(data, "action-request")
    if choice != 1:
        raise DecodeError(f"action-request choice {choice} is not supported", 1)
    descriptor, pos = decode_method_descriptor(data, 3)
    if pos >= len(data):
        raise DecodeError("truncated action-request", len(data))
    params = None
    if data[pos] == 1:
        params, pos = decode_data(data, pos + 1, typed=typed)
    elif data[pos] == 0:
        pos += 1
    else:
        raise DecodeError(f"bad OPTIONAL flag {data[pos]}", pos)
    expect_end(data, pos)
    return ActionRequestNormal(iid, descriptor, params, hp, conf)


def decode_action_response(data: bytes, typed: bool = False) -> Any:
    choice, iid, hp, conf = service_head(data, "action-response")
    if choice != 1:
        raise DecodeError(f"action-response choice {choice} is not supported", 1)
    if len(data) < 5:
        raise DecodeError("truncated action-response", len(data))
    result = ACTION_RESULT_BY_BYTE[data[3]]
    ret = None
    if data[4] == 1:
        ret, pos = decode_get_data_result(data, 5, typed)
    elif data[4] == 0:
        pos = 5
    else:
        raise DecodeError(f"bad OPTIONAL flag {data[4]}", 4)
    expect_end(data, pos)
    return ActionResponseNormal(iid, result, ret, hp, conf)
