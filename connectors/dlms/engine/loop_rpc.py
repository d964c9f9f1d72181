"""RPCs of a ``LoopMeterDriver``: the thread each ``fn`` runs on and the ``LoopSession`` it sees.

``fn(session)`` runs on a short-lived thread of its own, with a ``LoopSession`` whose
get/read/set/action hand the operation to the loop and wait for it; the meter counts as busy
(``op is LoopOp.RPC``) until ``fn`` returns, so an RPC never runs beside a read of the same meter
and a slow ``fn`` never holds the loop; each get/set/action (``LoopOp.RPC_OP``) waits for the
meter's turn on its line. ``LoopRpcRunner`` is owned by the driver and told what it needs
(``RpcHost``: the driver's operation and its decisions); the polling path reads alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Protocol

from ..protocol.errors import DlmsError, EngineError, EngineStopped, TransportError
from ..session.machine import SessionMachine, SessionState
from .health import MeterState
from .loop_ops import LoopOp
from .loop_socket import LineUser
from .policy import broken_by
from .poll_state import CONNECT, MeterPollState

if TYPE_CHECKING:
    from .loop import SelectorLoop
    from .loop_socket import LoopLine

__all__ = ["LoopRpcRunner", "LoopSession", "RpcHost"]

_READY = SessionState.READY


class RpcHost(LineUser, Protocol):
    """What the RPC runner needs of the driver that owns it (``LoopMeterDriver``), a user of the
    line."""

    op: LoopOp | None  # setting it takes or releases the line
    stopping: bool

    def kick(self) -> None: ...

    def tick(self, now: float) -> None: ...

    def connect(self, now: float) -> None: ...

    def drop(self, exc: BaseException | None, state: MeterState, detail: str,
             now: float) -> None: ...

    def after_io(self) -> None: ...


class LoopRpcRunner:
    """Runs the queued RPCs of one meter for its driver on the loop."""

    __slots__ = ("_clock", "_host", "_log", "_rpc_future", "description", "job_connect", "key",
                 "line", "loop", "machine", "meter", "threads")

    def __init__(
        self, host: RpcHost, meter: MeterPollState, loop: SelectorLoop, line: LoopLine,
        machine: SessionMachine, *, key: str, description: str, log: logging.Logger,
    ) -> None:
        self._host = host
        self.meter = meter
        self.loop = loop
        self.line = line
        self.machine = machine
        self.key = key
        self.description = description
        self._log = log
        self._clock = loop.clock
        self.job_connect: Future[Any] | None = None  # the request whose connect is under way
        self._rpc_future: Future[Any] | None = None  # the operation an RPC thread waits for
        self.threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        """From any thread: queue ``fn`` and wake the driver."""
        future: Future[Any] = Future()
        if self._host.stopping:
            future.set_exception(
                EngineStopped(f"{self.meter.spec.name}: the polling engine is stopped"))
            return future
        self.meter.jobs.append((fn, future, self._clock() + timeout_s, timeout_s))
        self.loop.call_soon_threadsafe(self._host.kick)
        return future

    def start_next(self, now: float) -> float | None:
        """Start the first runnable RPC of the meter (connecting first when needed)."""
        job = self.meter.take_job(now)
        if job is None or isinstance(job, float):
            return job
        if job == CONNECT:
            self.job_connect = self.meter.jobs[0][1]
            self._host.connect(now)
            return None
        self._start_rpc(*job)
        return None

    def connect_ended(self, exc: BaseException | None) -> None:
        """The driver's connect ended; a failure fails the request that asked for it."""
        job, self.job_connect = self.job_connect, None
        m = self.meter
        if exc is not None and job is not None and m.jobs and m.jobs[0][1] is job:
            m.jobs.pop(0)
            if job.set_running_or_notify_cancel():
                job.set_exception(TransportError(f"{m.spec.name}: not connected: {m.detail}"))

    def _start_rpc(self, fn: Callable[[Any], Any], future: Future[Any]) -> None:
        self._host.op = LoopOp.RPC
        proxy = LoopSession(self)
        thread = threading.Thread(
            target=self._rpc_thread, args=(fn, future, proxy), name=f"dlms rpc {self.key}",
            daemon=True,
        )
        self.threads = [t for t in self.threads if t.is_alive()]
        self.threads.append(thread)
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
        m, host = self.meter, self._host
        if host.op is LoopOp.RPC:
            host.op = None
        now = self._clock()
        if exc is None:
            m.timeouts = 0
            future.set_result(result)
        else:
            future.set_exception(exc)
            if isinstance(exc, DlmsError) and m.session is not None and broken_by(exc, m):
                if host.op is None:
                    host.drop(exc, MeterState.BACKOFF, f"session lost during a request: {exc}",
                              now)
                    return
            elif not isinstance(exc, DlmsError):
                self._log.warning("%s: request function raised %r", m.spec.name, exc)
        if host.op is None:
            host.tick(now)

    def rpc_op(self, start: Callable[[SessionMachine, float], Any], cf: Future[Any]) -> None:
        """On the loop: run one operation of an RPC and complete ``cf`` with its outcome."""
        host = self._host
        if host.op is not LoopOp.RPC or host.stopping:
            cf.set_exception(EngineStopped(f"{self.meter.spec.name}: the polling engine stopped"))
            return
        holder = self.line.holder
        if holder is not None and holder is not host:
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
        host.op = LoopOp.RPC_OP
        host.after_io()

    def finish_op(self) -> None:
        """The RPC's operation ended (or, stopping, is abandoned): hand its outcome over."""
        cf, self._rpc_future = self._rpc_future, None
        if cf is None:
            return
        host = self._host
        if host.op is LoopOp.RPC_OP:  # stopping: abandoned
            host.op = LoopOp.RPC
            cf.set_exception(EngineStopped(f"{self.meter.spec.name}: the polling engine stopped"))
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

    def __init__(self, runner: LoopRpcRunner) -> None:
        self._runner = runner
        self.description = runner.description

    @property
    def is_open(self) -> bool:
        return self._runner.line.sock is not None

    def close(self) -> None:
        self._runner.loop.call_soon_threadsafe(self._runner.cut_line)


class LoopSession:
    """The session an RPC's ``fn`` gets on the loop path: BlockingSession's get/read/set/action,
    each run by the loop while this (RPC) thread waits."""

    def __init__(self, runner: LoopRpcRunner) -> None:
        self._runner = runner
        self.name = runner.meter.spec.name
        self.transport = _Line(runner)

    def __getattr__(self, name: str) -> Any:  # state, counters, scalers...
        return getattr(self._runner.machine, name)

    def _run(self, start: Callable[[SessionMachine, float], Any]) -> Any:
        runner = self._runner
        if runner.loop.in_loop:
            raise EngineError("a request function must not run on the polling loop")
        cf: Future[Any] = Future()
        runner.loop.call_soon_threadsafe(lambda: runner.rpc_op(start, cf))
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
