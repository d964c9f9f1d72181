"""One simulated meter: its COSEM objects and what they answer (no sockets, no framing, no threads).

Objects are addressed as the wire addresses them: (class_id, OBIS, attribute) for GET/SET and
(class_id, OBIS, method) for ACTION. The object tables are built once per process and shared by
every MeterModel; an instance only holds the little state a meter can change (clock offset,
disconnector state, the intervals its supply was off, a new LLS secret), so 1,000 meters fit in
one process. Values are computed on demand from :mod:`.values` at the injected clock's "now".

Answers follow the Blue Book: unknown object -> object-undefined; known OBIS with another class ->
object-class-inconsistent; attribute or method the class does not define -> object-undefined;
defined but not readable/writable/callable here -> read-write-denied; value of the wrong type ->
type-unmatched; selective access where the attribute takes none -> other-reason.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timezone
from typing import Any, Union

from ..protocol.apdu.common import ActionResult, DataAccessResult, SelectiveAccess
from ..protocol.axdr import DataType, Typed
from ..protocol.cosem_datetime import CosemDateTime
from ..protocol.errors import DlmsError, LocalProtocolError
from ..protocol.obis import Obis
from ..protocol.security import CounterGuard
from . import values as _v
from .objects import ACTION_TABLE, CLASS_OF, GET_TABLE, PROFILE, REG_TYPES, SET_TABLE
from .profile import datetime_bytes, native, read_buffer, row_span

__all__ = ["DEFAULT_OPTIONS", "ControlState", "MeterModel", "MeterOptions"]

AnyObis = Union[Obis, bytes, bytearray, memoryview, str]
GetResult = Union[Typed, DataAccessResult]
# Documented test keys (the Green Book's examples), the defaults of `tb-dlms simulate`.
GREEN_BOOK_BLOCK_KEY = bytes(range(16))  # 000102...0F
GREEN_BOOK_AUTH_KEY = bytes(range(0xD0, 0xE0))  # D0D1...DF
AUTHENTICATIONS = ("lls", "hls-md5", "hls-sha1", "hls-gmac", "hls-sha256")


@dataclass(frozen=True)
class MeterOptions:
    """Quirks of one simulated meter. The model only stores them; the server wiring applies
    the link/session ones (sizes, latency, dropped or garbled replies, timeouts, wrapper)."""

    max_info_field: int = 128  # HDLC max information field length offered in the UA
    max_pdu_size: int = 1024  # xDLMS server max receive PDU size
    with_list: bool = True  # GET/SET-with-list in the conformance block
    latency_s: float = 0.0  # delay before every reply
    drop_every: int = 0  # drop every Nth reply (0 = never)
    garbage_every: int = 0  # prepend garbage bytes to every Nth reply (0 = never)
    password: bytes = b"22222222"  # LLS secret of clients 1 and 32 (client 16: public, no auth)
    inactivity_timeout_s: float = 180.0
    wrapper: bool = False  # IEC 62056-47 wrapper over TCP instead of HDLC
    clock_offset_s: float = 0.0  # the meter clock's error at construction
    clock_drift_ppm: float = 0.0  # how fast that error grows (+ = meter clock runs fast)
    control_mode: int = 1  # disconnect control mode at construction (Blue Book 0..6)
    # Malformed GET-with-list answers (single GETs stay right): "short" declares N results and
    # sends N-1, "block" puts a data-block layout under the with-list tag; "" answers well.
    bad_with_list: str = ""
    window: int = 1  # HDLC window offered in the UA, both directions (1..7)
    # Take only the first N I frames of each burst from the client and drop the rest (0 = all):
    # the poll is answered by RR N(R) below the client's last frame, a partial acknowledgement.
    partial_ack: int = 0
    # Clients 1 and 32: "lls", or an HLS mechanism ("hls-gmac", "hls-sha256", "hls-md5",
    # "hls-sha1"; the last three use ``password`` as the HLS secret). ``security``: "" (plain
    # xDLMS), "auth", "enc" or "auth-enc" (ciphering required, suite 0, global keys below).
    authentication: str = "lls"
    security: str = ""
    block_key: bytes = field(default=GREEN_BOOK_BLOCK_KEY, repr=False)
    auth_key: bytes = field(default=GREEN_BOOK_AUTH_KEY, repr=False)
    # Reject an AARQ proposing a dedicated key (a meter without them); else take it.
    refuse_dedicated: bool = False

    def __post_init__(self) -> None:
        if self.authentication not in AUTHENTICATIONS:
            raise LocalProtocolError(f"authentication must be one of {AUTHENTICATIONS}, "
                                     f"got {self.authentication!r}")
        if self.security not in ("", "auth", "enc", "auth-enc"):
            raise LocalProtocolError(f"security must be '', 'auth', 'enc' or 'auth-enc', "
                                     f"got {self.security!r}")
        if self.security and self.authentication == "lls":
            raise LocalProtocolError("ciphering (security) needs an HLS authentication")
        if self.bad_with_list not in ("", "short", "block"):
            raise LocalProtocolError(f"bad_with_list must be '', 'short' or 'block', "
                                     f"got {self.bad_with_list!r}")


DEFAULT_OPTIONS = MeterOptions()


def server_system_title(index: int) -> bytes:
    """Meter ``index``'s system title: manufacturer id "TBD" and the index (5 octets)."""
    return b"TBD" + (index & 0xFFFFFFFFFF).to_bytes(5, "big")


class ControlState:
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


# Disconnect control state machine (Blue Book, class 70): transition letter ->
# (trigger, from state, to state), and the transitions each control_mode allows.
_TRANSITIONS = {
    "a": ("remote_reconnect", 0, 2),
    "b": ("remote_disconnect", 1, 0),
    "c": ("remote_disconnect", 2, 0),
    "d": ("remote_reconnect", 0, 1),
    "e": ("manual_reconnect", 2, 1),
    "f": ("manual_disconnect", 1, 2),
    "g": ("local_disconnect", 1, 2),
    "h": ("local_reconnect", 2, 1),
}
_MODES = {
    0: "",
    1: "bcfgde",
    2: "bcfgae",
    3: "bcgde",
    4: "bcgae",
    5: "bcfgdeh",
    6: "bcgaeh",
}
# (mode, trigger) -> {from state: to state}
_MACHINE: dict[tuple[int, str], dict[int, int]] = {}
for _mode, _letters in _MODES.items():
    for _trigger in {t for t, _a, _b in _TRANSITIONS.values()}:
        _MACHINE[(_mode, _trigger)] = {
            src: dst for t, src, dst in (_TRANSITIONS[x] for x in _letters) if t == _trigger
        }


def _raw(obis: AnyObis) -> bytes:
    """The 6-byte key; bytes and Obis (what the server has) are the fast cases."""
    if type(obis) is bytes:
        return obis
    if isinstance(obis, Obis):
        return obis.to_bytes()
    if isinstance(obis, (bytearray, memoryview)):
        return bytes(obis)
    return Obis.parse(obis).to_bytes()  # text: tests and demos


def _missing(class_id: int, obis: AnyObis) -> int:
    """No such attribute or method: object-class-inconsistent (9) if the OBIS code names an
    object of another class, else object-undefined (4); same numbers in both result enums."""
    known = CLASS_OF.get(_raw(obis))
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
        "_secret",
        "_serial",
        "index",
        "options",
        "received",
    )

    def __init__(
        self,
        index: int,
        serial: str | None = None,
        clock: Callable[[], float] = time.time,
        options: MeterOptions = DEFAULT_OPTIONS,
    ) -> None:
        if options.control_mode not in _MODES:
            raise LocalProtocolError(f"control_mode must be 0..6, got {options.control_mode}")
        self.index = index
        self.options = options
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

    # -- the three services ----------------------------------------------------------------
    def get(
        self,
        class_id: int,
        obis: AnyObis,
        attribute: int,
        access: SelectiveAccess | None = None,
    ) -> GetResult:
        """GET one attribute: its value as a Typed, or why not as a DataAccessResult."""
        entry = GET_TABLE.get((class_id, _raw(obis), attribute))
        if entry is None:
            return DataAccessResult(_missing(class_id, obis))
        fn, selective = entry
        if fn is None:
            return DataAccessResult.READ_WRITE_DENIED
        if access is not None and not selective:
            return DataAccessResult.OTHER_REASON
        return fn(self, access)

    def set(self, class_id: int, obis: AnyObis, attribute: int, value: Any) -> DataAccessResult:
        """SET one attribute; ``value`` as decoded natives or Typed."""
        key = (class_id, _raw(obis), attribute)
        fn = SET_TABLE.get(key)
        if fn is None:
            if key in GET_TABLE:
                return DataAccessResult.READ_WRITE_DENIED
            return DataAccessResult(_missing(class_id, obis))
        return fn(self, native(value))

    def action(
        self, class_id: int, obis: AnyObis, method: int, parameters: Any = None
    ) -> tuple[ActionResult, Typed | None]:
        """ACTION: (result, return parameters or None)."""
        key = (class_id, _raw(obis), method)
        fn = ACTION_TABLE.get(key)
        if fn is None:
            if key in ACTION_TABLE:
                return ActionResult.READ_WRITE_DENIED, None
            return ActionResult(_missing(class_id, obis)), None
        return fn(self, native(parameters))

    # -- truth for tests, demo and benchmarks ------------------------------------------------
    def expected(self, obis: AnyObis, t: float | None = None) -> tuple[int, int, int]:
        """(raw, scaler, unit) this meter reports for a register at unix time ``t`` (default now),
        taking the disconnector into account."""
        spec = _v.spec_for(_raw(obis))
        tau = math.floor(self._clock() if t is None else t) - _v.EPOCH
        return self._register_raw(spec, tau), spec.scaler, spec.unit

    def expected_value(self, obis: AnyObis, t: float | None = None) -> float:
        raw, scaler, _ = self.expected(obis, t)
        return _v.scale(raw, scaler)

    @property
    def serial(self) -> bytes:
        return self._serial if self._serial is not None else b"SIM%08d" % self.index

    @property
    def logical_device_name(self) -> bytes:
        return b"SIMLDN%010d" % self.index  # 16 octets, the Blue Book maximum

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
        allowed = _MACHINE.get((self._dc_mode, event))
        if allowed is None:
            raise LocalProtocolError(f"unknown disconnect trigger {event!r}")
        dst = allowed.get(self._dc_state)
        if dst is None:
            return False
        self._set_state(dst)
        return True

    # -- internals ---------------------------------------------------------------------------
    def _tau(self) -> int:
        return math.floor(self._clock()) - _v.EPOCH

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
        i = self.index
        energy = _v.energy_wh_at
        lost = 0.0
        for t0, t1 in self._off:
            if tau <= t0:
                break
            if tau < t1:
                return math.floor(energy(i, t0) - lost)
            lost += energy(i, t1) - energy(i, t0)
        else:
            if self._off_since is not None and tau > self._off_since:
                return math.floor(energy(i, self._off_since) - lost)
        return math.floor(energy(i, tau) - lost)

    def _supply_off_at(self, tau: int) -> bool:
        if self._off_since is not None and tau >= self._off_since:
            return True
        return bool(self._off) and any(t0 <= tau < t1 for t0, t1 in self._off)

    def _register_raw(self, spec: _v.RegisterSpec, tau: int) -> int:
        q = spec.quantity
        if q == _v.ENERGY:
            return self._energy_raw(tau)
        if (q == _v.CURRENT or q == _v.POWER) and self._supply_off_at(tau):
            return 0
        return _v.raw_at(self.index, spec, tau)

    # -- the object table's handlers (objects.ObjectHost): wire values in, wire results out ----
    def get_register(self, spec: _v.RegisterSpec) -> Typed:
        return Typed(REG_TYPES[spec.quantity], self._register_raw(spec, self._tau()))

    def get_clock(self) -> Typed:
        return Typed(DataType.OCTET_STRING, datetime_bytes(self.meter_time()))

    def get_profile_buffer(self, access: SelectiveAccess | None) -> GetResult:
        index = self.index
        energy_type = REG_TYPES[_v.ENERGY]
        volt = _v.REGISTERS_BY_KEY["voltage_l1"]
        columns = (
            lambda tau: Typed(DataType.OCTET_STRING, datetime_bytes(tau + _v.EPOCH)),
            lambda tau: Typed(energy_type, self._energy_raw(tau)),
            lambda tau: Typed(REG_TYPES[_v.VOLTAGE], _v.raw_at(index, volt, tau)),
        )
        return read_buffer(PROFILE, self._tau(), columns, access)

    def get_entries_in_use(self) -> int:
        first, last = row_span(PROFILE, self._tau())
        return max(0, last - first + 1)

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
        try:
            d = value.to_datetime()
        except DlmsError:
            return DataAccessResult.OTHER_REASON  # wildcards: no instant to set the clock to
        if d.tzinfo is None:
            d = d.replace(tzinfo=timezone.utc)  # deviation not specified: the meter runs UTC
        self.set_meter_time(d.timestamp())
        return DataAccessResult.SUCCESS

    def set_control_mode(self, value: Any) -> DataAccessResult:
        if type(value) is not int:
            return DataAccessResult.TYPE_UNMATCHED
        if value not in _MODES:
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
