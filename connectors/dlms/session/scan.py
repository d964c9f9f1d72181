"""Scan a meter over a connected session: what objects it has and what the client may read.

Two rounds, each as few GET(-with-list) requests as the negotiated PDU sizes allow, under the
session's own deadlines (``operation_timeout``, and ``machine.until`` for a whole command):

1. the object_list of the current association (0-0:40.0.0.255, class 15, attribute 2);
2. for every register (class 3, 4) its value and scaler_unit (attributes 2, 3), for every
   identity object (class 1: serial number, firmware, logical device name) its value, for every
   profile (class 7) its capture_objects and capture_period (attributes 3, 4): those the list
   says the client may read, or all of them for an object listed without rights.

Reading the values too checks what the access rights claim: a refusal leaves the object out of
the block with its reason in ``problems``; the scan goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..protocol.errors import DataAccessError, DlmsError, RemoteProtocolError
from ..protocol.obis import Obis
from ..protocol.obis_catalogue import is_identity
from ..protocol.object_list import (
    ASSOCIATION_CLASS,
    CURRENT_ASSOCIATION,
    ListedObject,
    parse_object_list,
)
from ..protocol.profile import CaptureColumn, capture_columns
from ..protocol.units import ScalerUnit
from .reading import REGISTER_CLASSES, Ref

__all__ = ["MAX_OBJECTS", "ScanResult", "scan_meter"]

MAX_OBJECTS = 2000  # a longer object_list is refused: more than any meter we know of lists


class _Reader(Protocol):
    def read(self, refs: Any) -> list[Any]: ...


@dataclass
class ScanResult:
    objects: tuple[ListedObject, ...]
    values: dict[tuple[int, Obis], Any] = field(default_factory=dict)  # attribute 2, raw
    scalers: dict[tuple[int, Obis], ScalerUnit] = field(default_factory=dict)
    captures: dict[Obis, tuple[CaptureColumn, ...]] = field(default_factory=dict)
    capture_periods: dict[Obis, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # per-object refusals, for stderr


def _refs(objects: tuple[ListedObject, ...]) -> list[Ref]:
    refs = []
    for o in objects:
        if o.class_id in REGISTER_CLASSES and o.may_read(2) and o.may_read(3):
            refs.append(Ref(o.class_id, o.obis, 3))
        elif o.class_id == 1 and is_identity(o.obis) and o.may_read(2):
            refs.append(Ref(1, o.obis, 2))
        elif o.class_id == 7 and o.may_read(3):
            refs += [Ref(7, o.obis, 3), Ref(7, o.obis, 4)]
    return refs


def scan_meter(session: _Reader) -> ScanResult:
    """Read the object list, then what describes each object (see the module doc). Raises
    DlmsError when the object list cannot be read; per-object refusals are ``problems``."""
    (listed,) = session.read([Ref(ASSOCIATION_CLASS, CURRENT_ASSOCIATION, 2)])
    if isinstance(listed, DataAccessError):
        raise DataAccessError(listed.result, f"object_list (0-0:40.0.0.255/15/2): {listed.name}")
    if isinstance(listed.raw, (list, tuple)) and len(listed.raw) > MAX_OBJECTS:
        raise RemoteProtocolError(f"object_list has {len(listed.raw)} entries, more than "
                                  f"{MAX_OBJECTS}")
    result = ScanResult(parse_object_list(listed.raw))
    refs = _refs(result.objects)
    # Register values after their scalers: the session scales them with the scaler just read.
    refs += [Ref(r.class_id, r.obis, 2) for r in refs if r.class_id in REGISTER_CLASSES]
    if not refs:
        return result
    for ref, answer in zip(refs, session.read(refs)):
        if isinstance(answer, DataAccessError):
            result.problems.append(f"{ref}: {answer.name}")
            continue
        try:
            _store(result, ref, answer.raw)
        except (DlmsError, ValueError, TypeError) as exc:
            result.problems.append(f"{ref}: {exc}")
    return result


def _store(result: ScanResult, ref: Ref, raw: Any) -> None:
    key = (ref.class_id, ref.obis)
    if ref.attribute == 2:
        result.values[key] = raw
    elif ref.class_id in REGISTER_CLASSES:
        result.scalers[key] = ScalerUnit.from_data(raw)
    elif ref.attribute == 3:
        result.captures[ref.obis] = capture_columns(raw)
    else:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise RemoteProtocolError(f"capture_period is not a number: {raw!r:.40}")
        result.capture_periods[ref.obis] = raw
