"""The state folder, and the small files under it, written so that a crash never leaves half
of one.

Used for what must survive a restart: invocation counters (counter_store.py) and profile
positions (profile_positions.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["file_name", "state_folder", "write_atomically"]


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


def state_folder(configured: str, gateway: Any) -> Path:
    """Where the connector keeps state: ``stateFolder`` of dlms.json (relative to the gateway's
    config folder), else ``dlms`` under the gateway's data folder (its storage
    ``data_folder_path``, default ``./data/``, relative to the working directory as the
    gateway itself reads it)."""
    config_dir = _config_dir(gateway)
    if configured:
        path = Path(configured).expanduser()
        return path if path.is_absolute() or config_dir is None else config_dir / path
    data = "./data/"
    if config_dir is not None:
        try:
            main = json.loads((config_dir / "tb_gateway.json").read_text(encoding="utf-8"))
            data = str(main.get("storage", {}).get("data_folder_path") or data)
        except (OSError, ValueError, AttributeError):
            pass
    return Path(data).expanduser() / "dlms"


def _config_dir(gateway: Any) -> Path | None:
    get = getattr(gateway, "get_config_path", None)
    try:
        value = get() if callable(get) else None
    except Exception:  # noqa: BLE001 - a stand-in gateway without it
        return None
    return Path(value) if isinstance(value, str) and value else None
