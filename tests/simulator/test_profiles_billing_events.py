"""The daily billing profile (1-0:98.1.0) and the standard event log (0-0:99.98.0) of the
simulated meter, and the truth tests compare readings with: ``MeterModel.expected_profile_rows``.

Every read goes through the real selective-access encoder and decoder. A wire answer is checked
against the expected rows stamp by stamp and value by value; the expected rows themselves are
checked against independent facts (a billing row equals the registers read at its midnight; the
event codes are the IDIS ones; each meter has its own rows).
"""

from __future__ import annotations

import datetime as dt

import pytest
from profile_access import Clock, U, as_wire, by_entry, by_range, read
from tb_dlms.protocol import event_codes
from tb_dlms.protocol.axdr import DataType, Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.simulator.model import MeterModel

UTC = dt.timezone.utc
T0 = 1_700_000_437  # 2023-11-14T22:20:37Z
LOAD, BILLING, EVENTS = "1-0:99.1.0", "1-0:98.1.0", "0-0:99.98.0"
@pytest.fixture
def meter():
    return MeterModel(5, clock=Clock(T0))


def at(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_static_attributes(meter):
    assert decode_data(encode_data(meter.get(7, BILLING, 3)))[0] == [
        (8, bytes([0, 0, 1, 0, 0, 255]), 2, 0),
        (3, bytes([1, 0, 1, 8, 0, 255]), 2, 0),
        (3, bytes([1, 0, 2, 8, 0, 255]), 2, 0),
        (4, bytes([1, 0, 1, 6, 0, 255]), 2, 0),
    ]
    assert decode_data(encode_data(meter.get(7, EVENTS, 3)))[0] == [
        (8, bytes([0, 0, 1, 0, 0, 255]), 2, 0),
        (1, bytes([0, 0, 96, 11, 0, 255]), 2, 0),
    ]
    assert [meter.get(7, BILLING, a).value for a in (4, 5, 7, 8)] == [86400, 1, 62, 62]
    assert [meter.get(7, EVENTS, a).value for a in (4, 5, 7, 8)] == [0, 1, 100, 100]
    for obis in ("1-0:1.8.0", "1-0:2.8.0"):
        assert decode_data(encode_data(meter.get(3, obis, 3)))[0] == (1, 30)  # 10 Wh


def test_billing_rows_are_the_registers_at_each_midnight():
    clock = Clock(T0)
    m = MeterModel(5, clock=clock)
    rows = read(m, BILLING)
    assert len(rows) == 62
    newest = at(2023, 11, 14)
    for k, row in enumerate(rows):
        when = newest - dt.timedelta(days=61 - k)
        assert row[0] == CosemDateTime.from_datetime(when).to_bytes()
    imports = [row[1] for row in rows]
    exports = [row[2] for row in rows]
    assert imports == sorted(imports) and exports == sorted(exports)
    assert len(set(exports)) == 62  # export grows every day
    for row in (rows[0], rows[30], rows[-1]):
        clock.t = CosemDateTime.from_bytes(row[0]).to_datetime().timestamp()
        assert row[1] == m.get(3, "1-0:1.8.0", 2).value  # what the register showed then
        assert row[2] == m.get(3, "1-0:2.8.0", 2).value
        assert row[1] == m.expected("1-1:1.8.0")[0] // 10  # the total energy, in tens of Wh
        # Maximum demand of the day before: the best quarter-hour of the total energy register.
        t = clock.t
        quarters = [m.expected("1-1:1.8.0", t - 86400 + 900 * (q + 1))[0]
                    - m.expected("1-1:1.8.0", t - 86400 + 900 * q)[0] for q in range(96)]
        assert row[3] == 4 * max(quarters) > 0


def test_event_log_irregular_increasing_and_standard_codes(meter):
    rows = meter.expected_profile_rows(EVENTS)
    assert len(rows) == 100
    times = [r.time for r in rows]
    assert times == sorted(times) and len(set(times)) == 100
    gaps = {(b - a).total_seconds() for a, b in zip(times, times[1:])}
    assert len(gaps) > 50  # not a fixed period
    codes = [r.values[0] for r in rows]
    assert set(codes) <= set(event_codes.STANDARD_EVENTS)
    assert {1, 2, 4, 5} <= set(codes)
    for a, b in zip(rows, rows[1:]):
        if a.values[0] == event_codes.POWER_DOWN:  # the supply comes back within 10 minutes
            assert b.values[0] == event_codes.POWER_UP
            assert 0 < (b.time - a.time).total_seconds() <= 600
    assert meter.get(1, "0-0:96.11.0", 2) == Typed(DataType.UNSIGNED, codes[-1])
    # Meters differ: another index, other times and codes.
    other = MeterModel(6, clock=Clock(T0)).expected_profile_rows(EVENTS)
    assert [r.time for r in other] != times


@pytest.mark.parametrize("obis", [LOAD, BILLING, EVENTS])
def test_reads_equal_expected_rows(meter, obis):
    everything = meter.expected_profile_rows(obis)
    assert as_wire(everything) == read(meter, obis)
    assert [r.entry for r in everything] == list(range(1, len(everything) + 1))
    mid = everything[len(everything) // 2].time
    lo, hi = mid - dt.timedelta(days=2), mid + dt.timedelta(hours=30)
    want = meter.expected_profile_rows(obis, lo, hi)
    assert want and all(lo <= r.time <= hi for r in want)
    assert as_wire(want) == read(meter, obis, by_range(lo, hi))
    # Entry access: the same rows by their entry numbers.
    assert read(meter, obis, by_entry(want[0].entry, want[-1].entry)) == as_wire(want)
    # Open bounds.
    assert read(meter, obis, by_range(None, hi)) == as_wire(meter.expected_profile_rows(
        obis, None, hi))
    assert read(meter, obis, by_range(lo, None)) == as_wire(everything[want[0].entry - 1:])
    # Both bounds on a row: inclusive.
    one = everything[3]
    assert read(meter, obis, by_range(one.time, one.time)) == as_wire([one])


@pytest.mark.parametrize("obis", [LOAD, BILLING, EVENTS])
def test_empty_spans(meter, obis):
    rows = meter.expected_profile_rows(obis)
    a, b = rows[10].time, rows[11].time
    between = (a + dt.timedelta(seconds=1), b - dt.timedelta(seconds=1))
    assert meter.expected_profile_rows(obis, *between) == []
    assert read(meter, obis, by_range(*between)) == []
    future = (at(2030, 1, 1), at(2030, 2, 1))
    assert meter.expected_profile_rows(obis, *future) == []
    assert read(meter, obis, by_range(*future)) == []
    assert read(meter, obis, by_range(b, a)) == []  # from after to
    assert read(meter, obis, by_entry(len(rows) + 1, 0)) == []


def test_expected_values_are_scaled_raw(meter):
    load = meter.expected_profile_rows(LOAD)[-1]
    assert load.values == (float(load.raw[0]), load.raw[1] / 10)
    assert load.time == at(2023, 11, 14, 22, 15)
    billing = meter.expected_profile_rows(BILLING)[-1]
    assert billing.values == (billing.raw[0] * 10.0, billing.raw[1] * 10.0, float(billing.raw[2]))
    assert billing.clock_status == 0 and billing.stamp[9:11] == b"\x00\x00"
    event = meter.expected_profile_rows(EVENTS)[-1]
    assert event.values == event.raw and isinstance(event.values[0], int)
    assert meter.expected_profile_rows(LOAD, at=T0 - 900)[-1].time == at(2023, 11, 14, 22, 0)


def test_profile_reset_by_method_and_helper():
    clock = Clock(T0)
    m = MeterModel(5, clock=clock)
    assert m.action(7, LOAD, 1, 0)[0] == 0  # reset
    assert m.get(7, LOAD, 7).value == 0
    assert read(m, LOAD) == [] and m.expected_profile_rows(LOAD) == []
    assert read(m, LOAD, by_range(None, None)) == []
    clock.t = T0 + 900  # the next quarter-hour is captured as entry 1
    rows = m.expected_profile_rows(LOAD)
    assert [r.entry for r in rows] == [1]
    assert rows[0].time == at(2023, 11, 14, 22, 30)
    assert read(m, LOAD, by_entry(1, 1)) == as_wire(rows)
    # The other profiles are untouched; the helper clears one as the method does.
    assert m.get(7, EVENTS, 7).value == 100
    m.clear_profile(EVENTS)
    assert m.get(7, EVENTS, 7).value == 0
    assert m.get(1, "0-0:96.11.0", 2).value == 0
    assert m.get(7, BILLING, 7).value == 62
    assert m.action(7, LOAD, 2, 0)[0] != 0  # capture: not offered


def test_max_demand_register_is_the_day_so_far():
    clock = Clock(T0)  # 22:20:37 UTC: 89 complete quarters since midnight
    m = MeterModel(5, clock=clock)
    midnight = 1_699_920_000  # 2023-11-14T00:00Z
    quarters = [m.expected("1-1:1.8.0", midnight + 900 * (q + 1))[0]
                - m.expected("1-1:1.8.0", midnight + 900 * q)[0] for q in range(89)]
    best = quarters.index(max(quarters))
    assert m.get(4, "1-0:1.6.0", 2) == Typed(U, 4 * quarters[best])
    assert m.get(4, "1-0:1.6.0", 5).value == CosemDateTime.from_datetime(
        dt.datetime.fromtimestamp(midnight + 900 * (best + 1), UTC)).to_bytes()
    assert decode_data(encode_data(m.get(4, "1-0:1.6.0", 3)))[0] == (0, 27)  # W
    clock.t = 1_700_006_400 + 899  # the next day, no complete quarter yet
    assert m.get(4, "1-0:1.6.0", 2) == Typed(U, 0)
    # At midnight the billing row took the whole day's maximum.
    assert m.expected_profile_rows(BILLING)[-1].raw[2] >= 4 * quarters[best]


def test_unknown_profile_is_refused(meter):
    with pytest.raises(Exception, match="no simulated profile"):
        meter.expected_profile_rows("1-0:99.2.0")


def test_event_names():
    assert event_codes.event_name(1) == "Power down"
    assert event_codes.event_name(5) == "Clock adjusted (new date/time)"
    assert event_codes.event_name(240).startswith("Manufacturer specific")
    assert event_codes.event_name(199) == "Unknown event 199"
