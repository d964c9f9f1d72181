"""The selector loop path of PollingEngine: many TCP meters on one thread, against the simulator.

A "hung" meter is a listener that accepts and never answers (the kernel completes the TCP
handshake from the backlog even without accept). Values are checked against the simulator's model
as in test_engine_simulator.py.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.spec import MeterSpec, RecoverySpec, TcpSpec
from tb_dlms.simulator.server import SimulatorServer
from test_engine_simulator import POINTS, check_truth, spec

S = MeterState


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(12, 0).run_in_thread()
    yield server
    server.stop()


@pytest.fixture
def silent() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=8)
    yield listener.getsockname()[1]
    listener.close()


def test_many_meters_on_one_thread_and_a_hung_one_delays_none(sim, silent):
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", p), period=0.1) for i, p in enumerate(sim.ports)]
    specs.append(spec("hung", TcpSpec("127.0.0.1", silent), period=0.1, connect_timeout=0.2,
                      retries=0))
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    before = threading.active_count()
    engine.start()
    try:
        assert threading.active_count() == before + 1  # one loop for 13 TCP meters
        time.sleep(1.5)
    finally:
        started = time.monotonic()
        assert engine.stop(timeout_s=3.0)
        assert time.monotonic() - started < 2.0
    assert threading.active_count() == before
    health = engine.health()
    for i in range(len(sim.ports)):
        assert check_truth(sink, f"m{i}", sim.model(i)) >= 10 * len(POINTS)
        assert health[f"m{i}"]["on_time_rate"] >= 80.0, health[f"m{i}"]
        assert health[f"m{i}"]["failed_reads"] == 0
        assert sink.states_of(f"m{i}")[-1] is S.DISCONNECTED
    assert not sink.cycles_of("hung")
    assert S.CONNECTING in sink.states_of("hung")
    assert {S.UNREACHABLE, S.BACKOFF} & set(sink.states_of("hung"))


def test_stop_while_connecting_is_bounded_and_leaves_nothing_open(silent):
    # 10.255.255.1 is not routed on a test box: the TCP connect itself hangs (or fails at once).
    slow = RecoverySpec(min_connect_spacing_s=0.0, backoff_initial_s=5.0, backoff_max_s=5.0)
    specs = [
        MeterSpec("blackhole", "meter", TcpSpec("10.255.255.1", 4059, 5.0),
                  spec("x", None).session, 1.0, POINTS, slow),
        spec("silent", TcpSpec("127.0.0.1", silent), period=1.0, connect_timeout=5.0),
    ]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    time.sleep(0.3)
    assert engine.states()["silent"]["state"] == "connecting"
    started = time.monotonic()
    assert engine.stop(timeout_s=1.0)
    assert time.monotonic() - started < 1.2
    assert sink.states_of("silent")[-1] is S.DISCONNECTED
    assert sink.states_of("blackhole")[-1] is S.DISCONNECTED


def test_a_request_runs_between_cycles_and_a_killed_meter_recovers(sim):
    specs = [spec(f"m{i}", TcpSpec("127.0.0.1", sim.ports[i]), period=0.1) for i in range(2)]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    try:
        time.sleep(0.3)
        serial: Any = engine.submit("m0", lambda s: s.get((1, "0-0:96.1.0", 2)), 2.0).result(3)
        assert serial.raw == sim.model(0).serial
        sim.stop_meter(1)
        time.sleep(0.6)
        assert engine.states()["m1"]["state"] in ("unreachable", "backoff")
        sim.start_meter(1)
        deadline = time.monotonic() + 3.0
        while engine.states()["m1"]["state"] != "associated" and time.monotonic() < deadline:
            time.sleep(0.02)
        cycles = len(sink.cycles_of("m1"))
        time.sleep(0.4)
        assert len(sink.cycles_of("m1")) > cycles
    finally:
        assert engine.stop(timeout_s=3.0)
    check_truth(sink, "m0", sim.model(0))
    check_truth(sink, "m1", sim.model(1))
