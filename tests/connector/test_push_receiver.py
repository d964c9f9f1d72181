"""connector/push_receiver.py and push_service.py: who sent a notification, what it says, when,
and the counters saved before anything is published. Notifications built by Gurux (test-only,
an independent implementation) and by hand where Gurux has no knob (event-notification)."""

from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.push_receiver import Delivery, PushReceiver
from tb_dlms.connector.push_service import PushService
from tb_dlms.protocol.push_stream import PushedApdu

pytest.importorskip("gurux_dlms")
from gurux_dlms import GXByteBuffer, GXDLMSNotify  # noqa: E402
from gurux_dlms.enums import DataType as GxType  # noqa: E402
from gurux_dlms.enums import InterfaceType, Security  # noqa: E402
from gurux_dlms.GXCiphering import GXCiphering  # noqa: E402

TITLE = bytes.fromhex("5442440000000011")
KEY, AUTH = bytes(range(16)), bytes(range(0xD0, 0xE0))
WHEN = datetime.datetime(2026, 12, 4, 10, 0, 0, tzinfo=datetime.timezone.utc)
OBJECTS = [{"classId": 40, "obis": "0-0:25.9.0.255", "attribute": 1},
           {"classId": 1, "obis": "0-0:96.1.0.255", "key": "serial", "type": "attribute"},
           {"classId": 3, "obis": "1-0:1.8.0.255", "key": "energy", "scaler": -3},
           {"classId": 1, "obis": "0-0:97.98.0.255", "key": "alarm_register"}]


def config(**push: Any) -> Any:
    meters = [
        {"deviceName": "CIPHERED", "push": {"objects": OBJECTS, "systemTitle": TITLE.hex(),
                                            "blockCipherKey": KEY.hex(),
                                            "authenticationKey": AUTH.hex(), **push}},
        {"deviceName": "PLAIN", "push": {"objects": [dict(OBJECTS[1], identity=True),
                                                     *OBJECTS[2:]], "identity": "SER-2"}},
        {"deviceName": "BY-ADDRESS", "push": {"objects": OBJECTS[2:3], "address": 77}},
    ]
    cfg = load_config({"push": {"listeners": [{"port": 4059}]}, "meters": meters,
                       "reportStrategy": {"type": "ON_RECEIVED"}})
    assert cfg.errors == ()
    return cfg


def body(*values: tuple[int, Any]) -> GXByteBuffer:
    buf = GXByteBuffer()
    buf.setUInt8(GxType.STRUCTURE)
    buf.setUInt8(len(values))
    for kind, value in values:
        buf.setUInt8(kind)
        if kind == GxType.OCTET_STRING:
            buf.setUInt8(len(value))
            buf.set(value)
        elif kind == GxType.UINT32:
            buf.setUInt32(value)
    return buf


def single(value: int) -> GXByteBuffer:
    buf = GXByteBuffer()
    buf.setUInt8(GxType.UINT32)
    buf.setUInt32(value)
    return buf


def gurux(buf: GXByteBuffer, security: Security | None = None, counter: int = 1,
          when: datetime.datetime | None = WHEN, key: bytes = KEY) -> bytes:
    notify = GXDLMSNotify(True, 1, 1, InterfaceType.WRAPPER)
    if security is not None:
        cipher = GXCiphering(TITLE)
        cipher.security = security
        cipher.blockCipherKey, cipher.authenticationKey = key, AUTH
        cipher.invocationCounter = counter
        notify.settings.cipher = cipher
    (message,) = notify.generateDataNotificationMessages(when, buf)
    return bytes(message)[8:]


def full() -> GXByteBuffer:  # a new buffer each time: Gurux reads it to its end
    return body((GxType.OCTET_STRING, bytes((0, 0, 25, 9, 0, 255))),
                (GxType.OCTET_STRING, b"SER-1"), (GxType.UINT32, 123456),
                (GxType.UINT32, 0b10_0000_0001))


class Sink:
    def __init__(self) -> None:
        self.delivered: list[Delivery] = []
        self.refused: list[tuple[str | None, str]] = []

    def deliver(self, d: Delivery) -> None:
        self.delivered.append(d)

    def refuse(self, meter: Any, kind: str, _message: str) -> None:
        self.refused.append((meter.name if meter else None, kind))


def receiver(cfg: Any, caplog: Any = None) -> tuple[PushReceiver, Sink]:
    sink = Sink()
    return PushReceiver(cfg.push_meters, sink.deliver, sink.refuse), sink


def test_a_ciphered_push_is_opened_mapped_and_stamped_with_its_own_time() -> None:
    rx, sink = receiver(config())
    rx.on_apdu("10.0.0.5:40000", PushedApdu(1, gurux(full(), Security.AUTHENTICATION_ENCRYPTION)),
               1e9)
    (d,) = sink.delivered
    assert d.meter.name == "CIPHERED" and d.stamped_by == "notification"
    assert d.ts_ms == int(WHEN.timestamp() * 1000)
    values = {o.key: v for o, v in d.values}
    assert values == {"serial": "SER-1", "energy": pytest.approx(123.456),
                      "alarm_register": 0b10_0000_0001}
    assert d.status["alarm_active"] is True
    assert d.status["alarm_clock_invalid"] is True and d.status["alarm_ram_error"] is True
    assert d.status["alarm_fraud_attempt"] is False


def test_replays_wrong_keys_and_downgrades_are_refused_and_logged_once(caplog: Any) -> None:
    rx, sink = receiver(config())
    good = gurux(full(), Security.AUTHENTICATION_ENCRYPTION, counter=5)
    with caplog.at_level(logging.WARNING):
        rx.on_apdu("p:1", PushedApdu(1, good), 0)
        for _ in range(3):
            rx.on_apdu("p:1", PushedApdu(1, good), 0)
        rx.on_apdu("p:1", PushedApdu(1, gurux(full(), Security.AUTHENTICATION_ENCRYPTION, 6,
                                               key=bytes(16))), 0)
        rx.on_apdu("p:1", PushedApdu(1, gurux(full(), Security.ENCRYPTION, 7)), 0)
        rx.on_apdu("p:1", PushedApdu(1, gurux(full())), 0)  # plain, unknown identity/address
    assert len(sink.delivered) == 1
    assert sink.refused == [("CIPHERED", "replay")] * 3 + [("CIPHERED", "bad-tag"),
                                                           ("CIPHERED", "policy"),
                                                           (None, "unknown-sender")]
    assert rx.opener.counters[TITLE] == 5  # no refused copy moved it
    replays = [r for r in caplog.records if "replay" in r.getMessage()]
    assert len(replays) == 1
    assert not any(KEY.hex() in r.getMessage().lower() for r in caplog.records)
    # the downgrade to encryption only did not lock the meter out: its next push is taken
    rx.on_apdu("p:1", PushedApdu(1, gurux(full(), Security.AUTHENTICATION_ENCRYPTION, 8)), 0)
    assert len(sink.delivered) == 2


def test_plain_pushes_are_told_apart_by_identity_then_address() -> None:
    rx, sink = receiver(config())
    plain = body((GxType.OCTET_STRING, b"SER-2"), (GxType.UINT32, 1000),
                 (GxType.UINT32, 0))
    rx.on_apdu("p:1", PushedApdu(5, gurux(plain, when=None)), 1_700_000_000.5)
    one = gurux(single(42))
    rx.on_apdu("p:2", PushedApdu(77, one), 0)
    rx.on_apdu("p:3", PushedApdu(78, one), 0)
    names = [d.meter.name for d in sink.delivered]
    assert names == ["PLAIN", "BY-ADDRESS"]
    assert sink.delivered[0].stamped_by == "received"
    assert sink.delivered[0].ts_ms == 1_700_000_000_500
    assert sink.delivered[0].status["alarm_active"] is False
    assert sink.refused == [(None, "unknown-sender")]


def test_a_plain_push_claiming_a_ciphered_meter_is_refused() -> None:
    cfg = config(address=9)
    rx, sink = receiver(cfg)
    rx.on_apdu("p:1", PushedApdu(9, gurux(full())), 0)
    assert sink.delivered == [] and sink.refused == [("CIPHERED", "policy")]


def test_a_body_that_does_not_fit_the_objects_is_refused_not_guessed() -> None:
    rx, sink = receiver(config())
    short = body((GxType.OCTET_STRING, b"x"), (GxType.UINT32, 1))
    rx.on_apdu("p:1", PushedApdu(1, gurux(short, Security.AUTHENTICATION_ENCRYPTION)), 0)
    assert sink.refused == [("CIPHERED", "unmapped")]


def test_an_event_notification_goes_to_its_object() -> None:
    rx, sink = receiver(config())
    # event-notification-request: no time, Data 0-0:97.98.0.255 attr 2, double-long-unsigned
    apdu = bytes.fromhex("C2 00 0001 0000616200FF 02 06 00000004".replace(" ", ""))
    rx.on_apdu("p:1", PushedApdu(77, apdu), 1_700_000_000)
    assert sink.refused == [("BY-ADDRESS", "unmapped")]  # not in that meter's objects
    cfg = load_config({"push": {"listeners": [{"port": 1}]}, "meters": [
        {"deviceName": "EV", "push": {"address": 77, "objects": OBJECTS[3:]}}]})
    rx, sink = receiver(cfg)
    rx.on_apdu("p:1", PushedApdu(77, apdu), 1_700_000_000)
    (d,) = sink.delivered
    assert [(o.key, v) for o, v in d.values] == [("alarm_register", 4)]
    assert d.status["alarm_power_up"] is True


def test_counters_are_on_disk_before_a_notification_is_published(tmp_path: Path) -> None:
    cfg = config()
    seen_on_disk: list[Any] = []
    service: PushService

    def send(_meter: Any, _d: Delivery) -> None:
        seen_on_disk.append(json.loads(service.counter_file.path.read_text()))

    service = PushService(cfg.push, cfg.push_meters, tmp_path, publish=lambda fn, *a: fn(*a),
                          send=send, send_refusal=lambda *a: None, log=logging.getLogger("t"))
    service.release("CIPHERED")  # its device is registered
    service.receiver.on_apdu("p:1", PushedApdu(
        1, gurux(full(), Security.AUTHENTICATION_ENCRYPTION, counter=41)), 0)
    service._hand_over()
    assert seen_on_disk == [{TITLE.hex().upper(): 41}]
    # a restart reads them back: the same notification is now a replay
    again = PushService(cfg.push, cfg.push_meters, tmp_path, publish=lambda fn, *a: fn(*a),
                        send=send, send_refusal=lambda *a: None, log=logging.getLogger("t"))
    assert again.receiver.opener.counters == {TITLE: 41}


def test_a_meter_s_notifications_wait_for_its_device_to_be_registered(tmp_path: Path) -> None:
    cfg = config()
    sent: list[int] = []
    service = PushService(cfg.push, cfg.push_meters, tmp_path, publish=lambda fn, *a: fn(*a),
                          send=lambda _m, d: sent.append(d.ts_ms), send_refusal=lambda *a: None,
                          log=logging.getLogger("t"))
    for counter in range(1, 21):
        service.receiver.on_apdu("p:1", PushedApdu(1, gurux(
            full(), Security.AUTHENTICATION_ENCRYPTION, counter=counter,
            when=WHEN + datetime.timedelta(seconds=counter))), 0)
        service._hand_over()
    assert sent == []  # the gateway would register the device on its data path: not yet
    service.release("CIPHERED")
    base = int(WHEN.timestamp() * 1000)
    assert sent == [base + 1000 * c for c in range(5, 21)]  # the last 16, in order
    assert service.stats()["dropped_before_registration"] == 4
    service.receiver.on_apdu("p:1", PushedApdu(1, gurux(
        full(), Security.AUTHENTICATION_ENCRYPTION, counter=30)), 0)
    service._hand_over()
    assert sent[-1] == base  # registered: straight through


def test_a_one_object_push_is_still_a_structure_and_its_value_is_scaled() -> None:
    cfg = load_config({"push": {"listeners": [{"port": 1}]}, "meters": [
        {"deviceName": "ONE", "push": {"address": 7, "objects": [OBJECTS[2]]}}]})
    rx, sink = receiver(cfg)
    rx.on_apdu("p:1", PushedApdu(7, gurux(body((GxType.UINT32, 123456)))), 0)
    (d,) = sink.delivered
    assert [(o.key, v) for o, v in d.values] == [("energy", pytest.approx(123.456))]


def test_senders_inventing_titles_cannot_grow_memory_or_the_log(caplog: Any) -> None:
    from tb_dlms.protocol.axdr import DataType, Typed
    from tb_dlms.protocol.push import encode_data_notification
    from tb_dlms.protocol.security.apdu import SecurityContext
    from tb_dlms.protocol.security.control import Policy, SecurityControl
    from tb_dlms.protocol.security.gcm import GcmKey

    rx, sink = receiver(config())
    plain = encode_data_notification(Typed(DataType.NULL_DATA, None))
    key = SecurityContext(GcmKey(bytes(16), bytes(16)))
    with caplog.at_level(logging.WARNING):
        for i in range(3000):
            title = b"EVL" + i.to_bytes(5, "big")
            apdu = key.encrypt(plain, SecurityControl(Policy.AUTHENTICATED_ENCRYPTION), title,
                               1, general=True)
            rx.on_apdu(f"10.0.0.1:{i}", PushedApdu(1, apdu), 0)
    assert rx.rejected["unknown-sender"] == 3000
    assert len(rx._logged) <= 1000
    assert len(caplog.records) <= 1001


def test_a_release_keeps_the_order_of_what_waited_and_what_follows(tmp_path: Path) -> None:
    cfg = config()
    jobs: list[Any] = []  # the publisher's queue, run when the test says
    sent: list[int] = []
    service = PushService(cfg.push, cfg.push_meters, tmp_path,
                          publish=lambda fn, *a: jobs.append((fn, a)),
                          send=lambda _m, d: sent.append(d.ts_ms), send_refusal=lambda *a: None,
                          log=logging.getLogger("t"))

    def push(counter: int) -> None:
        service.receiver.on_apdu("p:1", PushedApdu(1, gurux(
            full(), Security.AUTHENTICATION_ENCRYPTION, counter=counter,
            when=WHEN + datetime.timedelta(seconds=counter))), 0)
        service._hand_over()

    push(1)
    fn, args = jobs.pop(0)
    fn(*args)  # parked: the device is not registered yet
    push(2)  # queued on the publisher before the release
    service.release("CIPHERED")
    push(3)
    while jobs:
        fn, args = jobs.pop(0)
        fn(*args)
    base = int(WHEN.timestamp() * 1000)
    assert sent == [base + 1000, base + 2000, base + 3000]
