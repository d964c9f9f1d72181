"""Where each profile's delivery stands: the capture time of the last row handed to the gateway.

One small JSON file per meter under ``<state folder>/profiles`` ({profile OBIS: epoch ms}),
written atomically after rows were handed over, never before: after a crash the rows past the
saved position are read and sent again (the same values at the same times).

The files are written by a thread of their own: an atomic write costs two fsyncs (~5 ms here),
and done by the scheduler after every chunk it capped a backfill at ~150 chunks a second. A
meter's positions that change again before they are written are written once, the newest.
``close()`` writes what is left (a stopping connector loses nothing).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from .state_files import file_name, write_atomically

__all__ = ["PositionStore"]

_log = logging.getLogger("tb_dlms.connector.profiles")


class PositionStore:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder) / "profiles"
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._cache: dict[str, dict[str, int]] = {}
        self._dirty: dict[str, dict[str, int]] = {}  # meter -> positions not written yet
        self._writing = 0
        self._failed: set[str] = set()  # meters whose last write failed (logged once)
        self._writer: threading.Thread | None = None
        self._closed = False

    def _path(self, meter: str) -> Path:
        return self.folder / f"{file_name(meter)}.json"

    def _load(self, meter: str) -> dict[str, int]:
        cached = self._cache.get(meter)
        if cached is not None:
            return cached
        positions: dict[str, int] = {}
        path = self._path(meter)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            positions = {str(k): int(v) for k, v in data.get("positions", {}).items()
                         if isinstance(v, int) and not isinstance(v, bool)}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, AttributeError) as exc:
            # Starting over would send the backfill again (duplicates): say so loudly.
            _log.error("%s: profile positions in %s unreadable (%s): backfilling again",
                       meter, path, exc)
        self._cache[meter] = positions
        return positions

    def get(self, meter: str, profile: str) -> int | None:
        with self._lock:
            return self._load(meter).get(profile)

    def advance(self, meter: str, profile: str, ts_ms: int) -> None:
        """Record that every row up to ``ts_ms`` was handed over; the file is written shortly
        after by the writer thread."""
        with self._lock:
            positions = dict(self._load(meter))
            positions[profile] = ts_ms
            self._cache[meter] = positions
            self._dirty[meter] = positions
            if self._closed:  # a late hand-over while stopping: written here and now
                self._write_now()
                return
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, daemon=True,
                                                name="DLMS profile positions")
                self._writer.start()
            self._changed.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every position recorded so far is written (True) or ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._dirty or self._writing:
                if self._writer is None or not self._writer.is_alive():
                    self._write_now()
                    return not self._dirty
                left = deadline - time.monotonic()
                if left <= 0 or not self._changed.wait(left):
                    return not (self._dirty or self._writing)
        return True

    def close(self, timeout_s: float = 10.0) -> None:
        """Write what is left and end the writer thread."""
        self.flush(timeout_s)
        with self._lock:
            self._closed = True
            self._changed.notify_all()
            writer = self._writer
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout_s)
        with self._lock:
            self._write_now()  # anything recorded while closing

    def _write_loop(self) -> None:
        with self._lock:
            while not self._closed:
                if not self._dirty:
                    self._changed.wait()
                    continue
                self._write_now()

    def _write_now(self) -> None:
        """Write the dirty meters (called holding the lock; released around the I/O)."""
        batch, self._dirty = self._dirty, {}
        self._writing += 1
        self._lock.release()
        try:
            for meter, positions in batch.items():
                self._write(meter, positions)
        finally:
            self._lock.acquire()
            self._writing -= 1
            self._changed.notify_all()

    def _write(self, meter: str, positions: dict[str, int]) -> None:
        path = self._path(meter)
        document = {"meter": meter, "positions": positions}
        try:
            write_atomically(path, json.dumps(document, indent=1).encode("utf-8"))
        except OSError as exc:
            if meter not in self._failed:
                self._failed.add(meter)
                _log.error("%s: cannot save the profile positions in %s (%s): rows may be sent "
                           "twice after a restart", meter, path, exc)
            return
        self._failed.discard(meter)
