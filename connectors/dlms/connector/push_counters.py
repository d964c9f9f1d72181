"""The last invocation counter accepted from each pushing meter, kept across restarts.

A replayed notification is refused because its counter is not above the last one accepted from
its sender; a gateway that forgot those counters after a restart would accept a replay of every
notification it had ever seen. The counters are one JSON file under the state folder, written
atomically (state_files.write_atomically) **before** the notifications that moved them are
handed to the gateway: after a crash a notification is never published twice (one accepted in
the instant before the crash may be lost; its meter's next push carries the new values).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from .state_files import write_atomically

__all__ = ["PushCounterFile"]

_FILE = "push_counters.json"


class PushCounterFile:
    def __init__(self, folder: Path, log: logging.Logger) -> None:
        self.path = folder / _FILE
        self._log = log
        self.writes = 0

    def load(self) -> dict[bytes, int]:
        """The counters saved; {} (with a warning naming the file) when unreadable."""
        try:
            raw = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self._log.warning("push counters: cannot read %s (%s): every sender's next counter "
                              "is taken as new", self.path, exc)
            return {}
        out: dict[bytes, int] = {}
        if isinstance(raw, dict):
            for title, counter in raw.items():
                try:
                    key = bytes.fromhex(title)
                except (TypeError, ValueError):
                    continue
                if len(key) == 8 and isinstance(counter, int) and 0 <= counter < 1 << 32:
                    out[key] = counter
        return out

    def save(self, counters: dict[bytes, int]) -> None:
        data = json.dumps({t.hex().upper(): c for t, c in sorted(counters.items())},
                          separators=(",", ":"))
        write_atomically(self.path, data.encode("ascii"))
        self.writes += 1
