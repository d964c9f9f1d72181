"""One simulated meter: its COSEM objects and what they answer (no sockets, no framing, no threads).

Objects are addressed as the wire addresses them: (class_id, OBIS, attribute) for GET/SET and
(class_id, OBIS, method) for ACTION. The object tables are built once per process and shared by
every MeterModel; an instance only holds the little state a meter can change (clock offset,
disconnector state, the intervals its supply was off, a new LLS secret, the profiles it reset),
so 1,000 meters fit in one process. Values are computed on demand from :mod:`.values` at the
injected clock's "now".

Profiles (load profile 1-0:99.1.0, daily billing 1-0:98.1.0, standard event log 0-0:99.98.0) are
served by :mod:`.profile_book`; ``expected_profile_rows`` gives the rows a client must receive,
``clear_profile`` and ``jump_clock`` are the test helpers for a reset and a clock set back.

Answers follow the Blue Book: unknown object -> object-undefined; known OBIS with another class ->
object-class-inconsistent; attribute or method the class does not define -> object-undefined;
defined but not readable/writable/callable here -> read-write-denied; value of the wrong type ->
type-unmatched; selective access where the attribute takes none -> other-reason.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable
from typing import Any, Union

from ..protocol.apdu.common import ActionResult, DataAccessResult, SelectiveAccess
from ..protocol.axdr import DataType, Typed
from ..protocol.cosem_datetime import CosemDateTime
from ..protocol.errors import DlmsError, LocalProtocolError
from ..protocol.obis import Obis
from ..protocol.security import CounterGuard
from . import values as _v
from .disconnector import MACHINE, MODES, ControlState
from .meter_models import PHASE_POWER, REACTIVE_POWER, energy_wh, model_of, raw_at, spec_for
from .objects import REG_TYPES, TABLES
from .options import (  # re-exported: MeterOptions lived here first
    AUTHENTICATIONS,
    DEFAULT_OPTIONS,
    GREEN_BOOK_AUTH_KEY,
    GREEN_BOOK_BLOCK_KEY,
    MeterOptions,
)
from .profile import native, read_buffer
from .profile_book import ExpectedRow, ProfileBook
from .profile_data import BillingRegister
from .push_setup import PushState

__all__ = [
    "AUTHENTICATIONS",
    "DEFAULT_OPTIONS",
    "GREEN_BOOK_AUTH_KEY",
    "GREEN_BOOK_BLOCK_KEY",
    "ControlState",
    "ExpectedRow",
    "MeterModel",
    "MeterOptions",
]

# What a disconnected supply zeroes (energies stop; export keeps its closed form, voltage stays).
_ZERO_WHEN_OFF = frozenset((_v.CURRENT, _v.POWER, PHASE_POWER, REACTIVE_POWER))

AnyObis = Union[Obis, bytes, bytearray, memoryview, str]
GetResult = Union[Typed, DataAccessResult]


def server_system_title(index: int) -> bytes:
    """Meter ``index``'s system title: manufacturer id "TBD" and the index (5 octets)."""
    return b"TBD" + (index & 0xFFFFFFFFFF).to_bytes(5, "big")


def _raw(obis: AnyObis) -> bytes:
    """The 6-byte key; bytes and Obis (what the server has) are the fast cases."""
    if type(obis) is bytes:
        return obis
    if isinstance(obis, Obis):
        return obis.to_bytes()
    if isinstance(obis, (bytearray, memoryview)):
        return bytes(obis)
    return Obis.parse(obis).to_bytes()  # text: tests and demos


def _missing(class_of: dict[bytes, int], class_id: int, obis: AnyObis) -> int:
    """No such attribute or method: object-class-inconsistent (9) if the OBIS code names an
    object of another class, else object-undefined (4); same numbers in both result enums."""
    known = class_of.get(_raw(obis))
    return 9 if known is not None and known != class_id else 4


class MeterModel:
    """The COSEM objects of simulated meter ``index`` (see the module doc for the answers)."""

    __slots__ = (
        "_clock",
        "_clock_offset",
        "_clock_ref",
        "_dc_mode",
        "_dc_state",
        "_off",
        "_off_since",
        "_profiles",
        "_secret",
        "_serial",
        "_table",
        "index",
        "model_name",
        "options",
        "push",
        "received",
    )

    def __init__(
        self,
        index: int,
        serial: str | None = None,
        clock: Callable[[], float] = time.time,
        options: MeterOptions = DEFAULT_OPTIONS,
    ) -> None:
        if options.control_mode not in MODES:
            raise LocalProtocolError(f"control_mode must be 0..6, got {options.control_mode}")
        self.index = index
        self.options = options
        self.model_name = model_of(index, options.model)  # "poly", "mono" or "ct"
        self._table = TABLES[self.model_name]
        self._clock = clock
        self._serial = None if serial is None else serial.encode("ascii")
        self._clock_offset = options.clock_offset_s
        self._clock_ref = clock() if options.clock_drift_ppm else 0.0
        self._dc_state = ControlState.CONNECTED
        self._dc_mode = options.control_mode
        self._off: tuple[tuple[int, int], ...] = ()  # closed supply-off intervals, as taus
        self._off_since: int | None = None  # tau the supply went off, while it is off
        self._secret: bytes | None = None  # set through the association's attribute 7
        # The management client's last accepted invocation counter (replay protection); the
        # frame counter object 0-0:43.1.0.255 shows it to the public client.
        self.received = CounterGuard()
        self._profiles = ProfileBook(self)  # load profile, daily billing, event log
        self.push = PushState(self.model_name, options.push_to)  # push_setup.py

    # -- the three services ----------------------------------------------------------------
    def get(
        self,
        class_id: int,
        obis: AnyObis,
        attribute: int,
        access: SelectiveAccess | None = None,
    ) -> GetResult:
        """GET one attribute: its value as a Typed, or why not as a DataAccessResult."""
        entry = self._table.get.get((class_id, _raw(obis), attribute))
        if entry is None:
            return DataAccessResult(_missing(self._table.class_of, class_id, obis))
        fn, selective = entry
        if fn is None:
            return DataAccessResult.READ_WRITE_DENIED
        if access is not None and not selective:
            return DataAccessResult.OTHER_REASON
        return fn(self, access)

    def set(self, class_id: int, obis: AnyObis, attribute: int, value: Any) -> DataAccessResult:
        """SET one attribute; ``value`` as decoded natives or Typed."""
        key = (class_id, _raw(obis), attribute)
        fn = self._table.set.get(key)
        if fn is None:
            if key in self._table.get:
                return DataAccessResult.READ_WRITE_DENIED
            return DataAccessResult(_missing(self._table.class_of, class_id, obis))
        return fn(self, native(value))

    def action(
        self, class_id: int, obis: AnyObis, method: int, parameters: Any = None
    ) -> tuple[ActionResult, Typed | None]:
        """ACTION: (result, return parameters or None)."""
        key = (class_id, _raw(obis), method)
        fn = self._table.action.get(key)
        if fn is None:
            if key in self._table.action:
                return ActionResult.READ_WRITE_DENIED, None
            return ActionResult(_missing(self._table.class_of, class_id, obis)), None
        return fn(self, native(parameters))

    # -- truth for tests, demo and benchmarks ------------------------------------------------
    def expected(self, obis: AnyObis, t: float | None = None) -> tuple[int, int, int]:
        """(raw, scaler, unit) this meter reports for a register at unix time ``t`` (default now),
        taking the disconnector into account (the registers of this meter's model)."""
        spec = spec_for(self.model_name, _raw(obis))
        tau = math.floor(self._clock() if t is None else t) - _v.EPOCH
        return self._register_raw(spec, tau), spec.scaler, spec.unit

    def expected_value(self, obis: AnyObis, t: float | None = None) -> float:
        raw, scaler, _ = self.expected(obis, t)
        return _v.scale(raw, scaler)

    def expected_profile_rows(
        self,
        obis: Obis | str,
        from_dt: _dt.datetime | None = None,
        to_dt: _dt.datetime | None = None,
        at: float | None = None,
    ) -> list[ExpectedRow]:
        """The rows of profile ``obis`` (1-0:99.1.0, 1-0:98.1.0, 0-0:99.98.0) a read by range
        ``from_dt``..``to_dt`` (inclusive; None = open; naive = the meter's local time) returns
        at unix time ``at`` (default now), oldest first: (time, scaled values, raw, stamp,
        clock_status, entry) each; see profile_book.ExpectedRow."""
        return self._profiles.expected_rows(obis, from_dt, to_dt, at)

    def clear_profile(self, obis: AnyObis) -> None:
        """What the profile's method 1 (reset) does: its buffer empties, entries restart at 1."""
        self._profiles.reset(_raw(obis))

    def jump_clock(self, seconds: int) -> None:
        """Set the meter clock ``seconds`` forward (negative: back) the way a field tool does:
        unlike a clock SET, the rows captured from now on carry the moved clock, so after a
        jump back later rows have earlier stamps than those before the jump."""
        self.set_meter_time(self.meter_time() + seconds)
        self._profiles.jump(self._tau(), seconds)

    @property
    def serial(self) -> bytes:
        return self._serial if self._serial is not None else b"SIM%08d" % self.index

    @property
    def logical_device_name(self) -> bytes:
        return b"SIMLDN%010d" % self.index  # 16 octets, the Blue Book maximum

    @property
    def firmware_version(self) -> bytes:
        return b"SIM-%s 1.4.2" % self.model_name.upper().encode()

    @property
    def frame_counter(self) -> int:
        return self.received.last or 0

    @property
    def lls_password(self) -> bytes:
        return self._secret if self._secret is not None else self.options.password

    def authenticate(self, client_sap: int, password: bytes | None) -> bool:
        """Like the original meter: client 16 public (no auth), clients 1 and 32 LLS."""
        if client_sap == 16:
            return True
        if client_sap in (1, 32):
            return password == self.lls_password
        return False

    @property
    def control_state(self) -> int:
        return self._dc_state

    @property
    def control_mode(self) -> int:
        return self._dc_mode

    @property
    def output_state(self) -> bool:
        return self._dc_state == ControlState.CONNECTED

    def meter_time(self, real: float | None = None) -> float:
        """The meter clock's unix time when the true time is ``real`` (default now)."""
        if real is None:
            real = self._clock()
        t = real + self._clock_offset
        drift = self.options.clock_drift_ppm
        if drift:
            t += (real - self._clock_ref) * drift * 1e-6
        return t

    def set_meter_time(self, unix_time: float) -> None:
        """What a clock SET does: from now on the meter clock reads ``unix_time``."""
        real = self._clock()
        self._clock_offset = unix_time - real
        self._clock_ref = real

    def trigger(self, event: str) -> bool:
        """Fire a disconnector trigger ('remote_disconnect', 'manual_reconnect', ...); True if
        the state changed. Manual and local triggers stand for the button and the limiter."""
        allowed = MACHINE.get((self._dc_mode, event))
        if allowed is None:
            raise LocalProtocolError(f"unknown disconnect trigger {event!r}")
        dst = allowed.get(self._dc_state)
        if dst is None:
            return False
        self._set_state(dst)
        self.push.on_disconnector(event, dst)  # its event code, alarm push
        return True

    def raise_alarm(self, name: str) -> None:
        """Raise alarm ``name`` (protocol/alarm_register.ALARM_BITS) and push the alarm."""
        self.push.raise_alarm(name)

    # -- internals ---------------------------------------------------------------------------
    def _tau(self) -> int:
        return math.floor(self._clock()) - _v.EPOCH

    def now_tau(self) -> int:
        """Seconds since EPOCH now, true time (the profile book's "now")."""
        return self._tau()

    def energy_raw_at(self, tau: int) -> int:
        """The total active energy register (Wh) at ``tau``, the disconnector taken into account."""
        return self._energy_raw(tau)

    def _set_state(self, state: int) -> None:
        was_on = self._dc_state == ControlState.CONNECTED
        self._dc_state = state
        now_on = state == ControlState.CONNECTED
        if was_on and not now_on:
            self._off_since = self._tau()
        elif now_on and not was_on and self._off_since is not None:
            t0, t1 = self._off_since, self._tau()
            if t1 > t0:
                self._off = (*self._off, (t0, t1))
            self._off_since = None

    def _energy_raw(self, tau: int) -> int:
        """Energy register at ``tau``: the closed form minus what was not consumed while off."""
        i, model = self.index, self.model_name
        lost = 0.0
        for t0, t1 in self._off:
            if tau <= t0:
                break
            if tau < t1:
                return math.floor(energy_wh(model, i, t0) - lost)
            lost += energy_wh(model, i, t1) - energy_wh(model, i, t0)
        else:
            if self._off_since is not None and tau > self._off_since:
                return math.floor(energy_wh(model, i, self._off_since) - lost)
        return math.floor(energy_wh(model, i, tau) - lost)

    def _supply_off_at(self, tau: int) -> bool:
        if self._off_since is not None and tau >= self._off_since:
            return True
        return bool(self._off) and any(t0 <= tau < t1 for t0, t1 in self._off)

    def _register_raw(self, spec: _v.RegisterSpec, tau: int) -> int:
        q = spec.quantity
        if q == _v.ENERGY:
            den: int = 10**spec.scaler  # energies have scalers >= 0
            return self._energy_raw(tau) // den
        if q in _ZERO_WHEN_OFF and self._supply_off_at(tau):
            return 0
        return raw_at(self.model_name, self.index, spec, tau)

    # -- the object table's handlers (objects.ObjectHost): wire values in, wire results out ----
    def get_register(self, spec: _v.RegisterSpec) -> Typed:
        return Typed(REG_TYPES[spec.quantity], self._register_raw(spec, self._tau()))

    def register_raw(self, spec: _v.RegisterSpec) -> int:
        return self._register_raw(spec, self._tau())

    def get_clock(self) -> Typed:
        return Typed(DataType.OCTET_STRING, self._profiles.zone.stamp(self.meter_time()))

    @property
    def clock_time_zone(self) -> int:
        return self._profiles.zone.standard_deviation(self.meter_time())

    @property
    def clock_dst_enabled(self) -> bool:
        return self._profiles.zone.has_dst(self.meter_time())

    @property
    def clock_status(self) -> int:
        return self._profiles.zone.status(self.meter_time())

    def get_profile_buffer(self, obis: bytes, access: SelectiveAccess | None) -> GetResult:
        return read_buffer(self._profiles.view(obis), access)

    def get_entries_in_use(self, obis: bytes) -> int:
        return self._profiles.view(obis).entries_in_use

    def get_billing_register(self, reg: BillingRegister) -> Typed:
        return Typed(DataType.DOUBLE_LONG_UNSIGNED, self._profiles.billing_raw(reg, self._tau()))

    def get_max_demand(self) -> tuple[Typed, Typed]:
        """1-0:1.6.0 value and capture_time: the day's highest quarter-hour so far."""
        watts, end = self._profiles.demand_today()
        zone = self._profiles.zone
        return (Typed(DataType.DOUBLE_LONG_UNSIGNED, watts),
                Typed(DataType.OCTET_STRING, zone.stamp(end + _v.EPOCH)))

    def get_event_code(self) -> Typed:
        return Typed(DataType.UNSIGNED, self._profiles.last_event_code())

    def reset_profile(self, obis: bytes, parameters: Any) -> tuple[ActionResult, None]:
        if not (parameters is None or type(parameters) is int):
            return ActionResult.TYPE_UNMATCHED, None
        self._profiles.reset(obis)
        return ActionResult.SUCCESS, None

    def set_clock(self, value: Any) -> DataAccessResult:
        if isinstance(value, (bytes, bytearray)):
            if len(value) != 12:
                return DataAccessResult.TYPE_UNMATCHED
            try:
                value = CosemDateTime.from_bytes(bytes(value))
            except DlmsError:
                return DataAccessResult.TYPE_UNMATCHED
        if not isinstance(value, CosemDateTime):
            return DataAccessResult.TYPE_UNMATCHED
        t = self._profiles.zone.instant(value)  # no deviation: the meter's local time
        if t is None:
            return DataAccessResult.OTHER_REASON  # wildcards: no instant to set the clock to
        self.set_meter_time(t)
        return DataAccessResult.SUCCESS

    def set_control_mode(self, value: Any) -> DataAccessResult:
        if type(value) is not int:
            return DataAccessResult.TYPE_UNMATCHED
        if value not in MODES:
            return DataAccessResult.OTHER_REASON
        self._dc_mode = value
        if value == 0:  # mode 0: "always in the connected state"
            self._set_state(ControlState.CONNECTED)
        return DataAccessResult.SUCCESS

    def set_secret(self, value: Any) -> DataAccessResult:
        if not isinstance(value, (bytes, bytearray)):
            return DataAccessResult.TYPE_UNMATCHED
        self._secret = bytes(value)
        return DataAccessResult.SUCCESS

    def call_disconnector(self, event: str, parameters: Any) -> tuple[ActionResult, None]:
        if not (parameters is None or type(parameters) is int):
            return ActionResult.TYPE_UNMATCHED, None
        if self._dc_mode == 0:
            return ActionResult.READ_WRITE_DENIED, None  # no remote control in mode 0
        self.trigger(event)  # no transition from this state: accepted, nothing changes
        return ActionResult.SUCCESS, None

    def call_clock(self, method: int, parameters: Any) -> tuple[ActionResult, None]:
        if not (parameters is None or type(parameters) is int):
            return ActionResult.TYPE_UNMATCHED, None
        now = self.meter_time()
        if method == 6:  # shift_time(long -900..900 s)
            if parameters is None or not -900 <= parameters <= 900:
                return ActionResult.OTHER_REASON, None
            self.set_meter_time(now + parameters)
        else:  # 1 adjust_to_quarter, 3 adjust_to_minute: to the nearest boundary
            step = 900 if method == 1 else 60
            self.set_meter_time(math.floor(now / step + 0.5) * step)
        return ActionResult.SUCCESS, None
