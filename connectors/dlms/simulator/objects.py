"""The COSEM objects of the simulated meters, one table per meter model (see meter_models.py):
which objects exist, their attributes and methods, who may read, write or call them, and the
association's object_list built from the same entries (object_table.py).

Built once at import and shared by every meter of a model. The module-level OBJECT_DEFS,
OBJECT_LIST, GET_TABLE, SET_TABLE, ACTION_TABLE and CLASS_OF are the "poly" model's (the
original meter); ``TABLES[model]`` holds every model's.
"""

from __future__ import annotations

from ..protocol.axdr import DataType, Typed
from ..protocol.obis import Obis
from . import values as _v
from .meter_models import MODELS, ModelRegister, registers_of
from .object_table import (
    ASSOCIATION_OBIS,
    AttrDef,
    ObjectDef,
    ObjectHost,
    ObjectTable,
    build_table,
    const,
    dlu,
    enum,
    ln_attr,
    register_def,
    u8,
)
from .profile import CLOCK_OBIS, CaptureObject, ProfileSpec
from .profile_data import (
    BILLING_REGISTERS,
    EVENT_CODE_OBIS,
    LOAD_PROFILE,
    MAX_DEMAND,
    PROFILES_OF,
    BillingRegister,
)
from .push_setup import push_objects

__all__ = [
    "ACTION_TABLE",
    "ASSOCIATION_OBIS",
    "CLASS_OF",
    "DISCONNECT_OBIS",
    "FIRMWARE_OBIS",
    "FRAME_COUNTER_OBIS",
    "GET_TABLE",
    "LDN_OBIS",
    "OBJECT_DEFS",
    "OBJECT_LIST",
    "PROFILE",
    "REG_TYPES",
    "SERIAL_OBIS",
    "SET_TABLE",
    "TABLES",
    "AttrDef",
    "ObjectDef",
    "ObjectHost",
    "ObjectTable",
]


SERIAL_OBIS = Obis.parse("0-0:96.1.0")
LDN_OBIS = Obis.parse("0-0:42.0.0")
DISCONNECT_OBIS = Obis.parse("0-0:96.3.10")
FRAME_COUNTER_OBIS = Obis.parse("0-0:43.1.0")
FIRMWARE_OBIS = Obis.parse("1-0:0.2.0")

# Register value types: what a real three-phase meter uses for each quantity.
REG_TYPES = {
    _v.VOLTAGE: DataType.LONG_UNSIGNED,
    _v.CURRENT: DataType.LONG_UNSIGNED,
    _v.FREQUENCY: DataType.LONG_UNSIGNED,
    _v.POWER: DataType.DOUBLE_LONG,
    _v.ENERGY: DataType.DOUBLE_LONG_UNSIGNED,
}

PROFILE = LOAD_PROFILE  # the first profile's name, kept for its tests


def _register(spec: _v.RegisterSpec) -> ObjectDef:
    return register_def(spec.obis, spec.scaler, spec.unit, lambda m, a: m.get_register(spec))


def _model_register(reg: ModelRegister) -> ObjectDef:
    spec, typ = reg
    return register_def(spec.obis, spec.scaler, spec.unit,
                        lambda m, a: Typed(typ, m.register_raw(spec)))


def _billing_register(reg: BillingRegister) -> ObjectDef:
    return register_def(reg.obis, reg.scaler, reg.unit, lambda m, a: m.get_billing_register(reg))


# An all-wildcard date-time: DST begin/end are not used by a meter that runs on UTC.
_NO_DATETIME = Typed(DataType.OCTET_STRING, bytes.fromhex("ffffffffffffffffff8000ff"))

_CLOCK = ObjectDef(
    8,
    0,
    CLOCK_OBIS,
    (
        ln_attr(CLOCK_OBIS),
        AttrDef(2, lambda m, access: m.get_clock(), lambda m, v: m.set_clock(v)),
        AttrDef(3, lambda m, a: Typed(DataType.LONG, m.clock_time_zone)),  # Blue Book sign
        AttrDef(4, lambda m, a: u8(m.clock_status)),  # OK, or 0x80 in summer time
        AttrDef(5, const(_NO_DATETIME)),  # daylight_savings_begin
        AttrDef(6, const(_NO_DATETIME)),  # daylight_savings_end
        AttrDef(7, const(Typed(DataType.INTEGER, 60))),  # daylight_savings_deviation
        AttrDef(8, lambda m, a: Typed(DataType.BOOLEAN, m.clock_dst_enabled)),
        AttrDef(9, const(enum(1))),  # clock_base: internal crystal
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
    (ln_attr(SERIAL_OBIS), AttrDef(2, lambda m, a: Typed(DataType.OCTET_STRING, m.serial))),
    (),
)
_LDN = ObjectDef(
    1,
    0,
    LDN_OBIS,
    (
        ln_attr(LDN_OBIS),
        AttrDef(2, lambda m, a: Typed(DataType.OCTET_STRING, m.logical_device_name)),
    ),
    (),
)

_DISCONNECT = ObjectDef(
    70,
    0,
    DISCONNECT_OBIS,
    (
        ln_attr(DISCONNECT_OBIS),
        AttrDef(2, lambda m, a: Typed(DataType.BOOLEAN, m.output_state)),
        AttrDef(3, lambda m, a: enum(m.control_state)),
        AttrDef(4, lambda m, a: enum(m.control_mode), lambda m, v: m.set_control_mode(v)),
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
            ln_attr(spec.obis),
            AttrDef(2, lambda m, access: m.get_profile_buffer(raw, access), selectors=(1, 2)),
            AttrDef(3, const(spec.capture_objects_typed())),
            AttrDef(4, const(dlu(spec.capture_period))),
            AttrDef(5, const(enum(1))),  # sort_method: fifo (oldest entry first)
            AttrDef(6, const(_CLOCK_DEF)),  # sort_object: the capture time
            AttrDef(7, lambda m, a: dlu(m.get_entries_in_use(raw))),
            AttrDef(8, const(dlu(spec.capacity))),
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
        ln_attr(MAX_DEMAND.obis),
        AttrDef(2, lambda m, a: m.get_max_demand()[0]),
        AttrDef(3, const(Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, MAX_DEMAND.scaler),
                                                     enum(MAX_DEMAND.unit))))),
        AttrDef(4, const(u8(0))),
        AttrDef(5, lambda m, a: m.get_max_demand()[1]),
    ),
    ((1, None),),  # reset
)

# Data (class 1): the code of the newest event in the standard event log.
_EVENT_CODE = ObjectDef(
    1, 0, EVENT_CODE_OBIS, (ln_attr(EVENT_CODE_OBIS), AttrDef(2, lambda m, a: m.get_event_code())), ()
)


# Data (class 1): the last invocation counter accepted from the management client; a client
# that lost its own continues from value + 1. Public: read without ciphering by client 16.
_FRAME_COUNTER = ObjectDef(
    1, 0, FRAME_COUNTER_OBIS,
    (ln_attr(FRAME_COUNTER_OBIS), AttrDef(2, lambda m, a: dlu(m.frame_counter))),
    (),
)


# Data (class 1): the active firmware's version string (mono and ct meters publish theirs).
_FIRMWARE = ObjectDef(
    1, 0, FIRMWARE_OBIS,
    (ln_attr(FIRMWARE_OBIS), AttrDef(2, lambda m, a: Typed(DataType.OCTET_STRING,
                                                           m.firmware_version))),
    (),
)


def _objects(model: str) -> tuple[ObjectDef, ...]:
    """Every object of ``model`` but the association, in object_list order."""
    profiles = tuple(_profile(spec) for spec in PROFILES_OF[model])
    if model == "poly":
        return (
            _CLOCK, _SERIAL, _LDN, *(_register(s) for s in _v.REGISTERS), _DISCONNECT,
            *(_billing_register(r) for r in BILLING_REGISTERS), _MAX_DEMAND, *profiles,
            _EVENT_CODE, _FRAME_COUNTER, *push_objects(),
        )
    registers = tuple(_model_register(r) for r in registers_of(model))
    if model == "mono":
        return (_CLOCK, _SERIAL, _LDN, _FIRMWARE, *registers, _DISCONNECT, *profiles,
                _FRAME_COUNTER, *push_objects())
    return (_CLOCK, _SERIAL, _LDN, _FIRMWARE, *registers, _MAX_DEMAND, *profiles,
            _FRAME_COUNTER, *push_objects())


TABLES: dict[str, ObjectTable] = {model: build_table(_objects(model)) for model in MODELS}
OBJECT_DEFS, OBJECT_LIST, GET_TABLE, SET_TABLE, ACTION_TABLE, CLASS_OF = TABLES["poly"]
