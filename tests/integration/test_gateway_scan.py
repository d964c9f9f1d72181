"""``tb-dlms scan`` -> dlms.json -> the REAL gateway, with no edit in between: the block printed
for a simulated meter, as the only meter of dlms.json, makes the gateway deliver every scanned
timeseries key with the meter's values, and the static attributes; for the original "poly"
meter and the CT-connected "ct" model. Then the ``scan`` device RPC
through the gateway returns the same points.

The simulator's clock is frozen, so every read of a register gives the same value: what the
gateway delivers must equal what a direct read gives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

T0 = 1_700_000_437.0


def direct_values(port: int, points: list[dict[str, Any]]) -> dict[str, Any]:
    from tb_dlms.protocol.obis import Obis
    from tb_dlms.session import BlockingSession, SessionSettings
    from tb_dlms.session.reading import Ref
    from tb_dlms.transport import TcpTransport

    refs = [Ref(p["classId"], Obis.parse(p["obis"]), p["attribute"]) for p in points]
    with BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(client=16)) as s:
        results = s.read(refs)
    return {p["key"]: r.value for p, r in zip(points, results)}


def registers_of_table(model: str) -> set[str]:
    from tb_dlms.simulator.objects import TABLES

    return {str(d.obis) for d in TABLES[model].defs if d.class_id in (3, 4)}


# poly: the original meter; ct: another channel (1-0), finer scalers, reactive quantities,
# power factor and a firmware identity. mono adds nothing here that ct does not (its scan is
# checked in tests/cli/test_scan.py), and each gateway start costs seconds.
@pytest.mark.parametrize("model", ["poly", "ct"])
def test_the_scanned_block_polls_the_meter_through_the_gateway(
        standin: Any, simulator: Any, gateway_factory: Any, model: str) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.simulator.model import MeterOptions

    sim = simulator(1, clock=lambda: T0, options=MeterOptions(model=model))
    port = sim.ports[0]
    scanned = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "scan", "--host", "127.0.0.1", "--port", str(port)],
        capture_output=True, text=True, timeout=60, check=True)
    block = json.loads(scanned.stdout)
    timeseries = block["timeseries"]
    assert {p["obis"] for p in timeseries} == registers_of_table(model)
    truth = direct_values(port, timeseries)
    static = direct_values(port, block["staticAttributes"])
    assert static["serial_number"] == "SIM00000000"
    assert ("firmware_version" in static) == (model == "ct")
    device = block["deviceName"]

    gateway_factory([connector_entry("dlms")], {"dlms.json": {"meters": [block]}},
                    install="dlms")
    got = standin.wait_for_telemetry(device, list(truth), timeout=60)
    assert {k: got[k] for k in truth} == truth
    standin.wait_for(lambda: set(static) <= set(standin.attributes(device)), 30)
    attributes = standin.attributes(device)
    assert {k: attributes[k] for k in static} == static

    reply = standin.device_rpc(device, "scan", {}, timeout=30)
    assert reply["success"] is True, reply
    assert reply["block"]["timeseries"] == timeseries
    assert reply["block"]["connection"]["port"] == port


def test_the_block_scanned_from_a_gurux_meter_polls_it_through_the_gateway(
        standin: Any, gateway_factory: Any) -> None:
    """Gurux's server (its own objects and object_list; tests only) with HLS-GMAC: the block,
    keys given to the gateway in the environment variables the block names."""
    pytest.importorskip("gurux_dlms")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "interop"))
    from gurux_server import ENERGY_RAW, LDN, GuruxMeter, GuruxTcpServer, patched_gurux
    from tb_dlms.commands.install import connector_entry

    block_key = "000102030405060708090A0B0C0D0E0F"
    auth_key = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    with patched_gurux() as seen:
        server = GuruxTcpServer(GuruxMeter(bytes.fromhex(block_key), bytes.fromhex(auth_key),
                                           seen)).start()
        try:
            scanned = subprocess.run(
                [sys.executable, "-m", "tb_dlms.cli", "scan", "--host", "127.0.0.1", "--port",
                 str(server.port), "--auth", "hls-gmac", "--system-title", "5442444C4D533031",
                 "--block-key", block_key, "--auth-key", auth_key],
                capture_output=True, text=True, timeout=60, check=True)
            block = json.loads(scanned.stdout)
            assert [p["key"] for p in block["timeseries"]] == ["active_energy_import"]
            env = {block["blockCipherKeyEnv"]: block_key,
                   block["authenticationKeyEnv"]: auth_key}
            gateway_factory([connector_entry("dlms")], {"dlms.json": {"meters": [block]}},
                            install="dlms", extra_env=env)
            device = block["deviceName"]
            got = standin.wait_for_telemetry(device, ["active_energy_import"], timeout=60)
            assert got["active_energy_import"] == pytest.approx(ENERGY_RAW / 100)
            ldn = standin.wait_for(
                lambda: standin.attributes(device).get("logical_device_name"), 30)
            assert ldn == LDN.decode()
        finally:
            server.stop()
    assert server.errors == [] and server.meter.failures == []
