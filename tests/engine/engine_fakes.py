"""Fakes for the engine tests: a clock, a line, and a scripted meter behind a session shape.

``FakeMeter`` holds what the far end does (up/down, credentials, a script of read failures, how
long a read takes on the fake clock); ``FakeSession`` is what ``ChannelWorker`` drives, shaped
like ``tb_dlms.session.MeterSession`` (connect / read / keepalive_if_due / close).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, NamedTuple

from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.protocol.errors import AuthenticationError, DataAccessError, TransportError
from tb_dlms.protocol.obis import Obis

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
        self.line.close()  # like MeterSession: closing the session closes its transport


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
