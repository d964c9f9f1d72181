"""``tb-dlms demo`` end to end (the README's main job) and its console formatting."""

from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway
from tb_dlms.commands.demo import describe, format_telemetry

pytestmark = pytest.mark.integration

# Fixed local-time-independent check: only the shape of the time stamp is asserted.
STAMP = r"\d\d:\d\d:\d\d\.\d\d\d"


def test_line_per_device_with_readings_then_health() -> None:
    health = frozenset({"connection_state", "success_rate", "total_reads", "unreachable"})
    line = format_telemetry(
        "Meter-1",
        1_700_000_000_123,
        {
            "voltage_l1": 230.14,
            "active_energy": 1234,
            "connection_state": "associated",
            "success_rate": 100.0,
            "unreachable": True,
        },
        health,
    )
    assert re.fullmatch(
        STAMP + r" Meter-1\s+voltage_l1=230\.14 active_energy=1234 \| health "
        r"connection_state=associated success_rate=100 ALARM unreachable",
        line,
    ), line


def test_describe_splits_a_gateway_telemetry_message_per_device() -> None:
    message = types.SimpleNamespace(
        topic="v1/gateway/telemetry",
        ts=1_700_000_000.0,
        payload={
            "Meter-1": [{"ts": 1_700_000_000_000, "values": {"voltage_l1": 230.0}}],
            "Meter-2": [
                {"ts": 1_700_000_000_500, "values": {"voltage_l1": 231.0}},
                {"ts": 1_700_000_001_500, "values": {"voltage_l1": 232.0}},
            ],
        },
    )
    lines = describe(message, frozenset())
    assert [line.split()[1] for line in lines] == ["Meter-1", "Meter-2", "Meter-2"]
    assert lines[2].endswith("voltage_l1=232")
    connect = types.SimpleNamespace(
        topic="v1/gateway/connect", ts=0.0, payload={"device": "Meter-1", "type": "DLMS Meter"}
    )
    assert describe(connect, frozenset())[0].split()[1:] == ["Meter-1", "connected"]


@needs_gateway
@needs_broker
@needs_connector
def test_demo_runs_the_real_gateway_and_shows_telemetry() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from tb_dlms.cli import main; sys.exit(main())",
            "demo",
            "--meters",
            "2",
            "--seconds",
            "10",
            "--period-ms",
            "1000",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    for device in ("Meter-1", "Meter-2"):
        assert re.search(STAMP + rf" {device}\s+voltage_l1=\d", out), out[-3000:]
        assert re.search(rf"{device}\s+disconnected", out)  # SIGINT shutdown told ThingsBoard
    assert "stopped   gateway (SIGINT, exit 0" in out
    assert "stopped   broker" in out and "stopped   meters" in out
    assert re.search(r"summary   [1-9]\d* telemetry message", out)
