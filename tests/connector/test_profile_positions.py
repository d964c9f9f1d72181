"""PositionStore: positions are recorded at once and written by a thread of its own, so a slow
disk never holds up the thread that hands profile rows to the gateway; nothing recorded is lost
at close."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector import profile_positions
from tb_dlms.connector.profile_positions import PositionStore


def saved(folder: Path) -> dict[str, dict[str, int]]:
    out = {}
    for path in (folder / "profiles").glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        out[document["meter"]] = document["positions"]
    return out


def test_a_slow_disk_does_not_hold_up_advance_and_close_writes_the_newest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = threading.Event()  # the disk answers only when set
    writes: list[Path] = []
    real = profile_positions.write_atomically

    def slow_write(path: Path, data: bytes) -> None:
        disk.wait(10)
        writes.append(path)
        real(path, data)

    monkeypatch.setattr(profile_positions, "write_atomically", slow_write)
    store = PositionStore(tmp_path)
    handed_over = threading.Thread(target=lambda: [
        store.advance(meter, "p", ts) for ts in (1000, 2000, 3000) for meter in ("M1", "M2")])
    handed_over.start()
    handed_over.join(2)
    assert not handed_over.is_alive(), "advance waited for the disk"
    assert store.get("M1", "p") == 3000 and store.get("M2", "p") == 3000

    disk.set()
    store.close()
    assert saved(tmp_path) == {"M1": {"p": 3000}, "M2": {"p": 3000}}
    assert len(writes) <= 4, "positions that changed again before their write were written again"
    assert PositionStore(tmp_path).get("M1", "p") == 3000  # what a restart reads


def test_a_failed_write_is_logged_once_and_a_later_one_succeeds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    broken = True
    real = profile_positions.write_atomically

    def write(path: Path, data: bytes) -> Any:
        if broken:
            raise OSError("disk full")
        return real(path, data)

    monkeypatch.setattr(profile_positions, "write_atomically", write)
    store = PositionStore(tmp_path)
    for ts in (1000, 2000):
        store.advance("M1", "p", ts)
        assert store.flush()
    assert sum("disk full" in r.getMessage() for r in caplog.records) == 1
    broken = False
    store.advance("M1", "p", 3000)
    store.close()
    assert saved(tmp_path) == {"M1": {"p": 3000}}


def test_advance_after_close_is_written_at_once(tmp_path: Path) -> None:
    store = PositionStore(tmp_path)
    store.close()
    store.advance("M1", "p", 5000)  # a hand-over that ended while the connector stopped
    assert saved(tmp_path) == {"M1": {"p": 5000}}
