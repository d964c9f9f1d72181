"""Two linked pseudo-terminals made by socat: a real serial line for tests, no hardware.

Used by the transport tests and the serial-bus engine tests (``apt-get install socat``).
"""

from __future__ import annotations

import re
import select
import subprocess
import time
from typing import List

_PTY_LINE = re.compile(r"PTY is (\S+)")


class PtyPair:
    """Two linked pseudo-terminals made by socat; ``kill()`` breaks the link."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        names: List[str] = []
        log = b""
        assert self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + 3.0
        # socat logs "... N PTY is /dev/pts/X" once per side; read them without blocking forever.
        while len(names) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            chunk = self.proc.stderr.read1(4096)  # type: ignore[attr-defined]
            if not chunk:
                break
            log += chunk
            names = _PTY_LINE.findall(log.decode("ascii", "replace"))
        if len(names) < 2:
            self.kill()
            raise RuntimeError(f"socat gave no pty pair: {log!r}")
        self.a, self.b = names[0], names[1]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(2.0)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
