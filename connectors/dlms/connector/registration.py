"""Each meter's device registered with the gateway, one at a time, and only then polled.

A fleet's first start is where the gateway is slowest: ``gateway.add_device`` rewrites its whole
``connected_devices.json`` for every new device (thingsboard-gateway 3.8: O(devices) each, so
10,000 new devices cost minutes: README.md, "Fleets"). A meter polled before its device is known
makes the gateway register it on its data path, where every other meter's readings queue
behind it. So the engine holds every meter and this thread releases each one as soon as its
device is registered, in dlms.json order: the polling grows exactly as fast as the gateway
takes new devices. On a restart (devices known) every registration returns at once: then
``start_rate`` paces the meters (10,000 associations in one poll period would saturate the
gateway's core and time out its own sessions).

The gateway opens its connectors before its MQTT client has connected, so ThingsBoard "not
connected" at first is the normal start: registration waits for it up to ``connect_grace_s``.
Past that ThingsBoard is really away: every meter not registered yet is released, still at
``start_rate`` (readings wait in the gateway's storage, as they always did), and registration
is retried.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DeviceRegistrar"]

_GRACE_POLL_S = 0.2
_ATTEMPTS = 5  # registrations of one device that may fail before its meter starts anyway


class DeviceRegistrar:
    """``register(name)`` is ``gateway.add_device`` (False: ThingsBoard not connected);
    ``on_registered(name)`` then ``release(name)`` follow it (``release`` of a meter already
    started does nothing). ``workers`` threads register at once: each registration waits for ThingsBoard's
    acknowledgement of the device's connect message, a round trip through the gateway's busy
    MQTT thread, and several keep those waits overlapping."""

    def __init__(
        self,
        names: Sequence[str],
        register: Callable[[str], Any],
        release: Callable[[str], Any],
        on_registered: Callable[[str], None],
        log: Any,
        label: str,
        retry_s: float = 10.0,
        progress_every_s: float = 10.0,
        connect_grace_s: float = 30.0,
        workers: int = 1,
        start_rate: float = 0.0,
    ) -> None:
        self._pending = deque(names)
        self._total = len(self._pending)
        self._register, self._release = register, release
        self._on_registered = on_registered
        self._log, self._label = log, label
        self._retry_s, self._progress_every_s = retry_s, progress_every_s
        self._connect_grace_s = connect_grace_s
        self._workers = max(1, workers)
        self._start_gap = 1.0 / start_rate if start_rate > 0 else 0.0
        self._next_start = 0.0  # when the next meter may be released
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._released_all = False
        self._in_flight: set[str] = set()  # being registered now
        self._failures: dict[str, int] = {}  # gateway errors per device
        self._started = self._next_note = 0.0
        self.registered = 0
        self.progress_at = time.monotonic()  # the last registration (or the start)

    @property
    def pending(self) -> int:
        """Meters not registered yet (those being registered included)."""
        return len(self._pending) + len(self._in_flight)

    def start(self) -> None:
        self._started = self.progress_at = time.monotonic()
        self._next_note = self._started + self._progress_every_s
        for i in range(min(self._workers, max(1, self._total))):
            thread = threading.Thread(target=self._run, daemon=True,
                                      name=f"{self._label} registration {i + 1}")
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        end = time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, end - time.monotonic()))

    def release_all(self, why: str) -> None:
        """Poll every meter not registered yet (ThingsBoard away, or the gateway stalled), at
        ``start_rate``, on a thread of its own. Once: later calls do nothing."""
        with self._lock:
            if self._released_all:
                return
            self._released_all = True
            waiting = [*self._in_flight, *self._pending]  # a hung registration too
        if not waiting:
            return
        self._log.warning("%s: %s: polling all %d meters not registered yet", self._label, why,
                          len(waiting))
        thread = threading.Thread(target=self._drain, args=(waiting,), daemon=True,
                                  name=f"{self._label} release")
        self._threads.append(thread)
        thread.start()

    def _drain(self, names: list[str]) -> None:
        for name in names:
            if self._stop.is_set():
                return
            self._pace()
            try:
                self._release(name)
            except Exception:  # noqa: BLE001 - one meter's start must not end the others'
                self._log.exception("%s: starting meter %s failed", self._label, name)

    def _take(self) -> str | None:
        with self._lock:
            if not self._pending:
                return None
            name = self._pending.popleft()
            self._in_flight.add(name)
            return name

    def _run(self) -> None:
        while not self._stop.is_set():
            name = self._take()
            if name is None:
                return
            try:
                ok = self._register(name)
            except Exception:  # noqa: BLE001 - the gateway's own failure: retry this device
                # Not "ThingsBoard away": thingsboard-gateway 3.8's add_device is not safe
                # across threads ("dictionary changed size during iteration" in its device
                # save, now and then with several registrations in flight). Releasing every
                # meter here made the gateway register them all on its data path, where the
                # same failure drops a whole batch of up to 1,000 messages (5,000-meter run).
                # Behind the others (a device the gateway always fails on must not hold them),
                # a few times; then its meter starts unregistered, as when ThingsBoard is away.
                failures = self._failures[name] = self._failures.get(name, 0) + 1
                if failures == 1:
                    self._log.exception("%s: registering device %s failed; retrying it",
                                        self._label, name)
                if failures < _ATTEMPTS:
                    with self._lock:
                        self._pending.append(name)
                        self._in_flight.discard(name)
                    self._stop.wait(_GRACE_POLL_S)
                    continue
                self._log.error("%s: device %s could not be registered in %d attempts: starting "
                                "its meter unregistered", self._label, name, failures)
                ok = True
            if ok is False:
                with self._lock:
                    self._pending.appendleft(name)  # its turn again, first
                    self._in_flight.discard(name)
                if time.monotonic() - self._started < self._connect_grace_s:
                    self._stop.wait(_GRACE_POLL_S)  # the gateway is still connecting
                    continue
                self.release_all(f"ThingsBoard is not connected after "
                                 f"{self._connect_grace_s:g} s")
                self._stop.wait(self._retry_s)
                continue
            try:
                self._on_registered(name)  # first: it queues before the meter's readings
                self._pace()
                self._release(name)
            except Exception:  # noqa: BLE001 - one meter's start must not end the registration
                self._log.exception("%s: starting meter %s failed", self._label, name)
            finally:
                self._done(name)

    def _pace(self) -> None:
        """At most ``start_rate`` meters released a second. On a restart every device is known
        at once; released together, 10,000 meters would all associate in one poll period and
        the gateway's one core would time out its own sessions."""
        if not self._start_gap:
            return
        with self._lock:
            now = time.monotonic()
            at = self._next_start = max(now, self._next_start + self._start_gap)
        if at > now:
            self._stop.wait(at - now)

    def _done(self, name: str) -> None:
        with self._lock:
            self._in_flight.discard(name)
            self.registered += 1
            now = self.progress_at = time.monotonic()
            left = self.pending
            note = left and now >= self._next_note
            if note:
                self._next_note = now + self._progress_every_s
        if note:
            self._log.info("%s: %d of %d devices registered with the gateway in %.0f s, "
                           "%d waiting to start polling", self._label, self.registered,
                           self._total, now - self._started, left)
        elif not left:
            self._log.info("%s: %d devices registered in %.1f s", self._label, self._total,
                           now - self._started)
