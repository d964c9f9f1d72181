"""Persisted invocation counters: reserved ahead, written atomically, never repeated."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.counter_store import (
    STEP,
    CounterStore,
    PersistedCounter,
    with_counters,
    write_atomically,
)
from tb_dlms.connector.state_files import state_folder
from tb_dlms.protocol.errors import LocalProtocolError


def stored(path: Path) -> int:
    return int(json.loads(path.read_text())["next"])


def test_a_new_counter_is_unknown_until_resynchronised(tmp_path: Path) -> None:
    counter = PersistedCounter(tmp_path / "m.json", "m")
    assert not counter.known
    counter.resync(41)
    assert counter.take() == 42
    assert stored(counter.path) == 42 + STEP  # the bound is on disk before 42 goes out


def test_a_restart_or_crash_continues_above_every_value_sent(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    first = PersistedCounter(path, "m")
    first.resync(0)
    sent = [first.take() for _ in range(STEP + 5)]  # crosses one reservation
    # "Crash": the object is dropped without any goodbye; a new process loads the file.
    again = PersistedCounter(path, "m")
    assert again.known and again.take() > max(sent)
    assert again.take() - max(sent) <= 2 * STEP  # skipped a little, repeated nothing


def test_one_write_per_step(tmp_path: Path, monkeypatch: Any) -> None:
    writes: list[bytes] = []
    real = write_atomically
    monkeypatch.setattr("tb_dlms.connector.counter_store.write_atomically",
                        lambda p, d: (writes.append(d), real(p, d)))
    counter = PersistedCounter(tmp_path / "m.json", "m")
    counter.resync(0)
    for _ in range(3 * STEP):
        counter.take()
    assert len(writes) == 3


@pytest.mark.parametrize("content", ["", "{", '{"next": -5}', '{"next": "7"}', '[]', '{"x": 1}'])
def test_a_damaged_file_means_unknown_not_zero(tmp_path: Path, content: str,
                                              caplog: Any) -> None:
    path = tmp_path / "m.json"
    path.write_text(content)
    counter = PersistedCounter(path, "Meter-7")
    assert not counter.known  # the frame counter will be read: never restart from 0
    assert "Meter-7" in caplog.text


def test_a_counter_that_cannot_be_saved_is_not_used(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    counter = PersistedCounter(blocker / "sub" / "m.json", "m")  # its folder cannot exist
    counter.resync(9)
    with pytest.raises(LocalProtocolError, match="cannot save the invocation counter"):
        counter.take()
    with pytest.raises(LocalProtocolError):
        counter.take()  # still not handed out


def test_the_write_is_atomic_a_failed_write_keeps_the_old_content(tmp_path: Path,
                                                                  monkeypatch: Any) -> None:
    path = tmp_path / "m.json"
    write_atomically(path, b'{"next": 1000}')

    def power_cut(*_: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(os, "replace", power_cut)
    with pytest.raises(OSError):
        write_atomically(path, b'{"next": 2000}')
    assert stored(path) == 1000


def test_the_store_gives_one_object_per_meter_and_client_for_the_process(tmp_path: Path) -> None:
    a, b = CounterStore(tmp_path), CounterStore(tmp_path)  # e.g. before and after a hot reload
    assert a.counter("M 1", 1) is b.counter("M 1", 1)
    assert a.counter("M 1", 1) is not a.counter("M 1", 32)
    assert a.path("M/1", 1) != a.path("M_1", 1)  # odd characters do not make names collide
    assert a.path("../../etc/passwd", 1).parent == a.folder


def test_state_folder_default_and_configured(tmp_path: Path) -> None:
    class Gateway:
        def get_config_path(self) -> str:
            return str(tmp_path) + "/"

    assert state_folder("", object()) == Path("./data/dlms")
    (tmp_path / "tb_gateway.json").write_text('{"storage": {"data_folder_path": "/var/x/"}}')
    assert state_folder("", Gateway()) == Path("/var/x/dlms")
    assert state_folder("state", Gateway()) == tmp_path / "state"
    assert state_folder("/abs", Gateway()) == Path("/abs")


def test_with_counters_gives_ciphered_meters_their_persisted_counter(tmp_path: Path) -> None:
    meter = {"deviceName": "H1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1},
             "clientAddress": 1, "authentication": "hls-gmac", "systemTitle": "5442444C4D533031",
             "blockCipherKey": "00" * 16, "authenticationKey": "D0" * 16,
             "timeseries": [{"key": "v", "obis": "1-0:32.7.0.255"}]}
    plain = dict(meter, deviceName="P1", authentication="none", clientAddress=16)
    for k in ("systemTitle", "blockCipherKey", "authenticationKey"):
        plain.pop(k)
    plain["connection"] = dict(meter["connection"], port=2)
    cfg = load_config({"meters": [meter, plain]})
    assert not cfg.errors, cfg.errors
    out = with_counters(cfg, CounterStore(tmp_path))
    ciphered, public = (m.spec.session for m in out.meters)
    assert isinstance(ciphered.counter, PersistedCounter) and ciphered.counter.meter == "H1"
    assert public.counter is None
    assert out.by_name["H1"].spec.session.counter is ciphered.counter
