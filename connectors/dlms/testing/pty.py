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


class PtyMeterBus:
    """Simulated meters on the far end of a pty line, as on a multidrop RS-485 bus: every byte
    reaches every meter, each answers only the frames addressed to its HDLC physical address."""

    def __init__(self, device: str, physicals: tuple[int, ...]) -> None:
        import threading

        import serial  # type: ignore[import-untyped]

        from ..simulator.connection import ServerSession, SimulatedMeter
        from ..simulator.model import MeterModel

        self.meters = [SimulatedMeter(MeterModel(i), p) for i, p in enumerate(physicals)]
        self._sessions = [ServerSession(m) for m in self.meters]
        self.port = serial.Serial(device, 9600, timeout=0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(4096)
            if data:
                self.port.write(b"".join(s.receive(data) for s in self._sessions))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self.port.close()
