"""``tb-dlms read --auth hls-gmac`` against ``tb-dlms simulate --auth hls-gmac``: two processes,
real TCP, each protection level, the frame counter read first, keys from the environment, a
wrong key or a replayed counter -> exit 2 with one line on stderr, keys never printed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

BLOCK = "000102030405060708090A0B0C0D0E0F"  # the simulator's default test keys
AUTH = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
TITLE = "4142434445464748"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Simulator:
    def __init__(self, level: str) -> None:
        self.port, self.level = _free_port(), level
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tb_dlms.cli", "simulate", "--base-port", str(self.port),
             "--auth", "hls-gmac", "--security", level],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        assert f"hls-gmac {level}" in self.proc.stdout.readline()

    def stop(self) -> str:
        """Terminate; the simulator's closing line (with its refusal counts)."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.communicate(timeout=5)[0]


@pytest.fixture(params=["auth-enc", "auth", "enc"])
def simulator(request) -> Iterator[Simulator]:
    sim = Simulator(request.param)
    try:
        yield sim
    finally:
        sim.stop()


def tb_read(port: int, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1", "--port", str(port),
         "--timeout", "5", "--auth", "hls-gmac", "--system-title", TITLE, *args],
        capture_output=True, text=True, timeout=30, env={**os.environ, **(env or {})})


def keys(block: str = BLOCK, auth: str = AUTH) -> list[str]:
    return ["--block-key", block, "--auth-key", auth]


def test_read_each_level_then_the_frame_counter_goes_on(simulator):
    port, level = simulator.port, simulator.level
    first = tb_read(port, *keys(), "--security", level, "--trace", "0-0:96.1.0/1/2", "1-1:32.7.0")
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["0-0:96.1.0/1/2"] == {"value": "SIM00000000"}
    assert out["1-1:32.7.0"]["unit"] == "V"
    assert BLOCK.lower() not in first.stderr.lower() and AUTH.lower() not in first.stderr.lower()
    # Without --invocation-counter every run reads the frame counter first: never a replay.
    counter = json.loads(tb_read(port, *keys(), "--security", level,
                                 "0-0:43.1.0/1/2").stdout)["0-0:43.1.0/1/2"]["value"]
    assert counter >= 4  # AARQ, f(StoC) and the GET of the first run, this AARQ and f(StoC)
    again = tb_read(port, *keys(), "--security", level, "0-0:43.1.0/1/2")
    assert json.loads(again.stdout)["0-0:43.1.0/1/2"]["value"] > counter


def test_keys_from_the_environment(simulator):
    port, level = simulator.port, simulator.level
    done = tb_read(port, "--security", level, "0-0:96.1.0/1/2",
                   env={"TB_DLMS_BLOCK_KEY": BLOCK, "TB_DLMS_AUTH_KEY": AUTH})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"0-0:96.1.0/1/2": {"value": "SIM00000000"}}


def test_wrong_key_is_exit_2_with_one_line(simulator):
    port, level = simulator.port, simulator.level
    # Encryption only never uses the authentication key on APDUs: spoil the block key there.
    wrong = keys(block="00" * 16) if level == "enc" else keys(auth="00" * 16)
    done = tb_read(port, *wrong, "--security", level, "0-0:96.1.0/1/2")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "00" * 16 not in done.stderr


def test_replayed_invocation_counter_is_exit_2(simulator):
    port, level = simulator.port, simulator.level
    assert tb_read(port, *keys(), "--security", level, "--invocation-counter", "100",
                   "0-0:96.1.0/1/2").returncode == 0
    replay = tb_read(port, *keys(), "--security", level, "--invocation-counter", "100",
                     "0-0:96.1.0/1/2")
    assert replay.returncode == 2 and len(replay.stderr.strip().splitlines()) == 1
    assert "1 replayed" in simulator.stop()  # counted by the meter




def test_bad_key_option_names_the_option_not_the_value():
    done = tb_read(1, "--block-key", "ABCD", "--auth-key", AUTH, "0-0:96.1.0/1/2")
    assert done.returncode == 2 and "--block-key" in done.stderr and "ABCD" not in done.stderr


def test_dedicated_key_flag(simulator):
    """--dedicated-key: each run's association has its own key, which the simulator takes (its
    closing line counts them), and the GET goes out as ded-get-request."""
    port, level = simulator.port, simulator.level
    for _ in range(2):
        done = tb_read(port, *keys(), "--security", level, "--dedicated-key", "--trace",
                       "0-0:96.1.0/1/2")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"0-0:96.1.0/1/2": {"value": "SIM00000000"}}
        assert "e6 e6 00 d0" in done.stderr.lower()  # the trace: a ded-get-request went out
    assert "2 associations with a dedicated key" in simulator.stop()


def test_dedicated_key_flag_goes_with_hls_gmac():
    done = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1", "--port", "1",
         "--dedicated-key", "1-1:32.7.0"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "--dedicated-key" in done.stderr
