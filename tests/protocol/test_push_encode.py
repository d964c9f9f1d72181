"""The sending half of protocol/push.py: notifications we encode (plain and ciphered) open with
our own PushOpener to what went in. Gurux decoding them: tests/interop/test_gurux_push_send.py."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.push import (
    PushOpener,
    PushRejected,
    cipher_notification,
    decode_data_notification,
    encode_data_notification,
)
from tb_dlms.protocol.security import GcmKey, SecurityContext

TITLE = bytes.fromhex("5442440000000007")
KEYS = SecurityContext(GcmKey(bytes(range(16)), bytes(range(0xD0, 0xE0))))
BODY = Typed(DataType.STRUCTURE, (Typed(DataType.OCTET_STRING, b"SIM00000007"),
                                  Typed(DataType.DOUBLE_LONG_UNSIGNED, 123456),
                                  Typed(DataType.LONG, -5)))
STAMP = CosemDateTime.from_bytes(bytes.fromhex("07EA0C04050A1E0000FFC400"))  # CET, deviation -60


def test_a_plain_notification_decodes_to_what_went_in() -> None:
    apdu = encode_data_notification(BODY, long_invoke_id=0x123456, date_time=STAMP,
                                    high_priority=True, confirmed=True)
    assert apdu[:6] == bytes.fromhex("0FC01234560C")
    note = decode_data_notification(apdu)
    assert (note.long_invoke_id, note.high_priority, note.confirmed) == (0x123456, True, True)
    assert note.date_time == STAMP and note.body == (b"SIM00000007", 123456, -5)


def test_without_a_date_time_the_octet_string_is_empty() -> None:
    apdu = encode_data_notification(Typed(DataType.UNSIGNED, 7))
    assert apdu == bytes.fromhex("0F0000000000" "1107")
    note = decode_data_notification(apdu)
    assert (note.date_time, note.body, note.high_priority, note.confirmed) == (None, 7, False,
                                                                              False)


@pytest.mark.parametrize("label", ["auth", "enc", "auth-enc"])
@pytest.mark.parametrize("suite", [0, 1])
def test_a_ciphered_notification_opens_with_the_senders_keys(label, suite) -> None:
    plain = encode_data_notification(BODY, long_invoke_id=9, date_time=STAMP)
    apdu = cipher_notification(plain, KEYS, label, TITLE, 41, suite)
    assert apdu[0] == 0xDB and apdu[1:10] == b"\x08" + TITLE and apdu[11] & 0x0F == suite
    note = PushOpener({TITLE: KEYS}).open(apdu)
    assert (note.protection, note.invocation_counter, note.system_title) == (label, 41, TITLE)
    assert note.body == (b"SIM00000007", 123456, -5) and note.date_time == STAMP


def test_another_key_does_not_open_an_authenticated_notification() -> None:
    apdu = cipher_notification(encode_data_notification(BODY), KEYS, "auth-enc", TITLE, 1)
    other = SecurityContext(GcmKey(bytes(range(16)), bytes(16)))
    with pytest.raises(PushRejected) as err:
        PushOpener({TITLE: other}).open(apdu)
    assert err.value.kind == "bad-tag"


@pytest.mark.parametrize("call, match", [
    (lambda: encode_data_notification(BODY, long_invoke_id=1 << 24), "long invoke id"),
    (lambda: cipher_notification(b"\x0f", KEYS, "none", TITLE, 1), "push security"),
    (lambda: cipher_notification(b"\x0f", KEYS, "auth", TITLE, 1 << 32), "invocation counter"),
    (lambda: cipher_notification(b"\x0f", KEYS, "auth", TITLE, 1, suite_id=2), "suite"),
])
def test_bad_sending_parameters_are_refused_clearly(call, match) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        call()
