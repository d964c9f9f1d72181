"""Profiles of every meter, read chunk by chunk and handed to the gateway at a bounded rate.

One thread. For each (meter, profile) it keeps when the next read is due; at most
``reads_in_flight`` reads run at once, each an engine job (``engine.submit``) that holds the
meter's line for a few GETs only, so live polling goes on between chunks. A finished chunk's
rows are handed to the gateway (``deliver``) no faster than ``rows_per_second``, and only then
is the position advanced (and saved by PositionStore's writer thread a moment later): the rows
past a saved position are the only ones a crash can send again.

A meter that is not associated is skipped until it is. A read that fails waits for the next
period (a minute at most). A profile whose newest row is older than the position (cleared, or
the meter's clock set back) is logged once and not re-read from the start.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .model import MeterConfig
from .profile_config import ProfileConfig
from .profile_positions import PositionStore
from .profile_reader import Chunk, ProfileReader

__all__ = ["ProfileScheduler", "ProfileTask"]

_RETRY_S = 60.0
_HOLD_S = 2.0  # the gateway did not take a chunk (ThingsBoard unreachable): offer it again then
_STALE_CHECK_PERIODS = 3  # tail reads with nothing new before the newest row is checked


@dataclass(order=True)
class ProfileTask:
    due: float
    seq: int
    meter: MeterConfig = field(compare=False)
    profile: ProfileConfig = field(compare=False)
    reader: ProfileReader = field(compare=False)
    cursor: int | None = field(default=None, compare=False)  # rows up to here were seen
    empty_tails: int = field(default=0, compare=False)
    behind_logged: bool = field(default=False, compare=False)
    handed_over: int = field(default=0, compare=False)  # rows, this run
    pending: Chunk | None = field(default=None, compare=False)  # read, not taken by the gateway

    @property
    def label(self) -> str:
        return f"{self.meter.name}: profile {self.profile.obis}"


class ProfileScheduler:
    def __init__(self, engine: Any, meters: list[MeterConfig], positions: PositionStore,
                 deliver: Callable[[MeterConfig, ProfileConfig, list[tuple[int, dict[str, Any]]]],
                                   bool],
                 associated: Callable[[str], bool], *, rows_per_second: float = 10_000.0,
                 reads_in_flight: int = 4, log: logging.Logger | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._positions = positions
        self._deliver = deliver
        self._associated = associated
        self._rate = rows_per_second
        self._slots = reads_in_flight
        self._log = log or logging.getLogger("tb_dlms.connector.profiles")
        self._wall = wall
        self._tasks: list[ProfileTask] = []
        self._done: queue.Queue[tuple[ProfileTask, Future[Any]]] = queue.Queue()
        self._running = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tokens = rows_per_second
        self._refill_at = time.monotonic()
        now = time.monotonic()
        for meter in meters:
            for profile in meter.profiles:
                reader = ProfileReader(meter.name, profile, meter.time_zone,
                                       meter.spec.session.deviation_sign, self._log)
                self._tasks.append(ProfileTask(now, len(self._tasks), meter, profile, reader))
        heapq.heapify(self._tasks)
        self._all = tuple(self._tasks)
        self.rows_delivered = 0
        self._held = False  # the gateway refused the last chunk offered
        self.reads = 0
        self.failures = 0

    @property
    def tasks(self) -> int:
        return len(self._tasks) + self._running

    def start(self) -> None:
        if not self._tasks:
            return
        self._thread = threading.Thread(target=self._run, name="DLMS profiles", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout_s)
        self._positions.close(timeout_s)  # every position handed over is on disk
        for task in sorted(self._all, key=lambda t: t.seq):
            if task.handed_over:
                position = self._positions.get(task.meter.name, task.profile.name)
                self._log.info("%s: %d rows handed to the gateway this run, up to %s",
                               task.label, task.handed_over,
                               _iso(position) if position is not None else "-")

    # -- the thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._start_due()
                wait = self._tasks[0].due - time.monotonic() if self._tasks else 1.0
                try:
                    task, future = self._done.get(timeout=max(0.01, min(wait, 1.0)))
                except queue.Empty:
                    continue
                self._running -= 1
                self._finish(task, future)
            except Exception:  # noqa: BLE001 - one bad profile must not stop the others
                self._log.exception("profiles: unexpected error")
                self._stop.wait(1.0)

    def _start_due(self) -> None:
        now = time.monotonic()
        while self._tasks and self._running < self._slots and self._tasks[0].due <= now:
            task = heapq.heappop(self._tasks)
            if task.pending is not None:  # read before, not taken yet: offer it again
                self._settle(task, task.pending)
                continue
            if not self._associated(task.meter.name):
                self._again(task, min(task.profile.poll_period_s, 5.0))
                continue
            job = partial(_read, task.reader, self._since(task), int(self._wall() * 1000),
                          task.empty_tails >= _STALE_CHECK_PERIODS)
            future = self._engine.submit(task.meter.name, job, timeout_s=30.0)
            self._running += 1
            future.add_done_callback(lambda f, task=task: self._done.put((task, f)))

    def _since(self, task: ProfileTask) -> int | None:
        position = self._positions.get(task.meter.name, task.profile.name)
        if task.cursor is not None and (position is None or task.cursor > position):
            return task.cursor
        return position

    def _finish(self, task: ProfileTask, future: Future[Any]) -> None:
        self.reads += 1
        try:
            chunk: Chunk = future.result()
        except Exception as exc:  # noqa: BLE001 - the meter's problem, logged, retried
            self.failures += 1
            task.reader.forget()
            self._log.info("%s: read failed (%s); next try in %.0f s", task.label, exc,
                           min(task.profile.poll_period_s, _RETRY_S))
            self._again(task, min(task.profile.poll_period_s, _RETRY_S))
            return
        for line in chunk.problems[:5]:
            self._log.warning("%s: %s (row left out)", task.label, line)
        self._settle(task, chunk)

    def _settle(self, task: ProfileTask, chunk: Chunk) -> None:
        """Hand a chunk over, or keep it for a later try (the gateway is not taking rows now:
        no need to ask the meter again)."""
        task.pending = None
        if chunk.rows and not self._hand_over(task, chunk):
            task.pending = chunk
            self._again(task, _HOLD_S)
            return
        self._note_behind(task, chunk)
        if not chunk.complete:  # a backfill: the next chunk as soon as a slot is free
            task.cursor = max(chunk.read_to_ms, task.cursor or 0)
            self._again(task, 0.0)
        else:
            self._again(task, task.profile.poll_period_s)

    def _hand_over(self, task: ProfileTask, chunk: Chunk) -> bool:
        rows = chunk.rows
        if self._stop.is_set():  # a stopping gateway would drop them after we saved them
            return False
        if not self._deliver(task.meter, task.profile, rows):
            if not self._held:  # one line per outage, not one per chunk
                self._log.info("profiles: the gateway is not taking rows (ThingsBoard "
                               "unreachable?): holding them until it does")
            self._held = True
            return False
        if self._held:
            self._held = False
            self._log.info("profiles: the gateway takes rows again")
        self._take_tokens(len(rows))
        self.rows_delivered += len(rows)
        task.handed_over += len(rows)
        self._positions.advance(task.meter.name, task.profile.name, rows[-1][0])  # no I/O here
        task.cursor = rows[-1][0]
        task.empty_tails = 0
        return True

    def _note_behind(self, task: ProfileTask, chunk: Chunk) -> None:
        if chunk.rows or not chunk.complete:
            return
        task.empty_tails += 1
        position = self._positions.get(task.meter.name, task.profile.name)
        if not chunk.checked or position is None:
            return
        task.empty_tails = 0
        newest = chunk.newest_ms
        if (newest is None or newest < position) and not task.behind_logged:
            task.behind_logged = True
            what = "is empty" if newest is None else f"ends at {_iso(newest)}"
            self._log.warning(
                "%s: the meter's profile %s, before the last row delivered (%s): cleared or "
                "its clock set back; rows not newer than the last delivered are not sent "
                "again", task.label, what, _iso(position))
        elif newest is not None and newest >= position:
            task.behind_logged = False

    def _take_tokens(self, count: int) -> None:
        """Wait until ``count`` rows fit the rate (a chunk larger than a second's worth waits
        for its share)."""
        while not self._stop.is_set():
            now = time.monotonic()
            self._tokens = min(self._rate, self._tokens + (now - self._refill_at) * self._rate)
            self._refill_at = now
            if self._tokens >= min(count, self._rate):
                self._tokens -= count
                return
            self._stop.wait((min(count, self._rate) - self._tokens) / self._rate)

    def _again(self, task: ProfileTask, after_s: float) -> None:
        task.due = time.monotonic() + after_s
        heapq.heappush(self._tasks, task)


def _read(reader: ProfileReader, since: int | None, now_ms: int, check: bool,
          session: Any) -> Chunk:
    """The engine job: one chunk; with ``check``, also the newest row's time when no row came."""
    chunk = reader.read_chunk(session, since, now_ms)
    if check and not chunk.rows:
        chunk.newest_ms = reader.newest_row_ms(session)
        chunk.checked = True
    return chunk


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
