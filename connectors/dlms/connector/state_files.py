"""Small state files under the state folder, written so that a crash never leaves half of one.

Used for what must survive a restart: invocation counters (counter_store.py) and profile
positions (profile_positions.py).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["file_name", "write_atomically"]


def file_name(meter: str) -> str:
    """A file-system safe, readable name for a meter, distinct for names that differ only in
    characters a file name cannot hold."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", meter)[:60]
    digest = hashlib.sha256(meter.encode("utf-8")).hexdigest()[:10]
    return f"{safe}-{digest}"


def write_atomically(path: Path, data: bytes) -> None:
    """``path`` holds either its old content or ``data``, whatever happens (power cut too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)
    if hasattr(os, "O_DIRECTORY"):  # the rename itself is durable once the folder is synced
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
