"""``SelectorLoop``: one thread that drives every TCP meter without blocking.

A thread per meter costs a timed wait and a wakeup (~30 us of CPU each) per cycle and 1,000
threads fight for the GIL; here one thread waits in ``selectors`` for every socket and for the
earliest timer of a heap. Work comes in from other threads through ``call_soon_threadsafe``:
a queue plus one byte on a wakeup socketpair.

A timer is ``(when, seq, callback)``; a callback gets ``when`` back, so a meter that re-arms keeps
only its latest timer alive (it ignores calls whose ``when`` is no longer its own) and nothing is
ever removed from the middle of the heap.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

__all__ = ["SelectorLoop"]

_log = logging.getLogger("tb_dlms.engine")
_MAX_WAIT_S = 5.0  # the longest select() without looking at the clock


class SelectorLoop:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, name: str = "dlms loop",
        log: logging.Logger = _log,
    ) -> None:
        self.clock = clock
        self.name = name
        self._log = log
        self._sel = selectors.DefaultSelector()
        self._rwake, self._wwake = socket.socketpair()
        self._rwake.setblocking(False)
        self._wwake.setblocking(False)
        self._sel.register(self._rwake, selectors.EVENT_READ, None)
        self._calls: deque[Callable[[], Any]] = deque()
        self._heap: list[tuple[float, int, Callable[[float], Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._woken = False
        self._done = False
        self.on_idle: Callable[[], bool] | None = None  # while stopping: True ends the loop

    # -- from any thread ------------------------------------------------------------------
    def call_soon_threadsafe(self, fn: Callable[[], Any]) -> None:
        self._calls.append(fn)
        if not self._woken:  # one wakeup byte per batch of calls
            self._woken = True
            try:
                self._wwake.send(b"\0")
            except OSError:  # full (already woken) or closed (stopped)
                pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    # -- on the loop thread ---------------------------------------------------------------
    def call_at(self, when: float, fn: Callable[[float], Any]) -> None:
        heapq.heappush(self._heap, (when, next(self._seq), fn))

    def register(self, sock: socket.socket, events: int, handler: Callable[[int], Any]) -> None:
        self._sel.register(sock, events, handler)

    def modify(self, sock: socket.socket, events: int, handler: Callable[[int], Any]) -> None:
        self._sel.modify(sock, events, handler)

    def unregister(self, sock: socket.socket) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    def finish(self) -> None:
        self._done = True

    def run(self) -> None:
        sel, heap, calls, clock = self._sel, self._heap, self._calls, self.clock
        heappop = heapq.heappop
        try:
            while not self._done:
                timeout = _MAX_WAIT_S
                if calls:
                    timeout = 0.0
                elif heap:
                    timeout = min(max(0.0, heap[0][0] - clock()), _MAX_WAIT_S)
                for key, mask in sel.select(timeout):
                    handler = key.data
                    if handler is None:
                        self._drain_wakeup()
                        continue
                    try:
                        handler(mask)
                    except Exception:  # noqa: BLE001 - one meter's bug must not stop the rest
                        self._log.exception("%s: I/O handler failed", self.name)
                while calls:
                    fn = calls.popleft()
                    try:
                        fn()
                    except Exception:  # noqa: BLE001
                        self._log.exception("%s: call failed", self.name)
                if heap:
                    now = clock()
                    while heap and heap[0][0] <= now:
                        when, _, fn2 = heappop(heap)
                        try:
                            fn2(when)
                        except Exception:  # noqa: BLE001
                            self._log.exception("%s: timer failed", self.name)
                if self.on_idle is not None and self.on_idle():
                    break
        finally:
            self._close()

    def _drain_wakeup(self) -> None:
        self._woken = False
        try:
            while self._rwake.recv(4096):
                pass
        except OSError:
            pass

    def _close(self) -> None:
        self._done = True
        self._sel.close()
        self._rwake.close()
        self._wwake.close()
