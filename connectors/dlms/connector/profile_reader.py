"""One profile of one meter, read a bounded chunk at a time (see config/README.md, profiles).

``read_chunk(session, since_ms, now_ms)`` runs as an engine job (``PollingEngine.submit``): a
few GETs, then the meter's line is free again for live polling. The first call learns the
profile's columns, capture period and register scalers; later calls ask for the rows after
``since_ms`` (the last row delivered) by range of the clock column, at most ``maxRowsPerRead``
capture periods at a time. A meter that refuses range access is read by entry from then on.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..protocol.errors import DataAccessError, RemoteProtocolError
from ..protocol.event_codes import event_name
from ..protocol.profile import (
    CaptureColumn,
    ProfileDecoder,
    ProfileRow,
    capture_columns,
    entry_access,
    range_access,
)
from ..protocol.units import ScalerUnit, Scaling
from .profile_config import ProfileConfig

__all__ = ["Chunk", "ProfileReader", "local_zone"]

DAY_MS = 86_400_000
_MAX_ENTRY_READS = 64  # by entry, one job reads back at most this many chunks
_UTC = _dt.timezone.utc
_FLAGGED = 0x0F  # clock status bits worth a flag on the row (not the DST bit)


@dataclass
class Chunk:
    """What one read brought: rows newer than ``since`` in time order, as (epoch ms, values)."""

    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    read_to_ms: int = 0  # every row up to here has been seen (the next read starts after it)
    complete: bool = True  # caught up with now
    problems: list[str] = field(default_factory=list)
    checked: bool = False  # the meter's newest row was looked at (``newest_ms``)
    newest_ms: int | None = None  # its time; None after a check: the profile is empty


def _ms(moment: _dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _dt_of(ms: int) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(ms / 1000, _UTC)


class ProfileReader:
    def __init__(self, meter: str, profile: ProfileConfig, zone: _dt.tzinfo | None,
                 deviation_sign: int = -1, log: logging.Logger | None = None) -> None:
        self.meter = meter
        self.profile = profile
        self.zone = zone or local_zone()
        self.deviation_sign = deviation_sign
        self.log = log or logging.getLogger("tb_dlms.connector.profiles")
        self.decoder: ProfileDecoder | None = None
        self.keys: tuple[str | None, ...] = ()
        self.range_ok: bool | None = None  # None: not tried yet
        self.capture_period = 0
        self.event_index: int | None = None  # the event code column of an event log
        self.units: dict[str, str] = {}

    # -- learning the profile ---------------------------------------------------------------
    def _prepare(self, session: Any) -> ProfileDecoder:
        obis = self.profile.obis
        columns_r, period_r = session.read([(7, obis, 3), (7, obis, 4)])
        for what, r in (("capture_objects", columns_r), ("capture_period", period_r)):
            if isinstance(r, DataAccessError):
                raise RemoteProtocolError(f"profile {obis}: {what} refused ({r})")
        columns = capture_columns(columns_r.raw)
        period = period_r.raw if isinstance(period_r.raw, int) else 0
        scalings = self._scalings(session, columns)
        decoder = ProfileDecoder(columns, scalings=scalings, capture_period=period,
                                 zone=self.zone, deviation_sign=self.deviation_sign)
        self.keys = tuple(self.profile.column_key(c.obis, c.attribute, _default_key(c))
                          for c in decoder.data_columns)
        events = [i for i, c in enumerate(decoder.data_columns)
                  if _is_event_code(c) and self.keys[i] is not None]
        self.event_index = events[0] if events else None
        # The unit of each scaled column, by key (the RPC and the CLI show them).
        self.units = {key: scalings[i].unit for i, key in zip(decoder.data_indices, self.keys)
                      if key is not None and i in scalings and scalings[i].unit}
        self.capture_period = period
        self.decoder = decoder
        return decoder

    def _scalings(self, session: Any, columns: tuple[CaptureColumn, ...]) -> dict[int, Scaling]:
        wanted = [(i, c) for i, c in enumerate(columns) if c.scaler_attribute is not None]
        if not wanted:
            return {}
        results = session.read([(c.class_id, c.obis, c.scaler_attribute) for _, c in wanted])
        out = {}
        for (i, column), r in zip(wanted, results):
            if isinstance(r, DataAccessError):
                self.log.warning("%s: profile %s column %s: no scaler_unit (%s): raw values",
                                 self.meter, self.profile.obis, column, r)
                continue
            out[i] = Scaling.of(ScalerUnit.from_data(r.raw))
        return out

    def forget(self) -> None:
        """Learn the columns again (after the meter changed its profile)."""
        self.decoder = None

    # -- one chunk ----------------------------------------------------------------------------
    def read_chunk(self, session: Any, since_ms: int | None, now_ms: int) -> Chunk:
        decoder = self.decoder or self._prepare(session)
        start_ms = (since_ms + 1 if since_ms is not None
                    else now_ms - int(self.profile.backfill_days * DAY_MS))
        step_s = self.capture_period or 86_400  # an event log has no period: a day per read
        end_ms = min(now_ms, start_ms + step_s * 1000 * self.profile.max_rows_per_read)
        if self.range_ok is not False:
            access = range_access(_dt_of(start_ms), _dt_of(end_ms), zone=self.zone,
                                  deviation_sign=self.deviation_sign)
            (result,) = session.read([(7, self.profile.obis, 2, access)])
            if not isinstance(result, DataAccessError):
                self.range_ok = True
                rows, problems = decoder.rows(result.raw)
                chunk = self._chunk(rows, problems, since_ms, start_ms, end_ms)
                chunk.complete = end_ms >= now_ms
                return chunk
            if self.range_ok:
                raise RemoteProtocolError(f"profile {self.profile.obis}: range read refused "
                                          f"({result})")
            self.range_ok = False
            self.log.warning("%s: profile %s: range access refused (%s): reading by entry",
                             self.meter, self.profile.obis, result)
        return self._by_entry(session, decoder, since_ms, start_ms, now_ms)

    def _chunk(self, rows: list[ProfileRow], problems: list[str], since_ms: int | None,
               start_ms: int, end_ms: int) -> Chunk:
        chunk = Chunk(read_to_ms=end_ms, problems=problems)
        low = since_ms if since_ms is not None else start_ms - 1
        for row in sorted(rows, key=lambda r: r.time):
            t = _ms(row.time)
            if low < t <= end_ms:
                chunk.rows.append((t, self._values(row)))
        return chunk

    def _values(self, row: ProfileRow) -> dict[str, Any]:
        values = {key: value for key, value in zip(self.keys, row.values)
                  if key is not None and value is not None}
        if row.status & _FLAGGED:
            values["clock_status"] = int(row.status)
        if self.event_index is not None:
            code = row.values[self.event_index]
            if isinstance(code, int) and not isinstance(code, bool):
                values["event_name"] = event_name(code)
        return values

    def _by_entry(self, session: Any, decoder: ProfileDecoder, since_ms: int | None,
                  start_ms: int, now_ms: int) -> Chunk:
        """Entries from the newest back to the first one not newer than ``since`` (or older than
        the backfill start), ``maxRowsPerRead`` per request: bounded by the profile's size."""
        (entries,) = session.read([(7, self.profile.obis, 7)])
        if isinstance(entries, DataAccessError) or not isinstance(entries.raw, int):
            raise RemoteProtocolError(f"profile {self.profile.obis}: entries_in_use unreadable "
                                      f"({entries})")
        low = since_ms if since_ms is not None else start_ms - 1
        collected: list[ProfileRow] = []
        problems: list[str] = []
        last, step = entries.raw, self.profile.max_rows_per_read
        for _ in range(_MAX_ENTRY_READS):  # a meter that lies about its entries ends too
            if last < 1:
                break
            first = max(1, last - step + 1)
            (result,) = session.read([(7, self.profile.obis, 2, entry_access(first, last))])
            if isinstance(result, DataAccessError):
                raise RemoteProtocolError(f"profile {self.profile.obis}: entries {first}..{last} "
                                          f"refused ({result})")
            rows, bad = decoder.rows(result.raw)
            problems += bad
            newer = [r for r in rows if _ms(r.time) > low]
            collected = newer + collected
            if not rows or len(newer) < len(rows) or first == 1:
                break  # reached what was delivered (or the oldest entry, or nothing there)
            last = first - 1
        else:
            self.log.warning("%s: profile %s: %d entry reads (%d rows) did not reach the last "
                             "row delivered: older rows are left out (raise maxRowsPerRead "
                             "for a meter that was away this long)", self.meter,
                             self.profile.obis, _MAX_ENTRY_READS, len(collected))
        chunk = self._chunk(collected, problems, since_ms, start_ms, now_ms)
        chunk.complete = True
        return chunk

    def newest_row_ms(self, session: Any) -> int | None:
        """The time of the meter's newest row (None: the profile is empty)."""
        decoder = self.decoder or self._prepare(session)
        (entries,) = session.read([(7, self.profile.obis, 7)])
        if isinstance(entries, DataAccessError) or not isinstance(entries.raw, int):
            return None
        if entries.raw < 1:
            return None
        (result,) = session.read([(7, self.profile.obis, 2,
                                   entry_access(entries.raw, entries.raw))])
        if isinstance(result, DataAccessError):
            return None
        rows, _ = decoder.rows(result.raw)
        return _ms(rows[-1].time) if rows else None


def local_zone() -> _dt.tzinfo:
    """The gateway's time zone with its DST rules (not today's fixed offset): ``TZ``, else
    /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    try:
        if name:
            return ZoneInfo(name)
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError, ZoneInfoNotFoundError):
        return _UTC


def _is_event_code(column: CaptureColumn) -> bool:
    o = column.obis
    return column.class_id == 1 and o.c == 96 and o.d == 11  # 0-0:96.11.x: event code objects


def _default_key(column: CaptureColumn) -> str:
    """The key of a column the configuration does not name: an event code is "event_code"."""
    return "event_code" if _is_event_code(column) else str(column.obis)
