"""``tb-dlms scan`` against the simulator: the printed block loads with no error or warning and
names every object the meter lets the client read; secrets stay out; ``--bus`` finds the meters
behind a concentrator port. Parametrised over the simulator's meter models (poly, mono, ct):
what each block must hold is derived from that model's own object table and profiles."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.cli import main
from tb_dlms.connector.config import load_config
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.obis_catalogue import describe, lookup
from tb_dlms.simulator.meter_models import MODELS
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.objects import FIRMWARE_OBIS, LDN_OBIS, SERIAL_OBIS, TABLES
from tb_dlms.simulator.profile import CLOCK_OBIS
from tb_dlms.simulator.profile_data import PROFILES_OF
from tb_dlms.simulator.server import SimulatorServer

T0 = 1_700_000_437.0
ENV = {"DLMS_PASSWORD": "22222222", "DLMS_BLOCK_CIPHER_KEY": "00" * 16,
       "DLMS_AUTHENTICATION_KEY": "00" * 16}
# Hand-picked keys each model's block must name (the rest is derived from its table): a
# catalogue change that renamed these would break every dashboard built on them.
SPOT_KEYS = {
    "poly": {"voltage_l1", "current_l3", "frequency", "active_energy_import"},
    "mono": {"voltage_l1", "current_l1", "active_power_import", "active_energy_import",
             "active_energy_export", "frequency"},
    "ct": {"voltage_l3", "current_l2", "active_power_import", "reactive_power_import",
           "power_factor", "frequency", "active_energy_export", "reactive_energy_import",
           "reactive_energy_export", "max_demand_active_power_import"},
}


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def meter(model: str) -> Iterator[SimulatorServer]:
    srv = SimulatorServer(1, 0, options=MeterOptions(model=model),
                          clock=lambda: T0).run_in_thread()
    yield srv
    srv.stop()


def scan(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["scan", "--host", "127.0.0.1", "--timeout", "5", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def assert_loads_cleanly(block: dict[str, Any]) -> None:
    cfg = load_config({"meters": [block]}, ENV)
    assert cfg.errors == () and cfg.warnings == () and cfg.skipped == ()
    assert [m.name for m in cfg.meters] == [block["deviceName"]]


def readable(model: str, class_ids: tuple[int, ...]) -> set[str]:
    """The objects of ``model`` of these classes whose attribute 2 has a getter."""
    return {str(d.obis) for d in TABLES[model].defs if d.class_id in class_ids
            and any(a.id == 2 and a.getter is not None for a in d.attributes)}


def identity(model: str) -> dict[str, str]:
    """key -> OBIS of the identity objects ``model`` has: serial and LDN, firmware on some."""
    listed = {d.obis for d in TABLES[model].defs if d.class_id == 1}
    wanted = {"serial_number": SERIAL_OBIS, "logical_device_name": LDN_OBIS,
              "firmware_version": FIRMWARE_OBIS}
    return {key: str(obis) for key, obis in wanted.items() if obis in listed}


def test_the_block_loads_and_lists_every_readable_register(capsys, model, meter):
    code, block, err = scan(capsys, "--port", str(meter.ports[0]))
    assert code == 0, err
    assert_loads_cleanly(block)
    assert block["deviceName"] == "Meter SIM00000000"
    assert block["connection"] == {"type": "tcp", "host": "127.0.0.1",
                                   "port": meter.ports[0], "wrapper": False}
    assert block["clientAddress"] == 16 and block["authentication"] == "none"
    assert {p["obis"] for p in block["timeseries"]} == readable(model, (3, 4))
    assert all(p["attribute"] == 2 and p["classId"] in (3, 4) for p in block["timeseries"])
    keys = [p["key"] for p in block["timeseries"]]
    assert len(set(keys)) == len(keys)
    assert SPOT_KEYS[model] <= set(keys)
    static = {p["key"]: p["obis"] for p in block["staticAttributes"]}
    assert static == identity(model)
    assert (FIRMWARE_OBIS in {d.obis for d in TABLES[model].defs}) == (model != "poly")
    assert len(set(static) | set(keys)) == len(static) + len(keys)
    assert f"{len(TABLES[model].defs)} objects listed" in err


def test_the_profiles_are_the_models_own(capsys, model, meter):
    """Each profile of the model, polled at its capture period, a column per captured object
    but the clock; a profile captured on events (period 0) keeps the default poll period."""
    code, block, err = scan(capsys, "--port", str(meter.ports[0]))
    assert code == 0, err
    assert {p["obis"] for p in block["profiles"]} == readable(model, (7,))
    specs = {str(s.obis): s for s in PROFILES_OF[model]}
    assert set(specs) == {p["obis"] for p in block["profiles"]}
    for profile in block["profiles"]:
        spec = specs[profile["obis"]]
        if spec.capture_period:
            assert profile["pollPeriod"] == spec.capture_period * 1000
        else:
            assert "pollPeriod" not in profile
        columns = [(c["obis"], c["attribute"]) for c in profile["columns"]]
        assert columns == [(str(c.obis), c.attribute) for c in spec.capture_objects
                           if c.obis != CLOCK_OBIS]
        keys = [c["key"] for c in profile["columns"]]
        assert len(set(keys)) == len(keys)
    load = next(p for p in block["profiles"] if p["obis"] == "1-0:99.1.0.255")
    assert load["pollPeriod"] == 900_000  # every model's load profile: 900 s


def test_lls_block_names_the_variable_and_never_the_password(capsys, meter, monkeypatch):
    monkeypatch.setenv("TB_DLMS_PASSWORD", "22222222")
    code, block, err = scan(capsys, "--port", str(meter.ports[0]), "--auth", "lls",
                            "--device-name", "M1")
    assert code == 0, err
    assert block["passwordEnv"] == "DLMS_PASSWORD" and "password" not in block
    assert block["clientAddress"] == 1 and block["deviceName"] == "M1"
    assert "22222222" not in json.dumps(block) and "22222222" not in err
    assert "DLMS_PASSWORD" in err
    assert_loads_cleanly(block)


def test_template_leaves_out_what_locates_the_meter(capsys, meter):
    code, out, err = scan(capsys, "--port", str(meter.ports[0]), "--template", "poly")
    assert code == 0, err
    (name, template), = out["templates"].items()
    assert name == "poly"
    assert not {"deviceName", "connection", "serverLogicalAddress"} & set(template)
    assert template["timeseries"] and template["profiles"]
    assert f"{len(template['timeseries'])} timeseries" in err
    # a meter of the template's fields plus an address is a valid meter
    block = {"deviceName": "X", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1},
             **template}
    assert_loads_cleanly(block)


def test_keys_come_from_the_catalogue(capsys, meter):
    code, block, _ = scan(capsys, "--port", str(meter.ports[0]))
    assert code == 0
    for point in [*block["timeseries"], *block["staticAttributes"]]:
        obis = Obis.parse(point["obis"])
        assert lookup(obis) is not None, f"{obis} falls to the fallback key"
        base = describe(obis).key
        assert point["key"] == base or point["key"].startswith(base + "_")


def test_connection_refused_is_exit_2_in_one_line(capsys):
    srv = SimulatorServer(1, 0, clock=lambda: T0).run_in_thread()
    port = srv.ports[0]
    srv.stop()
    code, out, err = scan(capsys, "--port", str(port))
    assert code == 2 and out is None and err.count("\n") == 1


def test_bus_finds_the_meters_behind_a_concentrator_port(capsys):
    srv = SimulatorServer(3, 0, clock=lambda: T0, meters_per_port=3).run_in_thread()
    try:
        code = main(["scan", "--host", "127.0.0.1", "--port", str(srv.ports[0]),
                     "--bus", "14-20", "--probe-timeout", "0.2"])
        out, err = capsys.readouterr()
    finally:
        srv.stop()
    assert code == 0, err
    found = json.loads(out)
    assert [a["serverPhysicalAddress"] for a in found] == [16, 17, 18]
    assert {a["answer"] for a in found} == {"UA"}
    assert "3 of 7 addresses answered" in err


def test_bus_then_scan_each_meter_behind_the_port(capsys):
    srv = SimulatorServer(2, 0, clock=lambda: T0, meters_per_port=2).run_in_thread()
    try:
        blocks = []
        for physical in (16, 17):
            code, block, err = scan(capsys, "--port", str(srv.ports[0]),
                                    "--server-physical", str(physical))
            assert code == 0, err
            blocks.append(block)
    finally:
        srv.stop()
    assert [b["serverPhysicalAddress"] for b in blocks] == [16, 17]
    assert blocks[0]["deviceName"] != blocks[1]["deviceName"]
    cfg = load_config({"meters": blocks}, ENV)
    assert cfg.errors == () and cfg.warnings == () and len(cfg.meters) == 2


@pytest.mark.parametrize(("bus", "message"), [("x", "FIRST-LAST"), ("20-10", "first <= last"),
                                              ("0-99999", "0..16383")])
def test_bad_bus_range_is_exit_2(capsys, bus, message):
    code = main(["scan", "--host", "127.0.0.1", "--port", "1", "--bus", bus])
    _, err = capsys.readouterr()
    assert code == 2 and message in err


def test_subprocess_prints_only_json_on_stdout(meter):
    result = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "scan", "--host", "127.0.0.1", "--port",
         str(meter.ports[0]), "--timeout", "5"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert_loads_cleanly(json.loads(result.stdout))

