"""``tb-dlms demo`` end to end (the README's main job) and its console formatting."""

from __future__ import annotations

import argparse
import datetime
import io
import re
import subprocess
import sys
import types

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway
from tb_dlms.commands.demo import WIDTH, _Demo, describe, format_telemetry, simulator_units

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
        r"connection_state=associated success_rate=100% ALARM unreachable",
        " ".join(line.split()),  # one entry, possibly continued on a second line
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
    assert [ts for ts, _ in lines] == [1_700_000_000_000, 1_700_000_000_500, 1_700_000_001_500]
    assert [text.split()[1] for _, text in lines] == ["Meter-1", "Meter-2", "Meter-2"]
    assert lines[2][1].endswith("voltage_l1=232")
    connect = types.SimpleNamespace(
        topic="v1/gateway/connect", ts=0.0, payload={"device": "Meter-1", "type": "DLMS Meter"}
    )
    assert describe(connect, frozenset())[0][1].split()[1:] == ["Meter-1", "connected"]


def _full_cycle() -> dict[str, object]:
    values: dict[str, object] = {
        "voltage_l1": 230.14, "voltage_l2": 229.87, "voltage_l3": 231.02,
        "current_l1": 1.57, "current_l2": 1.43, "current_l3": 1.61,
        "frequency": 50.01, "active_power": 1089.3, "active_energy": 1234567,
    }
    values.update(connection_state="associated", success_rate=100.0,
                  avg_read_time_ms=12.345, total_reads=42, failed_reads=0, reconnects=0)
    return values


def test_a_full_cycle_shows_units_and_fits_100_columns() -> None:
    health = frozenset({"connection_state", "success_rate", "avg_read_time_ms", "total_reads",
                        "failed_reads", "reconnects"})
    text = format_telemetry("Meter-1", 1_700_000_000_123, _full_cycle(), health,
                            simulator_units())
    lines = text.split("\n")
    assert len(lines) > 1 and all(len(line) <= WIDTH for line in lines), lines
    joined = " ".join(text.split())
    for token in ("voltage_l1=230.14 V", "current_l1=1.57 A", "frequency=50.01 Hz",
                  "active_power=1089.3 W", "active_energy=1234567 Wh", "success_rate=100%",
                  "avg_read_time_ms=12.345 ms", "| health connection_state=associated"):
        assert token in joined, (token, lines)
    assert all(line.startswith(" " * 20) for line in lines[1:])  # continuations, indented


def test_console_prints_in_time_order_whatever_the_arrival_order() -> None:
    out = io.StringIO()
    demo = _Demo(argparse.Namespace(), out)
    now_ms = int(datetime.datetime.now().timestamp() * 1000)
    old = now_ms - 10_000
    late = types.SimpleNamespace(topic="v1/gateway/telemetry", ts=now_ms / 1000, payload={
        "Meter-2": [{"ts": old + 2000, "values": {"voltage_l1": 232.0}}],
        "Meter-1": [{"ts": old, "values": {"voltage_l1": 230.0}},
                    {"ts": old + 3000, "values": {"voltage_l1": 233.0}}]})
    early = types.SimpleNamespace(topic="v1/gateway/telemetry", ts=now_ms / 1000, payload={
        "Meter-3": [{"ts": old + 1000, "values": {"voltage_l1": 231.0}}],
        "Meter-1": [{"ts": now_ms + 60_000, "values": {"voltage_l1": 299.0}}]})  # still held
    demo.on_message(late)
    demo.on_message(early)
    demo.release()
    assert re.findall(r"voltage_l1=(\d+)", out.getvalue()) == ["230", "231", "232", "233"]
    demo.release(flush=True)
    assert out.getvalue().rstrip().endswith("voltage_l1=299 V")


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
    assert [line for line in out.splitlines() if len(line) > 100] == []
    stamps = re.findall(r"^(" + STAMP + r") Meter-\d", out, re.M)
    assert len(stamps) > 4 and stamps == sorted(stamps)  # readings in time order
    assert re.search(r"voltage_l1=\d+(\.\d+)? V ", out) and re.search(r"frequency=[\d.]+ Hz", out)
    for device in ("Meter-1", "Meter-2"):
        assert re.search(STAMP + rf" {device}\s+voltage_l1=\d", out), out[-3000:]
        assert re.search(rf"{device}\s+disconnected", out)  # SIGINT shutdown told ThingsBoard
    # the demo's pushing meter: its ciphered notifications, with the meter's own time
    assert re.search(STAMP + r" Push-1\s+voltage_l1=\d", out), out[-3000:]
    assert "stopped   gateway (SIGINT, exit 0" in out
    assert "stopped   broker" in out and "stopped   meters" in out
    assert re.search(r"summary   [1-9]\d* telemetry message", out)
