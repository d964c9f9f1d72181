"""``tb-dlms read --timeout N`` against each hostile meter, as a user runs it: a subprocess that
exits within N plus a moment, with exit code 1 or 2 and one line on stderr naming the meter."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from hostile_bounds import CLOSE_MARGIN_S

TIMEOUT_S = 3.0
STARTUP_S = 2.0  # the interpreter and the package import, on a loaded machine


def test_tb_dlms_read_exits_within_its_timeout(hostile):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1",
         "--port", str(hostile.port), "--timeout", f"{TIMEOUT_S:g}", "1-1:32.7.0", "1-1:14.7.0"],
        capture_output=True, check=False, text=True, timeout=60, env={**os.environ},
    )
    took = time.monotonic() - started
    assert took < TIMEOUT_S + CLOSE_MARGIN_S + STARTUP_S, f"{hostile.mode}: {took:.1f} s"
    assert result.returncode in (1, 2), result
    assert result.stderr.startswith("tb-dlms read: ") and result.stderr.count("\n") == 1
    assert f"127.0.0.1:{hostile.port}" in result.stderr
