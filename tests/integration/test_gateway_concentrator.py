"""Two meters behind one TCP host:port (a data concentrator) through the REAL gateway process.

Configured as a new user would: two entries of dlms.json with the same host and port and their own
``serverPhysicalAddress``. Both must publish telemetry (each its own meter's values) over one TCP
connection; before the engine shared the port, the second meter stayed ``disconnected`` forever.
"""

from __future__ import annotations

from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

DEVICES = ("Meter-1", "Meter-2")


@pytest.mark.timeout(90)
def test_two_meters_on_one_tcp_port_both_publish(
    standin: Any, gateway_factory: Any, simulator: Any
) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.meters import simulator_dlms_config

    sim = simulator(2, meters_per_port=2)  # physical addresses 16 and 17 behind one port
    assert len(sim.ports) == 1
    port = sim.ports[0]
    config = simulator_dlms_config([port, port], period_ms=500, health_period_ms=2000)
    for physical, meter in enumerate(config["meters"], start=16):
        del meter["serverAddressSize"]  # the shortest that holds a physical address: 2 bytes
        meter["serverPhysicalAddress"] = physical
    gw = gateway_factory(
        connectors=[connector_entry("dlms")], connector_files={"dlms.json": config}, install="dlms"
    )
    for name in DEVICES:
        standin.wait_for_telemetry(name, ["voltage_l1", "active_energy"], timeout=40)
    # Each device's energy is its own meter's (the models differ), not the other's answer.
    for i, name in enumerate(DEVICES):
        model = sim.model(i)
        obis = "1-1:1.8.0"
        checked = 0
        for _, ts, values in standin.telemetry(name):
            if "active_energy" in values:
                t = ts / 1000.0
                truth = {model.expected_value(obis, t - d) for d in (0.0, 0.05)}
                truth = {round(v, 6) if isinstance(v, float) else v for v in truth}
                value = values["active_energy"]
                assert (round(value, 6) if isinstance(value, float) else value) in truth, (
                    name, value, truth)
                checked += 1
        assert checked >= 1, name
    assert sim.accepted == 1  # one TCP connection carried both meters
    assert gw.running
