"""Editing dlms.json while the REAL gateway runs: its hot reload rebuilds our connector.

thingsboard-gateway 3.8.5 compares the connector files' ``stat()`` every
``checkConnectorsConfigurationInSeconds`` (tb_gateway_service.check_connector_configuration_updates)
and, on a change, closes every connector (``close()`` until ``is_stopped()``) and loads them
again. Set to 1 s here so the test takes seconds, not a minute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]


@pytest.fixture
def run(request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox import Broker, GatewayProcess, ThingsBoardStandIn
    from tb_dlms.sandbox.meters import simulator_dlms_config
    from tb_dlms.simulator.server import SimulatorServer

    failed_before = request.session.testsfailed
    started: list[Any] = []
    try:
        broker = Broker().start()
        started.append(broker)
        standin = ThingsBoardStandIn(broker.host, broker.port).start()
        started.append(standin)
        sim = SimulatorServer(2, 0).run_in_thread()
        started.append(sim)
        config = simulator_dlms_config(sim.ports, period_ms=500, health_period_ms=5000)
        second = config["meters"].pop()  # added by the edit
        gw = GatewayProcess(
            broker.host,
            broker.port,
            connectors=[connector_entry("dlms")],
            connector_files={"dlms.json": config},
        )
        started.append(gw)
        main = gw.config_dir / "tb_gateway.json"
        settings = json.loads(main.read_text(encoding="utf-8"))
        settings["thingsboard"]["checkConnectorsConfigurationInSeconds"] = 1
        main.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        gw.install_connector("dlms")
        gw.start()
        yield SimpleNamespace(standin=standin, sim=sim, gw=gw, second=second)
    finally:
        if request.session.testsfailed > failed_before and started:
            last = started[-1]
            if hasattr(last, "output"):
                print(f"--- gateway output ---\n{last.output()[-6000:]}")
        for thing in reversed(started):
            try:
                thing.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others whatever happens
                print(f"stopping {thing!r}: {exc}")


@pytest.mark.timeout(90)
def test_editing_dlms_json_adds_a_meter_and_renames_a_key(run: Any) -> None:
    standin, sim, gw = run.standin, run.sim, run.gw
    standin.wait_for_telemetry("Meter-1", ["voltage_l1"], timeout=30)
    path = gw.config_dir / "dlms.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    assert config.get("id"), "the gateway writes the connector id into the file"
    config["meters"][0]["timeseries"][0]["key"] = "u_l1"  # voltage_l1 renamed
    config["meters"].append(run.second)
    edited = time.time()
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")

    # The new meter publishes, and Meter-1 publishes its voltage under the new key.
    standin.wait_for_telemetry("Meter-2", ["voltage_l1", "active_energy"], timeout=30)
    standin.wait_for_telemetry("Meter-1", ["u_l1"], timeout=30)
    first_new = min(ts for _, ts, v in standin.telemetry("Meter-1") if "u_l1" in v)
    assert first_new > edited * 1000
    # The old connector is gone: no reading under the old key after the first under the new.
    time.sleep(1.5)
    stale = [ts for _, ts, v in standin.telemetry("Meter-1") if "voltage_l1" in v]
    stale = [ts for ts in stale if ts > first_new]
    assert not stale, stale
    # The old connector released its session politely before the new one associated.
    assert sim.meters[0].releases >= 1 and sim.meters[0].discs >= 1
    assert sim.connections == 2  # one session per meter, none left over
    stats = standin.gateway_rpc("dlms_statistics", timeout=15)
    assert stats["meters"] == 2, stats
    assert "Meter-2" in standin.connected_devices()
    assert gw.stop() == 0
