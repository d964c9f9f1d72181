"""Profile quirks of the simulated meters: no range access, clock status bits on rows, a meter
in local time with DST (the repeated October hour), a meter with deviation "not specified", and
a clock set back (later rows with earlier stamps).

Madrid switches from CEST (UTC+2, Blue Book deviation -120) to CET (UTC+1, deviation -60) on
2024-10-27 at 01:00 UTC: local 02:00..02:59 happens twice.
"""

from __future__ import annotations

import datetime as dt

import pytest
from profile_access import WILDCARD, Clock, as_wire, by_entry, by_range, read
from tb_dlms.protocol.apdu.common import DataAccessResult
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.simulator.model import MeterModel, MeterOptions

UTC = dt.timezone.utc
LOAD, BILLING, EVENTS = "1-0:99.1.0", "1-0:98.1.0", "0-0:99.98.0"
T_DST = dt.datetime(2024, 10, 27, 6, 0, tzinfo=UTC).timestamp()
CEST, CET = dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=1))


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def cosem(d: dt.datetime, **kw) -> bytes:
    return CosemDateTime.from_datetime(d, **kw).to_bytes()


def madrid(**kw):
    return MeterModel(3, clock=Clock(T_DST), options=MeterOptions(time_zone="Europe/Madrid", **kw))


@pytest.mark.parametrize("obis", [LOAD, BILLING, EVENTS])
def test_no_range_access_refuses_selector_1_and_serves_entries(obis):
    m = MeterModel(1, clock=Clock(T_DST), options=MeterOptions(profile_range_access=False))
    assert m.get(7, obis, 2, by_range(WILDCARD, WILDCARD)) == DataAccessResult.OTHER_REASON
    assert read(m, obis, by_entry(1, 2)) == as_wire(m.expected_profile_rows(obis)[:2])


def test_clock_status_bits_every_nth_row():
    m = MeterModel(1, clock=Clock(T_DST), options=MeterOptions(clock_status_every=4))
    rows = m.expected_profile_rows(LOAD)
    statuses = [r.clock_status for r in rows]
    flagged = [s for s in statuses if s]
    assert len(flagged) == 960 // 4
    assert set(flagged) == {0x01, 0x02} and flagged[0] != flagged[1]
    assert [s for s in statuses[:8] if s] == flagged[:2]
    assert [r[0][11] for r in read(m, LOAD)] == statuses  # byte 11 of each stamp on the wire
    assert read(m, LOAD) == as_wire(rows)
    # The bits are in the stamp, the instant is not moved: a client that ignores them still
    # sees every quarter-hour.
    assert rows[-1].time == utc(2024, 10, 27, 6, 0)
    plain = MeterModel(1, clock=Clock(T_DST)).expected_profile_rows(LOAD)
    assert [r.clock_status for r in plain] == [0] * 960


def test_local_time_repeats_the_october_hour_with_deviation_and_dst_bit():
    m = madrid()
    rows = m.expected_profile_rows(LOAD, utc(2024, 10, 26, 23, 30), utc(2024, 10, 27, 1, 30))
    wall = [(r.time.hour, r.time.minute) for r in rows]
    assert wall == [(1, 30), (1, 45), (2, 0), (2, 15), (2, 30), (2, 45),
                    (2, 0), (2, 15), (2, 30)]
    stamps = [CosemDateTime.from_bytes(r.stamp) for r in rows]
    assert [s.deviation for s in stamps] == [-120] * 6 + [-60] * 3  # Blue Book sign
    assert [int(s.clock_status) for s in stamps] == [0x80] * 6 + [0] * 3
    instants = [r.time.timestamp() for r in rows]
    assert instants == sorted(instants) and len(set(instants)) == 9  # every row once
    assert [s.to_datetime() for s in stamps] == [r.time for r in rows]
    assert as_wire(rows) == read(m, LOAD, by_range(cosem(rows[0].time), cosem(rows[-1].time)))


def test_bounds_in_local_time_with_and_without_deviation():
    m = madrid()
    at_two_cet = cosem(dt.datetime(2024, 10, 27, 2, 0, tzinfo=CET))
    assert read(m, LOAD, by_range(at_two_cet, at_two_cet)) == as_wire(
        m.expected_profile_rows(LOAD, utc(2024, 10, 27, 1), utc(2024, 10, 27, 1)))
    # No deviation: the meter's wall time; the repeated hour is the summer one unless the
    # bound's status says DST is off.
    summer = CosemDateTime(2024, 10, 27, None, 2, 0, 0, 0, None, None).to_bytes()
    winter = CosemDateTime(2024, 10, 27, None, 2, 0, 0, 0, None, 0).to_bytes()
    assert [r[0] for r in read(m, LOAD, by_range(summer, summer))] == [
        cosem(dt.datetime(2024, 10, 27, 2, 0, tzinfo=CEST), clock_status=0x80)]
    assert [r[0] for r in read(m, LOAD, by_range(winter, winter))] == [at_two_cet]
    naive = m.expected_profile_rows(LOAD, dt.datetime(2024, 10, 27, 5), dt.datetime(2024, 10, 27, 6))
    assert [r.time for r in naive] == [dt.datetime(2024, 10, 27, 5, 15 * k, tzinfo=CET)
                                       for k in range(4)] + [dt.datetime(2024, 10, 27, 6, tzinfo=CET)]


def test_local_billing_rows_at_local_midnight_across_dst():
    m = madrid()
    rows = m.expected_profile_rows(BILLING)
    assert all((r.time.hour, r.time.minute) == (0, 0) for r in rows)
    assert rows[-1].time == dt.datetime(2024, 10, 27, tzinfo=CEST)
    assert rows[-2].time == dt.datetime(2024, 10, 26, tzinfo=CEST)
    m2 = MeterModel(3, clock=Clock(T_DST + 86400), options=m.options)
    last = m2.expected_profile_rows(BILLING)[-2:]
    assert last[1].time == dt.datetime(2024, 10, 28, tzinfo=CET)
    assert (last[1].time - last[0].time) == dt.timedelta(hours=25)  # the long day
    assert read(m2, BILLING, by_entry(61, 62)) == as_wire(last)


def test_clock_object_in_local_time():
    m = madrid()
    now = CosemDateTime.from_bytes(m.get(8, "0-0:1.0.0", 2).value)
    assert (now.hour, now.deviation, int(now.clock_status)) == (7, -60, 0)
    assert m.get(8, "0-0:1.0.0", 3) == Typed(DataType.LONG, -60)
    assert m.get(8, "0-0:1.0.0", 8) == Typed(DataType.BOOLEAN, True)
    assert m.get(8, "0-0:1.0.0", 4) == Typed(DataType.UNSIGNED, 0)  # winter: no DST bit
    summer = MeterModel(3, clock=Clock(T_DST - 86400), options=m.options)
    assert summer.get(8, "0-0:1.0.0", 4) == Typed(DataType.UNSIGNED, 0x80)
    assert CosemDateTime.from_bytes(summer.get(8, "0-0:1.0.0", 2).value).deviation == -120
    plain = MeterModel(3, clock=Clock(T_DST))
    assert plain.get(8, "0-0:1.0.0", 3) == Typed(DataType.LONG, 0)
    assert plain.get(8, "0-0:1.0.0", 8) == Typed(DataType.BOOLEAN, False)
    # A clock SET without deviation is local time.
    local = CosemDateTime(2024, 10, 27, None, 8, 30, 0, 0, None, None)
    assert m.set(8, "0-0:1.0.0", 2, local.to_bytes()) == DataAccessResult.SUCCESS
    assert m.meter_time() == utc(2024, 10, 27, 7, 30).timestamp()


def test_deviation_not_specified():
    m = madrid(deviation_unspecified=True)
    rows = m.expected_profile_rows(LOAD, utc(2024, 10, 27, 0, 45), utc(2024, 10, 27, 1, 0))
    assert [r.time for r in rows] == [dt.datetime(2024, 10, 27, 2, 45), dt.datetime(2024, 10, 27, 2)]
    assert [r.stamp[9:12] for r in rows] == [b"\x80\x00\x80", b"\x80\x00\x00"]
    assert read(m, LOAD, by_range(rows[0].stamp, rows[-1].stamp)) == as_wire(rows)
    clock = m.get(8, "0-0:1.0.0", 2).value
    assert clock[9:11] == b"\x80\x00" and clock[4] == 7  # 07:00 local
    # Naive bounds for expected rows are local wall time too.
    assert m.expected_profile_rows(LOAD, dt.datetime(2024, 10, 27, 6, 45)) == \
        m.expected_profile_rows(LOAD, utc(2024, 10, 27, 5, 45))


def test_clock_jump_back_gives_later_rows_earlier_stamps():
    clock = Clock(utc(2024, 3, 1, 12, 5).timestamp())
    m = MeterModel(2, clock=clock)
    m.jump_clock(-3600)
    assert m.meter_time() == clock.t - 3600
    clock.t += 2 * 3600  # two hours of rows captured on the set-back clock
    rows = m.expected_profile_rows(LOAD)
    tail = [r.time for r in rows[-10:]]
    assert tail[:2] == [utc(2024, 3, 1, 11, 45), utc(2024, 3, 1, 12, 0)]  # before the jump
    assert tail[2:] == [utc(2024, 3, 1, 11, 15) + dt.timedelta(minutes=15 * k) for k in range(8)]
    assert read(m, LOAD)[-10:] == as_wire(rows[-10:])
    # A range read returns every row whose stamp is inside, wherever it sits in the buffer.
    span = m.expected_profile_rows(LOAD, utc(2024, 3, 1, 11, 45), utc(2024, 3, 1, 12, 0))
    assert [r.time for r in span] == [tail[0], tail[1], tail[0], tail[1]]
    assert [r.entry for r in span] == [951, 952, 955, 956]
    assert read(m, LOAD, by_range(cosem(span[0].time), cosem(span[-1].time))) == as_wire(span)


@pytest.mark.parametrize("obis", [LOAD, BILLING, EVENTS])
def test_far_bounds_in_a_local_time_meter(obis):
    m = madrid()
    everything = as_wire(m.expected_profile_rows(obis))
    year_1 = CosemDateTime(1, 1, 1, None, 0, 0, 0, 0, 0, 0).to_bytes()
    year_9999 = CosemDateTime(9999, 12, 31, None, 23, 59, 59, 99, 0, 0).to_bytes()
    assert read(m, obis, by_range(year_1, year_9999)) == everything
    assert read(m, obis, by_range(year_1, year_1)) == []
    assert read(m, obis, by_range(year_9999, year_9999)) == []


def test_unknown_time_zone_is_refused():
    with pytest.raises(LocalProtocolError, match="time_zone 'Mars/Olympus'"):
        MeterOptions(time_zone="Mars/Olympus")
    with pytest.raises(LocalProtocolError, match="clock_status_every"):
        MeterOptions(clock_status_every=-1)
