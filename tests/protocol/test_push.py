"""Pushed data-notifications built by Gurux (an independent implementation; test-only), opened by
protocol/push.py: plain and ciphered, replays, wrong keys, unknown senders, policies."""

from __future__ import annotations

import datetime

import pytest
from tb_dlms.protocol.push import PushOpener, PushRejected, decode_data_notification
from tb_dlms.protocol.security.apdu import SecurityContext
from tb_dlms.protocol.security.control import Policy
from tb_dlms.protocol.security.gcm import GcmKey

gurux = pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSNotify  # noqa: E402
from gurux_dlms.enums import DataType as GxType  # noqa: E402
from gurux_dlms.enums import InterfaceType, Security  # noqa: E402
from gurux_dlms.GXCiphering import GXCiphering  # noqa: E402

TITLE = bytes.fromhex("4D4D4D0000BC614E")
BLOCK, AUTH = bytes(range(16)), bytes(range(0xD0, 0xE0))
WHEN = datetime.datetime(2026, 12, 4, 10, 0, 0)


def gurux_push(security: Security | None = None, counter: int = 5, value: int = 12345,
               auth_key: bytes = AUTH) -> bytes:
    """One data-notification as a Gurux meter sends it over the wrapper, wrapper taken off."""
    notify = GXDLMSNotify(True, 1, 1, InterfaceType.WRAPPER)
    body = GXByteBuffer()
    body.setUInt8(GxType.STRUCTURE)
    body.setUInt8(2)
    body.setUInt8(GxType.UINT32)
    body.setUInt32(value)
    body.setUInt8(GxType.UINT16)
    body.setUInt16(2301)
    if security is not None:
        cipher = GXCiphering(TITLE)
        cipher.security = security
        cipher.blockCipherKey, cipher.authenticationKey = BLOCK, auth_key
        cipher.invocationCounter = counter
        notify.settings.cipher = cipher
    (message,) = notify.generateDataNotificationMessages(WHEN, body)
    return bytes(message)[8:]  # the IEC 62056-47 wrapper header


def opener(**kw: object) -> PushOpener:
    return PushOpener({TITLE: SecurityContext(GcmKey(BLOCK, AUTH))}, **kw)  # type: ignore[arg-type]


def test_a_plain_gurux_notification_decodes_with_its_date_time_and_body() -> None:
    note = opener().open(gurux_push())
    assert note.date_time is not None and note.date_time.isoformat().startswith(
        "2026-12-04T10:00:00")
    assert note.body == (12345, 2301)
    assert (note.system_title, note.invocation_counter, note.protection) == (None, None, "none")
    assert note == decode_data_notification(gurux_push())


@pytest.mark.parametrize("security, label", [
    (Security.AUTHENTICATION_ENCRYPTION, "auth-enc"),
    (Security.AUTHENTICATION, "auth"),
    (Security.ENCRYPTION, "enc"),
])
def test_a_ciphered_gurux_notification_is_opened_with_its_senders_keys(security, label) -> None:
    note = opener().open(gurux_push(security, counter=5))
    assert (note.system_title, note.invocation_counter, note.protection) == (TITLE, 5, label)
    assert note.body[0] == 12345


def test_a_replayed_notification_is_refused_and_the_next_one_taken() -> None:
    o = opener()
    first = gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=7)
    o.open(first)
    for again in (first, gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=6)):
        with pytest.raises(PushRejected) as err:
            o.open(again)
        assert err.value.kind == "replay" and err.value.system_title == TITLE
    assert o.counters == {TITLE: 7}
    assert o.open(gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=8, value=1)
                  ).body[0] == 1


def test_counters_kept_from_before_a_restart_refuse_old_notifications() -> None:
    o = opener(counters={TITLE: 100})
    with pytest.raises(PushRejected, match="not above 100"):
        o.open(gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=100))


def test_a_wrong_key_is_a_bad_tag_and_does_not_move_the_counter() -> None:
    o = opener()
    forged = gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=50, auth_key=bytes(16))
    with pytest.raises(PushRejected) as err:
        o.open(forged)
    assert err.value.kind == "bad-tag"
    assert BLOCK.hex() not in str(err.value).lower() and AUTH.hex() not in str(err.value).lower()
    assert o.counters == {}  # a forged copy with a high counter must not lock the sender out
    assert o.open(gurux_push(Security.AUTHENTICATION_ENCRYPTION, counter=9)).invocation_counter == 9


def test_an_unknown_sender_is_named_and_refused() -> None:
    o = PushOpener({})
    with pytest.raises(PushRejected) as err:
        o.open(gurux_push(Security.AUTHENTICATION_ENCRYPTION))
    assert err.value.kind == "unknown-sender" and "4D4D4D0000BC614E" in str(err.value)


def test_policies_refuse_what_is_less_protected_than_required() -> None:
    with pytest.raises(PushRejected) as err:
        opener(required=Policy.AUTHENTICATED_ENCRYPTION).open(gurux_push(Security.ENCRYPTION))
    assert err.value.kind == "policy"
    with pytest.raises(PushRejected) as err:
        opener(plain=False).open(gurux_push())
    assert err.value.kind == "policy"


def test_suite_id_1_in_an_encryption_only_push_is_aes_gcm_128() -> None:
    # Meters in service send encryption-only customer-interface pushes with suite id 1 in the
    # security control byte; under encryption only that byte is not authenticated.
    apdu = bytearray(gurux_push(Security.ENCRYPTION, counter=3))
    sc = 1 + 1 + len(TITLE) + 1  # tag, title length, title, content length
    assert apdu[sc] & 0x0F == 0
    apdu[sc] |= 0x01
    note = opener().open(bytes(apdu))
    assert note.invocation_counter == 3 and note.body[1] == 2301


@pytest.mark.parametrize("apdu, kind", [
    (b"", "malformed"),
    (bytes.fromhex("0F000000"), "malformed"),
    (bytes.fromhex("C4010000"), "not-a-notification"),
    (bytes.fromhex("DB084D4D4D0000BC614E05"), "malformed"),
])
def test_malformed_input_is_one_clear_refusal(apdu, kind) -> None:
    with pytest.raises(PushRejected) as err:
        opener().open(apdu)
    assert err.value.kind == kind


def test_a_dedicated_key_push_is_refused_as_policy_not_as_a_wrong_key() -> None:
    from tb_dlms.protocol.axdr import DataType, Typed
    from tb_dlms.protocol.push import encode_data_notification
    from tb_dlms.protocol.security.apdu import KeyKind
    from tb_dlms.protocol.security.control import SecurityControl

    dedicated = SecurityContext(GcmKey(BLOCK, AUTH), dedicated_key=GcmKey(bytes(16), AUTH))
    apdu = dedicated.encrypt(encode_data_notification(Typed(DataType.NULL_DATA, None)),
                             SecurityControl(Policy.AUTHENTICATED_ENCRYPTION), TITLE, 9,
                             KeyKind.DEDICATED, general=True)
    opener = PushOpener({TITLE: SecurityContext(GcmKey(BLOCK, AUTH))})
    with pytest.raises(PushRejected) as refused:
        opener.open(apdu)
    assert refused.value.kind == "policy" and "dedicated key" in str(refused.value)
    assert TITLE not in opener.counters
