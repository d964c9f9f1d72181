"""PollingEngine with real threads and the real clock, over fake lines and sessions."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from engine_fakes import FakeLine, FakeMeter, FakeSession, make_spec
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import SNAPSHOT_KEYS, MeterState
from tb_dlms.engine.spec import MeterSpec, SerialSpec, TcpSpec
from tb_dlms.protocol.errors import ConfigError, EngineError, EngineStopped


class Rig:
    """Fake far ends keyed by meter name; lines keyed by channel."""

    def __init__(self, specs: list[MeterSpec]) -> None:
        self.meters = {s.name: FakeMeter() for s in specs}
        self.lines: dict[str, FakeLine] = {}
        self.sink = RecordingSink()
        self.engine = PollingEngine(
            specs, self.sink, transport_factory=self.line, session_factory=self.session
        )

    def line(self, tspec: Any) -> FakeLine:
        line = FakeLine(tspec.channel_key)
        original_close = line.close

        def close() -> None:  # closing a line wakes a read blocked on it, like a socket
            original_close()
            for m in self.meters.values():
                if m.block is not None:
                    m.block.set()

        line.close = close  # type: ignore[method-assign]
        self.lines[tspec.channel_key] = line
        return line

    def session(self, spec: MeterSpec, line: Any) -> FakeSession:
        return FakeSession(self.meters[spec.name], spec, line)


def wait_for(predicate: Any, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)


def tcp(i: int) -> TcpSpec:
    return TcpSpec("127.0.0.1", 5000 + i)


def test_start_polls_every_meter_and_stop_leaves_no_thread_behind():
    specs = [make_spec(f"m{i}", transport=tcp(i), period=0.05) for i in range(5)]
    rig = Rig(specs)
    before = threading.active_count()
    rig.engine.start()
    assert threading.active_count() == before + 5
    wait_for(lambda: all(len(rig.sink.cycles_of(f"m{i}")) >= 3 for i in range(5)))
    started = time.monotonic()
    assert rig.engine.stop(timeout_s=2.0) is True
    assert time.monotonic() - started < 0.5  # idle workers wake from Event.wait at once
    assert threading.active_count() == before
    assert all(m.closes == 1 for m in rig.meters.values())
    assert all(rig.sink.states_of(f"m{i}")[-1] is MeterState.DISCONNECTED for i in range(5))
    assert not any(line.is_open for line in rig.lines.values())


def test_the_thread_stack_size_is_restored_after_start():
    rig = Rig([make_spec("m0", period=10.0)])
    previous = threading.stack_size()
    with rig.engine:
        assert threading.stack_size() == previous


def test_a_hung_meter_does_not_delay_a_meter_on_another_channel_and_stop_stays_bounded():
    specs = [make_spec("hung", transport=tcp(1), period=0.05),
             make_spec("fine", transport=tcp(2), period=0.05)]
    rig = Rig(specs)
    rig.meters["hung"].block = threading.Event()  # its first read never returns by itself
    rig.engine.start()
    wait_for(lambda: rig.meters["hung"].reads)
    n = len(rig.sink.cycles_of("fine"))
    time.sleep(0.5)
    assert len(rig.sink.cycles_of("fine")) >= n + 7  # ~10 slots in 0.5 s, none lost to "hung"
    assert rig.engine.health()["fine"]["on_time_rate"] > 80.0
    started = time.monotonic()
    assert rig.engine.stop(timeout_s=1.0) is True  # the hung read is cut by closing its line
    assert time.monotonic() - started < 1.2


def test_requests_run_on_the_meters_worker_thread_never_beside_a_read():
    spec = make_spec("m", transport=tcp(1), period=0.01)
    rig = Rig([spec])
    busy = threading.Lock()
    overlaps = []
    original_read = FakeSession.read

    def guarded_read(self: FakeSession, refs: Any) -> list[Any]:
        if not busy.acquire(blocking=False):
            overlaps.append("read")
        try:
            return original_read(self, refs)
        finally:
            busy.release()

    def rpc(session: FakeSession) -> int:
        if not busy.acquire(blocking=False):
            overlaps.append("rpc")
        try:
            time.sleep(0.002)
            return threading.get_ident()
        finally:
            busy.release()

    FakeSession.read = guarded_read  # type: ignore[method-assign]
    try:
        with rig.engine:
            wait_for(lambda: rig.sink.cycles_of("m"))
            futures = [rig.engine.submit("m", rpc, 2.0) for _ in range(20)]
            idents = {f.result(2.0) for f in futures}
    finally:
        FakeSession.read = original_read  # type: ignore[method-assign]
    assert overlaps == []
    assert idents == rig.meters["m"].threads and threading.get_ident() not in idents


def test_reconnect_and_observation_through_the_engine():
    rig = Rig([make_spec("m", transport=tcp(1), period=0.02, health_period_s=0.05)])
    with rig.engine:
        wait_for(lambda: rig.sink.cycles_of("m"))
        rig.engine.reconnect("m")
        wait_for(lambda: len(rig.meters["m"].connects) == 2)
        wait_for(lambda: rig.sink.health)
        states = rig.engine.states()
        health = rig.engine.health()
    assert states["m"]["channel"] == "tcp://127.0.0.1:5001"
    assert {"state", "detail", "connected", "breaker"} <= set(states["m"])
    assert set(health["m"]) == set(SNAPSHOT_KEYS)
    assert set(rig.sink.health[0][1]) == set(SNAPSHOT_KEYS)


def test_submit_refuses_unknown_meters_and_a_stopped_engine():
    rig = Rig([make_spec("m", period=10.0)])
    future = rig.engine.submit("m", lambda s: 1, 1.0)
    with pytest.raises(EngineStopped, match="not running"):
        future.result(0)
    with rig.engine, pytest.raises(EngineError, match="unknown meter 'x'"):
        rig.engine.submit("x", lambda s: 1, 1.0)


def test_meters_on_one_port_form_one_channel_and_must_agree_on_the_line():
    bus = SerialSpec("/dev/ttyUSB0", 9600)
    specs = [make_spec("a", transport=bus), make_spec("b", transport=bus),
             make_spec("c", transport=tcp(1))]
    engine = Rig(specs).engine
    channels = engine.build()
    assert sorted(len(ch.meters) for ch in channels) == [1, 2]
    odd = [make_spec("a", transport=bus), make_spec("b", transport=SerialSpec("/dev/ttyUSB0", 2400))]
    with pytest.raises(ConfigError, match="share serial:///dev/ttyUSB0 with different line"):
        Rig(odd).engine.build()


def test_meter_names_must_be_unique():
    with pytest.raises(ConfigError, match="repeated: m"):
        PollingEngine([make_spec("m"), make_spec("m", transport=tcp(3))], RecordingSink())
