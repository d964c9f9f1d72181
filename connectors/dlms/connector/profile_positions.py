"""Where each profile's delivery stands: the capture time of the last row handed to the gateway.

One small JSON file per meter under ``<state folder>/profiles`` ({profile OBIS: epoch ms}),
written atomically after rows were handed over, never before: after a crash the rows past the
saved position are read and sent again only if they had not been handed over yet.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

from .state_files import file_name, write_atomically

__all__ = ["PositionStore"]

_log = logging.getLogger("tb_dlms.connector.profiles")


class PositionStore:
    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder) / "profiles"
        self._lock = threading.Lock()
        self._cache: dict[str, dict[str, int]] = {}

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
        """Record that every row up to ``ts_ms`` was handed over (OSError if it cannot be)."""
        with self._lock:
            positions = dict(self._load(meter))
            positions[profile] = ts_ms
            document = {"meter": meter, "positions": positions}
            write_atomically(self._path(meter), json.dumps(document, indent=1).encode("utf-8"))
            self._cache[meter] = positions
