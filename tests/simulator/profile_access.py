"""Selective access to the simulated profiles, as the tests of the simulator build it: the
descriptors are written out by hand (Blue Book layouts: range_descriptor = selector 1,
entry_descriptor = selector 2), then encoded with SelectiveAccess.encode and decoded with
decode_access, so the model sees exactly what the server wiring hands it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tb_dlms.protocol.apdu.common import SelectiveAccess, decode_access
from tb_dlms.protocol.axdr import DataType, Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.simulator.profile import CLOCK_OBIS, CaptureObject

S, A, O, U, LU = (  # noqa: E741 - short type names keep the vectors readable
    DataType.STRUCTURE, DataType.ARRAY, DataType.OCTET_STRING,
    DataType.DOUBLE_LONG_UNSIGNED, DataType.LONG_UNSIGNED,
)
WILDCARD = bytes.fromhex("ffffffffffffffffff8000ff")
CLOCK_COLUMN = CaptureObject(8, CLOCK_OBIS, 2)


class Clock:
    """A settable clock for the model (``clock.t = ...``)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wire(selector: int, params: Any) -> Any:
    """Through the real encoder and decoder: what the server hands the model."""
    access, _end = decode_access(SelectiveAccess(selector, params).encode(), 0)
    return access


def _bound(x: Any) -> Typed:
    """A range bound: Typed as given, None = wildcard (open), a datetime, or 12 raw octets."""
    if isinstance(x, Typed):
        return x
    if x is None:
        return Typed(O, WILDCARD)
    if isinstance(x, dt.datetime):
        return Typed(O, CosemDateTime.from_datetime(x).to_bytes())
    return Typed(O, x)


def by_range(frm: Any, to: Any, cols: Any = (), restricting: Any = None) -> Any:
    restricting = restricting or CLOCK_COLUMN
    return wire(1, Typed(S, (restricting.typed(), _bound(frm), _bound(to),
                             Typed(A, [c.typed() for c in cols]))))


def by_entry(first: int, last: int, from_col: int = 0, to_col: int = 0) -> Any:
    return wire(2, Typed(S, (Typed(U, first), Typed(U, last), Typed(LU, from_col),
                             Typed(LU, to_col))))


def read(m: Any, obis: str, access: Any = None) -> Any:
    """A profile buffer as a client decodes it."""
    return decode_data(encode_data(m.get(7, obis, 2, access)))[0]


def as_wire(rows: Any) -> list[tuple[Any, ...]]:
    """Expected rows as the buffer carries them (stamp, raw values...)."""
    return [(r.stamp, *r.raw) for r in rows]
