"""Shards: rendezvous hashing of meters over several gateways, the shard setting (file and
environment), meters sharing a line kept together, and a connector polling only its shard."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from idle_engine import IdleEngine
from tb_dlms.connector.config import load_config
from tb_dlms.connector.dlms_connector import DlmsConnector
from tb_dlms.connector.shards import ENV_COUNT, ENV_INDEX, parse_shard, select, shard_of

NAMES = [f"Meter-{i:05d}" for i in range(3000)]


def test_every_meter_is_in_exactly_one_shard_and_the_shards_are_even() -> None:
    for count in (1, 2, 3, 5, 8):
        owners = [shard_of(n, count) for n in NAMES]
        assert all(0 <= s < count for s in owners)
        for s in range(count):  # each gets its share, within 20 % of it
            assert abs(owners.count(s) - len(NAMES) / count) < 0.2 * len(NAMES) / count


def test_one_more_gateway_moves_only_the_meters_it_takes_about_one_in_n_plus_one() -> None:
    for count in (1, 2, 3, 4, 7):
        before = [shard_of(n, count) for n in NAMES]
        after = [shard_of(n, count + 1) for n in NAMES]
        moved = [(a, b) for a, b in zip(before, after) if a != b]
        assert all(b == count for _, b in moved)  # only to the new gateway
        share = len(moved) / len(NAMES)
        assert abs(share - 1 / (count + 1)) < 0.25 / (count + 1)


def test_the_hash_is_frozen_and_the_same_in_every_process() -> None:
    # Computed once with blake2b(f"{shard}\0{key}", 8 bytes), highest weight wins. This vector
    # FREEZES the hash: changing it would move meters between running gateways on upgrade.
    frozen = {"Microstar-1": 0, "Meter-0012345": 0, "Meter-2": 2, "Meter-3": 1, "Meter-4": 1,
              "serial:///dev/ttyUSB0": 1, "Zähler-Ü": 0}
    assert {n: shard_of(n, 3) for n in frozen} == frozen
    assert shard_of("  Meter-2 ", 3) == 2  # the name as the engine uses it: stripped
    code = ("import json,sys; from tb_dlms.connector.shards import shard_of; "
            "print(json.dumps([shard_of(n, 3) for n in sys.argv[1:]]))")
    for seed in ("1", "2"):  # Python's own hash() would differ between these two
        out = subprocess.run([sys.executable, "-c", code, *frozen], check=True, text=True,
                             capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip() == str(list(frozen.values()))


def test_the_shard_comes_from_the_file_and_the_environment_overrides_it() -> None:
    assert parse_shard({}, {}) == (None, [])
    assert parse_shard({"shard": {"index": 1, "count": 3}}, {}) == ((1, 3), [])
    both = {ENV_INDEX: "2", ENV_COUNT: "4"}
    assert parse_shard({"shard": {"index": 1, "count": 3}}, both) == ((2, 4), [])
    assert parse_shard({"shard": {"count": 3}}, {ENV_INDEX: " 0 "}) == ((0, 3), [])
    assert parse_shard({}, {ENV_INDEX: "0", ENV_COUNT: "1"}) == ((0, 1), [])


@pytest.mark.parametrize(("data", "env", "error"), [
    ({"shard": {"index": 3, "count": 3}}, {},
     "dlms.json: shard.index: 3 is out of range 0..2 (count 3)"),
    ({}, {ENV_INDEX: "1", ENV_COUNT: "0"}, "dlms.json: shard.count: 0 is out of range 1..1024"),
    ({}, {ENV_INDEX: "one", ENV_COUNT: "2"},
     "dlms.json: shard: environment variable TB_DLMS_SHARD_INDEX='one' is not an integer"),
    ({}, {ENV_COUNT: "2"}, "dlms.json: shard.index: is required with the shard's other number "
                           "(in the file or as TB_DLMS_SHARD_INDEX)"),
    ({"shard": {"index": 0}}, {}, "dlms.json: shard.count: is required with the shard's other "
                                  "number (in the file or as TB_DLMS_SHARD_COUNT)"),
    ({"shard": {"index": "0", "count": 2}}, {}, "dlms.json: shard.index: must be an integer, "
                                                "got '0'"),
    ({"shard": [0, 2]}, {}, "dlms.json: shard: must be an object {\"index\": I, \"count\": N}, "
                            "got [0, 2]"),
    ({"shard": {"index": 0, "count": 2, "of": 1}}, {},
     "dlms.json: shard.of: unknown key (only index and count)"),
])
def test_a_bad_shard_setting_is_one_error_and_the_gateway_polls_nothing(
        data: dict[str, Any], env: dict[str, str], error: str) -> None:
    cfg = load_config({**data, "meters": _meters(4)}, env)
    assert cfg.errors == (error,) and cfg.shard_error == error
    assert len(cfg.meters) == 4  # every meter still checked...
    assert select(cfg).meters == ()  # ...and none polled


def _meters(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [{"deviceName": f"Meter-{i}", "connection": {"type": "tcp", "host": "127.0.0.1",
                                                         "port": 4000 + i},
             "timeseries": [{"key": "e", "obis": "1-0:1.8.0"}], **fields}
            for i in range(1, count + 1)]


def test_the_shards_split_the_meters_and_every_shard_checks_them_all() -> None:
    meters = _meters(12)
    meters[5]["pollPeriod"] = 5  # an error in some shard's meter: every gateway reports it
    polled: list[str] = []
    for index in range(3):
        cfg = load_config({"meters": meters}, {ENV_INDEX: str(index), ENV_COUNT: "3"})
        assert cfg.errors == ("meter 'Meter-6': pollPeriod: 5 is out of range 100..86400000",)
        mine = [m.name for m in select(cfg).meters]
        assert mine == [m.name for m in cfg.meters if shard_of(m.name, 3) == index]
        polled += mine
    assert sorted(polled) == sorted(f"Meter-{i}" for i in range(1, 13) if i != 6)


def test_meters_sharing_a_line_stay_together_on_the_shard_of_the_line() -> None:
    bus = [{"deviceName": f"Bus-{i}", "serverPhysicalAddress": i, "serverAddressSize": 2,
            "connection": {"type": "serial", "port": "/dev/ttyUSB0"},
            "timeseries": [{"key": "e", "obis": "1-0:1.8.0"}]} for i in range(1, 9)]
    dcu = [{**m, "connection": {"type": "tcp", "host": "10.0.0.9", "port": 4059},
            "serverLogicalAddress": i + 16} for i, m in enumerate(_meters(5))]
    for m in dcu:
        m["deviceName"] = "DCU-" + m["deviceName"]
    for count in (2, 3, 5):
        cfg = load_config({"meters": bus + dcu + _meters(3)}, {ENV_INDEX: "0", ENV_COUNT: str(count)})
        assert cfg.errors == ()
        keys = cfg.shard_keys
        assert {keys[m["deviceName"]] for m in bus} == {"serial:///dev/ttyUSB0"}
        assert {keys[m["deviceName"]] for m in dcu} == {"tcp://10.0.0.9:4059"}
        assert keys["Meter-1"] == "Meter-1"  # alone on its line: hashed on its name
        for group, line in ((bus, "serial:///dev/ttyUSB0"), (dcu, "tcp://10.0.0.9:4059")):
            names = {m["deviceName"] for m in group}
            mine = {m.name for m in select(cfg).meters} & names
            assert mine == (names if shard_of(line, count) == 0 else set())


def _connector(data: dict[str, Any], env: dict[str, str]) -> tuple[DlmsConnector, list[str]]:
    added: list[str] = []
    gateway = type("Gw", (), {"add_device": lambda self, name, *a, **k: added.append(name),
                              "send_to_storage": lambda *a, **k: None})()
    log = logging.getLogger("test.dlms.shards")
    c = DlmsConnector(gateway, data, "dlms", engine_factory=IdleEngine, environ=env, logger=log,
                      converter_logger=log)
    c.open()
    return c, added


def test_the_connector_polls_and_registers_only_its_shard(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "test.dlms.shards")
    data = {"meters": _meters(9)}
    c, added = _connector(data, {ENV_INDEX: "1", ENV_COUNT: "2"})
    try:
        expected = [f"Meter-{i}" for i in range(1, 10) if shard_of(f"Meter-{i}", 2) == 1]
        assert [s.name for s in c._engine.specs] == expected
        deadline = time.monotonic() + 5
        while sorted(added) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(added) == expected  # the others are not this gateway's devices
        assert f"shard 1/2: polling {len(expected)} of 9 meters" in caplog.messages
    finally:
        c.close()


def test_a_connector_with_a_bad_shard_polls_no_meter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "test.dlms.shards")
    c, added = _connector({"meters": _meters(3)}, {ENV_INDEX: "2", ENV_COUNT: "2"})
    try:
        assert c.config.meters == () and added == []
        assert any("shard setting refused" in m and "polling NO meter" in m
                   for m in caplog.messages)
    finally:
        c.close()
