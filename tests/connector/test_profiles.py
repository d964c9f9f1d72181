"""Profiles through the connector and the real polling engine against the simulator over TCP:
every row once, at the meter's capture time, across a restart; live polling goes on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector.dlms_connector import DlmsConnector
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

LOAD = "1-0:99.1.0.255"


class Gateway:
    """What the connector calls on the gateway, recording what it hands over."""

    stopped = False

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.stored: list[Any] = []
        self.replies: dict[Any, Any] = {}

    def get_config_path(self) -> str:
        return str(self.folder) + "/"

    def send_to_storage(self, name: str, connector_id: Any, data: Any) -> None:
        self.stored.append(data)

    def add_device(self, *args: Any, **kw: Any) -> bool:
        return True

    def send_rpc_reply(self, device: Any = None, req_id: Any = None, content: Any = None,
                       **kw: Any) -> None:
        self.replies[req_id] = content

    def rows(self, device: str, key: str) -> list[tuple[int, Any]]:
        return [(e["ts"], e["values"][key]) for cd in self.stored if cd.device_name == device
                for e in cd.to_dict()["telemetry"] if key in e["values"] and "ts" in e]


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    server = SimulatorServer(1, 0).run_in_thread()
    yield server
    server.stop()


def config(port: int, **profile: Any) -> dict[str, Any]:
    return {"stateFolder": "state", "meters": [{
        "deviceName": "M1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": port},
        "clientAddress": 16, "pollPeriod": 500, "timeout": 2000, "healthPeriod": 60000,
        "timeseries": [{"key": "voltage_l1", "obis": "1-1:32.7.0"}],
        "profiles": [{"obis": LOAD, "backfillDays": 1, "maxRowsPerRead": 24, **profile}],
    }]}


def run(gateway: Gateway, cfg: dict[str, Any], until: Any, timeout: float = 30.0) -> None:
    connector = DlmsConnector(gateway, cfg, "dlms", logger=logging.getLogger("test.profiles"),
                              converter_logger=logging.getLogger("test.profiles.converter"))
    connector.open()
    try:
        deadline = time.monotonic() + timeout
        while not until() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        connector.close()


def meter_rows(port: int) -> dict[int, Any]:
    """The meter's own last day of load profile, read by entry with a plain session."""
    from tb_dlms.connector.profile_config import ProfileConfig
    from tb_dlms.connector.profile_reader import ProfileReader
    from tb_dlms.protocol.obis import Obis

    reader = ProfileReader("M1", ProfileConfig(Obis.parse(LOAD), backfill_days=1,
                                               max_rows_per_read=200), None)
    reader.range_ok = False
    with BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(client=16)) as s:
        s.connect()
        chunk = reader.read_chunk(s, None, int(time.time() * 1000))
    return {ts: values["1-1:32.7.0.255"] for ts, values in chunk.rows}


def test_a_day_of_load_profile_arrives_once_at_capture_times_and_not_again(
        sim: SimulatorServer, tmp_path: Path) -> None:
    gateway = Gateway(tmp_path)
    expected = meter_rows(sim.ports[0])
    assert 94 <= len(expected) <= 97  # a day of quarter-hours
    run(gateway, config(sim.ports[0]),
        lambda: len(gateway.rows("M1", "1-1:32.7.0.255")) >= len(expected))
    got = gateway.rows("M1", "1-1:32.7.0.255")
    assert len({ts for ts, _ in got}) == len(got), "a row was delivered twice"
    assert all(ts % 900_000 == 0 for ts, _ in got)  # capture times, not read times
    assert {ts: v for ts, v in got if ts in expected} == expected
    assert gateway.rows("M1", "voltage_l1"), "live polling went on"
    position = tmp_path / "state" / "profiles"
    assert len(list(position.glob("M1-*.json"))) == 1

    # A restart with the same state folder: nothing old again.
    before = len(got)
    run(gateway, config(sim.ports[0]), lambda: len(gateway.rows("M1", "voltage_l1")) > 5,
        timeout=10)
    again = gateway.rows("M1", "1-1:32.7.0.255")
    new = again[before:]
    assert all(ts > max(t for t, _ in got) for ts, _ in new), "an old row came again"


def test_columns_renamed_or_skipped(sim: SimulatorServer, tmp_path: Path) -> None:
    gateway = Gateway(tmp_path)
    cfg = config(sim.ports[0], backfillDays=0.1, columns=[
        {"obis": "1-1:32.7.0.255", "key": "u1"}, {"obis": "1-1:1.8.0.255", "skip": True}])
    run(gateway, cfg, lambda: gateway.rows("M1", "u1"))
    stored = [e["values"] for cd in gateway.stored for e in cd.to_dict()["telemetry"]
              if "u1" in e["values"]]
    assert stored and all("1-1:1.8.0.255" not in v for v in stored)


def test_read_profile_rpc_answers_rows_by_range(sim: SimulatorServer, tmp_path: Path) -> None:
    import datetime as dt

    gateway = Gateway(tmp_path)
    cfg = config(sim.ports[0])
    cfg["meters"][0]["profiles"] = []
    connector = DlmsConnector(gateway, cfg, "dlms", logger=logging.getLogger("test.profiles"),
                              converter_logger=logging.getLogger("test.profiles.converter"))
    connector.open()
    try:
        end = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
        start = end - dt.timedelta(hours=1)

        def rpc(req_id: int, **params: Any) -> Any:
            connector.server_side_rpc_handler({"device": "M1", "data": {
                "id": req_id, "method": "read_profile", "params": params}})
            deadline = time.monotonic() + 20
            while req_id not in gateway.replies and time.monotonic() < deadline:
                time.sleep(0.05)
            return gateway.replies.get(req_id)

        reply = rpc(1, obis=LOAD, **{"from": start.isoformat(), "to": end.isoformat()})
        assert reply["success"], reply
        assert [r["time"][11:16] for r in reply["rows"]] == [
            f"{start.hour:02d}:00", f"{start.hour:02d}:15", f"{start.hour:02d}:30",
            f"{start.hour:02d}:45", f"{end.hour:02d}:00"]
        assert reply["columns"] == ["1-1:1.8.0.255", "1-1:32.7.0.255"]
        bad = rpc(2, obis=LOAD, **{"from": "soon"})
        assert not bad["success"] and "from" in bad["error"]
        backwards = rpc(3, obis=LOAD, **{"from": end.isoformat(), "to": start.isoformat()})
        assert not backwards["success"] and "before" in backwards["error"]
    finally:
        connector.close()


def test_rows_wait_while_thingsboard_is_unreachable(sim: SimulatorServer, tmp_path: Path) -> None:
    class Client:
        connected = False

        def is_connected(self) -> bool:
            return self.connected

    gateway = Gateway(tmp_path)
    gateway.tb_client = Client()  # type: ignore[attr-defined]
    connector = DlmsConnector(gateway, config(sim.ports[0], backfillDays=0.1), "dlms",
                              logger=logging.getLogger("test.profiles"),
                              converter_logger=logging.getLogger("test.profiles.converter"))
    connector.open()
    try:
        deadline = time.monotonic() + 20
        while not gateway.rows("M1", "voltage_l1") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        assert gateway.rows("M1", "voltage_l1"), "live data still goes to the storage"
        assert not gateway.rows("M1", "1-1:32.7.0.255"), "history waits for ThingsBoard"
        gateway.tb_client.connected = True  # type: ignore[attr-defined]
        deadline = time.monotonic() + 20
        while len(gateway.rows("M1", "1-1:32.7.0.255")) < 9 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(gateway.rows("M1", "1-1:32.7.0.255")) >= 9  # 2.4 h of quarter-hours
    finally:
        connector.close()
