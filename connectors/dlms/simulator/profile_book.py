"""One meter's profiles: what each row holds for this meter, what a reset or a clock jump did to
them, and the rows a client should receive (the truth tests compare ThingsBoard's data with).

The model owns one ProfileBook; the book asks the model (:class:`BookHost`) only for the energy
register at an instant (the disconnector stops it) and for "now". State is tiny: per profile the
last row a reset removed, and the clock jumps the ``jump_clock`` test helper made.

Expected rows (:meth:`ProfileBook.expected_rows`) come from the same row functions the wire
answers are built from, row numbers and all, so a client that reads a profile by range or entry
must receive exactly these rows; how the values relate to the registers (a billing row equals the
import/export registers at its midnight) is tested apart.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, NamedTuple, Protocol

from ..protocol.axdr import DataType, Typed
from ..protocol.cosem_datetime import ClockStatus
from ..protocol.errors import LocalProtocolError
from ..protocol.obis import Obis
from . import values as _v
from .meter_models import raw_at, spec_for
from .meter_time import MeterZone, meter_zone
from .profile import ProfileSpec, ProfileView
from .profile_data import (
    BILLING,
    EVENT_LOG,
    EXPORT,
    IMPORT,
    LOAD_PROFILE,
    LOAD_PROFILE_CT,
    LOAD_PROFILE_MONO,
    MAX_DEMAND,
    PROFILES_OF,
    BillingRegister,
    daily_last_at,
    event_code,
    event_last_at,
    event_time,
    export_wh_at,
)

if TYPE_CHECKING:
    from .options import MeterOptions

__all__ = ["BookHost", "ExpectedRow", "ProfileBook"]

_INVALID = int(ClockStatus.INVALID_VALUE)
_DOUBTFUL = int(ClockStatus.DOUBTFUL_VALUE)
_VOLTAGE_L1 = _v.REGISTERS_BY_KEY["voltage_l1"]
_ENERGY_TYPE = DataType.DOUBLE_LONG_UNSIGNED
_DLU, _LU, _U = DataType.DOUBLE_LONG_UNSIGNED, DataType.LONG_UNSIGNED, DataType.UNSIGNED


class BookHost(Protocol):
    """What the book needs of its meter (MeterModel)."""

    @property
    def index(self) -> int: ...
    @property
    def options(self) -> MeterOptions: ...
    @property
    def model_name(self) -> str: ...
    def energy_raw_at(self, tau: int) -> int: ...
    def now_tau(self) -> int: ...


class ExpectedRow(NamedTuple):
    """One row as the meter holds it; ``row[0], row[1]`` are (time, scaled values).

    * ``time``: what ``CosemDateTime.to_datetime()`` gives for the stamp: aware with the
      meter's deviation, naive local wall time if the deviation is not specified;
    * ``values``: the other columns scaled (raw * 10**scaler: Wh, V; event codes as they are);
    * ``raw``: the same columns as the integers on the wire;
    * ``stamp``: the clock column's 12 octets; ``clock_status``: its status byte;
    * ``entry``: the 1-based entry number (selector 2) at the reading instant.
    """

    time: _dt.datetime
    values: tuple[float | int, ...]
    raw: tuple[int, ...]
    stamp: bytes
    clock_status: int
    entry: int


class ProfileBook:
    __slots__ = ("_cleared", "_columns", "_jumps", "_specs", "host", "zone")

    def __init__(self, host: BookHost) -> None:
        self.host = host
        self._specs = _SPECS[host.model_name]  # the profiles of this meter's model
        self._columns = _COLUMNS[host.model_name]
        opts = host.options
        self.zone: MeterZone = meter_zone(opts.time_zone, opts.deviation_unspecified)
        # (profile, last row number a reset removed): a tuple, as () costs a meter nothing
        self._cleared: tuple[tuple[bytes, int], ...] = ()
        self._jumps: tuple[tuple[int, int], ...] = ()  # (from tau, stamp shift s), in order

    # -- row axes ------------------------------------------------------------------------------
    def _axis(self, spec: ProfileSpec) -> tuple[Callable[[int], int], Callable[[int], int]]:
        """(time_of, last_at) of ``spec`` for this meter."""
        if spec is BILLING:
            return self.zone.day_start_tau, partial(daily_last_at, self.zone)
        if spec is EVENT_LOG:
            index = self.host.index
            return partial(event_time, index), partial(event_last_at, index)
        period = spec.capture_period
        return (lambda j: j * period), (lambda tau: tau // period if tau >= 0 else -1)

    def _shift_of(self, tau: int) -> int:
        return sum(s for t0, s in self._jumps if tau >= t0)

    def _status(self, j: int) -> int:
        n = self.host.options.clock_status_every
        if not n or j % n:
            return 0
        return _INVALID if (j // n) % 2 else _DOUBTFUL

    def _stamp(self, j: int, tau: int) -> bytes:
        t = tau + _v.EPOCH + (self._shift_of(tau) if self._jumps else 0)
        return self.zone.stamp(t, self._status(j) if self.host.options.clock_status_every else 0)

    def view(self, obis: bytes, now_tau: int | None = None) -> ProfileView:
        spec = self._specs[obis]
        time_of, last_at = self._axis(spec)
        last = last_at(self.host.now_tau() if now_tau is None else now_tau)
        cleared = max((j for o, j in self._cleared if o == obis), default=-1)
        first = max(0, last - spec.capacity + 1, cleared + 1)
        cols = [lambda j, tau: Typed(DataType.OCTET_STRING, self._stamp(j, tau))]
        for typ, _scaler, fn in self._columns[obis]:
            cols.append(partial(_cell, typ, fn, self))
        return ProfileView(
            spec, first, last, time_of, last_at, self.zone, cols,
            self._shift_of if self._jumps else None, self.host.options.profile_range_access,
        )

    # -- values ------------------------------------------------------------------------------
    def billing_raw(self, reg: BillingRegister, tau: int) -> int:
        """Raw import/export register (tens of Wh) at ``tau``."""
        if reg.key == "import":
            wh = self.host.energy_raw_at(tau)
        else:
            wh = int(export_wh_at(self.host.index, tau))  # floor: tau >= 0, the energy > 0
        den: int = 10**reg.scaler
        return wh // den

    def max_demand(self, t0: int, t1: int) -> tuple[int, int]:
        """(W, end tau) of the quarter-hour from ``t0`` on, ending at or before ``t1``, with the
        highest mean import power; (0, t0) when no quarter is complete."""
        energy = self.host.energy_raw_at
        best, best_end = 0, t0
        before = energy(t0)
        for end in range(t0 + 900, t1 + 1, 900):
            after = energy(end)
            if (after - before) * 4 > best:
                best, best_end = (after - before) * 4, end
            before = after
        return best, best_end

    def demand_of_day_before(self, tau: int) -> int:
        """Maximum demand of the local day that ended at ``tau`` (a billing row's midnight)."""
        day = daily_last_at(self.zone, tau)
        return self.max_demand(self.zone.day_start_tau(day - 1), tau)[0]

    def demand_today(self) -> tuple[int, int]:
        """The extended register 1-0:1.6.0 now: (W, end tau) since the last local midnight."""
        now = self.host.now_tau()
        return self.max_demand(self.zone.day_start_tau(daily_last_at(self.zone, now)), now)

    def last_event_code(self) -> int:
        v = self.view(EVENT_LOG.obis.to_bytes())
        return 0 if v.entries_in_use == 0 else event_code(self.host.index, v.last)

    # -- what tests and the reset method do --------------------------------------------------
    def reset(self, obis: bytes) -> None:
        """Method 1 reset: every row captured so far is gone; the next capture is entry 1."""
        self._cleared = (*self._cleared, (obis, self.view(obis).last))

    def jump(self, tau: int, seconds: int) -> None:
        """Rows captured from ``tau`` on are stamped ``seconds`` later (negative: earlier)."""
        self._jumps = (*self._jumps, (tau, seconds))

    def expected_rows(
        self,
        obis: Obis | str,
        from_dt: _dt.datetime | None = None,
        to_dt: _dt.datetime | None = None,
        at: float | None = None,
    ) -> list[ExpectedRow]:
        """The rows a read by range from..to (inclusive, None = open) returns at unix time
        ``at`` (default now). A naive bound is the meter's local wall time."""
        raw_obis = (obis if isinstance(obis, Obis) else Obis.parse(obis)).to_bytes()
        if raw_obis not in self._specs:
            raise LocalProtocolError(f"no simulated profile at {Obis.from_bytes(raw_obis)}")
        now_tau = None if at is None else int(at // 1) - _v.EPOCH
        view = self.view(raw_obis, now_tau)
        js = view.by_time(self._instant(from_dt), self._instant(to_dt))
        cols = self._columns[raw_obis]
        out = []
        for j in js:
            tau = view.time_of(j)
            raw = tuple(fn(self, j, tau) for _t, _s, fn in cols)
            instant = tau + _v.EPOCH + self._shift_of(tau)
            out.append(ExpectedRow(
                self.zone.client_view(instant),
                tuple(r if s is None else _v.scale(r, s) for r, (_t, s, _f) in zip(raw, cols)),
                raw,
                self._stamp(j, tau),
                self.zone.stamp(instant, self._status(j))[11],
                j - view.first + 1,
            ))
        return out

    def _instant(self, d: _dt.datetime | None) -> float | None:
        if d is None:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=self.zone.tz)
        return d.timestamp()


# (wire type, scaler or None for a code, raw(book, j, tau)) of each non-clock column, in order
RawFn = Callable[["ProfileBook", int, int], int]
Columns = dict[bytes, tuple[tuple[DataType, "int | None", RawFn], ...]]


def _register_column(model: str, obis: str) -> tuple[DataType, int, RawFn]:
    """A column that captures a register of ``model`` its own way (as the wire serves it)."""
    spec = spec_for(model, obis)
    return (_LU if spec.quantity == _v.VOLTAGE else _DLU, spec.scaler,
            lambda b, j, tau: raw_at(model, b.host.index, spec, tau))


_BILLING_COLUMNS = (
    (_DLU, IMPORT.scaler, lambda b, j, tau: b.billing_raw(IMPORT, tau)),
    (_DLU, EXPORT.scaler, lambda b, j, tau: b.billing_raw(EXPORT, tau)),
    (_DLU, MAX_DEMAND.scaler, lambda b, j, tau: b.demand_of_day_before(tau)),
)
_COLUMNS: dict[str, Columns] = {
    "poly": {
        LOAD_PROFILE.obis.to_bytes(): (
            (_ENERGY_TYPE, 0, lambda b, j, tau: b.host.energy_raw_at(tau)),
            (_LU, _VOLTAGE_L1.scaler,
             lambda b, j, tau: _v.raw_at(b.host.index, _VOLTAGE_L1, tau)),
        ),
        BILLING.obis.to_bytes(): _BILLING_COLUMNS,
        EVENT_LOG.obis.to_bytes(): ((_U, None, lambda b, j, tau: event_code(b.host.index, j)),),
    },
    "mono": {
        LOAD_PROFILE_MONO.obis.to_bytes(): (
            (_ENERGY_TYPE, 0, lambda b, j, tau: b.host.energy_raw_at(tau)),
            _register_column("mono", "1-0:32.7.0"),
        ),
    },
    "ct": {
        LOAD_PROFILE_CT.obis.to_bytes(): (
            (_ENERGY_TYPE, IMPORT.scaler, lambda b, j, tau: b.billing_raw(IMPORT, tau)),
            _register_column("ct", "1-0:3.8.0"),
            _register_column("ct", "1-0:32.7.0"),
        ),
        BILLING.obis.to_bytes(): _BILLING_COLUMNS,
    },
}
_SPECS = {m: {s.obis.to_bytes(): s for s in specs} for m, specs in PROFILES_OF.items()}


def _cell(typ: DataType, fn: RawFn, book: ProfileBook, j: int, tau: int) -> Typed:
    return Typed(typ, fn(book, j, tau))
