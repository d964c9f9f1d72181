"""``tb-dlms read`` against the simulator: the exact JSON shape and the exit codes 0/1/2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tb_dlms.cli import main
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.server import SimulatorServer

T0 = 1_700_000_437.0  # the simulator's frozen clock: 2023-11-14T22:20:37Z


@pytest.fixture
def meter() -> Iterator[SimulatorServer]:
    srv = SimulatorServer(1, 0, options=MeterOptions(), clock=lambda: T0).run_in_thread()
    yield srv
    srv.stop()


def read(capsys, port: int, *args: str) -> tuple[int, dict, str]:
    code = main(["read", "--host", "127.0.0.1", "--port", str(port), "--timeout", "1", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_registers_clock_and_data_in_the_documented_shape(capsys, meter):
    model = meter.model(0)
    code, out, err = read(
        capsys, meter.ports[0], "1-1:32.7.0", "1-1:1.8.0/3/2", "0-0:1.0.0/8/2", "0-0:96.1.0/1"
    )
    assert code == 0 and err == ""
    raw, scaler, _ = model.expected("1-1:32.7.0")
    assert out["1-1:32.7.0"] == {
        "value": model.expected_value("1-1:32.7.0"),
        "unit": "V",
        "scaler": scaler,
        "raw": raw,
    }
    assert out["1-1:1.8.0/3/2"]["unit"] == "Wh"
    assert out["0-0:1.0.0/8/2"] == {"value": "2023-11-14T22:20:37+00:00"}
    assert out["0-0:96.1.0/1"] == {"value": "SIM00000000"}
    assert list(out) == ["1-1:32.7.0", "1-1:1.8.0/3/2", "0-0:1.0.0/8/2", "0-0:96.1.0/1"]


def test_a_failed_object_gives_its_error_name_and_exit_1(capsys, meter):
    code, out, _ = read(capsys, meter.ports[0], "1-1:32.7.0", "0-0:99.9.9")
    assert code == 1
    assert out["0-0:99.9.9"] == {"error": "object-undefined"}
    assert out["1-1:32.7.0"]["unit"] == "V"


def test_lls_from_the_environment_and_trace_without_the_password(capsys, meter, monkeypatch):
    monkeypatch.setenv("TB_DLMS_PASSWORD", "22222222")
    code, out, err = read(capsys, meter.ports[0], "--auth", "lls", "--trace", "1-1:14.7.0")
    assert code == 0 and out["1-1:14.7.0"]["unit"] == "Hz"
    assert " tx 7e " in err and " rx 7e " in err
    assert "32 32 32 32" not in err and "** ** ** **" in err


def test_association_failure_is_one_line_and_exit_2(capsys, meter):
    code, out, err = read(capsys, meter.ports[0], "--auth", "lls", "--password", "x", "1-1:32.7.0")
    assert code == 2 and out == {}
    assert err.count("\n") == 1 and "authentication failure" in err


def test_bad_object_is_exit_2(capsys, meter):
    code, _, err = read(capsys, meter.ports[0], "1-1:32.7.0/x")
    assert code == 2 and "class and attribute" in err


def test_subprocess_connection_refused_exit_2(meter):
    port = meter.ports[0]
    meter.stop()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tb_dlms.cli",
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "1-1:32.7.0",
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
        env={**os.environ},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("tb-dlms read: ") and result.stderr.count("\n") == 1


def test_subprocess_reads_the_nine_registers(meter):
    codes = [
        "1-1:32.7.0",
        "1-1:52.7.0",
        "1-1:72.7.0",
        "1-1:31.7.0",
        "1-1:51.7.0",
        "1-1:71.7.0",
        "1-1:14.7.0",
        "1-1:1.7.0",
        "1-1:1.8.0",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tb_dlms.cli",
            "read",
            "--host",
            "127.0.0.1",
            "--port",
            str(meter.ports[0]),
            *codes,
        ],
        capture_output=True,
        check=False,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    model = meter.model(0)
    assert {k: out[k]["value"] for k in codes} == {k: model.expected_value(k) for k in codes}
    assert [out[k]["unit"] for k in codes] == ["V"] * 3 + ["A"] * 3 + ["Hz", "W", "Wh"]
