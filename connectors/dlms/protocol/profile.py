"""Profile generic (class 7) on the client side, sans-IO: what to ask and what the rows mean.

A profile's ``capture_objects`` (attribute 3) name its columns; its ``buffer`` (attribute 2) is
an array of rows, one value per column, read whole or with selective access: by range of the
clock column (selector 1, range_descriptor) or by entry (selector 2, entry_descriptor). This
module builds those descriptors and turns rows into ``ProfileRow``: the capture time as an aware
UTC datetime, its clock status, and the other columns' values scaled.

Time, the part meters get creative with:

* the clock column holds a COSEM date-time; its deviation gives the offset from UTC (in the
  Blue Book sign, or the opposite for meters configured with ``deviation_sign=+1``);
* "deviation not specified" means local time of the meter's zone (``zone``): in the hour a DST
  change repeats, the clock status's daylight-saving bit says which of the two it is;
* null-data in the clock column (a compressed profile) means "the previous row's time plus the
  capture period";
* rows whose clock status says invalid or doubtful keep their time, with the status attached
  (``ProfileRow.trusted``): the caller decides, nothing is silently trusted.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .apdu.common import SelectiveAccess
from .axdr import DataType, Typed
from .cosem_datetime import ClockStatus, CosemDateTime, stamp_datetime, utc_of
from .errors import DecodeError, DlmsError, LocalProtocolError, RemoteProtocolError
from .obis import Obis
from .units import Scaling

__all__ = [
    "CLOCK_COLUMN", "CaptureColumn", "ProfileDecoder", "ProfileRow", "capture_columns",
    "entry_access", "range_access",
]

UTC = _dt.timezone.utc
_UNTRUSTED = ClockStatus.INVALID_VALUE | ClockStatus.DOUBTFUL_VALUE


@dataclass(frozen=True)
class CaptureColumn:
    """One capture_object_definition: which attribute (0: the whole object) of which object
    fills the column. The Push setup's object list (push_setup.py) is made of the same.
    LocalProtocolError when a field is out of its A-XDR range."""

    class_id: int
    obis: Obis
    attribute: int
    data_index: int = 0

    def __post_init__(self) -> None:
        for what, value, lo, hi in (("classId", self.class_id, 0, 0xFFFF),
                                    ("attribute", self.attribute, -128, 127),
                                    ("dataIndex", self.data_index, 0, 0xFFFF)):
            if type(value) is not int or not lo <= value <= hi:
                raise LocalProtocolError(f"{what} must be an integer in {lo}..{hi}, "
                                         f"got {value!r:.40}")

    @property
    def is_clock(self) -> bool:
        return self.class_id == 8 and self.attribute == 2

    @property
    def scaler_attribute(self) -> int | None:
        """Where this column's scaler_unit lives (registers, extended and demand registers)."""
        if self.class_id in (3, 4) and self.attribute == 2:
            return 3
        if self.class_id == 5 and self.attribute in (2, 3):
            return 4
        return None

    def typed(self) -> Typed:
        return Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, self.class_id),
            Typed(DataType.OCTET_STRING, self.obis.to_bytes()),
            Typed(DataType.INTEGER, self.attribute),
            Typed(DataType.LONG_UNSIGNED, self.data_index),
        ])

    def to_json(self) -> dict[str, Any]:
        return {"classId": self.class_id, "obis": str(self.obis), "attribute": self.attribute,
                "dataIndex": self.data_index}

    def __str__(self) -> str:
        text = f"{self.obis}/{self.class_id}/{self.attribute}"
        return f"{text}#{self.data_index}" if self.data_index else text


CLOCK_COLUMN = CaptureColumn(8, Obis(0, 0, 1, 0, 0, 255), 2)


def capture_columns(raw: Any) -> tuple[CaptureColumn, ...]:
    """The columns from ``capture_objects`` as the session returns it (``Reading.raw``)."""
    if not isinstance(raw, (list, tuple)):
        raise RemoteProtocolError(f"capture_objects is not an array ({type(raw).__name__})")
    columns = []
    for i, item in enumerate(raw):
        try:
            class_id, ln, attribute, index = item
            columns.append(CaptureColumn(int(class_id), Obis.from_bytes(bytes(ln)),
                                         int(attribute), int(index)))
        except (TypeError, ValueError, DlmsError) as exc:
            raise RemoteProtocolError(f"capture_objects[{i}] is not (class, obis, attribute, "
                                      f"data index): {item!r} ({exc})") from None
    return tuple(columns)


def _datetime_octets(moment: _dt.datetime, zone: _dt.tzinfo, deviation_sign: int) -> Typed:
    if moment.tzinfo is None:
        raise ValueError("range bounds must be aware datetimes")
    local = moment.astimezone(zone)
    return Typed(DataType.OCTET_STRING, CosemDateTime.from_datetime(
        local, deviation_sign=deviation_sign).to_bytes())


def range_access(start: _dt.datetime, end: _dt.datetime, clock: CaptureColumn = CLOCK_COLUMN,
                 *, zone: _dt.tzinfo = UTC, deviation_sign: int = -1) -> SelectiveAccess:
    """Selector 1: the rows with ``start <= time <= end`` (both ends inclusive), all columns.
    The bounds travel in the meter's ``zone`` with their deviation: meters that compare the
    date-time fields and ignore the deviation still get the right rows."""
    return SelectiveAccess(1, Typed(DataType.STRUCTURE, [
        clock.typed(),
        _datetime_octets(start, zone, deviation_sign),
        _datetime_octets(end, zone, deviation_sign),
        Typed(DataType.ARRAY, []),  # selected_values: every column
    ]))


def entry_access(first: int, last: int = 0) -> SelectiveAccess:
    """Selector 2: entries ``first..last`` (1-based, ``last`` 0 = to the newest), all columns."""
    return SelectiveAccess(2, Typed(DataType.STRUCTURE, [
        Typed(DataType.DOUBLE_LONG_UNSIGNED, first), Typed(DataType.DOUBLE_LONG_UNSIGNED, last),
        Typed(DataType.LONG_UNSIGNED, 1), Typed(DataType.LONG_UNSIGNED, 0),
    ]))


@dataclass(frozen=True)
class ProfileRow:
    """One captured row: when (aware, UTC), the clock status of that time, and the values of
    the data columns (every column but the clock, in order; registers scaled)."""

    time: _dt.datetime
    status: ClockStatus
    values: tuple[Any, ...]

    @property
    def trusted(self) -> bool:
        """False when the meter marked the time invalid or doubtful."""
        return not self.status & _UNTRUSTED


class ProfileDecoder:
    """Rows of one profile's buffer (see the module doc). ``scalings`` maps a column index to
    its register's scaling; ``capture_period`` (seconds) fills null clock values."""

    def __init__(self, columns: Sequence[CaptureColumn], *,
                 scalings: Mapping[int, Scaling] | None = None, capture_period: int = 0,
                 zone: _dt.tzinfo = UTC, deviation_sign: int = -1) -> None:
        clocks = [i for i, c in enumerate(columns) if c.is_clock]
        if not clocks:
            raise RemoteProtocolError("the profile has no clock column: rows have no time")
        self.columns = tuple(columns)
        self.clock_index = clocks[0]
        self.data_indices = tuple(i for i in range(len(columns)) if i != self.clock_index)
        self.scalings = dict(scalings or {})
        self.capture_period = capture_period
        self.zone = zone
        self.deviation_sign = deviation_sign

    @property
    def data_columns(self) -> tuple[CaptureColumn, ...]:
        return tuple(self.columns[i] for i in self.data_indices)

    def rows(self, raw_buffer: Any) -> tuple[list[ProfileRow], list[str]]:
        """The rows, and one problem line per row that has no usable time (left out)."""
        if not isinstance(raw_buffer, (list, tuple)):
            raise RemoteProtocolError(f"profile buffer is not an array ({type(raw_buffer).__name__})")
        rows: list[ProfileRow] = []
        problems: list[str] = []
        previous: _dt.datetime | None = None
        width = len(self.columns)
        for n, raw in enumerate(raw_buffer):
            if not isinstance(raw, (list, tuple)) or len(raw) != width:
                size = len(raw) if isinstance(raw, (list, tuple)) else type(raw).__name__
                raise RemoteProtocolError(
                    f"profile row {n} has {size} values; capture_objects lists {width}")
            try:
                time, status = self._time(raw[self.clock_index], previous)
            except DlmsError as exc:
                problems.append(f"row {n}: {exc}")
                previous = None  # a null clock after a bad one has nothing to count from
                continue
            previous = time
            rows.append(ProfileRow(time, status, tuple(self._value(i, raw[i])
                                                       for i in self.data_indices)))
        return rows, problems

    def _time(self, value: Any, previous: _dt.datetime | None) -> tuple[_dt.datetime, ClockStatus]:
        if value is None:  # null-data: a compressed profile
            if previous is None or not self.capture_period:
                raise DecodeError("null clock value with no previous row time to count from")
            return previous + _dt.timedelta(seconds=self.capture_period), ClockStatus.OK
        if not isinstance(value, (bytes, bytearray)) or len(value) != 12:
            raise DecodeError(f"clock value is not a date-time ({value!r})")
        quick = stamp_datetime(bytes(value), self.deviation_sign)  # one a row: fast when plain
        if quick is not None:
            return quick[0].astimezone(UTC), ClockStatus(quick[1])
        stamp = CosemDateTime.from_bytes(bytes(value))
        return utc_of(stamp, self.zone, self.deviation_sign), ClockStatus(stamp.clock_status or 0)

    def _value(self, index: int, raw: Any) -> Any:
        scaling = self.scalings.get(index)
        if scaling is not None and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return scaling.apply(raw)
        return raw
