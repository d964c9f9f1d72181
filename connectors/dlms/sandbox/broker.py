"""A private mosquitto broker on a free loopback port, with a generated config.

    with Broker() as broker:        # or broker = Broker().start(); ...; broker.stop()
        broker.host, broker.port

The free port is found by binding port 0 and closing it; another process can grab it before
mosquitto binds, so a start that fails to bind is retried on a new port.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["Broker", "BrokerError", "free_port"]

_SEARCH = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


class BrokerError(RuntimeError):
    """mosquitto is missing or did not start."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in _SEARCH if os.access(p, os.X_OK)), None)


def wait_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class Broker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, workdir: str | None = None) -> None:
        self.host = host
        self.port = port
        self._wanted_port = port
        self._own_dir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="tb-dlms-broker-"))
        self.log_path = self.workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> Broker:
        binary = find_mosquitto()
        if binary is None:
            raise BrokerError("mosquitto not found (apt-get install mosquitto)")
        last = ""
        for _ in range(3 if self._wanted_port == 0 else 1):
            self.port = self._wanted_port or free_port(self.host)
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(
                f"listener {self.port} {self.host}\n"
                "allow_anonymous true\n"
                "persistence false\n"
                # A gateway publishes bursts of telemetry: do not drop QoS 1 messages.
                "max_queued_messages 100000\n"
                f"log_dest file {self.log_path}\n"
                "log_type error\nlog_type warning\nlog_type notice\n",
                encoding="utf-8",
            )
            self._proc = subprocess.Popen(
                [binary, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C in the terminal is ours to relay, in order
            )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._proc.poll() is None:
                if wait_port(self.host, self.port, 0.2):
                    return self
            self._kill()
            last = self.log_text()[-500:]
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        raise BrokerError(f"mosquitto did not start on {self.host}:{self.port}: {last}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(3)

    def stop(self) -> None:
        self._kill()
        if self._own_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Broker:  # noqa: PYI034 - no typing_extensions on 3.9
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
