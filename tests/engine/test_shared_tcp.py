"""Several meters behind one TCP host:port (a data concentrator), on the selector loop.

The simulator's concentrator mode puts meters with HDLC physical addresses 16, 17 (and 18) behind
one port: each answers only frames addressed to it. The engine must poll every meter of the port
over one connection, in turn, on the loop (the production path for TCP), and values must be each
meter's own truth.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.spec import TcpSpec
from tb_dlms.simulator.server import SimulatorServer
from test_engine_simulator import POINTS, check_truth, spec


@pytest.fixture
def concentrator() -> Iterator[SimulatorServer]:
    server = SimulatorServer(3, 0, meters_per_port=3).run_in_thread()
    yield server
    server.stop()


def test_three_meters_behind_one_port_are_all_polled_on_one_connection(concentrator):
    assert len(concentrator.ports) == 1 and len(concentrator.meters) == 3
    port = concentrator.ports[0]
    specs = [
        spec(f"m{i}", TcpSpec("127.0.0.1", port), period=0.2, server_physical=16 + i)
        for i in range(3)
    ]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    before = threading.active_count()
    engine.start()
    try:
        assert threading.active_count() == before + 1  # the loop, no worker thread
        time.sleep(1.5)
        states = engine.states()
    finally:
        assert engine.stop(timeout_s=3.0)
    for i in range(3):
        assert states[f"m{i}"]["state"] == "associated", states[f"m{i}"]
        # Every value published for meter i is meter i's truth for that register.
        assert check_truth(sink, f"m{i}", concentrator.model(i)) >= 4 * len(POINTS)
        assert engine.health()[f"m{i}"]["failed_reads"] == 0
    assert concentrator.accepted == 1  # one TCP connection carried all three
    assert len({m.model.serial for m in concentrator.meters}) == 3


def test_a_meter_behind_a_shared_port_that_is_absent_fails_alone(concentrator):
    """A configured address nobody answers (a meter missing behind the concentrator) times out
    with an error naming it, and the meters that do answer keep being polled."""
    port = concentrator.ports[0]
    specs = [spec("m0", TcpSpec("127.0.0.1", port), period=0.2, server_physical=16),
             spec("ghost", TcpSpec("127.0.0.1", port), period=0.2, server_physical=99,
                  retries=0)]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    try:
        time.sleep(2.0)
        states = engine.states()
    finally:
        assert engine.stop(timeout_s=3.0)
    assert check_truth(sink, "m0", concentrator.model(0)) >= 4 * len(POINTS)
    assert MeterState.UNREACHABLE in sink.states_of("ghost") and not sink.cycles_of("ghost")
    assert states["ghost"]["consecutive_failures"] >= 1, states["ghost"]
    assert states["m0"]["state"] == "associated", states["m0"]


def test_rpcs_and_a_lost_connection_on_a_shared_port(concentrator):
    """An RPC to the second meter runs in its turn between the others' polls and answers with that
    meter's own value; when the concentrator drops the connection every meter behind it goes down,
    and all come back over one new connection."""
    port = concentrator.ports[0]
    specs = [
        spec(f"m{i}", TcpSpec("127.0.0.1", port), period=0.2, server_physical=16 + i)
        for i in range(3)
    ]
    sink = RecordingSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    try:
        time.sleep(0.8)
        point = POINTS[0]
        reading = engine.submit("m1", lambda s: s.get(point.ref), 5.0).result(5.0)
        t = reading.read_at / 1000.0
        model = concentrator.model(1)
        assert reading.value in {model.expected_value(point.ref.obis, t - d) for d in (0, 0.06)}
        concentrator.stop_meter(0)  # the port: listener and connection gone
        time.sleep(0.6)
        down = {name: len(sink.cycles_of(name)) for name in ("m0", "m1", "m2")}
        concentrator.start_meter(0)
        time.sleep(1.5)
    finally:
        assert engine.stop(timeout_s=3.0)
    for i in range(3):
        name = f"m{i}"
        assert MeterState.BACKOFF in sink.states_of(name) or (
            MeterState.UNREACHABLE in sink.states_of(name)), sink.states_of(name)
        assert len(sink.cycles_of(name)) >= down[name] + 3, (name, down)
        check_truth(sink, name, concentrator.model(i))
    assert concentrator.accepted == 2
