"""The polling engine on its selector loop (the production path for TCP meters) with one hostile
meter beside a well-behaved one: every read of the hostile meter ends by its deadline and counts
as a failed read in health, the engine reconnects it through its normal policy, and the good
meter keeps its schedule. Bounded memory: tracemalloc's peak over the whole run."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

from hostile_bounds import PEAK_BYTES
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.session import SessionSettings
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.simulator.values import REGISTERS
from tb_dlms.testing.hostile import HostileMeter, TimedSink, wait_for

POINTS = tuple(PollPoint(r.key, ObjectRef(3, r.obis, 2)) for r in REGISTERS)
FAST = RecoverySpec(
    min_connect_spacing_s=0.0, backoff_initial_s=0.05, backoff_max_s=0.2,
    breaker_threshold=50, breaker_open_s=1.0,
)
DEADLINE_S = 1.0
PERIOD_S = 0.2
RUN_S = 4.0


def spec(name: str, port: int, recovery: RecoverySpec = FAST, **session: Any) -> MeterSpec:
    values = {"client": 16, "name": name, "response_timeout": 0.3, "connect_timeout": 0.5,
              "operation_timeout": DEADLINE_S, **session}
    return MeterSpec(name, "meter", TcpSpec("127.0.0.1", port, connect_timeout_s=1.0),
                     SessionSettings(**values), PERIOD_S, POINTS, recovery, 1.0)


def run(specs: list[MeterSpec], until: Any) -> tuple[TimedSink, dict[str, Any], float]:
    """Run until ``until(sink)`` or RUN_S; the health snapshots and the stop time."""
    sink = TimedSink()
    engine = PollingEngine(specs, sink)
    engine.start()
    try:
        wait_for(lambda: until(sink), RUN_S)
        health = engine.health()
    finally:
        started = time.monotonic()
        assert engine.stop(timeout_s=3.0)
    return sink, health, time.monotonic() - started


def published(sink: RecordingSink, name: str) -> bool:
    """A health snapshot of ``name`` with a failed read went out."""
    return any(n == name and h["failed_reads"] >= 1 for n, h in list(sink.health))


def test_a_hostile_meter_fails_reconnects_and_leaves_the_others_alone(hostile):
    good_sim = SimulatorServer(1, 0).run_in_thread()
    tracemalloc.start()
    try:
        specs = [spec("good", good_sim.ports[0]), spec("bad", hostile.port)]
        sink, health, stop_s = run(specs, lambda s: (
            hostile.connections >= 3 and len(s.cycles_of("good")) >= 8 and published(s, "bad")))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        good_sim.stop()
    bad, good = health["bad"], health["good"]
    # Every read of the hostile meter ended, as a failure, and the engine reconnected it.
    assert bad["failed_reads"] >= 2, bad
    # (A malformed GET-with-list answer may end as a cycle of per-object errors first, when the
    # session falls back to single GETs: no hostile answer ever becomes a value.)
    assert not [r for cycle in sink.cycles_of("bad") for r in cycle if r.ok]
    assert hostile.connections >= 3
    assert MeterState.BACKOFF in sink.states_of("bad")
    failures = [d for n, s, d in sink.states if n == "bad" and s is MeterState.BACKOFF]
    assert all("bad" in d for d in failures), failures  # the error names the meter
    assert published(sink, "bad")
    # ... each within its deadline: association to BACKOFF is the first poll (a period at most),
    # the read (the deadline), the close (1 s at most) and scheduling noise.
    spans = sink.failed_read_spans("bad")
    assert len(spans) >= 2 and max(spans) < PERIOD_S + DEADLINE_S + 1.0 + 1.0, spans
    # The good meter kept its schedule meanwhile.
    assert good["failed_reads"] == 0 and len(sink.cycles_of("good")) >= 8, good
    assert stop_s < 3.0
    assert peak < 2 * PEAK_BYTES, f"peak {peak} bytes"  # two meters, the simulator, the engine


def test_the_watchdog_is_checked_while_an_operation_runs():
    # A drip never runs out of frames and the operation's own deadline is far away (60 s): only
    # the watchdog (1 s without a successful read) can end the read. Before, it was checked
    # between operations only, so this read ran on.
    watchdog = RecoverySpec(
        min_connect_spacing_s=0.0, backoff_initial_s=0.05, backoff_max_s=0.2,
        breaker_threshold=50, breaker_open_s=1.0, watchdog_s=1.0,
    )
    with HostileMeter("drip") as meter:
        specs = [spec("drip", meter.port, watchdog, operation_timeout=60.0, response_timeout=2.0)]
        sink, health, _ = run(specs, lambda s: "watchdog" in str(s.states))
    assert health["drip"]["failed_reads"] >= 1
    assert any(n == "drip" and "watchdog" in d for n, _, d in sink.states), sink.states
