"""The production loop path of PollingEngine (SelectorLoop, LoopMeterDriver, LoopLine) over fake far ends.

``machine_factory``/``line_factory`` put ``FakeMachine``/``FakeLoopLine`` where the loop has a
SessionMachine and a socket: the timers, the decisions, the RPC hand-off and the turn-taking of
meters behind one host:port are the real ones. Real threads, the real clock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from engine_fakes import FakeLoopLine, FakeMachine, FakeMeter, make_spec
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.spec import MeterSpec, SerialSpec, TcpSpec
from tb_dlms.protocol.errors import EngineStopped, TransportError

S = MeterState
CONCENTRATOR = TcpSpec("127.0.0.1", 4059)


class LoopRig:
    def __init__(self, specs: list[MeterSpec], read_s: float = 0.0) -> None:
        self.meters = {s.name: FakeMeter(read_s=read_s) for s in specs}
        self.lines: dict[str, FakeLoopLine] = {}
        self.sink = RecordingSink()
        self.engine = PollingEngine(
            specs, self.sink, machine_factory=self.machine, line_factory=self.line
        )

    def machine(self, spec: MeterSpec) -> FakeMachine:
        return FakeMachine(self.meters[spec.name], spec.name)

    def line(self, tspec: TcpSpec, loop: Any) -> FakeLoopLine:
        line = self.lines[tspec.channel_key] = FakeLoopLine(tspec, loop)
        return line


def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def test_fakes_run_on_the_loop_thread_and_stop_closes_every_session():
    specs = [make_spec(f"m{i}", transport=TcpSpec("127.0.0.1", 5000 + i), period=0.05)
             for i in range(4)]
    rig = LoopRig(specs)
    before = threading.active_count()
    rig.engine.start()
    assert threading.active_count() == before + 1  # the loop: no worker per channel
    wait_for(lambda: all(len(rig.sink.cycles_of(f"m{i}")) >= 3 for i in range(4)))
    assert rig.engine.stop(timeout_s=2.0) is True
    assert threading.active_count() == before
    threads = set().union(*(m.threads for m in rig.meters.values()))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert all(m.closes == 1 for m in rig.meters.values())
    assert all(rig.sink.states_of(f"m{i}")[-1] is S.DISCONNECTED for i in range(4))
    assert all(line.sock is None and line.opens == 1 for line in rig.lines.values())


def test_meters_behind_one_port_take_turns_on_one_connection():
    specs = [make_spec(f"m{i}", transport=CONCENTRATOR, period=0.1) for i in range(3)]
    rig = LoopRig(specs, read_s=0.02)  # three reads of 20 ms fit a 100 ms period in turn
    with rig.engine:
        wait_for(lambda: all(len(rig.sink.cycles_of(f"m{i}")) >= 5 for i in range(3)))
        health = rig.engine.health()
    line = rig.lines[CONCENTRATOR.channel_key]
    assert len(rig.engine.channels) == 1 and sorted(line.meters) == ["m0", "m1", "m2"]
    assert line.overlaps == 0  # never two meters on the wire at once
    assert line.opens == 1 and line.closes == 1  # one connection, closed once at the end
    assert {"m0", "m1", "m2"} <= set(line.turns[-6:])  # each had its turn recently
    for i in range(3):
        assert health[f"m{i}"]["failed_reads"] == 0
        assert health[f"m{i}"]["on_time_rate"] >= 80.0, health[f"m{i}"]


def test_a_refused_meter_behind_a_shared_port_fails_alone_and_the_line_stays_up():
    specs = [make_spec(f"m{i}", transport=CONCENTRATOR, period=0.05) for i in range(2)]
    rig = LoopRig(specs)
    rig.meters["m1"].password_ok = False
    with rig.engine:
        wait_for(lambda: S.AUTH_FAILED in rig.sink.states_of("m1"))
        n = len(rig.sink.cycles_of("m0"))
        wait_for(lambda: len(rig.sink.cycles_of("m0")) >= n + 5)
        states = rig.engine.states()
    assert states["m0"]["state"] == "associated" and states["m1"]["state"] == "auth-failed"
    assert not rig.sink.cycles_of("m1")
    assert rig.lines[CONCENTRATOR.channel_key].opens == 1  # m0's session kept the connection


def test_a_session_lost_behind_a_shared_port_is_dropped_and_comes_back():
    specs = [make_spec(f"m{i}", transport=CONCENTRATOR, period=0.05) for i in range(2)]
    rig = LoopRig(specs)
    with rig.engine:
        wait_for(lambda: len(rig.sink.cycles_of("m1")) >= 2)
        rig.meters["m1"].failures.append(TransportError("m1: no answer"))
        wait_for(lambda: S.BACKOFF in rig.sink.states_of("m1"))
        n0, n1 = len(rig.sink.cycles_of("m0")), len(rig.sink.cycles_of("m1"))
        wait_for(lambda: len(rig.sink.cycles_of("m1")) >= n1 + 2 and
                 len(rig.sink.cycles_of("m0")) >= n0 + 2)
    assert len(rig.meters["m1"].connects) == 2 and len(rig.meters["m0"].connects) == 1
    assert rig.lines[CONCENTRATOR.channel_key].overlaps == 0


def test_an_rpc_behind_a_shared_port_waits_for_its_turn():
    specs = [make_spec(f"m{i}", transport=CONCENTRATOR, period=0.02) for i in range(3)]
    rig = LoopRig(specs, read_s=0.01)
    refs = specs[2].points

    def rpc(session: Any) -> Any:
        return [session.get(p.ref).value for p in refs]

    with rig.engine:
        wait_for(lambda: all(rig.sink.cycles_of(f"m{i}") for i in range(3)))
        futures = [rig.engine.submit(f"m{i % 3}", rpc, 3.0) for i in range(9)]
        results = [f.result(5.0) for f in futures]
    assert results == [[230.0] * len(refs)] * 9  # one value per get, as the fake meter answers
    assert rig.lines[CONCENTRATOR.channel_key].overlaps == 0


def test_a_hung_meter_delays_no_meter_of_another_port_and_stop_stays_bounded():
    specs = [make_spec("hung", transport=TcpSpec("127.0.0.1", 5001), period=0.05),
             make_spec("fine", transport=TcpSpec("127.0.0.1", 5002), period=0.05)]
    rig = LoopRig(specs)
    rig.meters["hung"].block = threading.Event()  # its reads never end by themselves
    rig.engine.start()
    wait_for(lambda: rig.meters["hung"].reads)
    n = len(rig.sink.cycles_of("fine"))
    time.sleep(0.5)
    assert len(rig.sink.cycles_of("fine")) >= n + 7  # ~10 slots in 0.5 s, none lost to "hung"
    started = time.monotonic()
    assert rig.engine.stop(timeout_s=1.0) is True  # the hung read is abandoned, the line closed
    assert time.monotonic() - started < 1.2
    assert rig.meters["hung"].closes == 1 and len(rig.meters["hung"].reads) == 1


def test_reconnect_and_observation_on_the_loop():
    spec = make_spec("m", transport=TcpSpec("127.0.0.1", 5001), period=0.02, health_period_s=0.05)
    rig = LoopRig([spec])
    with rig.engine:
        wait_for(lambda: rig.sink.cycles_of("m"))
        rig.engine.reconnect("m")
        wait_for(lambda: len(rig.meters["m"].connects) == 2)
        wait_for(lambda: rig.sink.health)
        states = rig.engine.states()
    assert states["m"]["channel"] == "tcp://127.0.0.1:5001"
    assert rig.meters["m"].closes == 2  # the reconnect's close, then the stop's
    assert S.DISCONNECTED in rig.sink.states_of("m")[1:-1]  # the reconnect showed


def test_an_rpc_running_when_stop_begins_gets_engine_stopped_and_stop_is_clean():
    spec = make_spec("m", transport=TcpSpec("127.0.0.1", 5001), period=0.05)
    rig = LoopRig([spec])
    inside, go_on = threading.Event(), threading.Event()

    def rpc(session: Any) -> Any:
        inside.set()
        go_on.wait(2.0)  # the engine begins stopping meanwhile
        return session.get(spec.points[0].ref)

    rig.engine.start()
    wait_for(lambda: rig.sink.cycles_of("m"))
    future = rig.engine.submit("m", rpc, 3.0)
    assert inside.wait(2.0)
    threading.Timer(0.2, go_on.set).start()
    started = time.monotonic()
    assert rig.engine.stop(timeout_s=2.0) is True
    assert time.monotonic() - started < 1.0  # the channel closed once the RPC ended
    assert isinstance(future.exception(0), EngineStopped)
    assert rig.sink.states_of("m")[-1] is S.DISCONNECTED and rig.meters["m"].closes == 1


def test_a_serial_line_and_tcp_ports_are_channels_of_one_engine():
    """Both kinds of channel driver, started, routed, observed and stopped alike."""
    serial = SerialSpec("/dev/tb-dlms-no-such-port")  # cannot open: unreachable, retried
    specs = [make_spec("t0", transport=TcpSpec("127.0.0.1", 5001), period=0.05),
             make_spec("t1", transport=TcpSpec("127.0.0.1", 5002), period=0.05),
             make_spec("s0", transport=serial, period=0.05)]
    rig = LoopRig(specs)
    before = threading.active_count()
    rig.engine.start()
    assert threading.active_count() == before + 2  # the loop, and the serial line's worker
    wait_for(lambda: rig.sink.cycles_of("t0") and rig.sink.cycles_of("t1"))
    wait_for(lambda: S.UNREACHABLE in rig.sink.states_of("s0"))
    got = rig.engine.submit("t1", lambda session: session.get(specs[1].points[0].ref).value, 2.0)
    assert got.result(3.0) == 230.0
    rig.engine.reconnect("s0")  # routed to the serial line's worker: no error
    states = rig.engine.states()
    assert {n: s["channel"] for n, s in states.items()} == {
        "t0": "tcp://127.0.0.1:5001", "t1": "tcp://127.0.0.1:5002", "s0": serial.channel_key}
    assert sorted(k for ch in rig.engine.channels for k in ch.meters) == ["s0", "t0", "t1"]
    assert rig.engine.stop(timeout_s=2.0) is True
    assert threading.active_count() == before
    assert all(rig.sink.states_of(n)[-1] is S.DISCONNECTED for n in ("t0", "t1", "s0"))
