"""``LoopChannel``: one TCP host:port on the selector loop, as a ``ChannelDriver``.

Its ``LoopLine`` (the connection) and the ``LoopMeterDriver`` of each meter behind it: one meter,
or several behind a data concentrator. Calls from the engine's thread are handed to the loop;
``join`` waits until every driver has closed and every RPC thread has ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from ..protocol.errors import EngineError
from .loop_driver import LoopMeterDriver
from .loop_socket import LoopLine, resolve
from .poll_state import MeterPollState

__all__ = ["LoopChannel"]


class LoopChannel:
    """The meters behind one TCP host:port, driven by the selector loop."""

    __slots__ = ("_closed", "_open", "_started", "drivers", "key", "line", "loop", "meters")

    def __init__(self, line: LoopLine, drivers: Sequence[LoopMeterDriver]) -> None:
        if not drivers:
            raise EngineError(f"channel {line.key} has no meter")
        self.line = line
        self.key = line.key
        self.loop = line.loop
        self.drivers = {d.poll_state.spec.name: d for d in drivers}
        self.meters: dict[str, MeterPollState] = {name: d.poll_state for name, d in self.drivers.items()}
        self._open = len(drivers)
        # Held until every driver has closed (released on the loop). A bare lock, not an Event:
        # an Event is a Condition and two locks, ~1.1 KB for each of 10,000 channels.
        self._closed = threading.Lock()
        self._closed.acquire()
        self._started = False
        for driver in drivers:
            driver.on_closed = self._driver_closed

    def _driver_closed(self) -> None:
        self._open -= 1
        if self._open <= 0 and self._closed.locked():
            self._closed.release()

    def start(self) -> None:
        self.line.address = resolve(self.line.spec)  # once, here: a name lookup may block
        self._started = True
        for driver in self.drivers.values():
            self.loop.call_soon_threadsafe(driver.kick)

    def request_stop(self) -> None:
        if self._started:
            self.loop.call_soon_threadsafe(self._on_loop(LoopMeterDriver.stop))

    def abort_line(self) -> None:
        if self._started:
            self.loop.call_soon_threadsafe(self._on_loop(LoopMeterDriver.cut))

    def _on_loop(self, method: Callable[[LoopMeterDriver], Any]) -> Callable[[], None]:
        def each() -> None:
            for driver in self.drivers.values():
                method(driver)

        return each

    def join(self, timeout: float) -> bool:
        if not self._started:
            return True
        end = time.monotonic() + timeout
        if not self._closed.acquire(timeout=max(0.0, timeout)):
            return False
        self._closed.release()  # closed for good: every later join passes too
        threads = [t for d in self.drivers.values() for t in d.rpc.threads]
        for thread in threads:  # an RPC fn's next operation fails at once: stopping
            thread.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        return self.drivers[name].submit(name, fn, timeout_s)

    def reconnect(self, name: str) -> None:
        self.drivers[name].reconnect(name)
