"""COSEM date, time and date-time: layout, wildcards, specials, deviation sign, clock status."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.cosem_datetime import (
    DAY_LAST,
    DAY_SECOND_LAST,
    MONTH_DST_BEGIN,
    MONTH_DST_END,
    ClockStatus,
    CosemDate,
    CosemDateTime,
    CosemTime,
)
from tb_dlms.protocol.errors import DecodeError, LocalProtocolError

# Field layout per the Blue Book (date-time = year u16, month, day, weekday, hour, minute,
# second, hundredths, deviation i16, clock_status): 2024-03-15 (a Friday = 5) 10:20:30.12,
# CET (UTC+01:00, deviation -60 = 0xFFC4 in the Blue Book sign), status 0x00.
CET_BYTES = bytes.fromhex("07e8030f05" "0a141e0c" "ffc4" "00")
CET_VALUE = CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 12, -60, 0)


def test_decode_and_encode_fixed_vector() -> None:
    assert CosemDateTime.from_bytes(CET_BYTES) == CET_VALUE
    assert CET_VALUE.to_bytes() == CET_BYTES
    assert CET_VALUE.date == CosemDate(2024, 3, 15, 5)
    assert CET_VALUE.time == CosemTime(10, 20, 30, 12)


def test_all_wildcards() -> None:
    raw = bytes.fromhex("ffffffffff" "ffffffff" "8000" "ff")
    value = CosemDateTime.from_bytes(raw)
    assert value == CosemDateTime()
    assert all(getattr(value, f) is None for f in value.__dataclass_fields__)
    assert value.to_bytes() == raw
    assert CosemDate.from_bytes(raw[:5]) == CosemDate()
    assert CosemTime.from_bytes(raw[5:9]) == CosemTime()
    assert value.isoformat() == "****-**-**T**:**:**"


def test_specials_kept_as_ints() -> None:
    # Blue Book: month 0xFD/0xFE = DST end/begin, day 0xFD/0xFE = 2nd last/last day of month.
    d = CosemDate.from_bytes(bytes.fromhex("ffff" "fe" "fe" "07"))
    assert d.month == MONTH_DST_BEGIN == 0xFE and d.day == DAY_LAST == 0xFE and d.year is None
    d2 = CosemDate.from_bytes(bytes.fromhex("ffff" "fd" "fd" "ff"))
    assert d2.month == MONTH_DST_END and d2.day == DAY_SECOND_LAST and d2.weekday is None
    assert d2.to_bytes() == bytes.fromhex("fffffdfdff")
    assert d.isoformat() == "****-FE-FE"
    with pytest.raises(LocalProtocolError):
        d.to_date()
    with pytest.raises(LocalProtocolError):
        CosemDateTime(2024, MONTH_DST_END, 1, None, 2, 0, 0, 0).to_datetime()


@pytest.mark.parametrize(
    "raw",
    [
        "07e80d0f050a141e0cffc400",  # month 13
        "07e8000f050a141e0cffc400",  # month 0
        "07e80320050a141e0cffc400",  # day 32
        "07e8030f080a141e0cffc400",  # weekday 8
        "07e8030f05181e1e0cffc400",  # hour 24
        "07e8030f050a3c1e0cffc400",  # minute 60
        "07e8030f050a143c0cffc400",  # second 60
        "07e8030f050a141e64ffc400",  # hundredths 100
        "07e8030f050a141e0c7fff00",  # deviation +32767
        "07e8030f050a141e0cffc4ff"[:-2],  # 11 bytes
        "07e8030f050a141e0cffc40000",  # 13 bytes
    ],
)
def test_date_time_rejects_out_of_range(raw: str) -> None:
    with pytest.raises(DecodeError):
        CosemDateTime.from_bytes(bytes.fromhex(raw))


def test_date_and_time_reject() -> None:
    with pytest.raises(DecodeError):
        CosemDate.from_bytes(bytes.fromhex("07e80d0f05"))
    with pytest.raises(DecodeError):
        CosemDate.from_bytes(bytes(4))
    with pytest.raises(DecodeError):
        CosemTime.from_bytes(bytes.fromhex("18000000"))
    with pytest.raises(DecodeError):
        CosemTime.from_bytes(bytes(5))
    with pytest.raises(LocalProtocolError):
        CosemTime(12, 60)
    with pytest.raises(LocalProtocolError):
        CosemDateTime(2024, 1, 1, clock_status=0x1FF)


def test_from_buffer_reports_offset() -> None:
    buf = b"\x00\x00\x00" + bytes.fromhex("07e80d0f050a141e0cffc400")
    with pytest.raises(DecodeError) as info:
        CosemDateTime.from_buffer(buf, 3)
    assert info.value.offset == 3
    assert CosemDateTime.from_buffer(b"\x00" + CET_BYTES, 1) == CET_VALUE


def test_deviation_blue_book_sign_by_default() -> None:
    aware = CET_VALUE.to_datetime()
    assert aware.utcoffset() == dt.timedelta(hours=1)  # deviation -60 = UTC+01:00
    assert aware == dt.datetime(2024, 3, 15, 9, 20, 30, 120000, tzinfo=dt.timezone.utc)
    assert CET_VALUE.isoformat() == "2024-03-15T10:20:30.120+01:00"
    assert dt.datetime.fromisoformat(CET_VALUE.isoformat()) == aware
    back = CosemDateTime.from_datetime(aware)
    assert back == CET_VALUE


def test_deviation_sign_quirk_flips() -> None:
    # A meter that sends CET as +60 (the Gurux useUtc2NormalTime style).
    quirky = CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 12, 60, 0)
    aware = quirky.to_datetime(deviation_sign=1)
    assert aware.utcoffset() == dt.timedelta(hours=1)
    assert quirky.isoformat(deviation_sign=1).endswith("+01:00")
    assert CosemDateTime.from_datetime(aware, deviation_sign=1) == quirky
    with pytest.raises(LocalProtocolError):
        quirky.to_datetime(deviation_sign=2)


def test_unknown_deviation_gives_naive_datetime() -> None:
    value = CosemDateTime(2024, 3, 15, 5, 10, 20, 30, None, None, None)
    naive = value.to_datetime()
    assert naive.tzinfo is None and naive == dt.datetime(2024, 3, 15, 10, 20, 30)
    assert value.isoformat() == "2024-03-15T10:20:30"
    assert CosemDateTime.from_datetime(naive).deviation is None


def test_wildcard_cannot_become_datetime() -> None:
    with pytest.raises(LocalProtocolError, match="wildcard"):
        CosemDateTime(None, 3, 15, None, 10, 0, 0).to_datetime()
    with pytest.raises(LocalProtocolError):
        CosemDateTime(2023, 2, 30, None, 10, 0, 0).to_datetime()  # no 30 February
    with pytest.raises(LocalProtocolError):
        CosemTime(None, 0).to_time()
    assert CosemTime(23, 59, 59, 99).to_time() == dt.time(23, 59, 59, 990000)
    assert CosemDate(2024, 2, 29).to_date() == dt.date(2024, 2, 29)


def test_clock_status_flags_both_ways() -> None:
    raw = bytes.fromhex("07e8070105" "0c000000" "ff88" "81")  # summer time CEST, DST bit set
    value = CosemDateTime.from_bytes(raw)
    assert value.deviation == -120
    assert value.clock_status == ClockStatus.DAYLIGHT_SAVING_ACTIVE | ClockStatus.INVALID_VALUE
    assert isinstance(value.clock_status, ClockStatus)
    assert value.to_bytes() == raw
    reserved = CosemDateTime.from_bytes(raw[:-1] + b"\x10")  # reserved bit 4 is kept
    assert int(reserved.clock_status or 0) == 0x10 and reserved.to_bytes()[-1] == 0x10
    assert ClockStatus.DOUBTFUL_VALUE == 0x02 and ClockStatus.DIFFERENT_CLOCK_BASE == 0x04
    assert ClockStatus.INVALID_CLOCK_STATUS == 0x08


def test_from_datetime_sets_dst_bit_from_tzinfo() -> None:
    class Cest(dt.tzinfo):
        def utcoffset(self, d: object) -> dt.timedelta:
            return dt.timedelta(hours=2)

        def dst(self, d: object) -> dt.timedelta:
            return dt.timedelta(hours=1)

    value = CosemDateTime.from_datetime(dt.datetime(2024, 7, 1, 12, tzinfo=Cest()))
    assert value.deviation == -120 and value.weekday == 1
    assert value.clock_status == ClockStatus.DAYLIGHT_SAVING_ACTIVE
    with pytest.raises(LocalProtocolError):
        CosemDateTime.from_datetime(
            dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=30)))
        )


def _opt(strategy: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), strategy)


date_times = st.builds(
    CosemDateTime,
    _opt(st.integers(0, 0xFFFE)),
    _opt(st.one_of(st.integers(1, 12), st.sampled_from([0xFD, 0xFE]))),
    _opt(st.one_of(st.integers(1, 31), st.sampled_from([0xFD, 0xFE]))),
    _opt(st.integers(1, 7)),
    _opt(st.integers(0, 23)),
    _opt(st.integers(0, 59)),
    _opt(st.integers(0, 59)),
    _opt(st.integers(0, 99)),
    _opt(st.integers(-720, 720)),
    _opt(st.integers(0, 0xFE)),
)


@settings(max_examples=200, deadline=None)
@given(date_times)
def test_round_trip_bytes(value: CosemDateTime) -> None:
    raw = value.to_bytes()
    assert len(raw) == 12
    assert CosemDateTime.from_bytes(raw) == value
    assert CosemDate.from_bytes(raw[:5]) == value.date
    assert CosemTime.from_bytes(raw[5:9]) == value.time


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2200, 1, 1)),
    st.integers(-14 * 4, 14 * 4),
    st.sampled_from([-1, 1]),
)
def test_round_trip_python_datetime(naive: dt.datetime, quarters: int, sign: int) -> None:
    aware = naive.replace(
        microsecond=naive.microsecond // 10000 * 10000,
        tzinfo=dt.timezone(dt.timedelta(minutes=15 * quarters)),
    )
    value = CosemDateTime.from_datetime(aware, deviation_sign=sign)
    assert value.deviation == sign * 15 * quarters
    assert value.to_datetime(deviation_sign=sign) == aware
    assert dt.datetime.fromisoformat(value.isoformat(deviation_sign=sign)) == aware


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=12, max_size=12))
def test_random_bytes_only_decode_errors(raw: bytes) -> None:
    try:
        value = CosemDateTime.from_bytes(raw)
    except DecodeError:
        return
    assert value.to_bytes() == raw
