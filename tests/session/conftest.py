"""Fixtures for session tests: the simulator on loopback ports and sessions bound to it.

The simulator's clock is frozen at T0 so the expected values (MeterModel.expected) are exactly
what the meter served.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable

import pytest
from session_peer import T0
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport


@pytest.fixture
def simulator() -> Iterator[Callable[..., SimulatorServer]]:
    started: list[SimulatorServer] = []

    def start(wrapper: bool = False, **options: Any) -> SimulatorServer:
        srv = SimulatorServer(
            1, 0, options=MeterOptions(**options), wrapper=wrapper, clock=lambda: T0
        )
        started.append(srv.run_in_thread())
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def session() -> Iterator[Callable[..., BlockingSession]]:
    made: list[BlockingSession] = []

    def make(port: int, **settings: Any) -> BlockingSession:
        settings.setdefault("response_timeout", 0.5)
        s = BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(**settings))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
