"""An HLS-GMAC meter (security suite 0, auth-enc) through the REAL gateway, across a crash.

The simulated meter refuses any invocation counter not above the last it accepted (replay
protection) and counts the refusals: after the gateway is killed (SIGKILL, no goodbye) and
started again on the same folders, it goes on reading with zero replays, because the counter
file under the gateway's data folder holds a bound reserved before use. The keys come from an
environment variable and a file, and appear in no log and no MQTT message.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

BLOCK = "000102030405060708090A0B0C0D0E0F"  # the simulator's keys (Green Book example keys)
AUTH = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
TITLE = "5442444C4D533031"


@pytest.fixture
def run(standin: Any, simulator: Any, gateway_factory: Any, tmp_path: Path) -> SimpleNamespace:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.meters import simulator_dlms_config
    from tb_dlms.simulator.model import MeterOptions

    sim = simulator(1, options=MeterOptions(authentication="hls-gmac", security="auth-enc"))
    key_file = tmp_path / "gak.hex"
    key_file.write_text(AUTH + "\n")
    config = simulator_dlms_config(sim.ports, period_ms=300, health_period_ms=2000)
    meter = config["meters"][0]
    del meter["password"]
    meter.update(authentication="hls-gmac", systemTitle=TITLE, blockCipherKeyEnv="GUEK",
                 authenticationKeyFile=str(key_file), security="auth-enc")
    workdir = tmp_path / "gw"

    def gateway(check_config_s: int = 0) -> Any:
        def main(settings: dict[str, Any]) -> None:
            if check_config_s:  # the gateway's hot reload of connector files
                settings["thingsboard"]["checkConnectorsConfigurationInSeconds"] = check_config_s

        return gateway_factory([connector_entry("dlms")], {"dlms.json": config}, install="dlms",
                               main=main, workdir=workdir, keep=True, extra_env={"GUEK": BLOCK})

    return SimpleNamespace(standin=standin, sim=sim, gateway=gateway, workdir=workdir,
                           key_file=key_file)


def readings_after(standin: Any, since_ms: int, count: int, timeout: float) -> None:
    def enough() -> bool:
        fresh = [ts for _, ts, values in standin.telemetry("Meter-1")
                 if ts > since_ms and "voltage_l1" in values]
        return len(fresh) >= count

    standin.wait_for(enough, timeout)


@pytest.mark.timeout(150)
def test_hls_gmac_meter_reads_across_a_gateway_crash_without_reusing_a_counter(run: Any) -> None:
    standin, sim = run.standin, run.sim
    security = sim.meters[0].security
    first = run.gateway()
    readings_after(standin, 0, 5, timeout=60)
    # Unknown at first: read from the meter's frame counter with the public client.
    assert "invocation counter continues from" in first.output()
    files = list((run.workdir / "data" / "dlms" / "invocation_counters").glob("*.json"))
    assert len(files) == 1 and "Meter-1" in files[0].name
    reserved = json.loads(files[0].read_text())["next"]
    last_before = sim.model(0).received.last
    assert last_before is not None and last_before < reserved

    os.kill(first.pid, signal.SIGKILL)  # a crash: nothing saved on the way out
    first.stop()
    after_crash = int(time.time() * 1000)
    second = run.gateway()
    readings_after(standin, after_crash, 5, timeout=60)

    assert security.replays == 0, "a counter was sent twice"
    assert sim.model(0).received.last > reserved - 1  # continued from the reserved bound
    output = second.output()  # this run's console (the log files span both runs)
    assert "polling 1 meters" in output
    assert "invocation counter continues from" not in output  # no frame counter read needed
    for text in (first.output(), output, json.dumps([m.payload for m in standin.messages()],
                                                     default=str)):
        for secret in (BLOCK, AUTH, BLOCK.lower(), AUTH.lower()):
            assert secret not in text


@pytest.mark.timeout(120)
def test_a_rotated_key_hot_reloads_and_the_counter_goes_on(run: Any) -> None:
    from tb_dlms.protocol.security import GcmKey, SecurityContext

    standin, sim = run.standin, run.sim
    security = sim.meters[0].security
    gw = run.gateway(check_config_s=1)
    readings_after(standin, 0, 3, timeout=60)
    new_auth = "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
    # The utility rotates the authentication key: the meter first, then dlms.json.
    security.context = SecurityContext(GcmKey(bytes.fromhex(BLOCK), bytes.fromhex(new_auth)))
    path = gw.config_dir / "dlms.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["meters"][0].pop("authenticationKeyFile")
    config["meters"][0]["authenticationKey"] = new_auth
    rotated = int(time.time() * 1000)
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    gw.wait_for_output("DLMS Meters: stopped", timeout=30)  # the reload closed the connector
    readings_after(standin, rotated, 5, timeout=60)
    assert security.replays == 0
    # One frame counter read at the very start, none after the reload: the counter went on.
    assert gw.output().count("invocation counter continues from") == 1
    assert new_auth not in gw.output()
