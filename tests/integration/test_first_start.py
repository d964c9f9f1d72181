"""A first start of the real gateway with the shipped example ``config/dlms.json``, as a new user
does it: the password variable of its LLS meter is not set, its TCP meters are not there.

The example's LAN addresses (192.168.1.50/51) are replaced by a closed loopback port: tests use
only loopback, and a refused connection is what an absent meter looks like to the connector.
Nothing else of the example changes. The start must not fail: the meter without its password is
skipped with an error naming the variable, the other one reports ``unreachable`` health.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(90)
def test_first_start_with_the_example_config_and_no_password_variable(
    standin: Any, gateway_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tb_dlms.commands.install import connector_entry

    monkeypatch.delenv("DLMS_MICROSTAR_PASSWORD", raising=False)
    example = json.loads((ROOT / "config" / "dlms.json").read_text(encoding="utf-8"))
    port = _closed_port()
    lan = []
    for meter in example["meters"]:
        connection = meter.get("connection", {})  # the bus meters' is in their template
        if connection.get("type") == "tcp":
            lan.append(connection["host"])
            connection.update(host="127.0.0.1", port=port)
    assert lan == ["192.168.1.50", "192.168.1.51"]  # the example is what this test thinks
    gw = gateway_factory([connector_entry("dlms")], {"dlms.json": example}, install="dlms")
    gw.wait_for_output("polling 1 meters (1 skipped, 2 disabled)", timeout=40)
    summary = "polling 1 meters (1 skipped, 2 disabled)"

    def connector_log() -> str | None:  # the connector's own log file has it too
        text = gw.log("dlms_meters_connector")
        return text if summary in text else None

    log = standin.wait_for(connector_log, timeout=10)
    skipped = [line for line in log.splitlines() if "Microstar-1" in line and "skipped" in line]
    assert skipped and "DLMS_MICROSTAR_PASSWORD" in skipped[0] and "is not set" in skipped[0]
    assert "cannot start" not in log and "Traceback" not in log
    # The meter that is not there is a device whose health says so; the gateway runs on.
    standin.wait_for(lambda: standin.latest("Meter-0012345").get("connection_state")
                     == "unreachable", timeout=40)
    assert gw.running
    assert "Meter-0012345" in standin.connected_devices()
