"""``PollingEngine``: the service that polls N meters for months without a human.

It groups the ``MeterSpec`` values by ``transport.channel_key`` into channels (one line: a TCP
host:port with one meter or several behind a data concentrator or serial-to-Ethernet converter, or
one serial bus) and routes RPCs and reconnect requests to whatever owns the line.

- TCP meters share one ``SelectorLoop`` thread: each host:port is a ``LoopChannel``, its
  ``LoopLine`` (a non-blocking socket) and a ``LoopMeterDriver`` per meter behind it (the sans-IO
  ``SessionMachine``, its time-outs as timers), so 1,000 meters cost one thread and a hung meter
  delays no other. Meters behind one host:port share one connection, polled in turn. RPC
  functions run on a
  short-lived thread each (they call the session's blocking-looking get/set/action, which the loop
  performs).
- Serial lines (and every channel when a custom ``session_factory`` or ``transport_factory`` is
  injected: blocking sessions) get a ``ChannelWorker`` thread with the blocking
  ``BlockingSession``; serial lines are slow and few. These threads get a small stack (256 KiB).

Both are ``ChannelDriver``s: the engine starts, stops, routes and observes them alike.

Tests reach the loop path with ``machine_factory`` (what stands in for ``SessionMachine``) and
``line_factory`` (for ``LoopLine``): the production loop, timers and turn-taking over fake far ends.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from ..protocol.errors import ConfigError, EngineError, EngineStopped
from .channel import ChannelDriver
from .events import EngineSink
from .loop import SelectorLoop
from .loop_channel import LoopChannel
from .loop_driver import LoopMeterDriver
from .loop_socket import LoopLine
from .poll_state import MeterPollState
from .recovery import JitterSource
from .schedule import stagger
from .spec import MeterSpec, TcpSpec, TransportSpec
from .worker import ChannelWorker, SessionFactory, SessionLike

__all__ = ["PollingEngine", "default_session_factory", "default_transport_factory"]

T = TypeVar("T")
THREAD_STACK_SIZE = 256 * 1024

_log = logging.getLogger("tb_dlms.engine")


_TIMER_GRID_S = 0.01
_INF = float("inf")


def default_transport_factory(spec: TransportSpec) -> Any:
    """The real transport for a channel (opened lazily by its worker)."""
    from ..transport import SerialTransport, TcpTransport

    if isinstance(spec, TcpSpec):
        return TcpTransport(spec.host, spec.port, spec.connect_timeout_s)
    return SerialTransport(
        spec.port, spec.baudrate, spec.bytesize, spec.parity, spec.stopbits, mode_e=spec.mode_e
    )


def default_session_factory(
    clock: Callable[[], float], wall_clock: Callable[[], float], log: logging.Logger
) -> SessionFactory:
    """``BlockingSession`` per meter (imported late: the session layer depends on more modules)."""
    from ..session import BlockingSession

    def make(spec: MeterSpec, transport: Any) -> SessionLike:
        settings = spec.session
        if not getattr(settings, "name", True):  # errors and traces name the meter
            settings = dataclasses.replace(settings, name=spec.name)
        return BlockingSession(transport, settings, clock=clock, wall_clock=wall_clock, log=log)

    return make


def _check_channel(key: str, specs: list[MeterSpec]) -> None:
    first = specs[0].transport
    for spec in specs[1:]:
        if spec.transport != first:
            raise ConfigError(
                f"meters {specs[0].name!r} and {spec.name!r} share {key} with different "
                f"line settings ({first} vs {spec.transport})"
            )


class PollingEngine:
    """Polls every meter of ``specs`` and reports to ``sink`` (see ``events.EngineSink``)."""

    def __init__(
        self,
        specs: Sequence[MeterSpec],
        sink: EngineSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        log: logging.Logger = _log,
        transport_factory: Callable[[TransportSpec], Any] = default_transport_factory,
        session_factory: SessionFactory | None = None,
        machine_factory: Callable[[MeterSpec], Any] | None = None,
        line_factory: Callable[[TcpSpec, SelectorLoop], LoopLine] = LoopLine,
        rng: random.Random | None = None,
        keepalive_check_s: float = 5.0,
        stack_size: int = THREAD_STACK_SIZE,
    ) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"meter names must be unique; repeated: {', '.join(dup)}")
        self.specs = tuple(specs)
        self._sink = sink
        self._clock = clock
        self._wall_clock = wall_clock
        self._log = log
        self._transport_factory = transport_factory
        self._session_factory = session_factory or default_session_factory(clock, wall_clock, log)
        self._machine_factory = machine_factory
        self._line_factory = line_factory
        self._rng = rng if rng is not None else random.Random()
        self._keepalive_check_s = keepalive_check_s
        self._stack_size = stack_size
        self._channels: list[ChannelDriver] = []
        self._loop: SelectorLoop | None = None
        self._loop_meter_count = 0
        self._by_meter: dict[str, ChannelDriver] = {}
        # The selector loop drives real TCP sockets with SessionMachine; injected factories mean
        # blocking transports or sessions, which only a thread can drive.
        self._use_loop = (
            session_factory is None and transport_factory is default_transport_factory
        )
        self._lock = threading.Lock()
        self._running = False
        self._held: set[int] = set()  # id() of channels built but not started yet
        self._built_at = 0.0

    # -- life cycle -------------------------------------------------------------------------
    def build(self, start: float | None = None) -> list[ChannelDriver]:
        """Create the channels without starting threads (``start`` calls it; tests step them)."""
        groups: dict[str, list[MeterSpec]] = {}
        for spec in self.specs:
            groups.setdefault(spec.transport.channel_key, []).append(spec)
        now = self._built_at = self._clock() if start is None else start
        count = len(self.specs)
        index = 0
        channels: list[ChannelDriver] = []
        shortest = _INF  # the shortest poll period on the loop
        on_loop = 0  # meters on the loop
        loop = self._loop = SelectorLoop(self._clock, log=self._log) if self._use_loop else None
        for key, specs in groups.items():
            _check_channel(key, specs)
            meters = []
            for spec in specs:
                # Spread the first polls (and connects) of all meters evenly over the period.
                phase = stagger(index, count, spec.poll_period_s)
                index += 1
                rng = JitterSource(self._rng.getrandbits(64))
                meters.append(MeterPollState(spec, now, phase, wall_clock=self._wall_clock, rng=rng))
            if loop is not None and isinstance(specs[0].transport, TcpSpec):
                # One connection for every meter behind this host:port, polled in turn.
                line = self._line_factory(specs[0].transport, loop)
                channels.append(LoopChannel(line, [self._loop_driver(m, loop, line) for m in meters]))
                shortest = min([shortest, *(spec.poll_period_s for spec in specs)])
                on_loop += len(specs)
                continue
            channels.append(ChannelWorker(
                key, meters, self._transport_factory(specs[0].transport), self._session_factory,
                self._sink, clock=self._clock, wall_clock=self._wall_clock, log=self._log,
                keepalive_check_s=self._keepalive_check_s,
            ))
        if loop is not None and shortest < _INF:
            # Timers on a grid of 1 % of the shortest period (10 ms at most): a tenth of the
            # on-time tolerance, and ten times fewer wakeups of the loop for timers.
            loop.timer_slack_s = min(_TIMER_GRID_S, 0.01 * shortest)
        elif loop is not None:
            self._loop = None  # no TCP meter: no loop thread
        self._channels = channels
        self._by_meter = {name: ch for ch in channels for name in ch.meters}
        self._loop_meter_count = on_loop
        return channels

    def _loop_driver(
        self, m: MeterPollState, loop: SelectorLoop, line: LoopLine
    ) -> LoopMeterDriver:
        return LoopMeterDriver(
            m, loop, self._machine(m.spec), self._sink, wall_clock=self._wall_clock, log=self._log,
            keepalive_check_s=self._keepalive_check_s, line=line,
        )

    def _machine(self, spec: MeterSpec) -> Any:
        if self._machine_factory is not None:
            return self._machine_factory(spec)
        from ..session.machine import SessionMachine

        settings = spec.session
        if not getattr(settings, "name", True):  # errors and traces name the meter
            settings = dataclasses.replace(settings, name=spec.name)
        return SessionMachine(settings, name=spec.name, wall_clock=self._wall_clock, log=self._log)

    def start(self, hold: bool = False) -> None:
        """Start polling; with ``hold`` every channel waits for ``release`` (a fleet's devices
        registered one by one: each meter starts when the gateway knows it, not all at once)."""
        with self._lock:
            if self._running:
                raise EngineError("the polling engine is already running")
            channels = self.build()
            if self._loop is not None:
                self._loop.start()
            if hold:
                self._held = {id(ch) for ch in channels}
            else:
                self._start_channels(channels)
            self._running = True
        self._log.info(
            "polling %d meters on %d channels (%d TCP meters on the selector loop)%s",
            len(self.specs), len(channels), self._loop_meter_count,
            ", each started when released" if hold else "",
        )

    def _start_channels(self, channels: Sequence[ChannelDriver]) -> None:
        previous = threading.stack_size()
        try:
            threading.stack_size(self._stack_size)
            for channel in channels:
                channel.start()
        finally:
            threading.stack_size(previous)

    def release(self, meter_name: str) -> bool:
        """Start a held meter's channel (and its line-mates'), its schedule moved to now with
        its phase kept. False when it was not held (started already, or unknown)."""
        with self._lock:
            channel = self._by_meter.get(meter_name)
            if not self._running or channel is None or id(channel) not in self._held:
                return False
            self._held.discard(id(channel))
            delta = max(0.0, self._clock() - self._built_at)
            for m in channel.meters.values():
                m.postpone(delta)
            self._start_channels([channel])
            return True

    def release_all(self) -> int:
        """Start every held channel; returns how many channels that started."""
        return sum(self.release(name) for name in list(self._by_meter))

    @property
    def held(self) -> int:
        """Meters not started yet."""
        with self._lock:
            return sum(len(ch.meters) for ch in self._channels if id(ch) in self._held)

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop every channel; each closes its sessions. True when no thread is left behind."""
        with self._lock:
            channels, self._running = self._channels, False
            loop, self._loop = self._loop, None
            self._held = set()
        if not channels and loop is None:
            return True
        for channel in channels:
            channel.request_stop()
        # Real time, whatever clock was injected: this bounds how long the caller waits.
        deadline = time.monotonic() + timeout_s
        grace = deadline - 0.4 * timeout_s  # for polite RLRQ/DISC; then lines are cut
        # An idle channel stops at once. One blocked in a read (or in a polite close to a meter
        # that no longer answers) gets its line closed under it, which fails that read at once.
        for channel in channels:
            channel.join(max(0.0, grace - time.monotonic()))
        alive = [ch for ch in channels if not ch.join(0.0)]
        for channel in alive:
            channel.abort_line()
        for channel in alive:
            channel.join(max(0.05, deadline - time.monotonic()))
        left = [ch.key for ch in channels if not ch.join(0.0)]
        loop_ok = True
        if loop is not None:
            loop.call_soon_threadsafe(loop.finish)
            loop_ok = loop.join(max(0.05, deadline - time.monotonic()))
        if left or not loop_ok:
            self._log.error(
                "polling engine: %d channels did not stop: %s%s", len(left), left[:5],
                "" if loop_ok else " (nor did the selector loop)",
            )
        return not left and loop_ok

    @property
    def running(self) -> bool:
        return self._running

    # -- requests -------------------------------------------------------------------------------
    def _channel(self, meter_name: str) -> ChannelDriver:
        try:
            return self._by_meter[meter_name]
        except KeyError:
            raise EngineError(f"unknown meter {meter_name!r}") from None

    def submit(
        self, meter_name: str, fn: Callable[[Any], T], timeout_s: float = 30.0
    ) -> Future[T]:
        """Run ``fn(session)`` on the meter's own worker between cycles.

        The future fails with ``RequestNotStarted`` when the request could not start within
        ``timeout_s``, and with ``TransportError`` when the meter cannot be connected in time.
        """
        if not self._running:
            future: Future[T] = Future()
            future.set_exception(EngineStopped("the polling engine is not running"))
            return future
        channel = self._channel(meter_name)
        if self._held:  # asked for before its turn: start it (and its line-mates) now
            self.release(meter_name)
        return channel.submit(meter_name, fn, timeout_s)

    def reconnect(self, meter_name: str) -> None:
        """Close the meter's session and associate again (backoff forgotten, spacing kept)."""
        channel = self._channel(meter_name)
        if not (self._held and self.release(meter_name)):  # a held meter just starts
            channel.reconnect(meter_name)

    # -- observation ------------------------------------------------------------------------------
    def states(self) -> dict[str, dict[str, Any]]:
        return {
            name: dict(ch.meters[name].state_dict(), channel=ch.key)
            for name, ch in self._by_meter.items()
        }

    def health(self) -> dict[str, dict[str, Any]]:
        return {name: ch.meters[name].health.snapshot() for name, ch in self._by_meter.items()}

    @property
    def channels(self) -> list[ChannelDriver]:
        """The ChannelWorkers and the LoopChannels (each with ``key`` and ``meters``)."""
        return list(self._channels)

    def __enter__(self) -> PollingEngine:  # noqa: PYI034 - Python 3.9: no typing.Self
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

