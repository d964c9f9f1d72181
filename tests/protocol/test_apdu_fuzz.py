"""Bounded fuzz of decode_apdu: whatever the peer sends, only DlmsError subclasses escape."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.apdu import (
    AARE,
    AARQ,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AttributeDescriptor,
    AuthMechanism,
    DataAccessResult,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseWithDataBlock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    SetRequestWithList,
    decode_apdu,
)
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import DecodeError, DlmsError

_D = AttributeDescriptor(3, "1-1:32.7.0.255", 2)
_SEEDS = [
    AARQ(mechanism=AuthMechanism.LLS, calling_authentication_value=b"22222222",
         user_information=InitiateRequest(Conformance(0x401E5D))).encode(),
    AARE(user_information=InitiateResponse(Conformance(0x00501F), 500)).encode(),
    GetRequestNormal(1, _D).encode(),
    GetRequestWithList(2, ((_D, None), (_D, None))).encode(),
    GetResponseWithList(3, (Typed(DataType.LONG_UNSIGNED, 1), DataAccessResult.OTHER_REASON,
                            Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, -1),
                                                       Typed(DataType.ENUM, 35))))).encode(),
    GetResponseWithDataBlock(4, False, 1, b"\x01\x02\x03").encode(),
    SetRequestWithList(5, ((_D, None, Typed(DataType.OCTET_STRING, b"ab")),)).encode(),
    ActionRequestNormal(6, MethodDescriptor(70, "0-0:96.3.10.255", 1),
                        Typed(DataType.INTEGER, 0)).encode(),
    ActionResponseNormal(7, ActionResult.SUCCESS, Typed(DataType.UNSIGNED, 1)).encode(),
    bytes.fromhex("D80106000000FF"), bytes.fromhex("0E010601"), bytes.fromhex("6203800100"),
]
_TAGS = [0x60, 0x61, 0x62, 0x63, 0x01, 0x08, 0x0E, 0xD8, 0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7]


def _decode(data: bytes) -> None:
    for typed in (False, True):
        try:
            decode_apdu(data, typed=typed)
        except DecodeError as exc:
            # offset None would mean decode_apdu's last-resort net caught a stray exception.
            assert exc.offset is not None, exc
        except DlmsError:
            pass


@given(st.sampled_from(_TAGS), st.binary(max_size=64))
@settings(max_examples=200, deadline=None)
def test_random_bodies_behind_every_tag(tag: int, body: bytes) -> None:
    _decode(bytes((tag,)) + body)


def test_truncations_and_mutations_of_valid_apdus() -> None:
    rng = random.Random(20240501)  # fixed seed: the run is reproducible
    for seed in _SEEDS:
        for cut in range(len(seed)):
            _decode(seed[:cut])
        for _ in range(150):
            mutated = bytearray(seed)
            for _ in range(rng.randint(1, 3)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            if rng.random() < 0.3:
                mutated += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
            _decode(bytes(mutated))
