"""``tb-dlms scan`` over a real serial line (a socat pty pair) with two simulated meters on it,
as on an RS-485 bus: ``--bus`` finds both addresses, and the block scanned for one of them is a
serial meter the loader takes without an error or a warning."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.cli import main
from tb_dlms.connector.config import load_config
from tb_dlms.testing.pty import PtyMeterBus, PtyPair

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")


@pytest.fixture
def line() -> Iterator[str]:
    pair = PtyPair()
    try:
        bus = PtyMeterBus(pair.b, (16, 17))
        try:
            yield pair.a
        finally:
            bus.close()
    finally:
        pair.kill()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["scan", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_bus_probe_over_a_serial_line(capsys, line):
    code, found, err = run(capsys, "--serial", line, "--bus", "15-18", "--probe-timeout", "0.3")
    assert code == 0, err
    assert [(a["serverPhysicalAddress"], a["answer"]) for a in found] == [(16, "UA"), (17, "UA")]


def test_scan_one_meter_of_the_bus(capsys, line):
    code, block, err = run(capsys, "--serial", line, "--server-physical", "17", "--timeout", "20")
    assert code == 0, err
    assert block["connection"] == {"type": "serial", "port": line, "baudrate": 9600,
                                   "modeE": False}
    assert block["serverPhysicalAddress"] == 17 and block["deviceName"] == "Meter SIM00000001"
    cfg = load_config({"meters": [block]})
    assert cfg.errors == () and cfg.warnings == () and len(cfg.meters) == 1
