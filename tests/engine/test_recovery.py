"""Backoff, ConnectGate, CircuitBreaker, Watchdog and ReconnectPolicy with a fake clock."""

from __future__ import annotations

import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.engine.recovery import (
    Backoff,
    BreakerState,
    CircuitBreaker,
    ConnectGate,
    JitterSource,
    ReconnectPolicy,
    Watchdog,
)
from tb_dlms.protocol.errors import ConfigError

# --- Backoff -------------------------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_without_jitter():
    b = Backoff(initial_s=1.0, maximum_s=10.0, multiplier=2.0, jitter=0.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert b.attempts == 6


def test_backoff_reset_starts_over():
    b = Backoff(initial_s=0.5, maximum_s=10.0, jitter=0.0)
    b.next_delay(), b.next_delay()
    b.reset()
    assert b.attempts == 0 and b.next_delay() == 0.5


def test_backoff_jitter_comes_from_the_injected_rng():
    a = Backoff(jitter=0.2, rng=random.Random(42))
    b = Backoff(jitter=0.2, rng=random.Random(42))
    seq_a = [a.next_delay() for _ in range(10)]
    assert seq_a == [b.next_delay() for _ in range(10)]  # reproducible
    assert len(set(seq_a[-3:])) == 3  # and actually jittered at the cap (300 s)
    assert all(240.0 <= d <= 360.0 for d in seq_a[-2:])


def test_jitter_source_is_uniform_reproducible_and_small():
    # Each meter has one (10,000 meters): it must spread retries like random.Random does, from a
    # seed, in a few dozen bytes instead of random.Random's 2.5 KB of state.
    draws = [JitterSource(7).random() for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]  # same seed, same stream
    source = JitterSource(7)
    values = [source.random() for _ in range(20_000)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert len(set(values)) == len(values)
    buckets = [0] * 10
    for v in values:
        buckets[int(v * 10)] += 1
    assert all(1_800 < b < 2_200 for b in buckets), buckets
    assert abs(sum(values) / len(values) - 0.5) < 0.01
    assert JitterSource(8).random() != values[0]
    assert sys.getsizeof(source) < 100 < sys.getsizeof(random.Random(7))


def test_backoff_never_overflows_when_a_meter_stays_down():
    b = Backoff(initial_s=1.0, maximum_s=300.0, multiplier=10.0, jitter=0.0)
    for _ in range(2000):
        d = b.next_delay()
    assert d == 300.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": 0.0},
        {"initial_s": 5.0, "maximum_s": 1.0},
        {"multiplier": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.0},
        {"initial_s": float("nan")},
    ],
)
def test_backoff_rejects_bad_settings(kwargs):
    with pytest.raises(ConfigError):
        Backoff(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(0.01, 100.0),
    extra=st.floats(0.0, 1000.0),
    multiplier=st.floats(1.0, 10.0),
    jitter=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32),
    n=st.integers(1, 60),
)
def test_backoff_bounded_by_maximum_times_one_plus_jitter(
    initial, extra, multiplier, jitter, seed, n
):
    maximum = initial + extra
    b = Backoff(initial, maximum, multiplier, jitter, random.Random(seed))
    for _ in range(n):
        d = b.next_delay()
        assert initial * (1 - jitter) - 1e-9 <= d <= maximum * (1 + jitter) + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    initial=st.floats(0.01, 100.0),
    extra=st.floats(0.0, 1000.0),
    multiplier=st.floats(1.0, 10.0),
    n=st.integers(2, 60),
)
def test_backoff_without_jitter_is_monotonic_then_flat_at_the_cap(initial, extra, multiplier, n):
    maximum = initial + extra
    b = Backoff(initial, maximum, multiplier, jitter=0.0)
    delays = [b.next_delay() for _ in range(n)]
    assert delays[0] == initial
    assert all(x <= y for x, y in zip(delays, delays[1:]))
    assert all(d <= maximum for d in delays)
    capped = [i for i, d in enumerate(delays) if d == maximum]
    if capped:  # once at the cap, it stays there
        assert all(d == maximum for d in delays[capped[0] :])


# --- ConnectGate ---------------------------------------------------------------------------------


def test_gate_enforces_min_spacing_between_attempts():
    g = ConnectGate(12.0)  # the Microstar meter needs 10-15 s between connection attempts
    assert g.ready(0.0) and g.wait_time(0.0) == 0.0 and g.last is None
    g.attempted(100.0)
    assert not g.ready(105.0)
    assert g.wait_time(105.0) == 7.0
    assert g.ready(112.0) and g.wait_time(112.0) == 0.0


def test_gate_counts_spacing_from_a_close_too():
    g = ConnectGate(12.0)
    g.attempted(0.0)
    g.closed(500.0)  # a session that lived 500 s
    assert g.wait_time(505.0) == 7.0
    g.closed(400.0)  # an older close does not move the gate back
    assert g.earliest() == 512.0


def test_gate_rejects_negative_spacing():
    with pytest.raises(ConfigError):
        ConnectGate(-1.0)


# --- CircuitBreaker ------------------------------------------------------------------------------


def test_breaker_opens_after_threshold_consecutive_failures():
    cb = CircuitBreaker(failure_threshold=3, open_s=60.0)
    cb.record_failure(1.0)
    cb.record_failure(2.0)
    assert cb.state is BreakerState.CLOSED and cb.allow(2.0)
    cb.record_failure(3.0)
    assert cb.state is BreakerState.OPEN and cb.state.value == "open"
    assert not cb.allow(50.0)
    assert cb.retry_at() == 63.0
    [t] = cb.pop_transitions()
    assert (t.previous, t.state, t.at, t.consecutive_failures) == (
        BreakerState.CLOSED,
        BreakerState.OPEN,
        3.0,
        3,
    )
    assert cb.pop_transitions() == []  # drained


def test_breaker_success_resets_the_failure_count():
    cb = CircuitBreaker(failure_threshold=2)
    cb.record_failure(1.0)
    cb.record_success(2.0)
    cb.record_failure(3.0)
    assert cb.state is BreakerState.CLOSED and cb.consecutive_failures == 1
    assert cb.pop_transitions() == []  # no transition happened


def test_breaker_half_open_then_closed_on_success():
    cb = CircuitBreaker(failure_threshold=1, open_s=60.0)
    cb.record_failure(0.0)
    assert cb.allow(60.0)  # open_s elapsed: one trial goes through
    assert cb.state is BreakerState.HALF_OPEN and cb.state.value == "half-open"
    assert cb.retry_at() is None
    cb.record_success(61.0)
    assert cb.state is BreakerState.CLOSED
    assert [(t.previous.value, t.state.value, t.at) for t in cb.pop_transitions()] == [
        ("closed", "open", 0.0),
        ("open", "half-open", 60.0),
        ("half-open", "closed", 61.0),
    ]


def test_breaker_half_open_failure_reopens_for_another_period():
    cb = CircuitBreaker(failure_threshold=5, open_s=30.0)
    for t in range(5):
        cb.record_failure(float(t))
    assert cb.allow(34.0) and cb.state is BreakerState.HALF_OPEN
    cb.record_failure(35.0)  # one failed trial is enough to reopen
    assert cb.state is BreakerState.OPEN and cb.retry_at() == 65.0
    assert not cb.allow(64.9) and cb.allow(65.0)
    states = [t.state for t in cb.pop_transitions()]
    assert states == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
    ]


def test_breaker_event_queue_is_bounded():
    cb = CircuitBreaker(failure_threshold=1, open_s=0.0, max_events=4)
    for t in range(100):  # nobody drains: memory must stay bounded
        cb.allow(float(t))
        cb.record_failure(float(t))
    events = cb.pop_transitions()
    assert len(events) == 4 and events[-1].at == 99.0


def test_breaker_rejects_bad_settings():
    with pytest.raises(ConfigError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ConfigError):
        CircuitBreaker(open_s=-1.0)


# --- Watchdog ------------------------------------------------------------------------------------


def test_watchdog_expires_after_silence_and_feed_rearms():
    w = Watchdog(30.0, start=0.0)
    assert not w.expired(29.9)
    assert w.expired(30.0) and w.silent_for(45.0) == 45.0
    w.feed(40.0)
    assert not w.expired(69.0) and w.expired(70.0)


def test_watchdog_unarmed_never_expires():
    w = Watchdog(1.0)
    assert not w.expired(1e9) and w.silent_for(1e9) == 0.0
    w.feed(5.0)
    assert w.expired(6.0)


def test_watchdog_check_fires_once_per_silence():
    w = Watchdog(10.0, start=0.0)
    assert [w.check(t) for t in (5.0, 10.0, 11.0, 50.0)] == [False, True, False, False]
    w.feed(60.0)
    assert [w.check(t) for t in (65.0, 70.0, 80.0)] == [False, True, False]


def test_watchdog_fires_at_the_time_it_gives():
    # The loop arms a timer at fires_at; when it fires, check must say so. With last_fed on a
    # monotonic clock of some days, (last_fed + silence) - last_fed can come out just under
    # silence: a check by subtraction then found nothing due at the time it had announced.
    w = Watchdog(7.7, start=760962.4449125755)
    assert w.fires_at == 760962.4449125755 + 7.7
    assert w.check(w.fires_at) and w.fires_at == float("inf")
    w = Watchdog(3.3)
    w.feed(22322.111021323864)
    assert w.expired(w.fires_at) and not w.expired(w.fires_at - 1e-6)
    assert not w.check(w.fires_at - 1e-6) and w.check(w.fires_at)


def test_watchdog_rejects_zero_silence():
    with pytest.raises(ConfigError):
        Watchdog(0.0)


# --- ReconnectPolicy -----------------------------------------------------------------------------


def _policy(spacing=12.0, threshold=3, open_s=120.0):
    return ReconnectPolicy(
        ConnectGate(spacing),
        Backoff(initial_s=1.0, maximum_s=60.0, jitter=0.0),
        CircuitBreaker(failure_threshold=threshold, open_s=open_s),
    )


def test_policy_first_attempt_is_allowed_at_once():
    d = _policy().decide(0.0)
    assert d.allowed and d.wait_s == 0.0 and d.reason == "ready" and d.state == "connecting"


def test_policy_spacing_dominates_a_short_backoff():
    p = _policy(spacing=12.0)
    p.attempted(0.0)
    assert p.failed(2.0) == 12.0  # backoff says 3.0, the meter's spacing says 12.0
    d = p.decide(2.0)
    assert not d.allowed and d.wait_s == 10.0 and d.reason == "spacing" and d.state == "backoff"
    assert p.decide(12.0).allowed


def test_policy_backoff_dominates_once_it_grows():
    p = _policy(spacing=5.0, threshold=100)
    t = 0.0
    for _ in range(4):  # delays 1, 2, 4, 8
        p.attempted(t)
        t = p.failed(t + 0.5)
    p.attempted(t)
    p.failed(t + 0.5)  # fifth failure: backoff 16 s > spacing 5 s
    d = p.decide(t + 0.5)
    assert d.reason == "backoff" and d.wait_s == 16.0


def test_policy_circuit_open_dominates_and_success_clears_everything():
    p = _policy(spacing=12.0, threshold=3, open_s=120.0)
    t = 0.0
    for _ in range(3):
        p.attempted(t)
        failed_at = t + 1.0
        t = p.failed(failed_at)
    assert p.breaker.state is BreakerState.OPEN
    d = p.decide(failed_at)
    assert not d.allowed and d.reason == "circuit-open" and d.state == "circuit-open"
    assert d.wait_s == 120.0  # the breaker outweighs both the spacing and the 4 s backoff
    retry = p.breaker.retry_at()
    assert retry == t == failed_at + 120.0
    d = p.decide(retry)
    assert d.allowed and p.breaker.state is BreakerState.HALF_OPEN
    p.attempted(retry)
    p.succeeded(retry + 1.0)
    assert p.breaker.state is BreakerState.CLOSED and p.backoff.attempts == 0
    p.disconnected(retry + 500.0)  # the session ends: spacing counts from the close
    d = p.decide(retry + 505.0)
    assert d.reason == "spacing" and d.wait_s == 7.0


def test_policy_defaults_work():
    p = ReconnectPolicy()
    p.attempted(0.0)
    assert p.failed(0.0) > 0.0
