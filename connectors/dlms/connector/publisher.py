"""``Publisher``: one thread that hands the engine's events to the gateway, in order.

The polling loop must never wait for the gateway: converting readings and the gateway's
``send_to_storage`` (report-strategy filtering, storage) cost as much as the reading itself, and at
1,000 meters a slow moment there made poll cycles start late. So the engine's sink callbacks only
queue a job; this thread runs the jobs in the order they came. The queue is bounded: if the gateway
stalls for long, the oldest jobs go first and the loss is counted and logged, never silent.

While busy, the thread takes what came in the last ``batch_s`` (20 ms) in one go, rather than
being woken for each job: 1,000 meters would otherwise cost 1,000 thread wake-ups a second. When
the queue runs dry it sleeps until the next job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable

Job = tuple[Callable[..., None], tuple[Any, ...]]


class Publisher:
    def __init__(self, name: str, log: logging.Logger, limit: int = 100_000,
                 batch_s: float = 0.02) -> None:
        self._name = name
        self._log = log
        self._jobs: deque[Job] = deque()
        self._limit = limit
        self._batch_s = batch_s
        self._cond = threading.Condition()
        self._waiting = False
        self._running = False
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self._last_drop_log = 0.0

    def start(self) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, name=f"{self._name} publisher",
                                        daemon=True)
        self._thread.start()

    def put(self, fn: Callable[..., None], *args: Any) -> None:
        with self._cond:
            if len(self._jobs) >= self._limit:
                self._jobs.popleft()
                self.dropped += 1
                self._log_drop()
            self._jobs.append((fn, args))
            if self._waiting:  # asleep on an empty queue: wake it (busy, it looks by itself)
                self._cond.notify()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until every queued job has run (tests, and close())."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                if not self._jobs and self._waiting:
                    return True
            time.sleep(0.005)
        return False

    def stop(self, timeout_s: float = 2.0) -> None:
        """Run what is queued (bounded by ``timeout_s``), then end the thread."""
        self.flush(timeout_s)
        with self._cond:
            self._running = False
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        jobs = self._jobs
        while True:
            with self._cond:
                while not jobs and self._running:
                    self._waiting = True
                    self._cond.wait()
                    self._waiting = False
                if not jobs:
                    return
                batch = list(jobs)
                jobs.clear()
            for fn, args in batch:
                try:
                    fn(*args)
                except Exception:  # noqa: BLE001 - one bad job must not stop publishing
                    self._log.exception("%s: publishing failed", self._name)
            with self._cond:  # let the next jobs gather (stop() cuts the pause short)
                if self._running:
                    self._cond.wait(self._batch_s)

    def _log_drop(self) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 10.0:
            self._last_drop_log = now
            self._log.error("%s: the gateway is not keeping up: %d queued messages dropped so far",
                            self._name, self.dropped)
