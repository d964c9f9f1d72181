"""MeterHealth: counters, averages, states and the published snapshot keys."""

from __future__ import annotations

import tracemalloc

import pytest
from tb_dlms.engine import health as health_module
from tb_dlms.engine.health import SNAPSHOT_KEYS, MeterHealth, MeterState
from tb_dlms.protocol.errors import ConfigError, EngineError


def test_fresh_snapshot_has_every_documented_key():
    snap = MeterHealth().snapshot()
    assert tuple(snap) == SNAPSHOT_KEYS
    assert snap["total_reads"] == 0 and snap["success_rate"] == 0.0
    assert snap["on_time_rate"] == 100.0 and snap["last_success_ts"] == 0
    assert snap["connection_state"] == "disconnected"
    assert all(isinstance(v, (int, float, str)) for v in snap.values())
    # Every key is documented in the module docstring: it is the dashboard contract.
    doc = health_module.__doc__ or ""
    assert all(f"``{key}``" in doc for key in SNAPSHOT_KEYS)


def test_reads_counts_and_success_rate():
    h = MeterHealth()
    for ok in (True, True, False, True):
        h.record_read(ok, 0.1, 5, now=1.0)
    snap = h.snapshot()
    assert (snap["total_reads"], snap["successful_reads"], snap["failed_reads"]) == (4, 3, 1)
    assert snap["success_rate"] == 75.0
    assert snap["registers_read"] == 15
    assert snap["requests_sent"] == 4


def test_a_cycle_of_single_gets_counts_each_get_as_a_read():
    # A meter without GET-with-list: 9 GETs a cycle are 9 read requests, not 1.
    h = MeterHealth()
    h.record_read(True, 0.9, 9, now=1.0, requests=9)
    h.record_read(False, 0.5, 0, now=2.0, requests=5)  # the 5th GET timed out
    h.record_read(False, 0.1, 0, now=3.0, requests=0)  # failed before sending anything
    snap = h.snapshot()
    assert (snap["total_reads"], snap["successful_reads"], snap["failed_reads"]) == (15, 13, 2)
    assert snap["requests_sent"] == 14
    assert snap["success_rate"] == round(100 * 13 / 15, 2)
    assert snap["consecutive_failures"] == 2  # cycles, as before
    assert snap["avg_read_time_ms"] == 900.0  # the successful cycle's duration


def test_consecutive_failures_reset_on_success():
    h = MeterHealth()
    for t in range(3):
        h.record_read(False, 5.0, 0, now=float(t))
    assert h.snapshot()["consecutive_failures"] == 3
    h.record_read(True, 0.2, 1, now=4.0)
    assert h.snapshot()["consecutive_failures"] == 0


def test_average_read_time_is_an_ewma_seeded_by_the_first_read():
    h = MeterHealth(ewma_alpha=0.5)
    h.record_read(True, 0.100, 5, now=1.0)
    assert h.snapshot()["avg_read_time_ms"] == 100.0  # seeded, not 50 ms
    h.record_read(True, 0.300, 5, now=2.0)
    snap = h.snapshot()
    assert snap["avg_read_time_ms"] == 200.0
    assert snap["last_read_time_ms"] == 300.0
    assert snap["avg_register_time_ms"] == 40.0  # (20 ms + 60 ms) / 2
    h.record_read(False, 30.0, 0, now=40.0)  # a timeout does not pollute the read time
    assert h.snapshot()["avg_read_time_ms"] == 200.0


def test_last_success_timestamp_uses_the_injected_wall_clock():
    wall = iter([1_700_000_000.25, 1_700_000_010.5])
    h = MeterHealth(wall_clock=lambda: next(wall))
    h.record_read(True, 0.1, 1, now=5.0)
    assert h.snapshot()["last_success_ts"] == 1_700_000_000_250
    h.record_read(False, 0.1, 0, now=6.0)  # a failure leaves it alone
    assert h.snapshot()["last_success_ts"] == 1_700_000_000_250
    h.record_read(True, 0.1, 1, now=15.0)
    assert h.snapshot()["last_success_ts"] == 1_700_000_010_500
    assert h.last_success == 15.0


def test_cycles_on_time_missed_and_published_messages():
    h = MeterHealth()
    h.record_cycle(True)
    h.record_cycle(False, missed=2)
    h.record_cycle(True)
    h.record_published()
    h.record_published(2)
    snap = h.snapshot()
    assert (snap["total_cycles"], snap["cycles_on_time"], snap["cycles_missed"]) == (3, 2, 2)
    assert snap["on_time_rate"] == 66.67
    assert snap["messages_sent"] == 3


def test_states_reconnects_and_availability():
    h = MeterHealth()
    assert h.record_state(MeterState.CONNECTING, 0.0)
    assert h.record_state("associated", 10.0)
    assert not h.record_state(MeterState.ASSOCIATED, 20.0)  # no change
    h.record_read(True, 0.5, 9, now=40.0)
    assert h.record_state(MeterState.BACKOFF, 50.0)  # session lost after 40 s associated
    h.record_state(MeterState.CONNECTING, 62.0)
    h.record_state(MeterState.ASSOCIATED, 80.0)
    h.record_read(True, 0.5, 9, now=100.0)
    snap = h.snapshot()
    assert snap["reconnects"] == 1
    assert snap["connection_state"] == "associated"
    assert snap["availability"] == 60.0  # (40 + 20) s associated out of 100 s observed
    assert h.state_since == 80.0


@pytest.mark.parametrize("state", list(MeterState))
def test_every_state_is_accepted_by_its_string_value(state):
    h = MeterHealth()
    h.record_state(state.value, 1.0)
    assert h.snapshot()["connection_state"] == state.value


def test_state_values_are_the_documented_strings():
    assert [s.value for s in MeterState] == [
        "disconnected",
        "connecting",
        "associated",
        "backoff",
        "circuit-open",
        "unreachable",
        "auth-failed",
        "counter-rejected",
    ]


def test_unknown_state_and_bad_alpha_are_refused():
    with pytest.raises(EngineError):
        MeterHealth().record_state("sleeping", 0.0)
    with pytest.raises(ConfigError):
        MeterHealth(ewma_alpha=0.0)
    with pytest.raises(ConfigError):
        MeterHealth(ewma_alpha=1.5)


def test_memory_is_constant_per_meter():
    h = MeterHealth()
    assert not hasattr(h, "__dict__")  # slots only: 1,000 meters stay small
    h.record_read(True, 0.1, 5, now=0.0)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            h.record_read(i % 7 != 0, 0.1 + (i % 5) * 0.01, 5, now=float(i))
            h.record_cycle(i % 3 != 0)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1024  # no per-read history kept
    assert h.total_reads == 20_001
