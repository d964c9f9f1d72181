"""``tb-dlms scan`` against a Gurux meter (gurux_dlms's server, Gurux's own objects and its own
object_list encoding; GPLv2, tests only): the block names Gurux's register and logical device
name, loads with no error or warning, and polls the meter with the settings the loader makes of
it (the session the gateway's engine would open)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Callable

import pytest

pytest.importorskip("gurux_dlms")

from gurux_server import ENERGY_RAW, LDN, GuruxTcpServer, gurux_meters  # noqa: E402
from tb_dlms.connector.config import load_config  # noqa: E402
from tb_dlms.session import BlockingSession  # noqa: E402
from tb_dlms.transport import TcpTransport  # noqa: E402

pytestmark = pytest.mark.interop

BLOCK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = b"TBDLMS01"
ENV = {"DLMS_BLOCK_CIPHER_KEY": BLOCK.hex(), "DLMS_AUTHENTICATION_KEY": AUTH.hex()}


@pytest.fixture
def gurux() -> Iterator[Callable[..., GuruxTcpServer]]:
    with gurux_meters(BLOCK, AUTH) as start:
        yield start


def scan(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "scan", "--host", "127.0.0.1", "--port", str(port),
         "--timeout", "10", *args],
        capture_output=True, text=True, timeout=60, env=dict(os.environ), check=False)


def test_scan_with_hls_names_guruxs_objects_and_the_block_polls_it(gurux):
    server = gurux()
    done = scan(server.port, "--auth", "hls-gmac", "--system-title", TITLE.hex(),
                "--block-key", BLOCK.hex(), "--auth-key", AUTH.hex())
    assert done.returncode == 0, done.stderr
    assert BLOCK.hex() not in done.stdout.lower() and AUTH.hex() not in done.stdout.lower()
    block = json.loads(done.stdout)
    assert block["timeseries"] == [{"key": "active_energy_import", "obis": "1-0:1.8.0.255",
                                    "classId": 3, "attribute": 2}]
    assert block["staticAttributes"] == [{"key": "logical_device_name",
                                          "obis": "0-0:42.0.0.255", "classId": 1,
                                          "attribute": 2}]
    assert block["authentication"] == "hls-gmac" and block["systemTitle"] == TITLE.hex().upper()
    assert block["blockCipherKeyEnv"] == "DLMS_BLOCK_CIPHER_KEY"
    cfg = load_config({"meters": [block]}, ENV)
    assert cfg.errors == () and cfg.warnings == ()
    # The meter as the loader made it: the session the engine opens, reading the block's points.
    (meter,) = cfg.meters
    spec = meter.spec
    points = spec.points + meter.static_attributes
    settings = spec.session
    import dataclasses

    # the counter the gateway would first take from the meter's frame counter
    settings = dataclasses.replace(settings, invocation_counter=None)
    with BlockingSession(TcpTransport(spec.transport.host, spec.transport.port, 2.0),
                         settings) as session:
        energy, ldn = session.read([p.ref for p in points])
    assert energy.value == pytest.approx(ENERGY_RAW / 100) and energy.unit == "Wh"
    assert ldn.raw == LDN


def test_the_public_client_gets_what_gurux_lets_it_read(gurux):
    server = gurux()
    done = scan(server.port)
    # Gurux lists every object to the public client but refuses the register's scaler_unit
    assert done.returncode == 1, done.stderr
    block = json.loads(done.stdout)
    assert block["timeseries"] == []
    assert "left out 1-0:1.8.0.255/3/3" in done.stderr
    cfg = load_config({"meters": [block]})
    assert cfg.errors == ()
