"""Client-side Profile generic: descriptors and rows with the meter's own time."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from tb_dlms.protocol.apdu.common import decode_access
from tb_dlms.protocol.cosem_datetime import ClockStatus, CosemDateTime
from tb_dlms.protocol.errors import RemoteProtocolError
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.profile import (
    CLOCK_COLUMN,
    CaptureColumn,
    ProfileDecoder,
    capture_columns,
    entry_access,
    range_access,
)
from tb_dlms.protocol.units import ScalerUnit, Scaling

UTC = dt.timezone.utc
MADRID = ZoneInfo("Europe/Madrid")
ENERGY = CaptureColumn(3, Obis.parse("1-0:1.8.0.255"), 2)
VOLTAGE = CaptureColumn(3, Obis.parse("1-0:32.7.0.255"), 2)


def stamp(local: dt.datetime, deviation: int | None, status: int = 0) -> bytes:
    c = CosemDateTime.from_datetime(local.replace(tzinfo=None), status)
    return CosemDateTime(c.year, c.month, c.day, c.weekday, c.hour, c.minute, c.second, 0,
                         deviation, status).to_bytes()


def test_capture_columns_from_the_session_raw_value() -> None:
    raw = [(8, b"\x00\x00\x01\x00\x00\xff", 2, 0), (3, bytes.fromhex("0100010800ff"), 2, 0)]
    assert capture_columns(raw) == (CLOCK_COLUMN, ENERGY)
    with pytest.raises(RemoteProtocolError, match=r"capture_objects\[0\]"):
        capture_columns([(8, b"\x00", 2)])


def test_range_descriptor_round_trips_with_the_bounds_in_the_meter_zone() -> None:
    start = dt.datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    access = range_access(start, start + dt.timedelta(hours=1), zone=MADRID)
    decoded, _ = decode_access(access.encode(), 0)
    assert decoded is not None and decoded.selector == 1
    restricting, low, high, selected = decoded.parameters.value
    assert [v.value for v in restricting.value][0] == 8
    low_dt = CosemDateTime.from_bytes(low.value)
    assert (low_dt.hour, low_dt.deviation) == (12, -120)  # 12:00 CEST is 10:00 UTC
    assert low_dt.clock_status & ClockStatus.DAYLIGHT_SAVING_ACTIVE
    assert selected.value == []


def test_entry_descriptor() -> None:
    decoded, _ = decode_access(entry_access(5, 9).encode(), 0)
    assert decoded is not None and decoded.selector == 2
    assert [v.value for v in decoded.parameters.value] == [5, 9, 1, 0]


def test_rows_scaled_and_stamped_in_utc() -> None:
    scaling = {1: Scaling.of(ScalerUnit(-1, 35)), 2: Scaling.of(ScalerUnit(0, 30))}
    decoder = ProfileDecoder((CLOCK_COLUMN, VOLTAGE, ENERGY), scalings=scaling)
    rows, problems = decoder.rows([
        (stamp(dt.datetime(2026, 1, 5, 12, 15), -60), 2301, 1000),  # 12:15 at UTC+1
    ])
    assert not problems
    (row,) = rows
    assert row.time == dt.datetime(2026, 1, 5, 11, 15, tzinfo=UTC)
    assert row.values == (230.1, 1000) and row.trusted


def test_the_repeated_hour_of_a_dst_change_is_told_apart_by_the_dst_bit() -> None:
    # 25 Oct 2026, Madrid: 02:30 happens twice (CEST, then CET); the meter gives no deviation.
    decoder = ProfileDecoder((CLOCK_COLUMN, ENERGY), zone=MADRID)
    local = dt.datetime(2026, 10, 25, 2, 30)
    rows, _ = decoder.rows([
        (stamp(local, None, ClockStatus.DAYLIGHT_SAVING_ACTIVE), 1),
        (stamp(local, None, 0), 2),
    ])
    assert [r.time for r in rows] == [dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
                                     dt.datetime(2026, 10, 25, 1, 30, tzinfo=UTC)]


def test_deviation_sign_of_meters_that_send_the_opposite() -> None:
    decoder = ProfileDecoder((CLOCK_COLUMN, ENERGY), deviation_sign=+1)
    rows, _ = decoder.rows([(stamp(dt.datetime(2026, 1, 5, 12, 0), 60), 1)])
    assert rows[0].time == dt.datetime(2026, 1, 5, 11, 0, tzinfo=UTC)


def test_a_compressed_profile_counts_null_clocks_from_the_previous_row() -> None:
    decoder = ProfileDecoder((CLOCK_COLUMN, ENERGY), capture_period=900)
    rows, problems = decoder.rows([
        (stamp(dt.datetime(2026, 1, 5, 12, 0), 0), 1), (None, 2), (None, 3),
    ])
    assert [r.time.minute for r in rows] == [0, 15, 30] and not problems


def test_rows_without_a_usable_time_are_reported_not_guessed() -> None:
    decoder = ProfileDecoder((CLOCK_COLUMN, ENERGY), capture_period=900)
    rows, problems = decoder.rows([(None, 1), (b"\x00" * 3, 2),
                                   (stamp(dt.datetime(2026, 1, 5, 12, 0), 0), 3), (None, 4)])
    assert [r.values for r in rows] == [(3,), (4,)]
    assert len(problems) == 2 and problems[0].startswith("row 0") and problems[1].startswith("row 1")


@pytest.mark.parametrize("status", [ClockStatus.INVALID_VALUE, ClockStatus.DOUBTFUL_VALUE])
def test_invalid_or_doubtful_rows_keep_their_status(status: ClockStatus) -> None:
    rows, _ = ProfileDecoder((CLOCK_COLUMN, ENERGY)).rows(
        [(stamp(dt.datetime(2026, 1, 5, 12, 0), 0, status), 1)])
    assert not rows[0].trusted and rows[0].status & status


def test_a_row_of_the_wrong_width_is_a_remote_error() -> None:
    with pytest.raises(RemoteProtocolError, match="row 0 has 1 values"):
        ProfileDecoder((CLOCK_COLUMN, ENERGY)).rows([(stamp(dt.datetime(2026, 1, 5), 0),)])
    with pytest.raises(RemoteProtocolError, match="no clock column"):
        ProfileDecoder((ENERGY,))
