"""COSEM date, time and date-time (Blue Book, IEC 62056-6-2, "date-time" octet-string(12)).

Layout (big-endian): year u16, month u8, day u8, weekday u8 | hour, minute, second, hundredths u8 |
deviation i16 (minutes), clock_status u8. ``date`` is the first 5 bytes, ``time`` the 4 time bytes.

Wildcards ("not specified": 0xFFFF year, 0xFF other bytes, 0x8000 deviation, 0xFF status) are
``None`` here. Special values are kept as ints: month 0xFD/0xFE = end/begin of daylight saving,
day 0xFD/0xFE = second last/last day of the month (used in schedules and DST settings).

Deviation sign. The Blue Book defines deviation as minutes "of local time to UTC", i.e.
``UTC = local + deviation`` so CET (UTC+01:00) is -60. That is our default
(``deviation_sign=-1``: utcoffset = -deviation). Some meters send the opposite sign (CET = +60);
pass ``deviation_sign=+1`` for those (a per-meter quirk setting). Gurux follows the Blue Book
sign by default too and flips it with its ``useUtc2NormalTime`` setting (checked in
tests/interop/test_gurux_axdr.py).
"""

from __future__ import annotations

import datetime as _dt
import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import Optional, Union

from .errors import DecodeError, LocalProtocolError

__all__ = [
    "utc_of",
    "DAY_LAST",
    "DAY_SECOND_LAST",
    "DEVIATION_UNSPECIFIED",
    "MONTH_DST_BEGIN",
    "MONTH_DST_END",
    "ClockStatus",
    "stamp_datetime",
    "stamp_isoformat",
    "CosemDate",
    "CosemDateTime",
    "CosemTime",
]

MONTH_DST_END = 0xFD
MONTH_DST_BEGIN = 0xFE
DAY_SECOND_LAST = 0xFD
DAY_LAST = 0xFE
DEVIATION_UNSPECIFIED = -0x8000  # 0x8000 read as a signed 16-bit integer
_SPECIAL = (0xFD, 0xFE)

_DATE = struct.Struct(">HBBB")
_TIME = struct.Struct(">BBBB")
_DATETIME = struct.Struct(">HBBBBBBBhB")


class ClockStatus(IntFlag):
    """clock_status bits (Blue Book, class Clock). Bits 4..6 are reserved and kept as they come."""

    OK = 0x00
    INVALID_VALUE = 0x01
    DOUBTFUL_VALUE = 0x02
    DIFFERENT_CLOCK_BASE = 0x04
    INVALID_CLOCK_STATUS = 0x08
    DAYLIGHT_SAVING_ACTIVE = 0x80


def _bad(name: str, value: object) -> str:
    return f"COSEM {name} out of range: {value!r}"


def _check_date(year: Optional[int], month: Optional[int], day: Optional[int],
                weekday: Optional[int]) -> Optional[str]:
    """Return a message naming the first bad field, or None. Shared by the constructors."""
    if year is not None and not (type(year) is int and 0 <= year <= 0xFFFE):
        return _bad("year", year)
    if month is not None and not (type(month) is int and (1 <= month <= 12 or month in _SPECIAL)):
        return _bad("month", month)
    if day is not None and not (type(day) is int and (1 <= day <= 31 or day in _SPECIAL)):
        return _bad("day", day)
    if weekday is not None and not (type(weekday) is int and 1 <= weekday <= 7):
        return _bad("weekday", weekday)
    return None


def _check_time(hour: Optional[int], minute: Optional[int], second: Optional[int],
                hundredths: Optional[int]) -> Optional[str]:
    for name, v, hi in (("hour", hour, 23), ("minute", minute, 59), ("second", second, 59),
                        ("hundredths", hundredths, 99)):
        if v is not None and not (type(v) is int and 0 <= v <= hi):
            return _bad(name, v)
    return None


def _w(v: Optional[int], wild: int) -> int:
    return wild if v is None else v


def _n(v: int, wild: int) -> Optional[int]:
    return None if v == wild else v


def _fmt(v: Optional[int], width: int) -> str:
    """One field for isoformat(): '*' for a wildcard, hex for the 0xFD/0xFE specials."""
    if v is None:
        return "*" * width
    if width == 2 and v > 99:
        return f"{v:02X}"
    return f"{v:0{width}d}"


def _fmt_time(hour: Optional[int], minute: Optional[int], second: Optional[int],
              hundredths: Optional[int]) -> str:
    text = f"{_fmt(hour, 2)}:{_fmt(minute, 2)}:{_fmt(second, 2)}"
    if hundredths:  # 3 digits so that datetime.fromisoformat reads it on Python 3.9 too
        text += f".{hundredths * 10:03d}"
    return text


def _offset(deviation: int, deviation_sign: int) -> _dt.timezone:
    return _zone(deviation_sign * deviation)


def _fmt_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def _check_sign(deviation_sign: int) -> None:
    if deviation_sign not in (-1, 1):
        raise LocalProtocolError(f"deviation_sign must be -1 or +1, got {deviation_sign!r}")


@dataclass(frozen=True)
class CosemDate:
    """COSEM date (5 bytes). None = not specified."""

    year: Optional[int] = None
    month: Optional[int] = None
    day: Optional[int] = None
    weekday: Optional[int] = None

    def __post_init__(self) -> None:
        msg = _check_date(self.year, self.month, self.day, self.weekday)
        if msg:
            raise LocalProtocolError(msg)

    @classmethod
    def from_bytes(cls, b: Union[bytes, bytearray, memoryview]) -> CosemDate:
        if len(b) != 5:
            raise DecodeError(f"COSEM date needs 5 bytes, got {len(b)}", 0)
        return cls.from_buffer(b, 0)

    @classmethod
    def from_buffer(cls, buf: Union[bytes, bytearray, memoryview], offset: int) -> CosemDate:
        """Decode the 5 bytes at ``offset`` of a larger buffer (errors carry that offset)."""
        if offset + 5 > len(buf):
            raise DecodeError("truncated date", offset)
        y, mo, d, wd = _DATE.unpack_from(buf, offset)
        try:
            return cls(_n(y, 0xFFFF), _n(mo, 0xFF), _n(d, 0xFF), _n(wd, 0xFF))
        except LocalProtocolError as exc:
            raise DecodeError(str(exc), offset) from None

    def to_bytes(self) -> bytes:
        return _DATE.pack(_w(self.year, 0xFFFF), _w(self.month, 0xFF), _w(self.day, 0xFF),
                          _w(self.weekday, 0xFF))

    @classmethod
    def from_date(cls, d: _dt.date) -> CosemDate:
        return cls(d.year, d.month, d.day, d.isoweekday())

    def to_date(self) -> _dt.date:
        if self.year is None or self.month is None or self.day is None:
            raise LocalProtocolError(f"cannot make a date from {self.isoformat()} (wildcard)")
        if self.month > 12 or self.day > 31:
            raise LocalProtocolError(f"cannot make a date from {self.isoformat()} (special value)")
        try:
            return _dt.date(self.year, self.month, self.day)
        except ValueError as exc:
            raise LocalProtocolError(f"invalid date {self.isoformat()}: {exc}") from None

    def isoformat(self) -> str:
        return f"{_fmt(self.year, 4)}-{_fmt(self.month, 2)}-{_fmt(self.day, 2)}"


@dataclass(frozen=True)
class CosemTime:
    """COSEM time (4 bytes). None = not specified."""

    hour: Optional[int] = None
    minute: Optional[int] = None
    second: Optional[int] = None
    hundredths: Optional[int] = None

    def __post_init__(self) -> None:
        msg = _check_time(self.hour, self.minute, self.second, self.hundredths)
        if msg:
            raise LocalProtocolError(msg)

    @classmethod
    def from_bytes(cls, b: Union[bytes, bytearray, memoryview]) -> CosemTime:
        if len(b) != 4:
            raise DecodeError(f"COSEM time needs 4 bytes, got {len(b)}", 0)
        return cls.from_buffer(b, 0)

    @classmethod
    def from_buffer(cls, buf: Union[bytes, bytearray, memoryview], offset: int) -> CosemTime:
        """Decode the 4 bytes at ``offset`` of a larger buffer (errors carry that offset)."""
        if offset + 4 > len(buf):
            raise DecodeError("truncated time", offset)
        h, mi, s, hs = _TIME.unpack_from(buf, offset)
        try:
            return cls(_n(h, 0xFF), _n(mi, 0xFF), _n(s, 0xFF), _n(hs, 0xFF))
        except LocalProtocolError as exc:
            raise DecodeError(str(exc), offset) from None

    def to_bytes(self) -> bytes:
        return _TIME.pack(_w(self.hour, 0xFF), _w(self.minute, 0xFF), _w(self.second, 0xFF),
                          _w(self.hundredths, 0xFF))

    @classmethod
    def from_time(cls, t: _dt.time) -> CosemTime:
        return cls(t.hour, t.minute, t.second, t.microsecond // 10000)

    def to_time(self) -> _dt.time:
        if self.hour is None or self.minute is None or self.second is None:
            raise LocalProtocolError(f"cannot make a time from {self.isoformat()} (wildcard)")
        return _dt.time(self.hour, self.minute, self.second, (self.hundredths or 0) * 10000)

    def isoformat(self) -> str:
        return _fmt_time(self.hour, self.minute, self.second, self.hundredths)


@dataclass(frozen=True)
class CosemDateTime:
    """COSEM date-time (12 bytes). None = not specified (deviation None = 0x8000)."""

    year: Optional[int] = None
    month: Optional[int] = None
    day: Optional[int] = None
    weekday: Optional[int] = None
    hour: Optional[int] = None
    minute: Optional[int] = None
    second: Optional[int] = None
    hundredths: Optional[int] = None
    deviation: Optional[int] = None
    clock_status: Optional[int] = None  # stored as a ClockStatus flag

    def __post_init__(self) -> None:
        msg = (_check_date(self.year, self.month, self.day, self.weekday)
               or _check_time(self.hour, self.minute, self.second, self.hundredths))
        if msg:
            raise LocalProtocolError(msg)
        dev = self.deviation
        # Blue Book range is -720..720; real zones reach UTC+14, so allow +-840.
        if dev is not None and not (type(dev) is int and -840 <= dev <= 840):
            raise LocalProtocolError(_bad("deviation", dev))
        st = self.clock_status
        if st is not None:
            if not (isinstance(st, int) and not isinstance(st, bool) and 0 <= st <= 0xFE):
                raise LocalProtocolError(_bad("clock_status", st))
            if type(st) is not ClockStatus:
                object.__setattr__(self, "clock_status", ClockStatus(st))

    @classmethod
    def from_bytes(cls, b: Union[bytes, bytearray, memoryview]) -> CosemDateTime:
        if len(b) != 12:
            raise DecodeError(f"COSEM date-time needs 12 bytes, got {len(b)}", 0)
        return cls.from_buffer(b, 0)

    @classmethod
    def from_buffer(cls, buf: Union[bytes, bytearray, memoryview], offset: int) -> CosemDateTime:
        """Decode the 12 bytes at ``offset`` of a larger buffer (errors carry that offset)."""
        if offset + 12 > len(buf):
            raise DecodeError("truncated date-time", offset)
        y, mo, d, wd, h, mi, s, hs, dev, st = _DATETIME.unpack_from(buf, offset)
        try:
            return cls(
                None if y == 0xFFFF else y,
                None if mo == 0xFF else mo,
                None if d == 0xFF else d,
                None if wd == 0xFF else wd,
                None if h == 0xFF else h,
                None if mi == 0xFF else mi,
                None if s == 0xFF else s,
                None if hs == 0xFF else hs,
                None if dev == DEVIATION_UNSPECIFIED else dev,
                None if st == 0xFF else st,
            )
        except LocalProtocolError as exc:
            raise DecodeError(str(exc), offset) from None

    def to_bytes(self) -> bytes:
        return _DATETIME.pack(
            _w(self.year, 0xFFFF), _w(self.month, 0xFF), _w(self.day, 0xFF),
            _w(self.weekday, 0xFF), _w(self.hour, 0xFF), _w(self.minute, 0xFF),
            _w(self.second, 0xFF), _w(self.hundredths, 0xFF),
            _w(self.deviation, DEVIATION_UNSPECIFIED), _w(self.clock_status, 0xFF),
        )

    @property
    def date(self) -> CosemDate:
        return CosemDate(self.year, self.month, self.day, self.weekday)

    @property
    def time(self) -> CosemTime:
        return CosemTime(self.hour, self.minute, self.second, self.hundredths)

    @classmethod
    def from_datetime(cls, dt: _dt.datetime, clock_status: int = 0, *,
                      deviation_sign: int = -1) -> CosemDateTime:
        """From a Python datetime; an aware one gives the deviation (and the DST bit if dst())."""
        _check_sign(deviation_sign)
        deviation = None
        offset = dt.utcoffset()
        if offset is not None:
            minutes, rest = divmod(offset, _dt.timedelta(minutes=1))
            if rest:
                raise LocalProtocolError(f"UTC offset {offset} is not a whole number of minutes")
            deviation = deviation_sign * minutes
            if dt.dst():
                clock_status |= ClockStatus.DAYLIGHT_SAVING_ACTIVE
        return cls(dt.year, dt.month, dt.day, dt.isoweekday(), dt.hour, dt.minute, dt.second,
                   dt.microsecond // 10000, deviation, clock_status)

    def to_datetime(self, *, deviation_sign: int = -1) -> _dt.datetime:
        """A Python datetime, aware when the deviation is known. Wildcards cannot be converted."""
        _check_sign(deviation_sign)
        if None in (self.year, self.month, self.day, self.hour, self.minute, self.second):
            raise LocalProtocolError(f"cannot make a datetime from {self.isoformat()} (wildcard)")
        if self.month > 12 or self.day > 31:  # type: ignore[operator]
            raise LocalProtocolError(
                f"cannot make a datetime from {self.isoformat()} (special value)")
        tz = None if self.deviation is None else _offset(self.deviation, deviation_sign)
        try:
            return _dt.datetime(self.year, self.month, self.day, self.hour,  # type: ignore[arg-type]
                                self.minute, self.second,  # type: ignore[arg-type]
                                (self.hundredths or 0) * 10000, tzinfo=tz)
        except ValueError as exc:
            raise LocalProtocolError(f"invalid date-time {self.isoformat()}: {exc}") from None

    def isoformat(self, *, deviation_sign: int = -1) -> str:
        """ISO-8601 text; wildcards show as '*', 0xFD/0xFE specials as 'FD'/'FE'."""
        _check_sign(deviation_sign)
        text = (f"{_fmt(self.year, 4)}-{_fmt(self.month, 2)}-{_fmt(self.day, 2)}T"
                f"{_fmt_time(self.hour, self.minute, self.second, self.hundredths)}")
        if self.deviation is not None:
            text += _fmt_offset(deviation_sign * self.deviation)
        return text


# -- the common case, fast: a fully specified stamp (profile rows carry one per row) ------------
def _plain_fields(b: bytes) -> tuple[int, ...] | None:
    """The fields of a 12-byte date-time with nothing unspecified or special and every field in
    range, or None (the caller takes the general path, which also says what is wrong)."""
    y, mo, d, wd, h, mi, s, hs, dev, st = _DATETIME.unpack(b)
    if (y == 0xFFFF or not 1 <= mo <= 12 or not 1 <= d <= 31 or not (1 <= wd <= 7 or wd == 0xFF)
            or h > 23 or mi > 59 or s > 59 or (hs > 99 and hs != 0xFF)
            or (dev != DEVIATION_UNSPECIFIED and not -840 <= dev <= 840) or st == 0xFF
            or hs == 0xFF):
        return None
    return y, mo, d, h, mi, s, hs, dev, st


def stamp_isoformat(b: bytes, deviation_sign: int = -1) -> Optional[str]:
    """``CosemDateTime.from_bytes(b).isoformat(...)`` for the common case, or None."""
    f = _plain_fields(b) if len(b) == 12 else None
    if f is None:
        return None
    y, mo, d, h, mi, s, hs, dev, _ = f
    text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
    if hs:
        text += f".{hs * 10:03d}"
    if dev != DEVIATION_UNSPECIFIED:
        text += _fmt_offset(deviation_sign * dev)
    return text


def utc_of(stamp: CosemDateTime, zone: _dt.tzinfo, deviation_sign: int = -1) -> _dt.datetime:
    """``stamp`` as an aware UTC datetime: by its deviation when it has one, else as local time
    of ``zone``, the clock status's daylight-saving bit choosing the hour a DST change repeats.
    LocalProtocolError for wildcards and special values."""
    moment = stamp.to_datetime(deviation_sign=deviation_sign)
    if moment.tzinfo is None:
        summer = bool((stamp.clock_status or 0) & ClockStatus.DAYLIGHT_SAVING_ACTIVE)
        moment = moment.replace(tzinfo=zone, fold=0 if summer else 1)
    return moment.astimezone(_dt.timezone.utc)


def stamp_datetime(b: bytes, deviation_sign: int = -1) -> Optional[tuple[_dt.datetime, int]]:
    """(aware datetime, clock status) of a fully specified stamp WITH a deviation, or None
    (wildcards, specials, no deviation: the general path)."""
    f = _plain_fields(b) if len(b) == 12 else None
    if f is None or f[7] == DEVIATION_UNSPECIFIED:
        return None
    y, mo, d, h, mi, s, hs, dev, st = f
    try:
        moment = _dt.datetime(y, mo, d, h, mi, s, hs * 10000, tzinfo=_zone(deviation_sign * dev))
    except ValueError:  # 31 February and the like: the general path words it
        return None
    return moment, st


_ZONES: dict[int, _dt.timezone] = {}


def _zone(minutes: int) -> _dt.timezone:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = _ZONES[minutes] = _dt.timezone(_dt.timedelta(minutes=minutes))
    return zone
