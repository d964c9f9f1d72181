"""Invocation counters that survive reconnects, reloads, gateway restarts and crashes.

One small JSON file per meter and client under the state folder (the gateway's data folder by
default). A file holds a bound, not the last value used: before a counter value at or above the
bound goes out, the bound moves ``STEP`` ahead and is written atomically (temporary file, fsync,
rename, fsync of the folder). After a crash the next start continues from the bound, so values
can be skipped (at most ``STEP``, out of 2^32) but never sent twice. A missing or unreadable file
means "unknown": the session then reads the meter's frame counter first.

Every connector instance of the process gets the same counter object for a file (a hot reload
builds a new connector while the old one may still be closing), so two engines never hand out
the same value.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

from ..protocol.errors import LocalProtocolError
from ..protocol.security import InvocationCounter
from .model import ConnectorConfig
from .state_files import file_name, write_atomically

__all__ = ["STEP", "CounterStore", "PersistedCounter", "with_counters"]

STEP = 1000  # values reserved per write: one write per ~17 min of a 1 s poll
_log = logging.getLogger("tb_dlms.connector.counters")


class PersistedCounter(InvocationCounter):
    """An ``InvocationCounter`` whose reservations are written to ``path`` before use."""

    __slots__ = ("_lock", "meter", "path")

    def __init__(self, path: Path, meter: str) -> None:
        self.path = path
        self.meter = meter
        self._lock = threading.Lock()
        super().__init__(self._load())

    def _load(self) -> int | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            _log.warning("%s: cannot read %s (%s): the frame counter will be read", self.meter,
                         self.path, exc)
            return None
        try:
            value = json.loads(text)["next"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"next = {value!r}")
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("%s: %s is damaged (%s): the frame counter will be read", self.meter,
                         self.path, exc)
            return None
        return int(value)

    def take(self) -> int:
        with self._lock:  # an engine being replaced by a reload may still send
            return super().take()

    def resync(self, meter_last: int) -> None:
        with self._lock:
            super().resync(meter_last)

    def _reserve(self, value: int) -> int:
        bound = value + STEP
        document = {"meter": self.meter, "next": bound}
        try:
            write_atomically(self.path, json.dumps(document).encode("utf-8"))
        except OSError as exc:  # nothing is sent with a counter we could not secure
            raise LocalProtocolError(
                f"cannot save the invocation counter to {self.path}: {exc}") from exc
        return bound


class CounterStore:
    """The counters under one state folder, one per (meter, client)."""

    _shared: ClassVar[dict[Path, PersistedCounter]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).resolve() / "invocation_counters"

    def path(self, meter: str, client: int) -> Path:
        return self.folder / f"{file_name(meter)}.client{client}.json"

    def counter(self, meter: str, client: int) -> PersistedCounter:
        path = self.path(meter, client)
        with self._shared_lock:
            counter = self._shared.get(path)
            if counter is None:
                counter = self._shared[path] = PersistedCounter(path, meter)
            return counter

    def __repr__(self) -> str:
        return f"CounterStore({str(self.folder)!r})"


def with_counters(cfg: ConnectorConfig, store: CounterStore) -> ConnectorConfig:
    """``cfg`` with a persisted invocation counter in the session of every ciphered meter."""
    meters = []
    for meter in cfg.meters:
        session = meter.spec.session
        if session.ciphered:
            counter = store.counter(meter.name, session.client)
            spec = replace(meter.spec, session=replace(session, counter=counter))
            meter = replace(meter, spec=spec)
        meters.append(meter)
    return replace(cfg, meters=tuple(meters), by_name={})
