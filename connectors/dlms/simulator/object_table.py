"""How an object table is made: object and attribute definitions, the interface their handlers
call on a meter, the association's object_list entries, and the lookup tables the model serves
requests from (objects.py holds the concrete objects of each meter model).

Getters, setters and methods are small functions of the meter instance (``m``), so per-meter
state stays in the instance and the tables stay shared. They call only the public
``ObjectHost`` interface below, which MeterModel implements. The access rights published in
object_list are derived from the same entries that serve requests, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from ..protocol.axdr import DataType, Typed
from ..protocol.obis import Obis
from . import values as _v
from .profile_data import BillingRegister

if TYPE_CHECKING:  # annotations only
    from ..protocol.apdu.common import ActionResult, DataAccessResult, SelectiveAccess

__all__ = [
    "ASSOCIATION_OBIS",
    "AttrDef",
    "ObjectDef",
    "ObjectHost",
    "ObjectTable",
    "association",
    "build_table",
    "const",
    "dlu",
    "enum",
    "ln_attr",
    "register_def",
    "u8",
]


class PushAccess(Protocol):
    """What the Push setup and alarm register handlers use (push_setup.PushState)."""

    alarm: int
    disconnector_event: int
    def setup(self, obis: bytes) -> Any: ...
    def change(self, obis: bytes, **fields: Any) -> None: ...
    def request(self, obis: bytes) -> bool: ...


class ObjectHost(Protocol):
    """What the tables call on a meter (MeterModel): values as the wire has them."""

    @property
    def serial(self) -> bytes: ...
    @property
    def logical_device_name(self) -> bytes: ...
    @property
    def firmware_version(self) -> bytes: ...
    @property
    def output_state(self) -> bool: ...
    @property
    def control_state(self) -> int: ...
    @property
    def control_mode(self) -> int: ...
    def get_register(self, spec: _v.RegisterSpec) -> Typed: ...
    def register_raw(self, spec: _v.RegisterSpec) -> int: ...
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
    @property
    def push(self) -> PushAccess: ...  # Push setups and alarm register (push_setup.py)
    def get(self, class_id: int, obis: Any, attribute: int,
            access: SelectiveAccess | None = None) -> Typed | DataAccessResult: ...


if TYPE_CHECKING:
    Getter = Callable[[ObjectHost, SelectiveAccess | None], Typed | DataAccessResult]
    Setter = Callable[[ObjectHost, object], DataAccessResult]  # value as natives
    Method = Callable[[ObjectHost, object], tuple[ActionResult, Typed | None]]


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


def const(value: Typed) -> Getter:
    return lambda m, access: value


def u8(v: int) -> Typed:
    return Typed(DataType.UNSIGNED, v)


def enum(v: int) -> Typed:
    return Typed(DataType.ENUM, v)


def dlu(v: int) -> Typed:
    return Typed(DataType.DOUBLE_LONG_UNSIGNED, v)


def ln_attr(obis: Obis) -> AttrDef:
    return AttrDef(1, const(Typed(DataType.OCTET_STRING, obis.to_bytes())))


def register_def(obis: Obis, scaler: int, unit: int, value: Getter) -> ObjectDef:
    scaler_unit = Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, scaler), enum(unit)))
    return ObjectDef(
        3,
        0,
        obis,
        (ln_attr(obis), AttrDef(2, value), AttrDef(3, const(scaler_unit))),
        ((1, None),),  # reset: a meter does not let anyone zero its energy register
    )


ASSOCIATION_OBIS = Obis.parse("0-0:40.0.0")


def association(object_list: list[Typed]) -> ObjectDef:
    listed = Typed(DataType.ARRAY, object_list)  # the same object for every meter and read
    return ObjectDef(
        15,
        1,
        ASSOCIATION_OBIS,
        (
            ln_attr(ASSOCIATION_OBIS),
            AttrDef(2, const(listed)),
            AttrDef(3),  # associated_partners_id: depends on the session, not served here
            AttrDef(4),  # application_context_name
            AttrDef(5),  # xDLMS_context_info
            AttrDef(6),  # authentication_mechanism_name
            AttrDef(7, None, lambda m, v: m.set_secret(v)),  # LLS secret: write-only
            AttrDef(8, const(enum(2))),  # association_status: associated
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
                enum(a.access_mode),
                Typed(DataType.ARRAY, [Typed(DataType.INTEGER, s) for s in a.selectors])
                if a.selectors
                else Typed(DataType.NULL_DATA, None),
            ),
        )
        for a in obj.attributes
    ]
    # Association LN version >= 1: method access_mode is an enum (0 no_access, 1 access).
    methods = [
        Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, i), enum(1 if fn else 0)))
        for i, fn in obj.methods
    ]
    return Typed(
        DataType.STRUCTURE,
        (
            Typed(DataType.LONG_UNSIGNED, obj.class_id),
            u8(obj.version),
            Typed(DataType.OCTET_STRING, obj.obis.to_bytes()),
            Typed(
                DataType.STRUCTURE,
                (Typed(DataType.ARRAY, attrs), Typed(DataType.ARRAY, methods)),
            ),
        ),
    )


Key = tuple[int, bytes, int]


class ObjectTable(NamedTuple):
    """One meter model's objects (the association first) and the lookups requests use."""

    defs: tuple[ObjectDef, ...]
    object_list: Typed
    get: dict[Key, tuple[Getter | None, bool]]  # getter, takes selective access
    set: dict[Key, Setter]
    action: dict[Key, Method | None]
    class_of: dict[bytes, int]


def build_table(others: tuple[ObjectDef, ...]) -> ObjectTable:
    """The table of a meter with ``others`` and the association listing them all."""
    # The association lists itself too; its own entry does not depend on the list's content.
    entries = [_list_entry(association([]))] + [_list_entry(o) for o in others]
    defs = (association(entries), *others)
    table = ObjectTable(defs, Typed(DataType.ARRAY, entries), {}, {}, {}, {})
    for obj in defs:
        raw = obj.obis.to_bytes()
        table.class_of[raw] = obj.class_id
        for a in obj.attributes:
            table.get[(obj.class_id, raw, a.id)] = (a.getter, bool(a.selectors))
            if a.setter is not None:
                table.set[(obj.class_id, raw, a.id)] = a.setter
        for mid, fn in obj.methods:
            table.action[(obj.class_id, raw, mid)] = fn
    return table
