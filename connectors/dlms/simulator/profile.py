"""Profile generic (class 7) buffers of the simulated meters, and their selective access.

Nothing is stored: 1,000 meters times 960 rows would not be small. Every profile is a sequence
of rows j = 0, 1, 2, ... captured at known instants (the 15-minute load profile: ``EPOCH + 900 *
j``; see :mod:`.profile_data` for the daily billing profile and the event log); a row's values
are computed from the deterministic signals when a client reads it. A :class:`ProfileView` is one
meter's profile at one instant: the newest ``capacity`` rows captured up to "now" (fewer after a
reset), built by :mod:`.profile_book`.

Entry order: **oldest first** (sort_method 1 = FIFO). Entry 1 of selector 2 is the oldest row
still in the buffer; entries move by one as each new row is captured.

Rows are captured on the true time (the simulator's clock), as if the meter's clock had always
been right: setting the clock object does not shift the stored profile (the ``jump_clock`` test
helper of the model does, for the rows captured after it).

Selective access (Blue Book, Profile generic attribute 2):

* selector 1, range_descriptor: structure(restricting_object structure(class_id, logical_name,
  attribute_index, data_index), from_value, to_value, selected_values array); the restricting
  object must be the clock's time; rows whose stamps denote from <= time <= to are returned
  (both inclusive). A from/to with wildcards in the date or the time is an open bound; one
  without deviation is the meter's local time (UTC unless the meter has a time zone).
* selector 2, entry_descriptor: structure(from_entry, to_entry, from_selected_value,
  to_selected_value), all 1-based, 0 in to_entry / to_selected_value meaning "to the last".

Answers: a selector other than 1 or 2 gives ``other-reason``, and so does selector 1 on a meter
without range access (``MeterOptions.profile_range_access=False``); parameters of the wrong shape
give ``type-unmatched``; a range or entry span outside the buffer gives an empty array.
"""

from __future__ import annotations

import datetime as _dt
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..protocol.apdu.common import DataAccessResult, SelectiveAccess
from ..protocol.axdr import DataType, Typed
from ..protocol.cosem_datetime import CosemDateTime
from ..protocol.errors import DlmsError
from ..protocol.obis import Obis
from ..protocol.profile import CaptureColumn
from .meter_time import MeterZone
from .values import EPOCH

__all__ = [
    "CLOCK_OBIS",
    "CaptureObject",
    "Cell",
    "ProfileSpec",
    "ProfileView",
    "datetime_bytes",
    "native",
    "read_buffer",
    "row_span",
]

CLOCK_OBIS = Obis.parse("0-0:1.0.0")
_UTC = _dt.timezone.utc
_EPOCH_DT = _dt.datetime(1970, 1, 1, tzinfo=_UTC)
# year, month, day, weekday | hour, minute, second, hundredths | deviation, status
_DATETIME = struct.Struct(">HBBBBBBBhB")

def datetime_bytes(unix_time: float) -> bytes:
    """COSEM date-time (12 bytes) of ``unix_time`` in UTC: deviation 0, clock status 0 (OK)."""
    # timedelta rounds to the microsecond as datetime.fromtimestamp does, so 1.7e9 + 0.37 (stored
    # as ...0.36999988) still reads 37 hundredths.
    d = _EPOCH_DT + _dt.timedelta(seconds=unix_time)
    hundredths = d.microsecond // 10000
    return _DATETIME.pack(
        d.year,
        d.month,
        d.day,
        d.isoweekday(),
        d.hour,
        d.minute,
        d.second,
        hundredths,
        0,
        0,
    )


# A column is the client's CaptureColumn (protocol/profile.py): one definition for both ends.
CaptureObject = CaptureColumn


def _column_key(column: CaptureColumn) -> tuple[int, bytes, int, int]:
    return column.class_id, column.obis.to_bytes(), column.attribute, column.data_index


@dataclass(frozen=True)
class ProfileSpec:
    """What every simulated meter's profile looks like (shared, immutable)."""

    obis: Obis
    capture_objects: tuple[CaptureObject, ...]
    capture_period: int = 900
    capacity: int = 960  # 10 days of quarter-hours

    def capture_objects_typed(self) -> Typed:
        return Typed(DataType.ARRAY, [c.typed() for c in self.capture_objects])


def row_span(spec: ProfileSpec, now_tau: int) -> tuple[int, int]:
    """(first, last) row numbers j in the buffer at ``now_tau`` (seconds since EPOCH);
    row j was captured at EPOCH + j * capture_period. Empty when first > last."""
    if now_tau < 0:
        return 0, -1
    last = now_tau // spec.capture_period
    return max(0, last - spec.capacity + 1), last


# -- parameter parsing ---------------------------------------------------------------------


class _Bad(Exception):
    """Parameters of the wrong shape (-> type-unmatched)."""


class _Unsupported(Exception):
    """Well-formed parameters asking for something this profile cannot do (-> other-reason)."""


def native(v: Any) -> Any:
    """Decoded access parameters come Typed (so they re-encode); the logic wants plain values."""
    while isinstance(v, Typed):
        v = v.value
    if isinstance(v, (tuple, list)):
        return type(v)(native(x) for x in v)
    return v


def _int(v: Any) -> int:
    if type(v) is not int:
        raise _Bad
    return v


def _def_key(v: Any) -> tuple[int, bytes, int, int]:
    """A capture_object_definition as a comparable key."""
    if not isinstance(v, (tuple, list)) or len(v) != 4:
        raise _Bad
    class_id, ln, attribute, data_index = v
    if not isinstance(ln, (bytes, bytearray)) or len(ln) != 6:
        raise _Bad
    return _int(class_id), bytes(ln), _int(attribute), _int(data_index)


def _bound(zone: MeterZone, v: Any) -> float | None:
    """A from/to value as unix time, or None for an open (wildcarded) bound."""
    if isinstance(v, (bytes, bytearray)):
        if len(v) != 12:
            raise _Bad
        try:
            v = CosemDateTime.from_bytes(bytes(v))
        except DlmsError:
            raise _Bad from None
    if not isinstance(v, CosemDateTime):
        raise _Bad
    return zone.instant(v)


def _columns_by_defs(spec: ProfileSpec, defs: Any) -> list[int]:
    if not isinstance(defs, (tuple, list)):
        raise _Bad
    if not defs:
        return list(range(len(spec.capture_objects)))
    keys = [_column_key(c) for c in spec.capture_objects]
    cols = []
    for d in defs:
        k = _def_key(d)
        if k not in keys:
            raise _Unsupported  # a column this profile does not capture
        cols.append(keys.index(k))
    return cols


Cell = Callable[[int, int], Typed]  # (row number j, capture time tau) -> the captured value


@dataclass(frozen=True)
class ProfileView:
    """One meter's profile at one instant: the rows ``first..last`` still in its buffer.

    Row ``j`` was captured at ``time_of(j)`` (seconds since EPOCH, true time, increasing with j);
    ``last_at(tau)`` is the newest row captured at or before ``tau`` (-1: none). Its stamp shows
    that instant moved by ``shift_of(tau)`` seconds (a clock set back: later rows, earlier
    stamps); ``shift_of`` None means no row is shifted, so stamps grow with j.
    """

    spec: ProfileSpec
    first: int
    last: int
    time_of: Callable[[int], int]
    last_at: Callable[[int], int]
    zone: MeterZone
    columns: Sequence[Cell]
    shift_of: Callable[[int], int] | None = None
    range_access: bool = True

    @property
    def entries_in_use(self) -> int:
        return max(0, self.last - self.first + 1)

    def stamp_instant(self, j: int) -> float:
        tau = self.time_of(j)
        return tau + EPOCH + (self.shift_of(tau) if self.shift_of else 0)

    def by_time(self, lo: float | None, hi: float | None) -> Sequence[int]:
        """Rows whose stamps denote lo <= t <= hi (None: open), oldest entry first."""
        first, last = self.first, self.last
        if self.shift_of is not None:  # stamps not monotonic: look at each row
            return [
                j for j in range(first, last + 1)
                if (lo is None or self.stamp_instant(j) >= lo)
                and (hi is None or self.stamp_instant(j) <= hi)
            ]
        if first > last:
            return range(0)
        t_first, t_last = self.time_of(first) + EPOCH, self.time_of(last) + EPOCH
        if (lo is not None and lo > t_last) or (hi is not None and hi < t_first):
            return range(0)
        # Bounds beyond the buffer are open: far dates never reach the axis (or zoneinfo).
        j_lo = first if lo is None or lo <= t_first else self.last_at(math.ceil(lo - EPOCH) - 1) + 1
        j_hi = last if hi is None or hi >= t_last else self.last_at(math.floor(hi - EPOCH))
        return range(j_lo, j_hi + 1)

    def rows(self, js: Sequence[int], cols: Sequence[int]) -> Typed:
        fns = [self.columns[c] for c in cols]
        time_of = self.time_of
        out = []
        for j in js:
            tau = time_of(j)
            out.append(Typed(DataType.STRUCTURE, tuple(fn(j, tau) for fn in fns)))
        return Typed(DataType.ARRAY, out)


def _by_range(view: ProfileView, p: Any) -> tuple[Sequence[int], list[int]]:
    if not isinstance(p, (tuple, list)) or len(p) != 4:
        raise _Bad
    restricting, lo, hi, selected = p
    if _def_key(restricting) != (8, CLOCK_OBIS.to_bytes(), 2, 0):
        raise _Unsupported  # only the capture time can restrict this profile
    t_lo, t_hi = _bound(view.zone, lo), _bound(view.zone, hi)
    return view.by_time(t_lo, t_hi), _columns_by_defs(view.spec, selected)


def _by_entry(view: ProfileView, p: Any) -> tuple[Sequence[int], list[int]]:
    if not isinstance(p, (tuple, list)) or len(p) != 4:
        raise _Bad
    from_entry, to_entry, from_col, to_col = (_int(x) for x in p)
    in_use = view.entries_in_use
    from_entry = max(from_entry, 1)  # some clients count from 0; treat it as the first entry
    to_entry = in_use if to_entry == 0 else min(to_entry, in_use)
    ncols = len(view.spec.capture_objects)
    from_col = max(from_col, 1)
    to_col = ncols if to_col == 0 else to_col
    if from_col > to_col or to_col > ncols:
        raise _Unsupported
    first = view.first
    return range(first + from_entry - 1, first + to_entry), list(range(from_col - 1, to_col))


def read_buffer(view: ProfileView, access: SelectiveAccess | None) -> Typed | DataAccessResult:
    """Attribute 2 (buffer): all rows of ``view``, or those ``access`` selects.

    A view without range access answers selector 1 with ``other-reason``, as meters that only
    implement entry access do (the client then falls back to selector 2).
    """
    if access is None:
        return view.rows(range(view.first, view.last + 1), range(len(view.columns)))
    try:
        params = native(access.parameters)
        if access.selector == 1 and view.range_access:
            js, cols = _by_range(view, params)
        elif access.selector == 2:
            js, cols = _by_entry(view, params)
        else:
            return DataAccessResult.OTHER_REASON
    except _Bad:
        return DataAccessResult.TYPE_UNMATCHED
    except _Unsupported:
        return DataAccessResult.OTHER_REASON
    return view.rows(js, cols)
