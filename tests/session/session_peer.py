"""A scripted meter for session tests: the simulator's sans-IO ``ServerSession`` (our server-role
core + the MeterModel) behind one loopback TCP listener, with a hook that sees every batch of
bytes the meter wants to send and decides what really goes out (hold, drop, reorder).

The SimulatorServer covers the ordinary quirks (drop every Nth reply, garbage, sizes); this peer
covers what needs a script: a reply held back and delivered late, a meter that goes silent, a
meter that grants GET-with-list and then refuses it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from tb_dlms.protocol.apdu import ExceptionResponse, ServiceErrorCode, StateError
from tb_dlms.session import Ref
from tb_dlms.simulator import values as v
from tb_dlms.simulator.connection import ServerSession as MeterConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import DEFAULT_OPTIONS, MeterModel, MeterOptions

T0 = 1_700_000_437.0  # the frozen "now" of simulated meters in these tests
# The nine registers of ORIGINAL_SYSTEM.md, as the engine passes them: one tuple, every cycle.
REGISTERS = tuple(Ref(3, r.obis, 2) for r in v.REGISTERS)

# hook(peer, out, is_service_reply) -> bytes to send now
Hook = Callable[["ScriptedPeer", bytes, bool], bytes]


class NoWithList(MeterConnection):
    """Grants multiple-references in the AARE, then refuses every GET-with-list (a real quirk)."""

    __slots__ = ()

    def _get(self, assoc: Any, event: Any) -> bytes:
        if event.with_list:
            assoc._request = None  # the refusal answers the request
            return ExceptionResponse(
                StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED
            ).encode()
        return super()._get(assoc, event)


class ScriptedPeer:
    def __init__(
        self,
        *,
        wrapper: bool = False,
        options: MeterOptions = DEFAULT_OPTIONS,
        now: float = T0,
        advance: float = 0.0,
        hook: Hook | None = None,
        connection: type[MeterConnection] = MeterConnection,
    ) -> None:
        self.now = now
        self.advance = advance  # seconds the meter's clock moves after each service reply
        self.model = MeterModel(0, clock=lambda: self.now, options=options)
        self.meter = SimulatedMeter(self.model, 16)
        self.wrapper = wrapper
        self.hook = hook
        self.connection = connection
        self.service_replies = 0
        self.received: list[bytes] = []
        self.state: dict[str, Any] = {}  # scratch space for hooks
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="session-peer", daemon=True)

    def __enter__(self) -> ScriptedPeer:  # noqa: PYI034 - Python 3.9: no typing.Self
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(0.05)
                self._talk(conn, self.connection(self.meter, self.wrapper))

    def _talk(self, conn: socket.socket, session: MeterConnection) -> None:
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            self.received.append(data)
            before = session.replies
            out = session.receive(data)
            service = session.replies != before
            if service:
                self.service_replies += 1
            if self.hook is not None:
                out = self.hook(self, out, service)
            if service and self.advance:
                self.now += self.advance
            if out:
                try:
                    conn.sendall(out)
                except OSError:
                    return
