"""Fakes for the engine tests: a clock, a line, and a scripted meter behind a session shape.

``FakeMeter`` holds what the far end does (up/down, credentials, a script of read failures, how
long a read takes on the fake clock); ``FakeSession`` is what ``ChannelWorker`` drives, shaped
like ``tb_dlms.session.BlockingSession`` (connect / read / keepalive_if_due / close).

The selector loop (the production path for TCP) drives ``SessionMachine`` over a ``LoopLine``
instead: ``FakeMachine`` is the machine's shape over the same ``FakeMeter`` (each operation ends
``read_s`` of real time later, at its ``next_timeout``), ``FakeLoopLine`` a line without a socket
that records which meter had the wire when (``overlaps``: operations of two meters at once).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, NamedTuple

from tb_dlms.engine.loop_socket import LoopLine
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.protocol.errors import (
    AuthenticationError,
    DataAccessError,
    LocalProtocolError,
    TransportError,
)
from tb_dlms.protocol.obis import Obis
from tb_dlms.session.machine import SessionState

OBIS = ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0", "1-1:14.7.0")


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


class FakeReading(NamedTuple):
    ref: Any
    value: Any
    raw: Any
    scaler: int | None
    unit: str | None
    read_at: int


class FakeLine:
    """The channel's transport: only what the worker looks at."""

    def __init__(self, name: str = "fake line") -> None:
        self.description = name
        self.is_open = False
        self.opens = 0
        self.closes = 0

    def open(self) -> None:
        self.is_open = True
        self.opens += 1

    def close(self) -> None:
        self.is_open = False
        self.closes += 1

    def write(self, data: bytes) -> None:
        pass

    def read(self, timeout: float) -> bytes:
        return b""

    def discard_input(self) -> int:
        return 0


class FakeMeter:
    def __init__(self, clock: Clock | None = None, read_s: float = 0.0) -> None:
        self.clock = clock
        self.read_s = read_s  # fake-clock time a read takes
        self.up = True
        self.password_ok = True
        self.failures: deque[Any] = deque()  # raised by the next reads (or callables), in order
        self.missing: set[str] = set()  # OBIS texts answered with object-undefined
        self.connects: list[float] = []
        self.reads: list[float] = []
        self.closes = 0
        self.block: threading.Event | None = None  # a read waits on it (a hung meter)
        self.threads: set[int] = set()

    def now(self) -> float:
        return self.clock() if self.clock is not None else 0.0


class FakeSession:
    def __init__(self, meter: FakeMeter, spec: MeterSpec, line: Any) -> None:
        self.meter = meter
        self.spec = spec
        self.line = line
        self.connected = False
        self.keepalives = 0

    def connect(self) -> None:
        m = self.meter
        m.connects.append(m.now())
        m.threads.add(threading.get_ident())
        if not m.up:
            raise TransportError(f"{self.line.description}: connect failed: refused")
        if not m.password_ok:
            raise AuthenticationError("LLS password refused", 1, 13)
        self.connected = True

    def read(self, refs: Any) -> list[Any]:
        m = self.meter
        m.threads.add(threading.get_ident())
        assert self.connected, "read on a closed session"
        m.reads.append(m.now())
        if m.block is not None:
            m.block.wait(10.0)
            if not self.line.is_open:
                raise TransportError("line closed under the read")
        if m.clock is not None and m.read_s:
            m.clock.advance(m.read_s)
        if m.failures:
            failure = m.failures.popleft()
            if not isinstance(failure, BaseException):
                failure(self)  # a callable: does something to the line, then raises
            raise failure
        out: list[Any] = []
        for i, ref in enumerate(refs):
            if str(ref.obis) in m.missing:
                out.append(DataAccessError(4, "object-undefined"))
            else:
                out.append(FakeReading(ref, 230.0 + i, 2300 + 10 * i, -1, "V", 0))
        return out

    def keepalive_if_due(self) -> None:
        self.keepalives += 1

    def close(self) -> None:
        self.connected = False
        self.meter.closes += 1
        self.line.close()  # like BlockingSession: closing the session closes its transport


def make_spec(
    name: str = "m1",
    *,
    period: float = 1.0,
    points: int = 3,
    transport: Any = None,
    recovery: RecoverySpec | None = None,
    health_period_s: float = 60.0,
) -> MeterSpec:
    return MeterSpec(
        name=name,
        device_type="meter",
        transport=transport or TcpSpec("127.0.0.1", 4059),
        session=None,
        poll_period_s=period,
        points=tuple(
            PollPoint(f"k{i}", ObjectRef(3, Obis.parse(OBIS[i % len(OBIS)]), 2))
            for i in range(points)
        ),
        recovery=recovery
        or RecoverySpec(
            min_connect_spacing_s=0.0,
            backoff_initial_s=1.0,
            backoff_max_s=8.0,
            breaker_threshold=3,
            breaker_open_s=30.0,
        ),
        health_period_s=health_period_s,
    )


def fake_readings(meter: FakeMeter, refs: Any) -> list[Any]:
    out: list[Any] = []
    for i, ref in enumerate(refs):
        if str(ref.obis) in meter.missing:
            out.append(DataAccessError(4, "object-undefined"))
        else:
            out.append(FakeReading(ref, 230.0 + i, 2300 + 10 * i, -1, "V", 0))
    return out


class FakeLoopLine(LoopLine):
    """A ``LoopLine`` without a socket: it opens at once and sends nowhere (``FakeMachine``
    answers by itself); ``overlaps`` counts a meter taking the wire while another holds it."""

    def __init__(self, spec: TcpSpec, loop: Any) -> None:
        super().__init__(spec, loop)
        self.opens = 0
        self.closes = 0
        self.overlaps = 0
        self.turns: list[str] = []  # the meter names, in the order they took the wire

    def take(self, meter: Any) -> None:
        if self.holder is not None and self.holder is not meter:
            self.overlaps += 1
        if self.holder is not meter:
            self.turns.append(meter.poll_state.spec.name)
        super().take(meter)

    def open(self, meter: Any) -> None:
        if self.sock is None:
            self.opens += 1
            self.sock = object()  # type: ignore[assignment]
        meter.opened(None)

    def send(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock = None
            self.closes += 1


class FakeMachine:
    """``SessionMachine`` as ``LoopMeterDriver`` drives it, over a ``FakeMeter``."""

    def __init__(self, meter: FakeMeter, name: str, clock: Any = None) -> None:
        import time

        self.meter = meter
        self.name = name
        self.clock = clock or time.monotonic
        self.state = SessionState.CLOSED
        self.last_error: BaseException | None = None
        self.requests = 0
        self.round_trips = 0
        self._op: str | None = None
        self._refs: Any = None
        self._due = float("inf")
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def busy(self) -> bool:
        return self._op is not None

    def data_to_send(self) -> bytes:
        return b""

    def next_timeout(self) -> float:
        return self._due if self._op is not None else float("inf")

    def receive_data(self, data: bytes, now: float) -> None:
        pass

    def _begin(self, op: str, now: float, takes: float = 0.0) -> None:
        self._op, self._due = op, now + takes
        self._value = self._error = None

    def _end(self, value: Any = None, error: BaseException | None = None) -> None:
        self._op, self._due = None, float("inf")
        self._value, self._error = value, error

    def check_timeout(self, now: float) -> None:
        op = self._op
        if op is None or now < self._due:
            return
        m = self.meter
        if op == "connect":
            if not m.up:
                self.state = SessionState.CLOSED
                self._end(error=TransportError(f"{self.name}: connect failed: refused"))
            elif not m.password_ok:
                self.state = SessionState.CLOSED
                self._end(error=AuthenticationError("LLS password refused", 1, 13))
            else:
                self.state = SessionState.READY
                self._end()
        elif op == "read":
            if m.failures:
                failure = m.failures.popleft()
                if not isinstance(failure, BaseException):
                    failure(self)
                if isinstance(failure, TransportError):
                    self.state = SessionState.BROKEN
                self._end(error=failure)
            else:
                self._end(fake_readings(m, self._refs))
        else:  # close
            self._end()

    def connection_lost(self, exc: Any) -> None:
        if self._op is not None:
            self.state = SessionState.BROKEN
            self._end(error=exc)
        elif self.state is SessionState.READY:
            self.state = SessionState.BROKEN
            self.last_error = exc

    def result(self) -> Any:
        if self._op is not None:
            raise LocalProtocolError(f"{self.name}: the operation is still running")
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._value

    def connect(self, now: float) -> None:
        self.meter.connects.append(now)
        self.meter.threads.add(threading.get_ident())
        self.state = SessionState.CONNECTING
        self._begin("connect", now)

    def open_failed(self, exc: Any) -> None:
        self.state = SessionState.CLOSED
        self._end(error=exc)

    def read(self, refs: Any, now: float) -> None:
        if self.state is not SessionState.READY:
            raise LocalProtocolError(f"{self.name}: session is {self.state.value}")
        self.meter.reads.append(now)
        self.meter.threads.add(threading.get_ident())
        self.requests += 1
        self._refs = refs
        # A blocked meter never answers: the operation waits until the engine gives it up.
        takes = float("inf") if self.meter.block is not None else self.meter.read_s
        self._begin("read", now, takes)

    def keepalive_due(self, now: float) -> bool:
        return False

    def close(self, now: float, wire: bool = True) -> None:
        if self.state is not SessionState.CLOSED:
            self.meter.closes += 1
        self.state = SessionState.CLOSED
        self._begin("close", now)
