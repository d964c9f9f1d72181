"""Simulated meters pushing DataNotifications (simulator/pusher.py, push_setup.py) over real
loopback sockets: a plain socket server receives, our PushOpener decodes."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
from push_receiver import Receiver
from tb_dlms.protocol.apdu.common import ActionResult, DataAccessResult
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.hdlc import HdlcAddress
from tb_dlms.protocol.push import DataNotification, PushOpener, PushRejected
from tb_dlms.protocol.security import GcmKey, SecurityContext
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.meter_models import registers_of
from tb_dlms.simulator.model import MeterOptions, server_system_title
from tb_dlms.simulator.push_setup import ALARM_PUSH_OBIS, PUSH_OBIS
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

T0 = 1_796_380_000.0  # frozen meter clock: 2026-12-04T10:26:40Z
PUSH = "0-0:25.9.0"
KEYS = SecurityContext(GcmKey(bytes(range(16)), bytes(range(0xD0, 0xE0))))


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


@pytest.fixture
def serve() -> Iterator[object]:
    servers: list[SimulatorServer] = []

    def start(count: int = 1, clock: object = None, **options: object) -> SimulatorServer:
        kw: dict[str, object] = {} if clock is None else {"clock": clock}
        srv = SimulatorServer(count, 0, options=MeterOptions(**options),  # type: ignore[arg-type]
                              wrapper=bool(options.get("wrapper")), **kw)  # type: ignore[arg-type]
        servers.append(srv.run_in_thread())
        return srv

    yield start
    for srv in servers:
        srv.stop()


def receiver(made: list[Receiver], **kw: object) -> Receiver:
    r = Receiver(**kw)  # type: ignore[arg-type]
    made.append(r)
    return r


def opened(apdus: list[bytes], opener: PushOpener | None = None) -> list[DataNotification]:
    opener = opener or PushOpener({})
    return [opener.open(a) for a in apdus]


def session(port: int) -> BlockingSession:
    s = BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(
        client=1, authentication="lls", password=b"22222222", response_timeout=2.0,
        wrapper=True))
    s.connect()
    return s


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize("model", ["poly", "mono", "ct"])
def test_periodic_pushes_carry_a_growing_counter_the_meter_clock_and_its_registers(
        serve, receivers, model):
    r = receiver(receivers)
    srv = serve(clock=lambda: T0, model=model, wrapper=True, push_to=r.address,
                push_period_s=0.05, time_zone="Europe/Madrid", clock_offset_s=120.0)
    notes = opened(r.apdus(3))
    meter = srv.model(0)
    counters = [n.long_invoke_id for n in notes]
    assert counters[1] == counters[0] + 1 and counters[2] == counters[1] + 1
    for note in notes:  # the meter's own clock: local time (CET) with its deviation, +120 s
        assert note.date_time is not None and note.date_time.deviation == -60
        assert note.date_time.to_datetime() == dt.datetime.fromtimestamp(
            T0 + 120, dt.timezone.utc)
        regs = registers_of(model)
        assert note.body[:3] == (PUSH_OBIS.to_bytes(), b"SIM00000000",
                                 meter.get_clock().value)
        assert list(note.body[3:]) == [meter.expected(r.spec.obis)[0] for r in regs]
        assert len(note.body) == 3 + len(regs)


def test_a_write_of_attribute_3_redirects_the_pushes(serve, receivers):
    first, second = receiver(receivers), receiver(receivers)
    srv = serve(wrapper=True, push_to=first.address, push_period_s=0.05)
    opened(first.apdus(1))
    with session(srv.ports[0]) as s:
        dest = Typed(DataType.STRUCTURE, (Typed(DataType.ENUM, 0), Typed(
            DataType.OCTET_STRING, second.address.encode()), Typed(DataType.ENUM, 0)))
        assert s.set((40, PUSH, 3), dest) is DataAccessResult.SUCCESS
        assert s.get((40, PUSH, 3)).value[1] == second.address
        # wrong shapes are refused, the meter keeps serving
        assert s.set((40, PUSH, 3), Typed(DataType.UNSIGNED, 5)) is \
            DataAccessResult.TYPE_UNMATCHED
        assert s.set((40, PUSH, 2), Typed(DataType.ARRAY, [Typed(DataType.UNSIGNED, 1)])) is \
            DataAccessResult.TYPE_UNMATCHED
        assert s.set((40, PUSH, 6), Typed(DataType.OCTET_STRING, b"x")) is \
            DataAccessResult.TYPE_UNMATCHED
        assert s.set((40, PUSH, 6), Typed(DataType.UNSIGNED, 3)) is DataAccessResult.SUCCESS
    assert opened(second.apdus(2))[0].body[1] == b"SIM00000000"


def test_method_1_pushes_now_and_a_disconnection_pushes_the_alarm(serve, receivers):
    r = receiver(receivers)
    srv = serve(wrapper=True, push_to=r.address)  # no period: only on demand
    with session(srv.ports[0]) as s:
        result, _ = s.action(40, PUSH, 1, Typed(DataType.INTEGER, 0))
        assert result is ActionResult.SUCCESS
        (note,) = opened(r.apdus(1))
        assert note.body[0] == PUSH_OBIS.to_bytes()
        assert s.action(70, "0-0:96.3.10", 1, Typed(DataType.INTEGER, 0))[0] is \
            ActionResult.SUCCESS  # remote disconnect: disconnector event 62, no alarm bit
    (alarm,) = opened(r.apdus(1))
    assert alarm.body == (ALARM_PUSH_OBIS.to_bytes(), b"SIM00000000", 0, 62)
    srv.model(0).trigger("remote_reconnect")  # mode 1: straight to connected, event 63
    assert opened(r.apdus(1))[0].body[2:] == (0, 63)
    assert not srv.model(0).trigger("remote_reconnect")  # no transition: no push
    srv.model(0).raise_alarm("fraud_attempt")  # bit 13 of alarm register 1
    assert opened(r.apdus(1))[0].body[2] == 1 << 13
    srv.model(0).raise_alarm("clock_invalid")  # bit 0
    assert opened(r.apdus(1))[0].body[2] == (1 << 13) | 1
    assert srv.model(0).get(1, "0-0:97.98.0", 2).value == (1 << 13) | 1
    assert srv.model(0).set(1, "0-0:97.98.0", 2, 0) is DataAccessResult.SUCCESS
    srv.model(0).raise_alarm("power_up")  # bit 2: the cleared bits stay clear
    assert opened(r.apdus(1))[0].body[2] == 4
    with pytest.raises(LocalProtocolError, match="unknown alarm"):
        srv.model(0).raise_alarm("meteor_strike")


def test_a_meter_without_destination_answers_method_1_with_temporary_failure(serve):
    srv = serve(wrapper=True)
    with session(srv.ports[0]) as s:
        assert s.action(40, PUSH, 1, Typed(DataType.INTEGER, 0))[0] is \
            ActionResult.TEMPORARY_FAILURE
    assert srv.pusher.stats["pushes"] == 0


@pytest.mark.parametrize("security, suite", [("auth", 0), ("enc", 1), ("auth-enc", 0),
                                             ("auth-enc", 1)])
def test_ciphered_pushes_open_with_the_meters_keys_only(serve, receivers, security, suite):
    r = receiver(receivers)
    serve(count=2, wrapper=True, push_to=r.address, push_period_s=0.05,
          push_security=security, push_suite_id=suite, push_stagger=False)
    apdus = r.apdus(2)
    title = apdus[0][2:10]
    assert title in (server_system_title(0), server_system_title(1))
    assert apdus[0][11] & 0x0F == suite  # the security control byte after the title and length
    notes = opened(apdus, PushOpener({title: KEYS}))
    assert [n.protection for n in notes] == [security] * 2
    assert notes[1].invocation_counter == notes[0].invocation_counter + 1  # type: ignore[operator]
    wrong = PushOpener({title: SecurityContext(GcmKey(bytes(16), bytes(16)))})
    with pytest.raises(PushRejected) as err:
        wrong.open(apdus[0])
    # encryption only has no tag: the wrong key deciphers to something that is no notification
    assert err.value.kind == "bad-tag" if "auth" in security else err.value.kind in (
        "not-a-notification", "malformed")


def test_the_counter_starts_from_the_time_so_a_restart_does_not_replay(serve, receivers):
    r = receiver(receivers)
    opener = PushOpener({server_system_title(0): KEYS})
    for _ in range(2):
        srv = serve(wrapper=True, push_to=r.address, push_period_s=0.05,
                    push_security="auth-enc")
        opened(r.apdus(2), opener)
        srv.stop()
        r.conn = None
        time.sleep(0.15)  # the next start's counter is above: tenths of a second


def test_the_replay_option_resends_an_earlier_notification_byte_for_byte(serve, receivers):
    r = receiver(receivers)
    serve(wrapper=True, push_to=r.address, push_period_s=0.05, push_security="auth-enc",
          push_replay_every=2)
    apdus = r.apdus(4)
    assert apdus[2] == apdus[0]  # push 2, then push 1 again
    opener = PushOpener({server_system_title(0): KEYS})
    opener.open(apdus[0])
    opener.open(apdus[1])
    with pytest.raises(PushRejected) as err:
        opener.open(apdus[2])
    assert err.value.kind == "replay"
    opener.open(apdus[3])


def test_hdlc_pushes_are_ui_frames_from_the_meters_address_segmented(serve, receivers):
    r = receiver(receivers)
    serve(count=1, push_to=r.address, push_period_s=0.05, max_info_field=32, model="ct")
    (note,) = opened(r.apdus(1, wrapper=False))
    assert note.body[1] == b"SIM00000000"
    frames = r.frames
    assert len(frames) > 2 and all(f.segmented for f in frames[:-1])
    assert not frames[-1].segmented and all(len(f.info) <= 32 for f in frames)
    assert all(f.source.matches(HdlcAddress.server(1, 16)) for f in frames)
    assert all(f.destination.matches(HdlcAddress(0x10)) for f in frames)
    assert r.raw[6] == 0x13  # the first frame's control (flag, format, 1 + 2 address bytes)


def test_a_receiver_that_never_reads_costs_bounded_memory(serve, receivers):
    r = receiver(receivers, rcvbuf=4096)
    srv = serve(wrapper=True, push_to=r.address, push_period_s=0.001, push_buffer_bytes=4096,
                model="ct")
    r.accept()
    link = srv.pusher.links[0]
    wait_for(lambda: link.dropped > 20, timeout=30)
    assert link.queued <= 4096 and sum(map(len, link.queue)) == link.queued


def test_a_dropped_connection_is_reopened_and_pushes_go_on(serve, receivers):
    r = receiver(receivers)
    srv = serve(wrapper=True, push_to=r.address, push_period_s=0.05)
    before = opened(r.apdus(1))[0].long_invoke_id
    assert r.conn is not None
    r.conn.close()
    r.conn = None
    after = opened(r.apdus(1, timeout=5))[0].long_invoke_id
    assert after > before
    assert srv.pusher.stats["connects"] == 2 and srv.pusher.stats["failures"] >= 1


@pytest.mark.parametrize("field, value", [("push_to", "nowhere"), ("push_security", "x"),
                                          ("push_suite_id", 2), ("push_period_s", -1.0),
                                          ("push_replay_every", -1)])
def test_bad_push_options_are_refused_by_name(field, value):
    with pytest.raises(LocalProtocolError, match=field):
        MeterOptions(**{field: value})


def test_a_meter_off_the_network_stops_pushing_and_resumes_when_back(serve, receivers):
    r = receiver(receivers)
    srv = serve(wrapper=True, push_to=r.address, push_period_s=0.05)
    before = opened(r.apdus(1))[0].long_invoke_id
    srv.stop_meter(0)
    assert r.conn is not None
    r.conn.settimeout(5.0)
    while r.conn.recv(65536):  # what was on the way, then the meter's close
        pass
    r.conn = None
    pushes = srv.pusher.stats["pushes"]
    time.sleep(0.3)
    assert srv.pusher.stats["pushes"] == pushes  # six periods: nothing made, nothing sent
    srv.start_meter(0)
    assert opened(r.apdus(1))[0].long_invoke_id > before


def test_destination_writes_take_host_port_or_nothing_only_tcp_and_axdr():
    from tb_dlms.simulator.model import MeterModel

    meter = MeterModel(0, options=MeterOptions(push_to="127.0.0.1:4059"))
    for value, result in [((0, b"10.0.0.1:4059", 0), DataAccessResult.SUCCESS),
                          ((0, b"[::1]:4059", 0), DataAccessResult.SUCCESS),
                          ((0, b"", 0), DataAccessResult.SUCCESS),  # no push from now on
                          ((0, b"nowhere", 0), DataAccessResult.OTHER_REASON),
                          ((1, b"10.0.0.1:4059", 0), DataAccessResult.OTHER_REASON),  # UDP
                          ((0, b"10.0.0.1:4059", 1), DataAccessResult.OTHER_REASON),
                          ((0, "10.0.0.1:4059", 0), DataAccessResult.TYPE_UNMATCHED),
                          ((0, b"10.0.0.1:4059"), DataAccessResult.TYPE_UNMATCHED)]:
        assert meter.set(40, PUSH, 3, value) is result, value
    assert meter.get(40, PUSH, 3).value[1].value == b""
    assert meter.action(40, PUSH, 1, 0)[0] is ActionResult.TEMPORARY_FAILURE
    assert meter.action(40, PUSH, 1, b"x")[0] is ActionResult.TYPE_UNMATCHED
