"""The selector loop's wake-up byte: a call made while the loop drains it is never lost.

Regression: the loop used to re-arm (``_woken = False``) before draining the socketpair, so a
call_soon_threadsafe arriving in between had its byte swallowed with ``_woken`` left True; every
later call (engine.stop() among them) then skipped its byte and waited up to 5 s for another event.
Seen once in 25 runs of tests/engine/test_engine_simulator.py as a stop() over its 3 s bound.
"""

from __future__ import annotations

import select
import time

from tb_dlms.engine.loop import SelectorLoop


class RacingReceiver:
    """Stands in for the loop's read end: another thread's call lands during the first recv."""

    def __init__(self, loop: SelectorLoop) -> None:
        self._loop = loop
        self._real = loop._rwake
        self._first = True

    def recv(self, size: int) -> bytes:
        if self._first:
            self._first = False
            self._loop.call_soon_threadsafe(lambda: None)
        return self._real.recv(size)

    def close(self) -> None:
        self._real.close()

    def fileno(self) -> int:
        return self._real.fileno()


def test_a_call_made_during_the_drain_still_wakes_the_loop_next_time():
    loop = SelectorLoop(time.monotonic)
    try:
        loop.call_soon_threadsafe(lambda: None)  # an earlier wake-up: byte in the pipe
        real = loop._rwake
        loop._rwake = RacingReceiver(loop)
        loop._drain_wakeup()
        loop._rwake = real
        loop._calls.clear()  # what the loop runs right after draining
        # The next call from another thread must reach the loop: a byte must be readable.
        loop.call_soon_threadsafe(lambda: None)
        readable, _, _ = select.select([real], [], [], 0.1)
        assert readable, "wake-up byte lost: the loop would sleep through this call"
    finally:
        loop._close()
