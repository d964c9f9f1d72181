"""What a read returns: ``Ref`` (what to read), ``Reading`` (what came back), the scaler cache.

A Register (class 3) or Extended register (class 4) value is only meaningful with its scaler_unit
(attribute 3). The scaler does not change while an association lasts, so it is read once per
association and kept in a ``ScalerCache``; every later cycle reads values only (the original system
re-read it every time: two GETs per register per cycle).

``Reading`` is a NamedTuple: immutable and built in one C call, which matters at thousands of
readings per second. ``value`` is what goes to ThingsBoard: the exactly scaled number for
registers, a JSON-ready rendering otherwise (date-times as ISO-8601 with their offset).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..protocol.apdu import AttributeDescriptor, SelectiveAccess
from ..protocol.axdr import Typed, to_json
from ..protocol.cosem_datetime import CosemDateTime, stamp_isoformat
from ..protocol.errors import DlmsError, LocalProtocolError
from ..protocol.obis import Obis
from ..protocol.units import ScalerUnit

__all__ = ["REGISTER_CLASSES", "Reading", "Ref", "ScalerCache", "render_value"]

REGISTER_CLASSES = frozenset((3, 4))  # Register, Extended register: attribute 3 = scaler_unit
# Attributes that are date-times carried as a 12-byte octet-string (Blue Book): clock time and
# DST begin/end, extended register capture_time.
_DATETIME_ATTRIBUTES = frozenset(((8, 2), (8, 5), (8, 6), (4, 5)))


class Ref(NamedTuple):
    """One attribute to read: (class_id, OBIS, attribute) and optional selective access."""

    class_id: int
    obis: Obis
    attribute: int
    access: SelectiveAccess | None = None

    @classmethod
    def of(cls, value: Any) -> Ref:
        """From a Ref, an object with those fields, or a (class_id, obis, attribute[, access])
        tuple; OBIS may be text."""
        if type(value) is cls:
            return value
        class_id = getattr(value, "class_id", None)
        if class_id is not None:  # an object with the fields (e.g. the engine's ObjectRef)
            obis = value.obis
            if type(obis) is not Obis:
                obis = Obis.parse(obis)
            return cls(class_id, obis, value.attribute, getattr(value, "access", None))
        try:
            class_id, obis, attribute, *rest = value
        except (TypeError, ValueError):
            raise LocalProtocolError(
                f"a reference is (class_id, obis, attribute[, access]), not {value!r}"
            ) from None
        if len(rest) > 1:
            raise LocalProtocolError(f"too many parts in reference {value!r}")
        return cls(class_id, Obis.parse(obis), attribute, rest[0] if rest else None)

    @property
    def is_register_value(self) -> bool:
        return self.attribute == 2 and self.class_id in REGISTER_CLASSES

    @property
    def descriptor(self) -> AttributeDescriptor:
        return AttributeDescriptor(self.class_id, self.obis, self.attribute)

    def __str__(self) -> str:
        return f"{self.obis}/{self.class_id}/{self.attribute}"


class Reading(NamedTuple):
    """One successfully read attribute.

    ``value``: scaled number (registers) or JSON-ready rendering; ``raw``: the decoded value as
    the meter sent it; ``scaler``/``unit``: from scaler_unit (registers only, unit as its symbol);
    ``read_at``: wall-clock ms since the epoch when the response arrived (the telemetry ts)."""

    ref: Ref
    value: Any
    raw: Any
    scaler: int | None
    unit: str | None
    read_at: int

    def to_json(self) -> dict[str, Any]:
        """The ``tb-dlms read`` shape."""
        if self.scaler is None:
            return {"value": self.value}
        return {
            "value": self.value,
            "unit": self.unit,
            "scaler": self.scaler,
            "raw": to_json(self.raw),
        }


class ScalerCache:
    """scaler_unit per (class_id, OBIS), valid for one association."""

    __slots__ = ("_map", "associations")

    def __init__(self) -> None:
        self._map: dict[tuple[int, Obis], ScalerUnit] = {}
        self.associations = 0  # how many times it was invalidated

    def get(self, class_id: int, obis: Obis) -> ScalerUnit | None:
        return self._map.get((class_id, obis))

    def put(self, class_id: int, obis: Obis, scaler_unit: ScalerUnit) -> None:
        self._map[(class_id, obis)] = scaler_unit

    def invalidate(self) -> None:
        """A new association: the meter may have been reconfigured meanwhile."""
        self._map.clear()
        self.associations += 1

    def __contains__(self, key: tuple[int, Obis]) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)


def render_value(class_id: int, attribute: int, value: Any, deviation_sign: int = -1) -> Any:
    """A JSON-ready rendering: date-times (typed, or 12-byte octet-strings where the Blue Book
    says the attribute is one) as ISO-8601 with the meter's offset, the rest as ``to_json``."""
    if (class_id, attribute) in _DATETIME_ATTRIBUTES and type(value) is bytes and len(value) == 12:
        try:
            return CosemDateTime.from_bytes(value).isoformat(deviation_sign=deviation_sign)
        except DlmsError:
            return value.hex()
    if class_id == 7 and attribute == 2 and isinstance(value, list):
        # Profile rows: capture times are 12-byte octet-strings; one that decodes as a valid
        # date-time is taken for one (a 12-character text fails the month/day checks).
        return [
            [_maybe_datetime(cell, deviation_sign) for cell in row]
            if isinstance(row, (list, tuple))
            else _render(row, deviation_sign)
            for row in value
        ]
    return _render(value, deviation_sign)


def _maybe_datetime(cell: Any, sign: int) -> Any:
    if type(cell) is bytes and len(cell) == 12:
        text = stamp_isoformat(cell, sign)  # a profile has one a row: the quick way first
        if text is not None:
            return text
        try:
            return CosemDateTime.from_bytes(cell).isoformat(deviation_sign=sign)
        except DlmsError:
            pass
    return _render(cell, sign)


def _render(value: Any, sign: int) -> Any:
    kind = type(value)
    if kind in (int, float, str, bool) or value is None:
        return value
    if isinstance(value, CosemDateTime):
        return value.isoformat(deviation_sign=sign)
    if isinstance(value, (list, tuple)):
        return [_render(v, sign) for v in value]
    if isinstance(value, Typed):
        return _render(value.value, sign)
    return to_json(value)  # bytes, bit-strings, dates, times, enums...
