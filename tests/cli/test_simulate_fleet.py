"""``tb-dlms simulate --processes N``: one fleet served by several processes.

Truth: meter i answers as meter i of the fleet (serial, HDLC physical address, register values of
``simulator.values`` for index i) whichever process serves it; signals stop every child; a child
that dies takes the fleet down with a message; a parent killed outright leaves no orphan.
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tb_dlms.commands.simulate_launcher import FDS_PER_PORT, plan
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator import values
from tb_dlms.testing.ports import free_port_range
from tb_dlms.transport import TcpTransport
from tb_dlms.transport.fd_limits import LOW_FDS

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for child pids")


# -- the plan -----------------------------------------------------------------------------------


def test_plan_auto_is_one_process_for_a_small_fleet_and_two_for_10000_at_20000_files():
    assert plan(1000, 1, None, 3333, limit=20000) == [(0, 1000)]
    assert plan(10000, 1, None, 3333, limit=20000) == [(0, 5000), (5000, 5000)]
    small = plan(10000, 1, None, 3333, limit=1024)  # 360 ports fit well inside 1024 files
    assert len(small) == 28 and max(n for _, n in small) <= 360


def test_plan_slices_are_contiguous_cover_the_fleet_and_keep_concentrator_groups_whole():
    slices = plan(23, 4, 3, 3333, limit=20000)  # 6 ports of 4 meters, the last one of 3
    assert slices == [(0, 8), (8, 8), (16, 7)]
    assert all(first % 4 == 0 for first, _ in slices)


def test_plan_says_why_when_the_limit_is_too_low():
    with pytest.raises(ValueError, match=r"limit of 1024 \(ulimit -n\): use --processes 28"):
        plan(10000, 1, 2, 3333, limit=1024)
    with pytest.raises(ValueError, match="too low for 10000 ports even in 64 processes"):
        plan(10000, 1, None, 3333, limit=200)
    with pytest.raises(ValueError, match="more than the 2 ports"):
        plan(2, 1, 3, 3333, limit=20000)
    with pytest.raises(ValueError, match="needs a --base-port"):
        plan(4, 1, 2, 0, limit=20000)


def plan_in_child(soft: int, hard: int | None, count: int) -> list:
    """[plan(count, 1, None, 3333) with the limit raised by plan itself, soft limit after] in a
    child whose RLIMIT_NOFILE starts at (soft, hard) (hard None: as inherited)."""
    code = textwrap.dedent(f"""
        import json, resource
        hard = {hard} if {hard} is not None else resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, hard))
        from tb_dlms.commands.simulate_launcher import FDS_PER_PORT, plan
        slices = plan({count}, 1, None, 3333)
        print(json.dumps([slices, resource.getrlimit(resource.RLIMIT_NOFILE)[0]]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


HARD = resource.getrlimit(resource.RLIMIT_NOFILE)[1]


@pytest.mark.skipif(HARD != resource.RLIM_INFINITY and HARD < 8192,
                    reason="the hard open-file limit is below what 2,000 ports need")
def test_plan_raises_the_soft_limit_to_what_one_process_needs_and_no_further():
    slices, soft = plan_in_child(512, None, 2000)
    assert slices == [[0, 2000]]
    one_process = math.ceil(2000 * FDS_PER_PORT * 4 / 3) + 64  # a quarter spare, the reserve
    assert soft == LOW_FDS + 256 + one_process  # transport/fd_limits.py's low numbers, spare


def test_plan_splits_the_fleet_when_the_hard_limit_is_below_the_need():
    slices, soft = plan_in_child(512, 2048, 10000)
    assert soft == 2048  # raised as far as allowed
    assert len(slices) == 14 and max(n for _, n in slices) <= (2048 - 64) * 3 // 4 // 2


# -- the real command ---------------------------------------------------------------------------


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _wait_gone(pids: set[int], timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return {p for p in pids if _alive(p)}


@pytest.fixture
def fleet() -> Iterator[tuple[subprocess.Popen[str], int, str]]:
    base = free_port_range(6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", "6", "--processes", "2",
         "--base-port", str(base), "--physical-base", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        yield proc, base, line
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def _read(port: int, physical: int, refs: list[tuple[int, str, int]]) -> list[object]:
    session = BlockingSession(
        TcpTransport("127.0.0.1", port, 2.0),
        SessionSettings(client=16, server_physical=physical, response_timeout=2.0))
    session.connect()
    try:
        return [r.value for r in session.read(refs)]
    finally:
        session.close()


def test_both_halves_answer_as_their_global_index_and_sigterm_stops_every_child(fleet):
    proc, base, line = fleet
    assert f"6 meter(s) on 127.0.0.1:{base}..{base + 5}" in line
    assert "physical 100..105" in line and "in 2 processes" in line
    children = _children(proc.pid)
    assert len(children) >= 2  # the two slices (+ multiprocessing's resource tracker)
    registers = list(values.REGISTERS)
    for index in (1, 4):  # one meter of each process
        before = time.time()
        got = _read(base + index, 100 + index,
                    [(1, "0-0:96.1.0", 2)] + [(3, str(r.obis), 2) for r in registers])
        after = time.time()
        assert got[0] == f"SIM{index:08d}"
        for spec, value in zip(registers, got[1:]):
            seconds = range(math.floor(before), math.floor(after) + 1)
            assert any(value == values.expected_value(index, spec.obis, s) for s in seconds), (
                index, spec.key, value)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # one GET-with-list per meter, one meter per process: the figures are the sum of both
    assert "stopped; 2 requests served, 2 connections" in out and "(2 processes)" in out
    assert _wait_gone(children) == set()


def test_sigint_is_forwarded_too(fleet):
    proc, _, line = fleet
    assert "in 2 processes" in line
    children = _children(proc.pid)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped; 0 requests served" in out
    assert _wait_gone(children) == set()


def test_a_child_that_dies_stops_the_others_with_a_message(fleet):
    proc, _, line = fleet
    assert "in 2 processes" in line
    slices = sorted(c for c in _children(proc.pid)
                    if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text())
    os.kill(slices[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "exited with code -9; stopping the others" in err
    assert _wait_gone(set(slices)) == set()


def test_a_parent_killed_outright_leaves_no_orphan(fleet):
    proc, base, line = fleet
    assert "in 2 processes" in line
    children = _children(proc.pid)
    proc.kill()
    proc.wait(10)
    assert _wait_gone(children) == set()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", base + 4), 0.5)


def test_a_busy_port_in_one_slice_is_a_clear_error_and_exit_2():
    base = free_port_range(4)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base + 3))
        busy.listen()
        proc = subprocess.run(
            [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", "4", "--processes", "2",
             "--base-port", str(base)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "process 2 (meters 2..3" in proc.stderr and "in use" in proc.stderr
    assert "meter(s) on" not in proc.stdout


def test_a_mixed_fleet_over_two_processes_keeps_each_meters_model():
    from tb_dlms.simulator import meter_models as mm

    base = free_port_range(6)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", "6", "--processes", "2",
         "--base-port", str(base), "--model", "mixed"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "mixed meters" in line and "in 2 processes" in line
        for index in (2, 4, 5):  # ct, mono (process 2), ct (process 2)
            model = mm.model_of(index, "mixed")
            codes = [str(r.spec.obis) for r in mm.registers_of(model)]
            before = time.time()
            got = _read(base + index, 16 + index,
                        [(1, "1-0:0.2.0", 2)] + [(3, c, 2) for c in codes])
            after = time.time()
            assert got[0] == f"SIM-{model.upper()} 1.4.2"
            seconds = range(math.floor(before), math.floor(after) + 1)
            for code, value in zip(codes, got[1:]):
                assert any(value == values.scale(*mm.expected(model, index, code, s)[:2])
                           for s in seconds), (index, code, value)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_print_expected_follows_the_model():
    done = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--model", "ct", "--print-expected",
         "1-0:13.7.0", "--print-expected", "1-0:4.8.0"], capture_output=True, text=True,
        timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    pf, reactive = done.stdout.splitlines()
    assert pf.startswith("1-0:13.7.0 raw=") and "scaler=-3 unit=255" in pf
    assert "scaler=1 unit=32" in reactive
    refused = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--model", "mono", "--print-expected",
         "1-1:52.7.0"], capture_output=True, text=True, timeout=30, check=False)
    assert refused.returncode == 2 and "no mono register at 1-1:52.7.0" in refused.stderr
