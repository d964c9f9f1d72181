"""PollingEngine + real BlockingSession against the simulator on loopback.

Truth: every value published must equal what the simulated meter's model says for that register
at the reading's time (values are constant within a whole second; a reply computed just before a
second boundary may arrive just after it, hence the small look-back). Registers and meters all
differ, so a value attributed to the wrong register or meter would not match.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, SerialSpec, TcpSpec
from tb_dlms.protocol.errors import TransportError
from tb_dlms.session import SessionSettings
from tb_dlms.simulator.connection import ServerSession as SimulatedConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import MeterModel, MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.simulator.values import REGISTERS

S = MeterState
POINTS = tuple(PollPoint(r.key, ObjectRef(3, r.obis, 2)) for r in REGISTERS)
FAST = RecoverySpec(
    min_connect_spacing_s=0.0, backoff_initial_s=0.05, backoff_max_s=0.2,
    breaker_threshold=50, breaker_open_s=1.0,
)


def spec(name: str, transport: Any, period: float = 0.1, **session: Any) -> MeterSpec:
    settings = SessionSettings(**{"client": 16, "name": name, "response_timeout": 0.3,
                                  "connect_timeout": 0.5, **session})
    return MeterSpec(name, "meter", transport, settings, period, POINTS, FAST, 60.0)


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    servers: list[SimulatorServer] = []

    def make(count: int, **options: Any) -> SimulatorServer:
        server = SimulatorServer(count, 0, options=MeterOptions(**options)).run_in_thread()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def run(specs: list[MeterSpec], seconds: float, during: Any = None) -> tuple[RecordingSink, Any]:
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    try:
        if during is not None:
            during(engine, sink)
        time.sleep(seconds)
    finally:
        assert engine.stop(timeout_s=3.0)
    return sink, engine


def check_truth(sink: RecordingSink, name: str, model: MeterModel, lag_s: float = 0.06) -> int:
    checked = 0
    for readings in sink.cycles_of(name):
        for r in readings:
            assert r.ok, f"{name} {r.key}: {r.result}"
            t = r.result.read_at / 1000.0
            truth = {model.expected_value(r.point.ref.obis, t - d) for d in (0.0, lag_s)}
            assert r.result.value in truth, (name, r.key, r.result.value, truth)
            checked += 1
    return checked


def test_every_value_is_the_models_truth_for_its_meter_and_register(sim_factory):
    sim = sim_factory(3)
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", p)) for i, p in enumerate(sim.ports)]
    sink, engine = run(specs, 1.0)
    for i in range(3):
        assert check_truth(sink, f"m{i}", sim.model(i)) >= 8 * len(POINTS)
        health = engine.health()[f"m{i}"]
        assert health["failed_reads"] == 0 and health["reconnects"] == 0
        assert health["requests_sent"] <= health["total_reads"] + 1  # one GET-with-list a cycle


def test_total_reads_counts_each_get_of_a_meter_without_with_list(sim_factory):
    sim = sim_factory(1, with_list=False)
    sink, engine = run([spec("m0", TcpSpec("127.0.0.1", sim.ports[0]))], 1.0)
    health = engine.health()["m0"]
    cycles = len(sink.cycles_of("m0"))
    assert cycles >= 5 and health["failed_reads"] == 0
    # One GET per point every cycle (scaler GETs on top the first time), each one a read.
    assert health["total_reads"] == health["requests_sent"] >= cycles * len(POINTS)
    assert health["success_rate"] == 100.0


def test_a_killed_meter_goes_unreachable_and_recovers_while_the_others_poll_on(sim_factory):
    sim = sim_factory(2)
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", p)) for i, p in enumerate(sim.ports)]

    def kill_and_revive(engine: PollingEngine, sink: RecordingSink) -> None:
        time.sleep(0.4)
        sim.stop_meter(1)
        time.sleep(0.6)
        down = len(sink.cycles_of("m1"))
        assert engine.states()["m1"]["state"] in ("backoff", "unreachable")
        sim.start_meter(1)
        time.sleep(0.6)
        assert len(sink.cycles_of("m1")) > down + 2

    sink, engine = run(specs, 0.0, kill_and_revive)
    states = sink.states_of("m1")
    assert S.BACKOFF in states and S.UNREACHABLE in states
    assert states[-2] is S.ASSOCIATED and states[-1] is S.DISCONNECTED
    assert engine.health()["m1"]["reconnects"] == 1
    assert engine.health()["m0"]["failed_reads"] == 0
    check_truth(sink, "m0", sim.model(0))
    check_truth(sink, "m1", sim.model(1))


def test_dropped_replies_are_retransmitted_and_values_stay_true(sim_factory):
    sim = sim_factory(1, drop_every=4)
    sink, engine = run([spec("m", TcpSpec("127.0.0.1", sim.ports[0]), response_timeout=0.05)],
                       1.2)
    assert check_truth(sink, "m", sim.model(0), lag_s=0.2) >= 5 * len(POINTS)
    assert engine.health()["m"]["failed_reads"] == 0  # HDLC repeat, not a failed cycle


def test_garbage_before_replies_is_skipped(sim_factory):
    sim = sim_factory(1, garbage_every=2)
    sink, engine = run([spec("m", TcpSpec("127.0.0.1", sim.ports[0]))], 0.8)
    assert check_truth(sink, "m", sim.model(0)) >= 6 * len(POINTS)
    assert engine.health()["m"]["failed_reads"] == 0


def test_a_slow_meter_does_not_delay_the_cycles_of_another(sim_factory):
    slow = sim_factory(1, latency_s=0.25)
    fast = sim_factory(1)
    specs = [spec("slow", TcpSpec("127.0.0.1", slow.ports[0]), period=0.1, response_timeout=1.0),
             spec("fast", TcpSpec("127.0.0.1", fast.ports[0]), period=0.1)]
    sink, engine = run(specs, 1.5)
    health = engine.health()
    assert health["fast"]["on_time_rate"] >= 95.0 and health["fast"]["cycles_missed"] <= 1
    assert health["slow"]["cycles_missed"] >= 5  # its own overruns, skipped, not bunched
    check_truth(sink, "fast", fast.model(0))
    check_truth(sink, "slow", slow.model(0), lag_s=0.3)


def test_requests_run_on_the_meters_session(sim_factory):
    sim = sim_factory(1)
    serial_ref = (1, "0-0:96.1.0", 2)

    def ask(engine: PollingEngine, sink: RecordingSink) -> None:
        time.sleep(0.2)
        got = engine.submit("m", lambda s: s.get(serial_ref), 2.0).result(3.0)
        assert got.raw == sim.model(0).serial
        cut = engine.submit("m", lambda s: s.transport.close(), 2.0)
        cut.result(3.0)
        with pytest.raises(TransportError):
            engine.submit("m", lambda s: s.get(serial_ref), 2.0).result(3.0)

    sink, _engine = run([spec("m", TcpSpec("127.0.0.1", sim.ports[0]), period=10.0)], 0.3, ask)
    assert S.BACKOFF in sink.states_of("m")  # the request that broke the line was seen


def test_wrong_password_is_reported_as_auth_failed(sim_factory):
    sim = sim_factory(1)
    bad = spec("m", TcpSpec("127.0.0.1", sim.ports[0]), client=1, authentication="lls",
               password=b"wrong")
    sink, _engine = run([bad], 0.5)
    assert sink.states_of("m")[:2] == [S.CONNECTING, S.AUTH_FAILED]
    assert len([s for s in sink.states_of("m") if s is S.CONNECTING]) == 1  # not retried fast


class BusFarEnd:
    """Two simulated meters on one multidrop line, reached through pyserial's socket:// URL: every
    byte reaches both server-role HDLC connections; each answers only its physical address."""

    def __init__(self, physicals: tuple[int, ...]) -> None:
        self.meters = [SimulatedMeter(MeterModel(i), p) for i, p in enumerate(physicals)]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(0.05)
                sessions = [SimulatedConnection(m) for m in self.meters]
                while not self._stop.is_set():
                    try:
                        data = conn.recv(65536)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    replies = [s.receive(data) for s in sessions]
                    try:
                        conn.sendall(b"".join(replies))
                    except OSError:
                        break

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._listener.close()


def test_two_meters_on_one_bus_each_with_its_own_address():
    bus = BusFarEnd((16, 17))
    try:
        line = SerialSpec(f"socket://127.0.0.1:{bus.port}")
        specs = [spec(f"m{i}", line, period=0.2, server_physical=16 + i) for i in range(2)]
        # Nobody answers this one: each attempt holds the line for its connect timeout, so its
        # backoff (not the others' schedule) bounds what it costs the bus.
        absent = spec("absent", line, period=0.2, server_physical=40, connect_timeout=0.05)
        specs.append(dataclasses.replace(absent, recovery=dataclasses.replace(
            FAST, backoff_initial_s=0.5, backoff_max_s=2.0)))
        sink, engine = run(specs, 1.2)
    finally:
        bus.close()
    assert len(engine.channels) == 1
    for i in range(2):
        assert check_truth(sink, f"m{i}", bus.meters[i].model) >= 4 * len(POINTS)
        assert engine.health()[f"m{i}"]["failed_reads"] == 0
    assert S.UNREACHABLE in sink.states_of("absent") and not sink.cycles_of("absent")


@pytest.mark.parametrize("quirk", ["short", "block"])
def test_malformed_with_list_answers_fall_back_to_single_gets_without_losing_a_cycle(
    sim_factory, caplog, quirk
):
    # Issue 8: a meter whose GET-with-list answers are malformed used to fail every cycle.
    bad = sim_factory(1, bad_with_list=quirk)
    good = sim_factory(1)
    specs = [spec("bad", TcpSpec("127.0.0.1", bad.ports[0])),
             spec("good", TcpSpec("127.0.0.1", good.ports[0]))]
    caplog.set_level(logging.INFO, logger="tb_dlms")

    def restart_the_bad_meter(engine: PollingEngine, sink: RecordingSink) -> None:
        time.sleep(0.5)
        bad.stop_meter(0)
        time.sleep(0.3)
        bad.start_meter(0)

    sink, engine = run(specs, 1.0, restart_the_bad_meter)
    cycles = sink.cycles_of("bad")
    assert len(cycles) >= 8 and all(r.ok for r in cycles[0])  # the first cycle is not lost
    assert check_truth(sink, "bad", bad.model(0)) >= 8 * len(POINTS)
    health = engine.health()["bad"]
    assert health["reconnects"] == 1  # and the fallback was remembered across it:
    said = [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "GET-with-list" in r.getMessage()]
    assert len(said) == 1 and "bad" in said[0] and "malformed" in said[0], said
    assert engine.health()["good"]["failed_reads"] == 0


@pytest.mark.parametrize("window", [2, 7])
def test_window_with_partial_acknowledgement_through_the_engine(sim_factory, window):
    # Issue 8: segmented requests (a 190-byte LLS password, an 18-item GET-with-list at max info
    # 32) against a meter granting the window but taking one frame of each burst.
    password = b"P" * 190
    sim = sim_factory(1, window=window, partial_ack=1, max_info_field=32, password=password)
    link = {"max_info_tx": 32, "max_info_rx": 32, "window_tx": window, "window_rx": window}
    meter = spec("w", TcpSpec("127.0.0.1", sim.ports[0]), client=1, authentication="lls",
                 password=password, retries=0, **link)
    sink, engine = run([meter], 1.0)
    assert check_truth(sink, "w", sim.model(0)) >= 5 * len(POINTS)
    health = engine.health()["w"]
    assert health["failed_reads"] == 0 and health["reconnects"] == 0


def test_held_meters_wait_for_release_then_poll_on_their_phase(sim_factory):
    # A fleet's first start: each meter starts when the gateway has registered its device, so
    # the gateway never gets data for thousands of devices it does not know yet.
    server = sim_factory(3)
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", port)) for i, port in enumerate(server.ports)]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start(hold=True)
    try:
        time.sleep(0.5)  # five periods
        assert server.connections == 0 and not sink.readings
        assert engine.held == 3
        assert engine.states()["m1"]["detail"] == "not started"
        assert engine.release("m1") and not engine.release("m1")
        assert engine.held == 2
        time.sleep(0.5)
        assert {n for n, _, _ in sink.readings} == {"m1"}
        # An RPC to a meter not started yet starts it.
        assert engine.submit("m2", lambda session: "done", 2.0).result(timeout=3.0) == "done"
        assert engine.release_all() == 1 and engine.held == 0
        time.sleep(0.5)
        assert {n for n, _, _ in sink.readings} == {"m0", "m1", "m2"}
    finally:
        assert engine.stop(timeout_s=3.0)
    for i in range(3):
        check_truth(sink, f"m{i}", server.model(i))


def test_reconnect_of_a_held_meter_starts_it(sim_factory):
    server = sim_factory(2)
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", port)) for i, port in enumerate(server.ports)]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start(hold=True)
    try:
        engine.reconnect("m1")
        assert engine.held == 1
        time.sleep(0.4)
        assert {n for n, _, _ in sink.readings} == {"m1"}
    finally:
        assert engine.stop(timeout_s=3.0)


def test_a_held_engine_stops_cleanly_with_nothing_started(sim_factory):
    server = sim_factory(2)
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", port)) for i, port in enumerate(server.ports)]
    engine = PollingEngine(specs, RecordingSink())
    engine.start(hold=True)
    assert engine.stop(timeout_s=1.0)
    assert not engine.release("m0") and server.connections == 0
