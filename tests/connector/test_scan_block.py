"""The scan block builder (pure) and the ``scan`` device RPC: the block loads with no error or
warning, unreadable objects are left out, and no secret value is ever in it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.rpc import RpcDispatcher
from tb_dlms.connector.scan_block import build_block, build_template
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.object_list import AttributeAccess, ListedObject
from tb_dlms.protocol.profile import CaptureColumn
from tb_dlms.protocol.units import ScalerUnit
from tb_dlms.session import BlockingSession
from tb_dlms.session.scan import ScanResult
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

T0 = 1_700_000_437.0
FIELDS = {"deviceName": "M", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 4059}}


def obj(class_id: int, code: str, *readable: int, unreadable: tuple[int, ...] = ()) -> ListedObject:
    attrs = tuple(AttributeAccess(a, 1, (), True, False) for a in (1, *readable))
    attrs += tuple(AttributeAccess(a, 0, (), False, False) for a in unreadable)
    return ListedObject(class_id, 0, Obis.parse(code), attrs, ())


def result() -> ScanResult:
    voltage, hidden = obj(3, "1-0:32.7.0", 2, 3), obj(3, "1-0:31.7.0", 3, unreadable=(2,))
    energy, no_scaler = obj(3, "1-0:1.8.0", 2, 3), obj(3, "1-0:2.8.0", 2, 3)
    odd = obj(3, "1-0:96.5.0", 2, 3)
    serial, secret_serial = obj(1, "0-0:96.1.0", 2), obj(1, "0-0:96.1.1", unreadable=(2,))
    other_data = obj(1, "0-0:96.11.0", 2)  # not an identity object: not a static attribute
    load, fast, log = obj(7, "1-0:99.1.0", 2, 3, 4), obj(7, "1-0:99.2.0", 2, 3, 4), obj(
        7, "0-0:99.98.0", 2, 3, 4)
    closed = obj(7, "1-0:98.1.0", 3, 4, unreadable=(2,))  # captures readable, buffer not
    clock = CaptureColumn(8, Obis.parse("0-0:1.0.0"), 2)
    scan = ScanResult((voltage, hidden, energy, no_scaler, odd, serial, secret_serial,
                       other_data, load, fast, log, closed))
    # what scan_meter read: values of the readable ones, scalers where not refused
    for o in (voltage, energy, no_scaler, odd):
        scan.values[(3, o.obis)] = 2301
    for o in (voltage, energy, odd):
        scan.scalers[(3, o.obis)] = ScalerUnit(-1, 35)
    scan.values[(1, serial.obis)] = b"123"
    scan.values[(1, other_data.obis)] = 7  # (scan_meter reads no such value; ignored anyway)
    scan.captures[load.obis] = (clock, CaptureColumn(3, energy.obis, 2),
                                CaptureColumn(3, voltage.obis, 2))
    scan.captures[fast.obis] = (clock, CaptureColumn(3, energy.obis, 2))
    scan.captures[log.obis] = (clock, CaptureColumn(1, Obis.parse("0-0:96.11.0"), 2))
    scan.captures[closed.obis] = (clock,)
    scan.capture_periods.update({load.obis: 900, fast.obis: 1, log.obis: 0})
    return scan


def test_readable_objects_only_with_catalogue_keys() -> None:
    block = build_block(result(), FIELDS)
    assert [(p["key"], p["obis"]) for p in block["timeseries"]] == [
        ("voltage_l1", "1-0:32.7.0.255"), ("active_energy_import", "1-0:1.8.0.255"),
        ("obis_1_0_96_5_0", "1-0:96.5.0.255")]  # 31.7.0 unreadable, 2.8.0 without scaler
    assert block["staticAttributes"] == [
        {"key": "serial_number", "obis": "0-0:96.1.0.255", "classId": 1, "attribute": 2}]
    profiles = {p["obis"]: p for p in block["profiles"]}
    assert set(profiles) == {"1-0:99.1.0.255", "1-0:99.2.0.255", "0-0:99.98.0.255"}
    load = profiles["1-0:99.1.0.255"]
    assert load["pollPeriod"] == 900_000
    assert [c["key"] for c in load["columns"]] == ["active_energy_import", "voltage_l1"]
    assert profiles["1-0:99.2.0.255"]["pollPeriod"] == 10_000  # 1 s raised to the minimum
    log = profiles["0-0:99.98.0.255"]
    assert "pollPeriod" not in log  # captured on events: the default
    assert log["columns"] == [{"obis": "0-0:96.11.0.255", "attribute": 2,
                               "key": "standard_event_log_event_code"}]
    cfg = load_config({"meters": [block]})
    assert cfg.errors == () and cfg.warnings == () and len(cfg.meters) == 1


def test_keys_are_unique_within_the_block() -> None:
    scan = ScanResult((obj(3, "1-0:32.7.0", 2, 3), obj(3, "1-1:32.7.0", 2, 3)))
    for o in scan.objects:
        scan.scalers[(3, o.obis)] = ScalerUnit(0, 35)
        scan.values[(3, o.obis)] = 2301
    assert [p["key"] for p in build_block(scan, FIELDS)["timeseries"]] == [
        "voltage_l1", "voltage_l1_2"]


def test_template_drops_the_address_fields() -> None:
    fields = {**FIELDS, "serverPhysicalAddress": 17, "serverLogicalAddress": 1,
              "authentication": "none"}
    (template,) = build_template("t", result(), fields)["templates"].values()
    assert "deviceName" not in template and "serverPhysicalAddress" not in template
    assert template["authentication"] == "none" and template["timeseries"]


# ---- scan_meter: what it asks for, on the list's word -----------------------------------------
class ListReader:
    """A session that serves one object_list and records every other ref it is asked for."""

    def __init__(self, objects: list[Any], refuse: set[str]) -> None:
        self.objects, self.refuse = objects, refuse
        self.asked: list[str] = []

    def read(self, refs: list[Any]) -> list[Any]:
        from tb_dlms.protocol.errors import DataAccessError
        from tb_dlms.session.reading import Reading

        out: list[Any] = []
        for ref in refs:
            if ref.class_id == 15:
                out.append(Reading(ref, None, self.objects, None, None, 0))
                continue
            self.asked.append(str(ref))
            raw: Any = (0, 35) if ref.attribute == 3 else 1
            out.append(DataAccessError(3, "read-write-denied") if str(ref) in self.refuse
                       else Reading(ref, raw, raw, None, None, 0))
        return out


def test_scan_reads_only_what_the_list_allows_and_checks_it() -> None:
    from tb_dlms.session.scan import scan_meter

    def entry(class_id: int, code: str, rights: list[Any]) -> tuple[Any, ...]:
        return (class_id, 0, Obis.parse(code).to_bytes(), (rights, []))

    objects = [
        entry(3, "1-0:32.7.0", [(1, 1, None), (2, 1, None), (3, 1, None)]),
        entry(3, "1-0:31.7.0", [(1, 1, None), (2, 0, None), (3, 1, None)]),  # value: no access
        entry(3, "1-0:1.8.0", []),  # no rights listed (Gurux): read to find out
        entry(3, "1-0:2.8.0", [(2, 1, None), (3, 1, None)]),  # listed readable, refused
        entry(1, "0-0:96.1.0", [(2, 1, None)]),
        entry(1, "0-0:96.11.0", [(2, 1, None)]),  # not an identity object: not read
    ]
    reader = ListReader(objects, refuse={"1-0:2.8.0.255/3/2"})
    scan = scan_meter(reader)
    assert sorted(reader.asked) == sorted([
        "1-0:32.7.0.255/3/3", "1-0:1.8.0.255/3/3", "1-0:2.8.0.255/3/3", "0-0:96.1.0.255/1/2",
        "1-0:32.7.0.255/3/2", "1-0:1.8.0.255/3/2", "1-0:2.8.0.255/3/2"])
    assert scan.problems == ["1-0:2.8.0.255/3/2: read-write-denied"]
    block = build_block(scan, FIELDS)
    assert [p["key"] for p in block["timeseries"]] == ["voltage_l1", "active_energy_import"]
    assert [p["key"] for p in block["staticAttributes"]] == ["serial_number"]


# ---- the scan RPC, on a real session to the simulator ------------------------------------------
class SessionEngine:
    """Runs each job at once on a real BlockingSession (the engine runs it on the worker)."""

    def __init__(self, session: BlockingSession) -> None:
        self.session = session

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float = 30.0) -> Future[Any]:
        f: Future[Any] = Future()
        try:
            f.set_result(fn(self.session))
        except BaseException as exc:  # noqa: BLE001 - like a worker
            f.set_exception(exc)
        return f


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    srv = SimulatorServer(1, 0, clock=lambda: T0).run_in_thread()
    yield srv
    srv.stop()


def rpc_scan(meter: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    cfg = load_config({"meters": [meter]}, environ)
    assert cfg.errors == (), cfg.errors
    (config,) = cfg.meters
    spec = config.spec
    session = BlockingSession(TcpTransport(spec.transport.host, spec.transport.port),
                              spec.session)
    session.connect()
    try:
        future = RpcDispatcher(SessionEngine(session), cfg.by_name).device_rpc(
            config.name, "scan", {})
        reply: dict[str, Any] = future.result(timeout=30)
    finally:
        session.close()
    return reply


def test_scan_rpc_names_the_configured_secret_sources(simulator: SimulatorServer,
                                                      tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("22222222\n")
    meter = {"deviceName": "Sim-1", "deviceType": "Poly",
             "connection": {"type": "tcp", "host": "127.0.0.1", "port": simulator.ports[0]},
             "clientAddress": 1, "authentication": "lls", "passwordFile": str(secret),
             "pollPeriod": 5000, "timeseries": [{"key": "v", "obis": "1-1:32.7.0"}]}
    reply = rpc_scan(meter, {})
    assert reply["success"] is True, reply
    block = reply["block"]
    assert block["passwordFile"] == str(secret) and "password" not in block
    assert block["deviceName"] == "Sim-1" and block["deviceType"] == "Poly"
    assert block["pollPeriod"] == 5000 and block["clientAddress"] == 1
    assert "22222222" not in json.dumps(reply)
    assert {"voltage_l1", "active_energy_import"} <= {p["key"] for p in block["timeseries"]}
    cfg = load_config({"meters": [block]})
    assert cfg.errors == () and cfg.warnings == ()


def test_scan_rpc_replaces_an_inline_password_by_a_variable(simulator: SimulatorServer) -> None:
    meter = {"deviceName": "Sim-1",
             "connection": {"type": "tcp", "host": "127.0.0.1", "port": simulator.ports[0]},
             "clientAddress": 1, "authentication": "lls", "password": "22222222",
             "timeseries": [{"key": "v", "obis": "1-1:32.7.0"}]}
    reply = rpc_scan(meter, {})
    assert reply["success"] is True, reply
    assert reply["block"]["passwordEnv"] == "DLMS_PASSWORD"
    assert "22222222" not in json.dumps(reply)
    assert any("DLMS_PASSWORD" in note for note in reply["notes"])
    cfg = load_config({"meters": [reply["block"]]}, {"DLMS_PASSWORD": "22222222"})
    assert cfg.errors == () and cfg.warnings == ()
