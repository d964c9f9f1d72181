"""tb-dlms read --from/--to: a profile's rows by range, scaled, with ISO times and column names,
as a separate process against the simulator."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tb_dlms.simulator.server import SimulatorServer


@pytest.fixture
def meter() -> Iterator[SimulatorServer]:
    server = SimulatorServer(1, 0).run_in_thread()
    yield server
    server.stop()


def tb_read(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1",
                           "--port", str(port), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_rows_of_the_last_three_hours_by_range(meter: SimulatorServer) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    start = (now - dt.timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    end = start + dt.timedelta(hours=2)
    done = tb_read(meter.ports[0], "--from", start.isoformat(), "--to",
                   end.isoformat().replace("+00:00", "Z"), "1-0:99.1.0.255/7/2")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)["1-0:99.1.0.255/7/2"]
    assert out["columns"] == ["1-1:1.8.0.255", "1-1:32.7.0.255"]
    assert out["units"] == {"1-1:1.8.0.255": "Wh", "1-1:32.7.0.255": "V"}
    times = [row["time"] for row in out["rows"]]
    assert len(times) == 9  # both ends inclusive: 2 hours of quarter-hours
    assert times[0] == start.isoformat().replace("+00:00", "Z")
    assert all(200 < row["1-1:32.7.0.255"] < 260 for row in out["rows"])  # scaled volts


def test_a_local_time_without_offset_is_read_in_the_given_zone(meter: SimulatorServer) -> None:
    today = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    local = f"{today.isoformat()}T12:00:00"
    done = tb_read(meter.ports[0], "--time-zone", "Asia/Kolkata", "--from", local, "--to",
                   local, "1-0:99.1.0.255/7/2")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["1-0:99.1.0.255/7/2"]["rows"]
    assert row["time"] == f"{today.isoformat()}T06:30:00Z"  # 12:00 IST


@pytest.mark.parametrize(("args", "message"), [
    (("--from", "yesterday", "1-0:99.1.0.255/7/2"), "--from"),
    (("--from", "2026-01-01T00:00:00Z", "1-1:32.7.0"), "OBIS/7/2"),
    (("--time-zone", "Mars/Olympus", "--from", "2026-01-01", "1-0:99.1.0.255/7/2"), "time zone"),
])
def test_bad_requests_are_one_line_and_exit_2(meter: SimulatorServer, args: tuple[str, ...],
                                              message: str) -> None:
    done = tb_read(meter.ports[0], *args)
    assert done.returncode == 2 and done.stdout == "" and message in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_span_of_decades_is_refused_not_read_for_minutes(meter: SimulatorServer) -> None:
    done = tb_read(meter.ports[0], "--from", "1971-01-01T00:00:00Z", "1-0:99.1.0.255/7/2")
    assert done.returncode == 2 and "shorter" in done.stderr


def test_to_without_from_is_refused(meter: SimulatorServer) -> None:
    done = tb_read(meter.ports[0], "--to", "2026-01-01T00:00:00Z", "1-0:99.1.0.255/7/2")
    assert done.returncode == 2 and "--from" in done.stderr
