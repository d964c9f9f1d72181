"""Planning a read cycle and turning its results into readings (pure: no I/O, no clock).

A ``ReadPlan`` is built once per (ref list, scaler cache state, with-list state) and reused every
steady cycle: the descriptors are encoded, the batches cut, and each register's scaler, unit
symbol and exact scaling factor resolved, so a cycle costs the GETs and little else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

from ..protocol.apdu import AttributeDescriptor, DataAccessResult
from ..protocol.apdu.get import PreparedGetWithList
from ..protocol.errors import DataAccessError, DecodeError
from ..protocol.obis import Obis
from ..protocol.units import ScalerUnit, Scaling
from .batching import ItemSize, plan_batches
from .express import ExpressRead
from .reading import Reading, Ref, ScalerCache, render_value

__all__ = ["DESCRIPTORS", "SCALER", "VALUE", "DescriptorCache", "ReadPlan", "store_scaler"]

SCALER, VALUE = 0, 1
_VALUE_SIZE = ItemSize()  # choice + a double-long-unsigned
_SCALER_SIZE = ItemSize(response=7)  # choice + structure{integer, enum}
_DAR = DataAccessResult
_NOT_REGISTER = ()  # post-processing marker: render, do not scale

Item = tuple[int, int, Ref]  # (SCALER or VALUE, index of the ref, ref)
Args = tuple[AttributeDescriptor, Any]  # (descriptor, selective access or None)
Result = Union[Reading, DataAccessError]


class DescriptorCache:
    """Encoded descriptors by (class_id, OBIS, attribute): built once, sent every cycle."""

    __slots__ = ("_map", "limit")

    def __init__(self, limit: int = 4096) -> None:
        self._map: dict[tuple[int, Obis, int], AttributeDescriptor] = {}
        self.limit = limit

    def __call__(self, class_id: int, obis: Obis, attribute: int) -> AttributeDescriptor:
        key = (class_id, obis, attribute)
        desc = self._map.get(key)
        if desc is None:
            if len(self._map) >= self.limit:
                self._map.clear()
            desc = self._map[key] = AttributeDescriptor(class_id, obis, attribute)
        return desc



# One cache for every session of the process: descriptors are immutable and most meters of a
# fleet read the same objects (10,000 meters: ~2.4 KB each saved). Two threads racing on a miss
# build two equal descriptors, which is harmless.
DESCRIPTORS = DescriptorCache()

class ReadPlan:
    """The requests of one read cycle and how to post-process their results."""

    __slots__ = ("batches", "express", "post", "refs", "requests", "steady")

    def __init__(
        self,
        refs: list[Ref],
        scalers: ScalerCache,
        descriptors: DescriptorCache,
        with_list: bool,
        server_max_pdu: int,
        client_max_pdu: int,
        max_items: int | None,
    ) -> None:
        self.refs = refs
        self.express: ExpressRead | None = None  # once an answer was learned (session/express)
        items: list[Item] = []
        sizes: list[ItemSize] = []
        queued: set[tuple[int, Obis]] = set()
        post: list[Any] = []
        for index, ref in enumerate(refs):
            if ref.attribute == 2 and ref.class_id in (3, 4):
                su = scalers.get(ref.class_id, ref.obis)
                post.append(None if su is None else Scaling.of(su))
                k = (ref.class_id, ref.obis)
                if su is None and k not in queued:
                    queued.add(k)
                    items.append((SCALER, index, ref))
                    sizes.append(_SCALER_SIZE)
            else:
                post.append(_NOT_REGISTER)
            items.append((VALUE, index, ref))
            if ref.access is None:
                sizes.append(_VALUE_SIZE)
            else:  # a profile read: alone in its request (it may need block transfer)
                sizes.append(ItemSize(9 + len(ref.access.encode()), client_max_pdu))
        self.post = post
        if with_list and len(items) > 1:
            cuts = plan_batches(sizes, server_max_pdu, client_max_pdu, max_items)
        else:
            cuts = [[i] for i in range(len(items))]
        self.batches: list[tuple[list[Item], list[Args]]] = []
        # Per batch, its GET-with-list encoded once for every cycle (None: a single GET).
        self.requests: list[PreparedGetWithList | None] = []
        for cut in cuts:
            batch = [items[i] for i in cut]
            args = [_args(item, descriptors) for item in batch]
            self.batches.append((batch, args))
            self.requests.append(PreparedGetWithList(args) if len(args) > 1 else None)
        # One GET-with-list of every ref's value in order, nothing else: the express path's shape.
        self.steady = (
            len(cuts) == 1
            and self.requests[0] is not None
            and [(kind, i) for kind, i, _ in self.batches[0][0]]
            == [(VALUE, i) for i in range(len(refs))]
        )

    def readings(
        self,
        values: Sequence[Any],
        stamps: Sequence[int],
        scaler_errors: dict[int, DataAccessResult],
        scalers: ScalerCache,
        deviation_sign: int,
    ) -> list[Result]:
        """One Reading or DataAccessError per ref (a register without a scaler fails with the
        scaler's data-access-result)."""
        out: list[Result] = []
        append = out.append
        for index, ref in enumerate(self.refs):
            raw = values[index]
            if type(raw) is _DAR:
                append(DataAccessError(int(raw), raw.label))
                continue
            scaling = self.post[index]
            if scaling is _NOT_REGISTER:
                value = render_value(ref.class_id, ref.attribute, raw, deviation_sign)
                append(Reading(ref, value, raw, None, None, stamps[index]))
                continue
            if scaling is None:  # first cycle of the association: scaler just read (or not)
                su = scalers.get(ref.class_id, ref.obis)
                if su is None:
                    dar = scaler_errors.get(index, _DAR.OTHER_REASON)
                    append(DataAccessError(int(dar), dar.label))
                    continue
                scaling = Scaling.of(su)
            kind = type(raw)
            if kind is int:
                value = scaling.ints(raw)
            elif kind is float:
                value = scaling.floats(raw)
            else:  # a register may hold a string or a date-time: shown, not scaled
                value = render_value(ref.class_id, 2, raw, deviation_sign)
            append(Reading(ref, value, raw, scaling.scaler, scaling.unit, stamps[index]))
        return out


def _args(item: Item, descriptors: DescriptorCache) -> Args:
    kind, _, ref = item
    if kind == SCALER:
        return descriptors(ref.class_id, ref.obis, 3), None
    return descriptors(ref.class_id, ref.obis, ref.attribute), ref.access


def store_scaler(
    scalers: ScalerCache, ref: Ref, result: Any, index: int, errors: dict[int, DataAccessResult]
) -> str | None:
    """Cache a scaler_unit result; a refusal or a malformed value is noted in ``errors``.
    Returns a problem description for the log, or None."""
    if type(result) is _DAR:
        errors[index] = result
        return None
    try:
        scalers.put(ref.class_id, ref.obis, ScalerUnit.from_data(result))
    except DecodeError as exc:
        errors[index] = _DAR.TYPE_UNMATCHED
        return f"{ref} scaler_unit unreadable: {exc}"
    return None
