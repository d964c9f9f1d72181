"""RPCs of a ``LoopMeter``: the queue of requests, the thread each ``fn`` runs on, and the
``LoopSession`` that ``fn`` sees.

``fn(session)`` runs on a short-lived thread of its own, with a ``LoopSession`` whose
get/read/set/action hand the operation to the loop and wait for it; the meter counts as busy
(``op is LoopOp.RPC``) until ``fn`` returns, so an RPC never runs beside a read of the same meter
and a slow ``fn`` never holds the loop; each get/set/action (``LoopOp.RPC_OP``) waits for the
meter's turn on its line. Kept apart from ``loop_meter`` so the polling path reads alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from ..protocol.errors import DlmsError, EngineError, EngineStopped, TransportError
from ..session.machine import SessionMachine, SessionState
from .health import MeterState
from .loop_ops import LoopOp
from .meter import CONNECT
from .policy import broken_by

if TYPE_CHECKING:
    from .loop import SelectorLoop
    from .loop_socket import LoopLine
    from .meter import MeterRunner

__all__ = ["LoopRpcMixin", "LoopSession"]

_READY = SessionState.READY


class LoopRpcMixin:
    """RPC handling of ``LoopMeter`` (needs its fields and its ``tick``/``_connect``/``_drop``/
    ``_after_io``/``_close_socket``)."""

    m: MeterRunner
    key: str
    loop: SelectorLoop
    line: LoopLine
    machine: SessionMachine
    description: str
    op: LoopOp | None
    stopping: bool
    rpc_threads: list[threading.Thread]
    _job_connect: Future[Any] | None
    _rpc_future: Future[Any] | None
    _log: logging.Logger
    _clock: Callable[[], float]

    if TYPE_CHECKING:
        def kick(self) -> None: ...
        def tick(self, now: float) -> None: ...
        def _connect(self, now: float) -> None: ...
        def _after_io(self) -> None: ...
        def _close_socket(self) -> None: ...
        def _drop(self, exc: BaseException | None, state: MeterState, detail: str,
                  now: float) -> None: ...

    # -- from other threads -----------------------------------------------------------------
    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        future: Future[Any] = Future()
        if self.stopping:
            future.set_exception(EngineStopped(f"{name}: the polling engine is stopped"))
            return future
        self.m.jobs.append((fn, future, self._clock() + timeout_s, timeout_s))
        self.loop.call_soon_threadsafe(self.kick)
        return future

    def _jobs(self, now: float) -> float | None:
        """Start the first runnable RPC of the meter (connecting first when needed)."""
        job = self.m.take_job(now)
        if job is None or isinstance(job, float):
            return job
        if job == CONNECT:
            self._job_connect = self.m.jobs[0][1]
            self._connect(now)
            return None
        self._start_rpc(*job)
        return None

    def _start_rpc(self, fn: Callable[[Any], Any], future: Future[Any]) -> None:
        self.op = LoopOp.RPC
        proxy = LoopSession(self)
        thread = threading.Thread(
            target=self._rpc_thread, args=(fn, future, proxy), name=f"dlms rpc {self.key}",
            daemon=True,
        )
        self.rpc_threads = [t for t in self.rpc_threads if t.is_alive()]
        self.rpc_threads.append(thread)
        thread.start()

    def _rpc_thread(
        self, fn: Callable[[Any], Any], future: Future[Any], proxy: LoopSession
    ) -> None:
        try:
            result = fn(proxy)
        except BaseException as exc:  # noqa: BLE001 - the caller gets it through the future
            error = exc
            self.loop.call_soon_threadsafe(lambda: self._rpc_done(future, None, error))
            return
        self.loop.call_soon_threadsafe(lambda: self._rpc_done(future, result, None))

    def _rpc_done(self, future: Future[Any], result: Any, exc: BaseException | None) -> None:
        m = self.m
        if self.op is LoopOp.RPC:
            self.op = None
        now = self._clock()
        if exc is None:
            m.timeouts = 0
            future.set_result(result)
        else:
            future.set_exception(exc)
            if isinstance(exc, DlmsError) and m.session is not None and broken_by(exc, m):
                if self.op is None:
                    self._drop(exc, MeterState.BACKOFF, f"session lost during a request: {exc}",
                               now)
                    return
            elif not isinstance(exc, DlmsError):
                self._log.warning("%s: request function raised %r", m.spec.name, exc)
        if self.op is None:
            self.tick(now)

    def rpc_op(self, start: Callable[[SessionMachine, float], Any], cf: Future[Any]) -> None:
        """On the loop: run one operation of an RPC and complete ``cf`` with its outcome."""
        if self.op is not LoopOp.RPC or self.stopping:
            cf.set_exception(EngineStopped(f"{self.m.spec.name}: the polling engine stopped"))
            return
        holder = self.line.holder
        if holder is not None and holder is not self:  # type: ignore[comparison-overlap] # mixin
            self.line.wait(lambda: self.rpc_op(start, cf))
            return
        if self.line.sock is None and self.machine.state is _READY:
            self.machine.connection_lost(TransportError(f"{self.description}: not open"))
        try:
            start(self.machine, self._clock())
        except BaseException as exc:  # noqa: BLE001
            last = self.machine.last_error
            broken = self.machine.state is SessionState.BROKEN
            # The line was cut: say so, as the blocking session does.
            cf.set_exception(last if broken and isinstance(last, TransportError) else exc)
            return
        self._rpc_future = cf
        self.op = LoopOp.RPC_OP
        self._after_io()

    def _finish_rpc_op(self) -> None:
        cf, self._rpc_future = self._rpc_future, None
        if cf is None:
            return
        if self.op is LoopOp.RPC_OP:  # stopping: abandoned
            self.op = LoopOp.RPC
            cf.set_exception(EngineStopped(f"{self.m.spec.name}: the polling engine stopped"))
            return
        try:
            cf.set_result(self.machine.result())
        except BaseException as exc:  # noqa: BLE001
            cf.set_exception(exc)

    def cut_line(self) -> None:
        """An RPC closed the transport under the session (a test of line loss)."""
        if self.line.sock is None:
            self.machine.connection_lost(TransportError(f"{self.description}: not open"))
        else:
            self.line.lost(TransportError(f"{self.description}: not open"))


class _Line:
    """What an RPC sees as ``session.transport``."""

    def __init__(self, meter: Any) -> None:
        self._meter = meter
        self.description = meter.description

    @property
    def is_open(self) -> bool:
        return self._meter.line.sock is not None

    def close(self) -> None:
        self._meter.loop.call_soon_threadsafe(self._meter.cut_line)


class LoopSession:
    """The session an RPC's ``fn`` gets on the loop path: BlockingSession's get/read/set/action,
    each run by the loop while this (RPC) thread waits."""

    def __init__(self, meter: Any) -> None:
        self._meter = meter
        self.name = meter.m.spec.name
        self.transport = _Line(meter)

    def __getattr__(self, name: str) -> Any:  # state, counters, scalers...
        return getattr(self._meter.machine, name)

    def _run(self, start: Callable[[SessionMachine, float], Any]) -> Any:
        meter = self._meter
        if meter.loop.in_loop:
            raise EngineError("a request function must not run on the polling loop")
        cf: Future[Any] = Future()
        meter.loop.call_soon_threadsafe(lambda: meter.rpc_op(start, cf))
        return cf.result()

    def read(self, refs: Any) -> list[Any]:
        refs = tuple(refs)
        result: list[Any] = self._run(lambda mc, now: mc.read(refs, now))
        return result

    def get(self, ref: Any) -> Any:
        return self.read((ref,))[0]

    def set(self, ref: Any, value: Any) -> Any:
        return self._run(lambda mc, now: mc.set(ref, value, now))

    def action(self, class_id: int, obis: Any, method: int, parameters: Any = None) -> Any:
        return self._run(lambda mc, now: mc.action(class_id, obis, method, parameters, now))
