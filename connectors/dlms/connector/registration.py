"""Each meter's device registered with the gateway, one at a time, and only then polled.

A fleet's first start is where the gateway is slowest: ``gateway.add_device`` rewrites its whole
``connected_devices.json`` for every new device (thingsboard-gateway 3.8: O(devices) each, so
10,000 new devices cost minutes: README.md, "Fleets"). A meter polled before its device is known
makes the gateway register it on its data path, where every other meter's readings queue
behind it. So the engine holds every meter and this thread releases each one as soon as its
device is registered, in dlms.json order: the polling grows exactly as fast as the gateway
takes new devices, and on a restart (devices known) everything starts at once.

The gateway opens its connectors before its MQTT client has connected, so ThingsBoard "not
connected" at first is the normal start: registration waits for it up to ``connect_grace_s``.
Past that ThingsBoard is really away: every meter is released at once (readings wait in the
gateway's storage, as they always did) and registration is retried.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DeviceRegistrar"]

_GRACE_POLL_S = 0.2


class DeviceRegistrar:
    """``register(name)`` is ``gateway.add_device`` (False: ThingsBoard not connected);
    ``release(name)`` / ``release_all()`` start polling; ``on_registered(name)`` follows."""

    def __init__(
        self,
        names: Sequence[str],
        register: Callable[[str], Any],
        release: Callable[[str], Any],
        release_all: Callable[[], Any],
        on_registered: Callable[[str], None],
        log: Any,
        label: str,
        retry_s: float = 10.0,
        progress_every_s: float = 10.0,
        connect_grace_s: float = 30.0,
    ) -> None:
        self._pending = deque(names)
        self._register, self._release, self._release_all = register, release, release_all
        self._on_registered = on_registered
        self._log, self._label = log, label
        self._retry_s, self._progress_every_s = retry_s, progress_every_s
        self._connect_grace_s = connect_grace_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._released_all = False
        self.registered = 0
        self.progress_at = time.monotonic()  # the last registration (or the start)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"{self._label} registration")
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def release_all(self, why: str) -> None:
        """Poll every meter now, registered or not (ThingsBoard away, or the gateway stalled)."""
        if not self._released_all and self._pending:
            self._released_all = True
            self._log.warning("%s: %s: polling all %d meters not registered yet", self._label,
                              why, len(self._pending))
        self._release_all()

    def _run(self) -> None:
        started = time.monotonic()
        total = len(self._pending)
        next_note = started + self._progress_every_s
        while self._pending and not self._stop.is_set():
            name = self._pending[0]
            try:
                ok = self._register(name)
            except Exception:  # noqa: BLE001 - the gateway's own failure: poll, retry later
                self._log.exception("%s: registering device %s failed", self._label, name)
                ok = False
            if ok is False:
                if time.monotonic() - started < self._connect_grace_s:
                    self._stop.wait(_GRACE_POLL_S)  # the gateway is still connecting
                    continue
                self.release_all(f"ThingsBoard is not connected after "
                                 f"{self._connect_grace_s:g} s")
                self._stop.wait(self._retry_s)
                continue
            self._pending.popleft()
            self._on_registered(name)  # first: what it queues goes before the meter's readings
            self._release(name)
            self.registered += 1
            now = self.progress_at = time.monotonic()
            if now >= next_note and self._pending:
                next_note = now + self._progress_every_s
                self._log.info("%s: %d of %d devices registered with the gateway in %.0f s, "
                               "%d waiting to start polling", self._label, self.registered,
                               total, now - started, len(self._pending))
        if not self._pending and total:
            self._log.info("%s: %d devices registered in %.1f s", self._label, total,
                           time.monotonic() - started)
