"""PollSchedule, stagger and BusSchedule with a fake clock (plain floats): no sleeping."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.engine.schedule import BusSchedule, PollSchedule, stagger
from tb_dlms.protocol.errors import ConfigError, EngineError


def test_deadlines_start_at_start_plus_phase():
    s = PollSchedule(10.0, start=100.0, phase_s=2.5)
    assert s.next_deadline(100.0) == 102.5
    assert s.wait_time(100.0) == 2.5
    assert not s.due(100.0)
    assert s.due(102.5)


def test_read_time_does_not_shift_the_next_deadline():
    s = PollSchedule(10.0, start=0.0)
    b = s.complete(0.0, 3.7)  # a 3.7 s read
    assert b.next_deadline == 10.0  # not 13.7: no drift with read time
    assert b.on_time and b.missed == 0 and b.slot == 0
    b = s.complete(10.2, 12.0)  # started 0.2 s late: within 10 % of 10 s
    assert b.on_time and b.lateness == pytest.approx(0.2)
    assert s.next_deadline(12.0) == 20.0


def test_overrun_skips_missed_slots_instead_of_bunching():
    s = PollSchedule(1.0, start=0.0)
    b = s.complete(0.0, 3.5)  # overran slots 1, 2, 3; slot 3 passed 0.5 s ago (> 0.1 tolerance)
    assert b.missed == 3
    assert b.next_deadline == 4.0  # one cycle at 4.0, not three back-to-back now
    assert s.missed == 3 and s.cycles == 1


def test_slight_overrun_runs_latest_slot_at_once():
    s = PollSchedule(1.0, start=0.0)
    b = s.complete(0.0, 1.05)  # slot 1 passed 50 ms ago: within tolerance, run it now
    assert b.missed == 0 and b.next_deadline == 1.0
    assert s.due(1.05)
    b = s.complete(1.05, 1.5)
    assert b.slot == 1 and b.on_time


def test_late_start_serves_latest_passed_slot_and_counts_older_as_missed():
    s = PollSchedule(1.0, start=0.0)
    # The worker was disconnected for 5.3 s: the pending slot 0 and slots 1-4 are past.
    assert s.next_deadline(5.3) == 5.0
    b = s.complete(5.3, 5.4)
    assert b.slot == 5 and b.missed == 5
    assert not b.on_time  # 0.3 s late with a 0.1 s tolerance
    assert s.on_time == 0 and s.cycles == 1 and s.on_time_ratio == 0.0


def test_on_time_tolerance_is_configurable():
    strict = PollSchedule(10.0, start=0.0, tolerance_s=0.05)
    assert not strict.complete(0.5, 1.0).on_time
    loose = PollSchedule(10.0, start=0.0, tolerance_s=1.0)
    assert loose.complete(0.5, 1.0).on_time
    assert loose.on_time_ratio == 1.0


def test_on_time_ratio_counts_cycles():
    s = PollSchedule(1.0, start=0.0)
    assert s.on_time_ratio == 1.0  # nothing late yet
    s.complete(0.0, 0.5)
    s.complete(1.5, 1.6)  # 0.5 s late
    assert s.cycles == 2 and s.on_time == 1 and s.on_time_ratio == 0.5


def test_early_start_serves_pending_slot():
    s = PollSchedule(1.0, start=0.0)
    b = s.complete(-0.05, 0.2)  # the timer fired 50 ms early
    assert b.slot == 0 and b.on_time and b.lateness == pytest.approx(-0.05)
    assert b.next_deadline == 1.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period_s": 0.0, "start": 0.0},
        {"period_s": -1.0, "start": 0.0},
        {"period_s": math.nan, "start": 0.0},
        {"period_s": 1.0, "start": math.inf},
        {"period_s": 1.0, "start": 0.0, "phase_s": -0.1},
        {"period_s": 1.0, "start": 0.0, "tolerance_s": 1.0},
        {"period_s": 1.0, "start": 0.0, "tolerance_s": -0.1},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        PollSchedule(**kwargs)


def test_cycle_ending_before_start_is_refused():
    with pytest.raises(EngineError):
        PollSchedule(1.0, 0.0).complete(2.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    period=st.floats(0.05, 3600.0),
    start=st.floats(0.0, 1e6),
    durations=st.lists(st.floats(0.0, 5.0), min_size=1, max_size=300),
)
def test_never_drifts_and_accounts_for_every_slot(period, start, durations):
    """Simulated worker loop: every start lands on origin + k*period, every slot counted once."""
    s = PollSchedule(period, start=start)
    now = start
    last_slot = -1
    for fraction in durations:
        deadline = s.next_deadline(now)
        begin = max(now, deadline)  # sleep until the deadline, or run at once when late
        end = begin + fraction * period  # read time from 0 to 5 periods
        b = s.complete(begin, end)
        k = round((b.deadline - s.origin) / period)
        assert b.deadline == s.origin + k * period  # an exact grid point, not a running sum
        assert k == b.slot > last_slot
        if begin == deadline:
            assert b.on_time
        assert b.next_deadline > b.deadline
        last_slot = b.slot
        now = end
    # Each slot before the pending one was either served or counted as missed, exactly once.
    assert s.cycles + s.missed == s.next_slot > last_slot
    assert s.cycles == len(durations)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(1, 2000), period=st.floats(0.1, 3600.0))
def test_stagger_spreads_evenly_inside_the_period(n, period):
    phases = [stagger(i, n, period) for i in range(n)]
    assert phases[0] == 0.0
    assert all(0.0 <= p < period for p in phases)
    gaps = [b - a for a, b in zip(phases, phases[1:])]
    assert all(g == pytest.approx(period / n) for g in gaps)


def test_stagger_thousand_meters_one_millisecond_apart():
    assert stagger(1, 1000, 1.0) == pytest.approx(0.001)
    assert stagger(999, 1000, 1.0) == pytest.approx(0.999)


@pytest.mark.parametrize("index,count", [(0, 0), (-1, 3), (3, 3)])
def test_stagger_rejects_bad_index(index, count):
    with pytest.raises(ConfigError):
        stagger(index, count, 1.0)


def test_bus_picks_earliest_deadline_while_keeping_up():
    bus: BusSchedule[str] = BusSchedule()
    bus.add("a", PollSchedule(10.0, 0.0, phase_s=5.0))
    bus.add("b", PollSchedule(10.0, 0.0, phase_s=2.0))
    assert bus.next(0.0) == ("b", 2.0)  # not due yet: the worker sleeps until 2.0
    bus.complete("b", 2.0, 2.5)
    assert bus.next(2.5) == ("a", 5.0)
    bus.complete("a", 5.0, 5.5)
    assert bus.next(5.5) == ("b", 12.0)


def test_bus_overloaded_is_a_fair_round_robin():
    bus: BusSchedule[str] = BusSchedule()
    for key in "abc":
        bus.add(key, PollSchedule(1.0, 0.0))
    now, order = 0.0, []
    for _ in range(9):  # each read takes 2 s: every meter is always late
        key, deadline = bus.next(now)
        assert deadline <= now
        order.append(key)
        bus.complete(key, now, now + 2.0)
        now += 2.0
    assert order == list("abc" * 3)


def test_bus_slow_meter_is_not_starved_by_fast_one():
    bus: BusSchedule[str] = BusSchedule()
    bus.add("fast", PollSchedule(1.0, 0.0))
    bus.add("slow", PollSchedule(10.0, 0.0, phase_s=0.5))
    now, served = 0.0, {"fast": 0, "slow": 0}
    for _ in range(40):  # 0.9 s reads: the fast meter alone nearly fills the line
        key, deadline = bus.next(now)
        now = max(now, deadline)
        served[key] += 1
        bus.complete(key, now, now + 0.9)
        now += 0.9
    assert served["slow"] >= 3


def test_bus_membership():
    bus: BusSchedule[int] = BusSchedule()
    assert bus.next(0.0) is None
    s = PollSchedule(1.0, 0.0)
    bus.add(7, s)
    assert 7 in bus and len(bus) == 1 and list(bus) == [7] and bus.schedule(7) is s
    with pytest.raises(EngineError):
        bus.add(7, PollSchedule(1.0, 0.0))
    assert bus.remove(7) is s
    with pytest.raises(EngineError):
        bus.remove(7)


def test_policy_modules_import_no_clock_threads_or_io():
    """The policies take ``now`` and an injected Random: no time, threading or I/O import."""
    import ast
    from pathlib import Path

    import tb_dlms.engine
    import tb_dlms.session

    forbidden = {"time", "threading", "socket", "serial", "select", "selectors", "asyncio"}
    engine = Path(tb_dlms.engine.__file__).parent
    session = Path(tb_dlms.session.__file__).parent
    for path in (engine / "schedule.py", engine / "recovery.py", engine / "health.py",
                 session / "batching.py"):
        name = path.stem
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
        assert not roots & forbidden, (name, roots & forbidden)
