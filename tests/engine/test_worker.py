"""ChannelWorker stepped by hand with a fake clock and a fake session: no thread, no sleep."""

from __future__ import annotations

import logging
import random
from concurrent.futures import Future
from typing import Any

import pytest
from engine_fakes import Clock, FakeLine, FakeMeter, FakeSession, make_spec
from tb_dlms.engine.events import RecordingSink
from tb_dlms.engine.health import MeterState
from tb_dlms.engine.poll_state import MeterPollState
from tb_dlms.engine.spec import MeterSpec, RecoverySpec, SerialSpec
from tb_dlms.engine.worker import ChannelWorker
from tb_dlms.protocol.errors import (
    EngineStopped,
    NoAnswer,
    ServiceError,
    TransportError,
)

S = MeterState


def build(
    specs: list[MeterSpec],
    meters: dict[str, FakeMeter],
    clock: Clock,
    sink: Any = None,
    phases: list[float] | None = None,
) -> tuple[ChannelWorker, RecordingSink, FakeLine]:
    runners = [
        MeterPollState(s, clock(), phases[i] if phases else 0.0, rng=random.Random(i))
        for i, s in enumerate(specs)
    ]
    line = FakeLine()
    sink = sink if sink is not None else RecordingSink()

    def factory(spec: MeterSpec, transport: Any) -> FakeSession:
        return FakeSession(meters[spec.name], spec, transport)

    worker = ChannelWorker(
        "ch", runners, line, factory, sink,
        clock=clock, wall_clock=lambda: 1_700_000_000.0, log=logging.getLogger("test.worker"),
    )
    return worker, sink, line


def drive(worker: ChannelWorker, clock: Clock, until: float, max_steps: int = 100_000) -> None:
    """Run the worker's decisions, jumping the fake clock over its waits."""
    for _ in range(max_steps):
        if clock.t >= until:
            return
        delay = worker.step()
        if delay > 0:
            clock.advance(min(delay, until - clock.t) if clock.t + delay > until else delay)
    raise AssertionError("worker never waited: busy loop")


def one(meter_kw: dict[str, Any] | None = None, **spec_kw: Any):
    clock = Clock()
    meter = FakeMeter(clock, **(meter_kw or {}))
    spec = make_spec(**spec_kw)
    worker, sink, line = build([spec], {spec.name: meter}, clock)
    return clock, meter, worker, sink, line


# --- schedule --------------------------------------------------------------------------------


def test_cycles_start_on_drift_free_deadlines_whatever_the_read_time():
    clock, meter, worker, sink, _ = one({"read_s": 0.37}, period=1.0)
    drive(worker, clock, 1010.5)
    # One read per slot, each at its exact deadline (1000 + k): read time does not push them.
    assert meter.reads == [pytest.approx(1000.0 + k) for k in range(11)]
    cycles = sink.cycles_of("m1")
    assert len(cycles) == 11
    assert [r.key for r in cycles[0]] == ["k0", "k1", "k2"]
    assert all(r.ok for c in cycles for r in c)
    snap = worker.meters["m1"].health.snapshot()
    assert snap["total_cycles"] == 11 and snap["cycles_on_time"] == 11
    assert snap["registers_read"] == 33 and snap["messages_sent"] == 11


def test_overrunning_cycles_skip_slots_and_count_them():
    clock, meter, worker, _, _ = one({"read_s": 2.5}, period=1.0)
    drive(worker, clock, 1010.0)
    # 0 -> ends 2.5: slots 1, 2 skipped; 3 -> 5.5; 6 -> 8.5; 9 -> 11.5 (10, 11 skipped).
    assert meter.reads == [pytest.approx(1000.0 + k) for k in (0, 3, 6, 9)]
    assert worker.meters["m1"].health.cycles_missed == 8


def test_a_point_refused_by_the_meter_carries_its_error_and_the_others_their_values():
    clock, meter, worker, sink, _ = one()
    meter.missing = {"1-1:52.7.0.255"}
    drive(worker, clock, 1000.5)
    (cycle,) = sink.cycles_of("m1")
    assert [r.ok for r in cycle] == [True, False, True]
    assert cycle[1].key == "k1" and "object-undefined" in str(cycle[1].result)
    assert worker.meters["m1"].health.registers_read == 2


# --- connection, backoff, breaker ----------------------------------------------------------------


def test_unreachable_meter_backs_off_then_opens_the_circuit_then_recovers():
    clock, meter, worker, sink, _ = one()
    meter.up = False
    drive(worker, clock, 1020.0)
    # Attempts 1 s, 2 s, 4 s apart (+/- 20 % jitter), then the breaker opens after 3 failures.
    gaps = [b - a for a, b in zip(meter.connects, meter.connects[1:])]
    assert len(meter.connects) == 3
    assert 0.8 <= gaps[0] <= 1.2 + 1.0 and 1.6 <= gaps[1] <= 2.4 + 1.0
    assert sink.states_of("m1") == [S.CONNECTING, S.UNREACHABLE, S.CONNECTING, S.UNREACHABLE,
                                    S.CONNECTING, S.CIRCUIT_OPEN]
    assert "refused" in sink.states[1][2] and "next attempt in" in sink.states[1][2]
    # Circuit open 30 s: no attempt before, a trial after; the meter is back: associated.
    meter.up = True
    opened = meter.connects[-1]
    drive(worker, clock, opened + 31.0)
    assert meter.connects[3] >= opened + 30.0
    assert sink.states_of("m1")[-2:] == [S.CONNECTING, S.ASSOCIATED]
    assert worker.meters["m1"].reconnect_policy.breaker.state.value == "closed"
    assert sink.cycles_of("m1")


def test_wrong_password_is_not_retried_at_full_speed():
    clock, meter, worker, sink, _ = one()
    meter.password_ok = False
    drive(worker, clock, 1000.0 + 600.0)
    assert sink.states_of("m1")[:2] == [S.CONNECTING, S.AUTH_FAILED]
    gaps = [b - a for a, b in zip(meter.connects, meter.connects[1:])]
    assert gaps and min(gaps) >= 30.0  # max(breaker_open_s, backoff_max_s) = 30 s
    assert len(meter.connects) <= 600 // 30 + 1


def test_minimum_spacing_holds_between_a_lost_session_and_the_next_attempt():
    rec = RecoverySpec(min_connect_spacing_s=12.0, backoff_initial_s=1.0, backoff_max_s=8.0)
    clock, meter, worker, sink, _ = one(recovery=rec)
    drive(worker, clock, 1003.5)
    meter.failures.append(TransportError("tcp x: connection closed by peer"))
    drive(worker, clock, 1040.0)
    lost = meter.reads[4]  # the read that failed
    assert meter.connects[1] >= lost + 12.0
    assert S.BACKOFF in sink.states_of("m1")
    assert worker.meters["m1"].health.reconnects == 1


def test_one_timeout_keeps_the_session_two_in_a_row_drop_it():
    clock, meter, worker, _sink, _ = one()
    drive(worker, clock, 1001.5)
    meter.failures.append(NoAnswer("no answer"))
    drive(worker, clock, 1004.5)
    assert len(meter.connects) == 1 and meter.closes == 0  # one lost reply: session kept
    meter.failures.extend([NoAnswer("no answer"), NoAnswer("no answer")])
    drive(worker, clock, 1010.0)
    assert meter.closes == 1 and len(meter.connects) == 2
    assert worker.meters["m1"].health.failed_reads == 3


def test_watchdog_reconnects_a_session_that_answers_without_data():
    # Default watchdog: three poll periods, but at least 30 s (no reconnect storms when busy).
    clock, meter, worker, sink, _ = one(period=1.0)
    drive(worker, clock, 1001.5)
    meter.failures.extend(ServiceError("exception-response") for _ in range(40))
    drive(worker, clock, 1029.0)
    assert not [d for n, s, d in sink.states if s is S.UNREACHABLE]
    drive(worker, clock, 1034.0)
    watchdog = [d for n, s, d in sink.states if s is S.UNREACHABLE]
    assert watchdog and watchdog[0].startswith("watchdog: no successful read for 30.")
    assert meter.closes == 1 and len(meter.connects) >= 2


def test_operator_reconnect_closes_and_associates_again():
    clock, meter, worker, sink, _ = one()
    drive(worker, clock, 1002.5)
    worker.reconnect("m1")
    drive(worker, clock, 1004.5)
    assert meter.closes == 1 and len(meter.connects) == 2
    assert sink.states_of("m1")[-3:] == [S.DISCONNECTED, S.CONNECTING, S.ASSOCIATED]


# --- RPCs --------------------------------------------------------------------------------------


def test_requests_run_in_submission_order_between_cycles_on_the_meters_session():
    clock, meter, worker, _sink, _ = one(period=10.0)
    drive(worker, clock, 1000.5)
    order: list[int] = []
    futures = [worker.submit("m1", lambda s, i=i: (order.append(i), s)[1], 5.0) for i in range(3)]
    reads_before = len(meter.reads)
    worker.step()
    assert order == [0, 1, 2]
    sessions = {f.result(0) for f in futures}
    assert len(sessions) == 1 and isinstance(sessions.pop(), FakeSession)
    assert len(meter.reads) == reads_before  # no extra cycle squeezed in


def test_a_request_to_a_disconnected_meter_connects_first():
    _clock, meter, worker, _, _ = one(period=100.0)
    future = worker.submit("m1", lambda s: s.connected, 5.0)
    worker.step()
    assert future.result(0) is True and len(meter.connects) == 1


def test_a_request_fails_clearly_when_the_meter_cannot_connect_in_time():
    clock, meter, worker, _, _ = one(period=1.0)
    meter.up = False
    drive(worker, clock, 1000.5)  # failed once: backoff ~1 s
    late: Future[Any] = worker.submit("m1", lambda s: 1, 0.1)
    worker.step()
    with pytest.raises(TransportError, match="m1: not connected .*unreachable.*after the request"):
        late.result(0)


def test_a_request_whose_session_breaks_fails_and_the_meter_reconnects():
    clock, meter, worker, sink, _ = one(period=10.0)
    drive(worker, clock, 1000.5)

    def boom(session: Any) -> None:
        raise TransportError("line dropped")

    future = worker.submit("m1", boom, 5.0)
    worker.step()
    with pytest.raises(TransportError):
        future.result(0)
    assert meter.closes == 1 and sink.states_of("m1")[-1] is S.BACKOFF


# --- sink errors, health, stop ---------------------------------------------------------------


class ExplodingSink(RecordingSink):
    def on_readings(self, *a: Any) -> None:
        super().on_readings(*a)
        raise RuntimeError("sink bug")

    def on_state(self, *a: Any) -> None:
        super().on_state(*a)
        raise RuntimeError("sink bug")

    def on_health(self, *a: Any) -> None:
        super().on_health(*a)
        raise RuntimeError("sink bug")


def test_sink_errors_are_logged_and_polling_goes_on(caplog):
    clock = Clock()
    meter = FakeMeter(clock)
    spec = make_spec(health_period_s=2.0)
    worker, sink, _ = build([spec], {"m1": meter}, clock, sink=ExplodingSink())
    with caplog.at_level(logging.ERROR):
        drive(worker, clock, 1005.5)
    assert len(sink.readings) == 6 and len(sink.health) == 2
    assert worker.policy.sink_errors == 6 + 2 + 2  # readings, health, connecting + associated
    assert "m1: sink.on_readings failed" in caplog.text


def test_health_snapshots_every_health_period():
    clock, _meter, worker, sink, _ = one(health_period_s=5.0)
    drive(worker, clock, 1021.0)
    assert [n for n, _ in sink.health] == ["m1"] * 4
    assert sink.health[-1][1]["connection_state"] == "associated"
    assert sink.health[-1][1]["total_cycles"] >= 15


def test_shutdown_closes_sessions_and_fails_queued_requests():
    clock, meter, worker, sink, line = one(period=10.0)
    drive(worker, clock, 1000.5)
    meter.up = False
    future = worker.submit("m1", lambda s: 1, 60.0)
    worker.shutdown()
    assert meter.closes == 1 and not line.is_open
    assert sink.states_of("m1")[-1] is S.DISCONNECTED
    with pytest.raises(EngineStopped, match="stopped"):
        future.result(0)


# --- a bus: several meters, one line ------------------------------------------------------------


def test_a_bus_polls_its_meters_in_turn_each_with_its_own_session():
    clock = Clock()
    bus = SerialSpec("/dev/ttyRS485")
    specs = [make_spec(n, transport=bus) for n in ("a", "b", "c")]
    meters = {n: FakeMeter(clock, read_s=0.1) for n in ("a", "b", "c")}
    worker, _sink, line = build(specs, meters, clock, phases=[0.0, 0.3, 0.6])
    drive(worker, clock, 1004.95)
    for i, n in enumerate("abc"):
        assert meters[n].reads == [pytest.approx(1000.0 + 0.3 * i + k) for k in range(5)]
    assert line.opens == 1  # one line for three sessions


def test_a_dead_meter_on_a_bus_does_not_starve_the_others():
    clock = Clock()
    bus = SerialSpec("/dev/ttyRS485")
    specs = [make_spec(n, transport=bus) for n in ("a", "b")]
    meters = {n: FakeMeter(clock, read_s=0.1) for n in ("a", "b")}
    meters["a"].up = False
    worker, sink, line = build(specs, meters, clock, phases=[0.0, 0.5])
    drive(worker, clock, 1020.0)
    assert len(meters["b"].reads) == 20  # every slot of b served
    assert worker.meters["b"].health.cycles_on_time == 20
    assert S.CIRCUIT_OPEN in sink.states_of("a") and not meters["a"].reads
    assert line.is_open and line.closes == 0  # a's session closes its view, not the line


def test_a_bus_whose_line_breaks_drops_every_session_on_it():
    clock = Clock()
    bus = SerialSpec("/dev/ttyRS485")
    specs = [make_spec(n, transport=bus) for n in ("a", "b")]
    meters = {n: FakeMeter(clock) for n in ("a", "b")}
    worker, sink, line = build(specs, meters, clock, phases=[0.0, 0.5])
    drive(worker, clock, 1001.2)

    def port_fails(session: FakeSession) -> None:
        line.is_open = False  # what a real transport does when its port fails under a read
        raise TransportError("serial /dev/ttyRS485: read failed")

    meters["b"].failures.append(port_fails)
    drive(worker, clock, 1001.6)
    assert sink.states_of("b")[-1] is S.BACKOFF
    assert sink.states_of("a")[-1] is S.BACKOFF
    assert [d for n, s, d in sink.states if n == "a"][-1].startswith("line lost")
    drive(worker, clock, 1030.0)
    assert line.opens == 2
    assert sink.states_of("a")[-1] is S.ASSOCIATED and sink.states_of("b")[-1] is S.ASSOCIATED
