"""What the polling engine tells the layer above it (the gateway connector, a test, a benchmark).

Three calls, all made from the worker thread of the meter's channel, so a sink that forwards to
the gateway must be thread-safe (``gateway.send_to_storage`` is). A sink that raises is logged
with the meter's name and otherwise ignored: it never stops a worker.

- ``on_readings(spec, readings, cycle_started_wall_ms)``: the outcome of one poll cycle, one
  ``PointReading`` per ``spec.points`` entry, in the same order. ``result`` is the session's
  ``Reading`` (value, scaler, unit, ``read_at`` in epoch ms: the time the meter answered) or the
  ``DataAccessError`` the meter returned for that point alone (the others still carry values).
  A cycle that failed as a whole (timeout, link lost) produces no ``on_readings``; it shows up in
  ``on_state`` and in the health counters instead.
- ``on_state(spec, state, detail)``: every change of ``MeterState``; ``detail`` says why in
  words meant for an operator ("connect failed: tcp 10.0.0.5:3333: connect failed: [Errno 111]
  Connection refused; next attempt in 9.7 s"). A watchdog expiry is reported as ``UNREACHABLE``
  with a detail starting with ``"watchdog:"``.
- ``on_health(spec, snapshot)``: ``MeterHealth.snapshot()`` (keys in ``health.SNAPSHOT_KEYS``)
  every ``spec.health_period_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from ..protocol.errors import DlmsError
from .health import MeterState
from .spec import MeterSpec, PollPoint

__all__ = ["EngineSink", "NullSink", "PointReading", "RecordingSink"]


class PointReading(NamedTuple):
    """One poll point's outcome in a cycle. A NamedTuple: built per register on the hot path."""

    point: PollPoint
    result: Any | DlmsError  # session Reading, or the DataAccessError for this point

    @property
    def key(self) -> str:
        return self.point.key

    @property
    def ok(self) -> bool:
        return not isinstance(self.result, DlmsError)


class EngineSink(Protocol):
    def on_readings(
        self, spec: MeterSpec, readings: Sequence[PointReading], cycle_started_wall_ms: int
    ) -> None: ...

    def on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None: ...

    def on_health(self, spec: MeterSpec, snapshot: dict[str, Any]) -> None: ...


class NullSink:
    """Drops everything (benchmarks measure the engine, not a sink)."""

    def on_readings(
        self, spec: MeterSpec, readings: Sequence[PointReading], cycle_started_wall_ms: int
    ) -> None:
        pass

    def on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None:
        pass

    def on_health(self, spec: MeterSpec, snapshot: dict[str, Any]) -> None:
        pass


class RecordingSink:
    """Keeps every call, per meter (tests, demos). Appends are atomic under the GIL."""

    def __init__(self) -> None:
        self.readings: list[tuple[str, Sequence[PointReading], int]] = []
        self.states: list[tuple[str, MeterState, str]] = []
        self.health: list[tuple[str, dict[str, Any]]] = []

    def on_readings(
        self, spec: MeterSpec, readings: Sequence[PointReading], cycle_started_wall_ms: int
    ) -> None:
        self.readings.append((spec.name, readings, cycle_started_wall_ms))

    def on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None:
        self.states.append((spec.name, state, detail))

    def on_health(self, spec: MeterSpec, snapshot: dict[str, Any]) -> None:
        self.health.append((spec.name, snapshot))

    def states_of(self, name: str) -> list[MeterState]:
        return [s for n, s, _ in list(self.states) if n == name]

    def cycles_of(self, name: str) -> list[Sequence[PointReading]]:
        return [r for n, r, _ in list(self.readings) if n == name]
