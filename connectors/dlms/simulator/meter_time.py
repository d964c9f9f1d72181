"""How a simulated meter writes and reads its date-times (COSEM date-time, 12 octets).

A meter lives in one time zone (``MeterOptions.time_zone``; "" = UTC, the default):

* its stamps carry local wall time, the deviation in the Blue Book sign (minutes of local time
  to UTC: CET -60, CEST -120, as :mod:`tb_dlms.protocol.cosem_datetime`) and the clock status,
  with bit 0x80 (daylight saving active) while summer time runs. Around the October change the
  local hour 02:00..02:59 shows twice: first with deviation -120 and bit 0x80, then with -60 and
  no 0x80 bit;
* with ``deviation_unspecified`` the deviation is 0x8000 ("not specified"); the wall time and the
  DST bit are still written, so the repeated hour can only be told apart by that bit;
* a date-time it receives (a range bound, a clock SET) with a deviation is an instant; one
  without is the meter's local wall time, the repeated hour read as its summer occurrence unless
  the status says DST is off (status present and bit 0x80 clear).
"""

from __future__ import annotations

import datetime as _dt
import struct
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..protocol.cosem_datetime import DEVIATION_UNSPECIFIED, ClockStatus, CosemDateTime
from ..protocol.errors import DlmsError, LocalProtocolError
from .values import EPOCH

__all__ = ["MeterZone", "meter_zone"]

_UTC = _dt.timezone.utc
_EPOCH_DT = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
_FIRST_DAY = _dt.date(2020, 1, 1)  # day 0 of the daily profiles (EPOCH's date)
_DATETIME = struct.Struct(">HBBBBBBBhB")
_DST = int(ClockStatus.DAYLIGHT_SAVING_ACTIVE)


class MeterZone:
    """One meter's way of stamping time (shared by every meter with the same options)."""

    def __init__(self, name: str = "", deviation_unspecified: bool = False) -> None:
        self.name = name
        self.deviation_unspecified = deviation_unspecified
        if name:
            try:
                self.tz: _dt.tzinfo = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise LocalProtocolError(f"time_zone {name!r} is not a known IANA zone") from None
        else:
            self.tz = _UTC
        self._plain_utc = not name and not deviation_unspecified

    def local(self, unix: float) -> _dt.datetime:
        """The meter's aware local date-time at ``unix`` (rounded to the microsecond)."""
        return (_EPOCH_DT + _dt.timedelta(seconds=unix)).astimezone(self.tz)

    def stamp(self, unix: float, status: int = 0) -> bytes:
        """COSEM date-time of ``unix`` as this meter writes it, with ``status`` bits added."""
        if self._plain_utc:  # the common case, kept as fast as the first simulator's stamps
            d = _EPOCH_DT + _dt.timedelta(seconds=unix)
            return _DATETIME.pack(d.year, d.month, d.day, d.isoweekday(), d.hour, d.minute,
                                  d.second, d.microsecond // 10000, 0, status)
        d = self.local(unix)
        offset = d.utcoffset() or _dt.timedelta(0)
        if d.dst():
            status |= _DST
        deviation = DEVIATION_UNSPECIFIED if self.deviation_unspecified else -(
            offset // _dt.timedelta(minutes=1))
        return _DATETIME.pack(d.year, d.month, d.day, d.isoweekday(), d.hour, d.minute,
                              d.second, d.microsecond // 10000, deviation, status)

    def client_view(self, unix: float) -> _dt.datetime:
        """What a client decoding the stamp of ``unix`` gets from
        ``CosemDateTime.to_datetime()``: aware with the written deviation, naive local wall time
        when the deviation is not specified."""
        d = self.local(unix)
        if self.deviation_unspecified:
            return d.replace(tzinfo=None)
        return d.astimezone(_dt.timezone(d.utcoffset() or _dt.timedelta(0)))

    def instant(self, value: CosemDateTime) -> float | None:
        """Unix time of a received date-time; None when it has wildcards (an open bound)."""
        try:
            d = value.to_datetime()
        except DlmsError:
            return None
        if d.tzinfo is None:
            st = value.clock_status
            fold = 1 if st is not None and not st & _DST else 0  # repeated hour: which one
            d = d.replace(tzinfo=self.tz, fold=fold)
        return d.timestamp()

    def standard_deviation(self, unix: float) -> int:
        """The clock's time_zone attribute in the year of ``unix``: deviation of local standard
        time (Blue Book sign: CET -60)."""
        year = self.local(unix).year
        offsets = [
            _dt.datetime(year, m, 1, tzinfo=self.tz).utcoffset() or _dt.timedelta(0)
            for m in (1, 7)
        ]
        return -(min(offsets) // _dt.timedelta(minutes=1))

    def has_dst(self, unix: float) -> bool:
        """daylight_savings_enabled: does the zone change to summer time in that year?"""
        year = self.local(unix).year
        return any(_dt.datetime(year, m, 1, tzinfo=self.tz).dst() for m in (1, 7))

    def status(self, unix: float) -> int:
        """The clock's status attribute: 0x80 while summer time runs, else 0 (OK)."""
        return _DST if self.local(unix).dst() else 0

    # -- days in local time: the daily billing profile captures at local midnight ------------
    def day_start_tau(self, day: int) -> int:
        """Seconds since EPOCH of local midnight starting day ``day`` (day 0 = 2020-01-01)."""
        d = _FIRST_DAY + _dt.timedelta(days=day)
        midnight = _dt.datetime(d.year, d.month, d.day, tzinfo=self.tz)
        return int(midnight.timestamp()) - EPOCH

    def day_of_tau(self, tau: int) -> int:
        """The local day number (as in :meth:`day_start_tau`) that contains ``tau``."""
        return (self.local(tau + EPOCH).date() - _FIRST_DAY).days


@lru_cache(maxsize=64)
def meter_zone(name: str = "", deviation_unspecified: bool = False) -> MeterZone:
    """The shared MeterZone of these options (1,000 meters need not build 1,000)."""
    return MeterZone(name, deviation_unspecified)
