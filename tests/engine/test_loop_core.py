"""SelectorLoop on its own: the timer grid (never early, at most one step late, the timers of a
step in one wakeup), I/O dispatch with the selectors masks, unregister of a closed socket."""

from __future__ import annotations

import socket
import threading
import time

from tb_dlms.engine.loop import SelectorLoop


def _run_until(loop: SelectorLoop, done: threading.Event, timeout: float = 5.0) -> None:
    loop.start()
    assert done.wait(timeout)
    loop.call_soon_threadsafe(loop.finish)
    assert loop.join(2.0)


def test_timers_on_a_grid_fire_never_early_at_most_one_step_late_and_together() -> None:
    step = 0.05
    loop = SelectorLoop(timer_slack_s=step)
    fired: list[tuple[float, float]] = []  # (when, clock at the call)
    done = threading.Event()
    iterations: list[float] = []

    def count_iteration() -> bool:  # called once per loop iteration (i.e. per wakeup)
        iterations.append(loop.clock())
        return False

    def arm() -> None:
        # Just after a grid point, so that the five (2 ms apart) lie within one grid step.
        base = (loop.clock() // step + 3) * step + 0.001
        for k in range(5):
            loop.call_at(base + 0.002 * k, lambda when: fired.append((when, loop.clock())))
        loop.call_at(base + 0.3, lambda when: done.set())

    loop.on_idle = count_iteration
    loop.call_soon_threadsafe(arm)
    _run_until(loop, done)
    assert len(fired) == 5
    for when, at in fired:
        assert at >= when  # never early
        assert at - when <= step + 0.05  # a grid step late at most (plus scheduling jitter)
    calls = [at for _, at in fired]
    # All five were due within one step: they ran in one wakeup, back to back.
    assert max(calls) - min(calls) < 0.005
    # Arm, the five timers, the last one: a handful of wakeups, not one per timer.
    assert len(iterations) <= 5


def test_io_handler_gets_read_mask_and_a_closed_socket_unregisters_quietly() -> None:
    loop = SelectorLoop()
    a, b = socket.socketpair()
    a.setblocking(False)
    got: list[tuple[int, bytes]] = []
    done = threading.Event()

    def on_io(mask: int) -> None:
        got.append((mask, a.recv(100)))
        loop.unregister(a)
        a.close()
        loop.unregister(a)  # twice, and after close: no error
        done.set()

    loop.call_soon_threadsafe(lambda: loop.register(a, 1, on_io))
    loop.call_soon_threadsafe(lambda: b.send(b"hello"))
    _run_until(loop, done)
    b.close()
    assert got == [(1, b"hello")]
    time.sleep(0)
