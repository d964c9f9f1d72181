"""ExpressCipher, the cipher step of the express path, on its own: lengths from the encoder, an
answer of the learned shape opened, and every other one refused without moving the replay guard
(only ``accept`` moves it). The answers are sealed by SecurityContext.encrypt, as a meter's."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.security import (
    GcmKey,
    Policy,
    SecurityContext,
    SecurityControl,
)
from tb_dlms.protocol.security.gcm import sealed_length
from tb_dlms.protocol.security.server import AssociationSecurity

H = bytes.fromhex
EK, AK = H("000102030405060708090A0B0C0D0E0F"), H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
CLIENT, SERVER = H("4D4D4D0000000001"), H("4D4D4D0000BC614E")
METER = SecurityContext(GcmKey(EK, AK))  # the meter's keys: the same global key
ANSWER = H("C4 03 C1 02 00 12 08 FC 00 06 00 00 30 39".replace(" ", ""))  # 2 values
POLICIES = pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)


def client(policy: Policy | None) -> AssociationSecurity:
    return AssociationSecurity(SecurityContext(GcmKey(EK, AK)), CLIENT, policy, lambda: bytes(16))


def answer(counter: int, policy: Policy = Policy.AUTHENTICATED_ENCRYPTION, plain: bytes = ANSWER,
           broadcast: bool = False, general: bool = False) -> bytes:
    context = METER
    if broadcast:
        context = SecurityContext(GcmKey(EK, AK), broadcast_key=GcmKey(EK, AK))
    return context.encrypt(plain, SecurityControl(policy, broadcast=broadcast), SERVER, counter,
                           general=general)


def learned(policy: Policy, sec: AssociationSecurity | None = None):
    """A client that opened the meter's answer 10 (full path), and the cipher it learned."""
    sec = sec if sec is not None else client(policy)
    opened = sec.open(answer(10, policy), SERVER)
    cipher = sec.express(opened)
    assert cipher is not None
    return sec, cipher


@POLICIES
@pytest.mark.parametrize("size", [1, 60, 200])
def test_lengths_are_the_encoders(policy, size):
    plain = b"\xc0" + bytes(size - 1)
    control = SecurityControl(policy)
    assert sealed_length(size, policy) == len(METER.global_key.seal(control, CLIENT, 7, plain))
    sec = client(policy)
    assert sec.sealed_length(size) == len(sec.seal(plain, False))


@POLICIES
def test_a_steady_answer_opens_and_only_accept_moves_the_guard(policy):
    sec, cipher = learned(policy)
    data = answer(11, policy)
    assert cipher.length == len(data)
    framed = b"head" + data + b"fcs"  # it sits in a frame
    assert cipher.open(framed, 4) == (ANSWER, 11)
    assert sec.guard.last == 10  # not moved: the caller may still hand the frame to the full path
    assert cipher.open(framed, 4) == (ANSWER, 11)  # the same, as often as asked
    cipher.accept(11)
    assert sec.guard.last == 11
    assert cipher.open(framed, 4) is None  # now a replay


@pytest.mark.parametrize("policy", [Policy.AUTHENTICATION, Policy.AUTHENTICATED_ENCRYPTION],
                         ids=lambda p: p.label)
@pytest.mark.parametrize("at", [0, 2, 3, 7, 9, -1], ids=["outer-tag", "sc", "ic", "content-1",
                                                        "content-2", "gcm-tag"])
def test_any_altered_octet_is_refused_and_nothing_moves(policy, at):
    sec, cipher = learned(policy)
    data = bytearray(answer(11, policy))
    data[at] ^= 0x01
    assert cipher.open(bytes(data), 0) is None
    assert sec.guard.last == 10


@pytest.mark.parametrize("counter", [10, 9, 0], ids=["same", "lower", "zero"])
def test_a_counter_not_above_the_last_is_refused_although_its_tag_verifies(counter):
    sec, cipher = learned(Policy.AUTHENTICATED_ENCRYPTION)
    assert cipher.open(answer(counter), 0) is None
    assert sec.guard.last == 10


@pytest.mark.parametrize(("learned_at", "sent_at"), [
    (Policy.AUTHENTICATED_ENCRYPTION, Policy.AUTHENTICATION),  # same length, other SC
    (Policy.AUTHENTICATED_ENCRYPTION, Policy.ENCRYPTION),
    (Policy.ENCRYPTION, Policy.AUTHENTICATED_ENCRYPTION),
])
def test_another_protection_level_is_left_to_the_full_path(learned_at, sent_at):
    _, cipher = learned(learned_at, client(None))  # a policy that would accept either
    assert cipher.open(answer(11, sent_at), 0) is None


def test_another_shape_key_or_length_is_refused():
    _, cipher = learned(Policy.AUTHENTICATED_ENCRYPTION)
    assert cipher.open(answer(11, plain=ANSWER + b"\x00"), 0) is None
    assert cipher.open(answer(11, broadcast=True), 0) is None
    assert cipher.open(answer(11)[:-1], 0) is None


def test_no_cipher_for_general_ciphering_or_below_the_policy():
    sec = client(Policy.AUTHENTICATED_ENCRYPTION)
    assert sec.express(sec.open(answer(10, general=True), SERVER)) is None  # carries its title
    lenient = client(None)
    opened = lenient.open(answer(11, Policy.AUTHENTICATION), SERVER)
    strict = client(Policy.AUTHENTICATED_ENCRYPTION)
    assert strict.express(opened) is None  # never learn what the full path would refuse
    assert lenient.express(opened) is not None
