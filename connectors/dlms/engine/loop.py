"""``SelectorLoop``: one thread that drives every TCP meter without blocking.

A thread per meter costs a timed wait and a wakeup (~30 us of CPU each) per cycle and 1,000
threads fight for the GIL; here one thread waits in ``selectors`` for every socket and for the
earliest timer of a heap. Work comes in from other threads through ``call_soon_threadsafe``:
a queue plus one byte on a wakeup socketpair.

A timer is ``(when, seq, callback)``; a callback gets ``when`` back, so a meter that re-arms keeps
only its latest timer alive (it ignores calls whose ``when`` is no longer its own) and nothing is
ever removed from the middle of the heap.

On Linux the loop talks to ``select.epoll`` itself (fd -> handler in one dict, every ready event
of an iteration from one ``poll``): ``selectors`` adds a Python loop, a key object and a mask
conversion per event, a few microseconds per meter per cycle. Elsewhere ``selectors`` is used.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import select
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
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_HAS_EPOLL = hasattr(select, "epoll")
if _HAS_EPOLL:
    _EPOLLIN, _EPOLLOUT = select.EPOLLIN, select.EPOLLOUT
    # selectors' EVENT_* mask -> epoll's, and epoll's -> selectors' (what the handlers get)
    _TO_EPOLL = {_READ: _EPOLLIN, _WRITE: _EPOLLOUT, _READ | _WRITE: _EPOLLIN | _EPOLLOUT}


def _from_epoll(ev: int) -> int:
    """The selectors mask for an epoll event mask, as EpollSelector computes it (an error or
    hang-up makes a socket both readable and writable: the handler finds out which)."""
    mask = 0
    if ev & ~_EPOLLIN:
        mask |= _WRITE
    if ev & ~_EPOLLOUT:
        mask |= _READ
    return mask


class SelectorLoop:
    def __init__(
        self, clock: Callable[[], float] = time.monotonic, name: str = "dlms loop",
        log: logging.Logger = _log, timer_slack_s: float = 0.0,
    ) -> None:
        self.clock = clock
        self.name = name
        self._log = log
        self._rwake, self._wwake = socket.socketpair()
        self._rwake.setblocking(False)
        self._wwake.setblocking(False)
        self._ep: Any = select.epoll() if _HAS_EPOLL else None
        self._sel = None if _HAS_EPOLL else selectors.DefaultSelector()
        # epoll: fd -> (handler, selectors mask registered); the socket -> its fd (for
        # unregister after the socket was closed)
        self._fd_handlers: dict[int, tuple[Callable[[int], Any] | None, int]] = {}
        self._fds: dict[socket.socket, int] = {}
        self._register(self._rwake, _READ, None)
        self._calls: deque[Callable[[], Any]] = deque()
        self._heap: list[tuple[float, int, Callable[[float], Any]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._woken = False
        self._done = False
        self.on_idle: Callable[[], bool] | None = None  # while stopping: True ends the loop
        # Timers fire on a grid of this step (0: exactly when due): each wakeup of a thread costs
        # ~30 us of CPU here, and with a 10 ms grid the polls of 1,000 meters spread over 1 s
        # start ten at a time instead of one per wakeup. I/O is never delayed by it.
        self.timer_slack_s = timer_slack_s

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
        self._register(sock, events, handler)

    def _register(
        self, sock: socket.socket, events: int, handler: Callable[[int], Any] | None
    ) -> None:
        if self._sel is not None:
            self._sel.register(sock, events, handler)
            return
        fd = sock.fileno()
        if fd in self._fd_handlers:
            raise KeyError(f"fd {fd} is already registered")
        self._ep.register(fd, _TO_EPOLL[events])
        self._fd_handlers[fd] = (handler, events)
        self._fds[sock] = fd

    def modify(self, sock: socket.socket, events: int, handler: Callable[[int], Any]) -> None:
        if self._sel is not None:
            self._sel.modify(sock, events, handler)
            return
        fd = self._fds[sock]
        if self._fd_handlers[fd][1] != events:
            self._ep.modify(fd, _TO_EPOLL[events])
        self._fd_handlers[fd] = (handler, events)

    def unregister(self, sock: socket.socket) -> None:
        if self._sel is not None:
            try:
                self._sel.unregister(sock)
            except (KeyError, ValueError, OSError):
                pass
            return
        fd = self._fds.pop(sock, None)
        if fd is None:
            return
        self._fd_handlers.pop(fd, None)
        try:
            self._ep.unregister(fd)
        except (ValueError, OSError):
            pass

    def finish(self) -> None:
        self._done = True

    def _ready(self, timeout: float) -> list[tuple[Callable[[int], Any] | None, int]]:
        """(handler, selectors mask) of every ready socket (the selectors fallback)."""
        assert self._sel is not None
        return [(key.data, mask) for key, mask in self._sel.select(timeout)]

    def run(self) -> None:
        heap, calls, clock = self._heap, self._calls, self.clock
        heappop = heapq.heappop
        ep, handlers = self._ep, self._fd_handlers
        grid = self.timer_slack_s
        try:
            while not self._done:
                timeout = _MAX_WAIT_S
                if calls:
                    timeout = 0.0
                elif heap:
                    first = heap[0][0]
                    if grid:  # wake on the grid: the timers of a whole step fire together
                        first = (first // grid + 1.0) * grid
                    timeout = min(max(0.0, first - clock()), _MAX_WAIT_S)
                if ep is not None:
                    try:
                        events = ep.poll(timeout)
                    except InterruptedError:
                        events = []
                    ready = []
                    for fd, ev in events:
                        entry = handlers.get(fd)
                        if entry is not None:  # else unregistered by an earlier handler
                            mask = (_READ if ev == _EPOLLIN else _from_epoll(ev)) & entry[1]
                            if mask:
                                ready.append((entry[0], mask))
                else:
                    ready = self._ready(timeout)
                for handler, mask in ready:
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
        # Drain first, then re-arm: the other way round, a byte sent by a call made while we
        # drain is swallowed with _woken left True, and every later call_soon_threadsafe (stop!)
        # skips its wake-up byte and waits for some other event (up to _MAX_WAIT_S). Calls made
        # before the re-arm are in self._calls and run in this very iteration.
        try:
            while self._rwake.recv(4096):
                pass
        except OSError:
            pass
        self._woken = False

    def _close(self) -> None:
        self._done = True
        if self._sel is not None:
            self._sel.close()
        if self._ep is not None:
            self._ep.close()
        self._fd_handlers.clear()
        self._fds.clear()
        self._rwake.close()
        self._wwake.close()
