"""MeterPollState's timing defaults: health spread over its period, watchdog floor."""

from __future__ import annotations

from engine_fakes import make_spec
from tb_dlms.engine.poll_state import MeterPollState
from tb_dlms.engine.schedule import stagger


def test_health_of_many_meters_is_spread_over_the_health_period():
    count, start = 1000, 500.0
    spec = make_spec(period=1.0, health_period_s=60.0)
    firsts = [MeterPollState(spec, start, stagger(i, count, 1.0)).next_health for i in range(count)]
    seconds = {int(t - start) for t in firsts}
    # Not all in one second (the burst that made cycles late), but one health period apart at most.
    assert min(firsts) == start + 60.0 and max(firsts) < start + 120.0
    assert len(seconds) == 60


def test_default_watchdog_is_three_periods_but_never_under_30_s():
    assert MeterPollState(make_spec(period=1.0), 0.0, 0.0).watchdog.silence == 30.0
    assert MeterPollState(make_spec(period=60.0), 0.0, 0.0).watchdog.silence == 180.0
