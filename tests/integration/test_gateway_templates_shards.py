"""Templates and shards in the REAL gateway (issue 12).

* Templates: four simulated meters on two templates, with overrides (a port, a replaced point
  list, a password from the meter's own variable, the template's passwordEnv): every meter's keys
  arrive at the ThingsBoard stand-in, exactly the keys its merged entry names, with the values
  the simulated meter served.
* Shards: two gateway processes on one dlms.json (six meters), shard 0/2 and 1/2 from the
  environment, on one broker and stand-in. Each gateway reaches the broker through its own MQTT
  tap (the stand-in cannot tell two gateways apart: same topics), so the test sees who sent what:
  every meter's telemetry comes from exactly one gateway, the union is all meters, the split is
  the pure function's, and each gateway logs ``shard i/2: polling K of 6 meters``.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway
from mqtt_tap import MqttTap

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

BOUNDARY_MS = 50  # see test_gateway_product.py: a stamp just after a second may carry the last


def _registers() -> dict[str, str]:
    from tb_dlms.sandbox.meters import REGISTERS

    return dict(REGISTERS)


def _matches(model: Any, obis: str, ts_ms: int, value: Any) -> bool:
    """The value the simulated meter served for a reading stamped ``ts_ms``."""
    times = [ts_ms / 1000.0] + ([ts_ms / 1000.0 - 1.0] if ts_ms % 1000 < BOUNDARY_MS else [])
    return isinstance(value, (int, float)) and any(
        math.isclose(value, model.expected_value(obis, t), rel_tol=1e-12, abs_tol=1e-9)
        for t in times)


def templated_config(ports: list[int]) -> dict[str, Any]:
    from tb_dlms.sandbox.meters import SIMULATOR_PASSWORD

    points = [{"key": k, "obis": o} for k, o in _registers().items()]
    base = {"deviceType": "DLMS Meter", "clientAddress": 1, "serverLogicalAddress": 1,
            "serverAddressSize": 1, "authentication": "lls", "pollPeriod": 1000,
            "timeout": 3000, "retries": 2, "healthPeriod": 60000,
            "connection": {"type": "tcp", "host": "127.0.0.1", "wrapper": False}}
    return {
        "logLevel": "INFO",
        "templates": {
            "poly": {**base, "passwordEnv": "TPL_POLY_PASSWORD", "timeseries": points[:5],
                     "staticAttributes": [{"key": "serial_number", "obis": "0-0:96.1.0.255",
                                           "classId": 1}]},
            "energy": {**base, "password": SIMULATOR_PASSWORD, "timeseries": points[7:]},
        },
        "meters": [
            {"deviceName": "Poly-1", "template": "poly", "connection": {"port": ports[0]}},
            {"deviceName": "Poly-2", "template": "poly", "connection": {"port": ports[1]},
             "timeseries": [points[6]]},  # replaces the template's list
            {"deviceName": "Energy-3", "template": "energy", "connection": {"port": ports[2]},
             "passwordEnv": "METER3_PASSWORD"},  # replaces the template's password
            {"deviceName": "Energy-4", "template": "energy", "connection": {"port": ports[3]},
             "pollPeriod": 1500},
        ],
    }


@pytest.mark.timeout(120)
def test_meters_on_templates_publish_their_merged_keys_with_the_meter_values(
        standin: Any, simulator: Any, gateway_factory: Any) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.meters import SIMULATOR_PASSWORD

    sim = simulator(4)
    config = templated_config(sim.ports)
    gateway_factory([connector_entry("dlms")], {"dlms.json": config}, install="dlms",
                    extra_env={"TPL_POLY_PASSWORD": SIMULATOR_PASSWORD,
                               "METER3_PASSWORD": SIMULATOR_PASSWORD})
    registers = _registers()
    expected = {"Poly-1": list(registers)[:5], "Poly-2": ["frequency"],
                "Energy-3": ["active_power", "active_energy"],
                "Energy-4": ["active_power", "active_energy"]}
    for index, (device, keys) in enumerate(expected.items()):
        standin.wait_for(lambda d=device, k=keys: sum(
            1 for _, _, v in standin.telemetry(d) if set(k) <= set(v)) >= 2, timeout=60)
        entries = [(ts, v) for _, ts, v in standin.telemetry(device) if set(registers) & set(v)]
        seen = set().union(*(set(v) & set(registers) for _, v in entries))
        assert seen == set(keys), device  # the merged entry's points, no more, no fewer
        model = sim.model(index)
        checked = 0
        for ts, values in entries:
            for key in keys:
                if key in values:
                    assert _matches(model, registers[key], ts, values[key]), (device, key, ts)
                    checked += 1
        assert checked >= 2 * len(keys)
    serial = standin.wait_for(lambda: standin.attributes("Poly-1").get("serial_number"), 30)
    assert serial == sim.model(0).serial.decode()  # the template's static attribute


@pytest.mark.timeout(150)
def test_two_gateways_split_one_dlms_json_and_each_meter_comes_from_one(
        broker: Any, standin: Any, simulator: Any, gateway_factory: Any) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.connector.shards import shard_of
    from tb_dlms.sandbox.meters import simulator_dlms_config

    sim = simulator(6)
    config = simulator_dlms_config(sim.ports, period_ms=1000, health_period_ms=2000)
    names = [m["deviceName"] for m in config["meters"]]
    taps = [MqttTap(broker.host, broker.port) for _ in range(2)]
    try:
        gateways = [gateway_factory([connector_entry("dlms")], {"dlms.json": config},
                                    install="dlms", port=tap.port,
                                    extra_env={"TB_DLMS_SHARD_INDEX": str(i),
                                               "TB_DLMS_SHARD_COUNT": "2"})
                    for i, tap in enumerate(taps)]
        standin.wait_for(lambda: all(standin.telemetry(n) for n in names), timeout=90)

        def senders() -> dict[str, set[int]]:
            out: dict[str, set[int]] = {n: set() for n in names}
            for i, tap in enumerate(taps):
                for payload in tap.published("v1/gateway/telemetry"):
                    for device in payload if isinstance(payload, dict) else ():
                        out.setdefault(device, set()).add(i)
            return out

        standin.wait_for(lambda: all(senders().values()), timeout=30)
        by_meter = senders()
        assert set(by_meter) == set(names)  # no other device
        split = {n: shard_of(n, 2) for n in names}
        assert {n: sorted(s) for n, s in by_meter.items()} == {n: [split[n]] for n in names}
        assert set(split.values()) == {0, 1}  # both gateways have meters: a real split
        for i, gw in enumerate(gateways):
            mine = sum(1 for s in split.values() if s == i)
            gw.wait_for_output(f"shard {i}/2: polling {mine} of 6 meters", timeout=10)
            connected = [p.get("device") for p in taps[i].published("v1/gateway/connect")
                         if isinstance(p, dict)]
            assert set(connected) == {n for n, s in split.items() if s == i}  # registered: its own
    finally:
        for tap in taps:
            tap.stop()
