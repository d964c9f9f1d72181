"""The object table every simulated meter shares: which COSEM objects exist, their attributes and
methods, who may read, write or call them, and the association's object_list built from that.

Built once at import. Getters, setters and methods are small functions of the meter instance
(``m``), so per-meter state stays in the instance and the tables stay shared. They call only the
public ``ObjectHost`` interface below, which MeterModel implements: the tables neither import the
model nor touch its private state. The access rights published in object_list are derived from
the same entries that serve requests, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..protocol.axdr import DataType, Typed
from ..protocol.obis import Obis
from . import values as _v
from .profile import CLOCK_OBIS, CaptureObject, ProfileSpec
from .profile_data import (
    BILLING_REGISTERS,
    EVENT_CODE_OBIS,
    LOAD_PROFILE,
    MAX_DEMAND,
    PROFILES,
    BillingRegister,
)

if TYPE_CHECKING:  # annotations only
    from ..protocol.apdu.common import ActionResult, DataAccessResult, SelectiveAccess


class ObjectHost(Protocol):
    """What the tables call on a meter (MeterModel): values as the wire has them."""

    @property
    def serial(self) -> bytes: ...
    @property
    def logical_device_name(self) -> bytes: ...
    @property
    def output_state(self) -> bool: ...
    @property
    def control_state(self) -> int: ...
    @property
    def control_mode(self) -> int: ...
    def get_register(self, spec: _v.RegisterSpec) -> Typed: ...
    def get_clock(self) -> Typed: ...
    @property
    def clock_time_zone(self) -> int: ...
    @property
    def clock_dst_enabled(self) -> bool: ...
    @property
    def clock_status(self) -> int: ...
    def get_profile_buffer(
        self, obis: bytes, access: SelectiveAccess | None
    ) -> Typed | DataAccessResult: ...
    def get_entries_in_use(self, obis: bytes) -> int: ...
    def get_billing_register(self, reg: BillingRegister) -> Typed: ...
    def get_max_demand(self) -> tuple[Typed, Typed]: ...
    def get_event_code(self) -> Typed: ...
    def reset_profile(self, obis: bytes, parameters: Any) -> tuple[ActionResult, None]: ...
    @property
    def frame_counter(self) -> int: ...
    def set_clock(self, value: Any) -> DataAccessResult: ...
    def set_control_mode(self, value: Any) -> DataAccessResult: ...
    def set_secret(self, value: Any) -> DataAccessResult: ...
    def call_clock(self, method: int, parameters: Any) -> tuple[ActionResult, None]: ...
    def call_disconnector(self, event: str, parameters: Any) -> tuple[ActionResult, None]: ...


if TYPE_CHECKING:
    Getter = Callable[[ObjectHost, SelectiveAccess | None], Typed | DataAccessResult]
    Setter = Callable[[ObjectHost, object], DataAccessResult]  # value as natives
    Method = Callable[[ObjectHost, object], tuple[ActionResult, Typed | None]]

__all__ = [
    "ACTION_TABLE",
    "ASSOCIATION_OBIS",
    "CLASS_OF",
    "DISCONNECT_OBIS",
    "FRAME_COUNTER_OBIS",
    "GET_TABLE",
    "LDN_OBIS",
    "OBJECT_DEFS",
    "OBJECT_LIST",
    "PROFILE",
    "REG_TYPES",
    "SERIAL_OBIS",
    "SET_TABLE",
    "AttrDef",
    "ObjectDef",
    "ObjectHost",
]


ASSOCIATION_OBIS = Obis.parse("0-0:40.0.0")
SERIAL_OBIS = Obis.parse("0-0:96.1.0")
LDN_OBIS = Obis.parse("0-0:42.0.0")
DISCONNECT_OBIS = Obis.parse("0-0:96.3.10")
FRAME_COUNTER_OBIS = Obis.parse("0-0:43.1.0")

# Register value types: what a real three-phase meter uses for each quantity.
REG_TYPES = {
    _v.VOLTAGE: DataType.LONG_UNSIGNED,
    _v.CURRENT: DataType.LONG_UNSIGNED,
    _v.FREQUENCY: DataType.LONG_UNSIGNED,
    _v.POWER: DataType.DOUBLE_LONG,
    _v.ENERGY: DataType.DOUBLE_LONG_UNSIGNED,
}

PROFILE = LOAD_PROFILE  # the first profile's name, kept for its tests


class AttrDef(NamedTuple):
    id: int
    getter: Getter | None = None
    setter: Setter | None = None
    selectors: tuple[int, ...] = ()  # access selectors the getter understands

    @property
    def access_mode(self) -> int:
        # Blue Book attribute access_mode: 0 no_access, 1 read_only, 2 write_only, 3 read_and_write
        return (1 if self.getter else 0) | (2 if self.setter else 0)


class ObjectDef(NamedTuple):
    class_id: int
    version: int
    obis: Obis
    attributes: tuple[AttrDef, ...]
    methods: tuple[tuple[int, Method | None], ...]  # (method id, callable or None = no access)


def _const(value: Typed) -> Getter:
    return lambda m, access: value


def _u8(v: int) -> Typed:
    return Typed(DataType.UNSIGNED, v)


def _enum(v: int) -> Typed:
    return Typed(DataType.ENUM, v)


def _dlu(v: int) -> Typed:
    return Typed(DataType.DOUBLE_LONG_UNSIGNED, v)


def _ln(obis: Obis) -> AttrDef:
    return AttrDef(1, _const(Typed(DataType.OCTET_STRING, obis.to_bytes())))


def _register_def(obis: Obis, scaler: int, unit: int, value: Getter) -> ObjectDef:
    scaler_unit = Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, scaler), _enum(unit)))
    return ObjectDef(
        3,
        0,
        obis,
        (_ln(obis), AttrDef(2, value), AttrDef(3, _const(scaler_unit))),
        ((1, None),),  # reset: a meter does not let anyone zero its energy register
    )


def _register(spec: _v.RegisterSpec) -> ObjectDef:
    return _register_def(spec.obis, spec.scaler, spec.unit, lambda m, a: m.get_register(spec))


def _billing_register(reg: BillingRegister) -> ObjectDef:
    return _register_def(reg.obis, reg.scaler, reg.unit, lambda m, a: m.get_billing_register(reg))


# An all-wildcard date-time: DST begin/end are not used by a meter that runs on UTC.
_NO_DATETIME = Typed(DataType.OCTET_STRING, bytes.fromhex("ffffffffffffffffff8000ff"))

_CLOCK = ObjectDef(
    8,
    0,
    CLOCK_OBIS,
    (
        _ln(CLOCK_OBIS),
        AttrDef(2, lambda m, access: m.get_clock(), lambda m, v: m.set_clock(v)),
        AttrDef(3, lambda m, a: Typed(DataType.LONG, m.clock_time_zone)),  # Blue Book sign
        AttrDef(4, lambda m, a: _u8(m.clock_status)),  # OK, or 0x80 in summer time
        AttrDef(5, _const(_NO_DATETIME)),  # daylight_savings_begin
        AttrDef(6, _const(_NO_DATETIME)),  # daylight_savings_end
        AttrDef(7, _const(Typed(DataType.INTEGER, 60))),  # daylight_savings_deviation
        AttrDef(8, lambda m, a: Typed(DataType.BOOLEAN, m.clock_dst_enabled)),
        AttrDef(9, _const(_enum(1))),  # clock_base: internal crystal
    ),
    (
        (1, lambda m, p: m.call_clock(1, p)),  # adjust_to_quarter
        (2, None),  # adjust_to_measuring_period
        (3, lambda m, p: m.call_clock(3, p)),  # adjust_to_minute
        (4, None),  # adjust_to_preset_time
        (5, None),  # preset_adjusting_time
        (6, lambda m, p: m.call_clock(6, p)),  # shift_time
    ),
)

_SERIAL = ObjectDef(
    1,
    0,
    SERIAL_OBIS,
    (_ln(SERIAL_OBIS), AttrDef(2, lambda m, a: Typed(DataType.OCTET_STRING, m.serial))),
    (),
)
_LDN = ObjectDef(
    1,
    0,
    LDN_OBIS,
    (
        _ln(LDN_OBIS),
        AttrDef(2, lambda m, a: Typed(DataType.OCTET_STRING, m.logical_device_name)),
    ),
    (),
)

_DISCONNECT = ObjectDef(
    70,
    0,
    DISCONNECT_OBIS,
    (
        _ln(DISCONNECT_OBIS),
        AttrDef(2, lambda m, a: Typed(DataType.BOOLEAN, m.output_state)),
        AttrDef(3, lambda m, a: _enum(m.control_state)),
        AttrDef(4, lambda m, a: _enum(m.control_mode), lambda m, v: m.set_control_mode(v)),
    ),
    (
        (1, lambda m, p: m.call_disconnector("remote_disconnect", p)),
        (2, lambda m, p: m.call_disconnector("remote_reconnect", p)),
    ),
)

_CLOCK_DEF = CaptureObject(8, CLOCK_OBIS, 2).typed()


def _profile(spec: ProfileSpec) -> ObjectDef:
    raw = spec.obis.to_bytes()
    return ObjectDef(
        7,
        1,
        spec.obis,
        (
            _ln(spec.obis),
            AttrDef(2, lambda m, access: m.get_profile_buffer(raw, access), selectors=(1, 2)),
            AttrDef(3, _const(spec.capture_objects_typed())),
            AttrDef(4, _const(_dlu(spec.capture_period))),
            AttrDef(5, _const(_enum(1))),  # sort_method: fifo (oldest entry first)
            AttrDef(6, _const(_CLOCK_DEF)),  # sort_object: the capture time
            AttrDef(7, lambda m, a: _dlu(m.get_entries_in_use(raw))),
            AttrDef(8, _const(_dlu(spec.capacity))),
        ),
        # reset empties the buffer; capture: the rows are computed, not stored
        ((1, lambda m, p: m.reset_profile(raw, p)), (2, None)),
    )


# Extended register (class 4): maximum demand of the day so far, captured daily by the billing
# profile; status: unsigned 0 (no status bits).
_MAX_DEMAND = ObjectDef(
    4,
    0,
    MAX_DEMAND.obis,
    (
        _ln(MAX_DEMAND.obis),
        AttrDef(2, lambda m, a: m.get_max_demand()[0]),
        AttrDef(3, _const(Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, MAX_DEMAND.scaler),
                                                     _enum(MAX_DEMAND.unit))))),
        AttrDef(4, _const(_u8(0))),
        AttrDef(5, lambda m, a: m.get_max_demand()[1]),
    ),
    ((1, None),),  # reset
)

# Data (class 1): the code of the newest event in the standard event log.
_EVENT_CODE = ObjectDef(
    1, 0, EVENT_CODE_OBIS, (_ln(EVENT_CODE_OBIS), AttrDef(2, lambda m, a: m.get_event_code())), ()
)


# Data (class 1): the last invocation counter accepted from the management client; a client
# that lost its own continues from value + 1. Public: read without ciphering by client 16.
_FRAME_COUNTER = ObjectDef(
    1, 0, FRAME_COUNTER_OBIS,
    (_ln(FRAME_COUNTER_OBIS), AttrDef(2, lambda m, a: _dlu(m.frame_counter))),
    (),
)


def _association(object_list: list[Typed]) -> ObjectDef:
    listed = Typed(DataType.ARRAY, object_list)  # the same object for every meter and read
    return ObjectDef(
        15,
        1,
        ASSOCIATION_OBIS,
        (
            _ln(ASSOCIATION_OBIS),
            AttrDef(2, _const(listed)),
            AttrDef(3),  # associated_partners_id: depends on the session, not served here
            AttrDef(4),  # application_context_name
            AttrDef(5),  # xDLMS_context_info
            AttrDef(6),  # authentication_mechanism_name
            AttrDef(7, None, lambda m, v: m.set_secret(v)),  # LLS secret: write-only
            AttrDef(8, _const(_enum(2))),  # association_status: associated
            AttrDef(9),  # security_setup_reference
        ),
        tuple((i, None) for i in range(1, 7)),
    )


def _list_entry(obj: ObjectDef) -> Typed:
    attrs = [
        Typed(
            DataType.STRUCTURE,
            (
                Typed(DataType.INTEGER, a.id),
                _enum(a.access_mode),
                Typed(DataType.ARRAY, [Typed(DataType.INTEGER, s) for s in a.selectors])
                if a.selectors
                else Typed(DataType.NULL_DATA, None),
            ),
        )
        for a in obj.attributes
    ]
    # Association LN version >= 1: method access_mode is an enum (0 no_access, 1 access).
    methods = [
        Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, i), _enum(1 if fn else 0)))
        for i, fn in obj.methods
    ]
    return Typed(
        DataType.STRUCTURE,
        (
            Typed(DataType.LONG_UNSIGNED, obj.class_id),
            _u8(obj.version),
            Typed(DataType.OCTET_STRING, obj.obis.to_bytes()),
            Typed(
                DataType.STRUCTURE,
                (Typed(DataType.ARRAY, attrs), Typed(DataType.ARRAY, methods)),
            ),
        ),
    )


def _build() -> tuple[tuple[ObjectDef, ...], Typed]:
    others = (
        _CLOCK,
        _SERIAL,
        _LDN,
        *(_register(s) for s in _v.REGISTERS),
        _DISCONNECT,
        *(_billing_register(r) for r in BILLING_REGISTERS),
        _MAX_DEMAND,
        *(_profile(spec) for spec in PROFILES),
        _EVENT_CODE,
        _FRAME_COUNTER,
    )
    # The association lists itself too; its own entry does not depend on the list's content.
    own = _association([])
    entries = [_list_entry(own)] + [_list_entry(o) for o in others]
    return (_association(entries), *others), Typed(DataType.ARRAY, entries)


OBJECT_DEFS, OBJECT_LIST = _build()

Key = tuple[int, bytes, int]
GET_TABLE: dict[Key, tuple[Getter | None, bool]] = {}
SET_TABLE: dict[Key, Setter] = {}
ACTION_TABLE: dict[Key, Method | None] = {}
CLASS_OF: dict[bytes, int] = {}
for _obj in OBJECT_DEFS:
    _raw = _obj.obis.to_bytes()
    CLASS_OF[_raw] = _obj.class_id
    for _a in _obj.attributes:
        GET_TABLE[(_obj.class_id, _raw, _a.id)] = (_a.getter, bool(_a.selectors))
        if _a.setter is not None:
            SET_TABLE[(_obj.class_id, _raw, _a.id)] = _a.setter
    for _mid, _fn in _obj.methods:
        ACTION_TABLE[(_obj.class_id, _raw, _mid)] = _fn
