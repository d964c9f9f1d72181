"""Several simulated meters behind one TCP connection: a data concentrator (or an RS-485 bus
behind a serial-to-Ethernet converter) as the client sees it.

Every byte the client sends reaches every meter, each answers only the HDLC frames addressed to its
own physical address (a frame for another meter is line noise to it), and the answers go back on
the one connection. Same surface as :class:`~.connection.ServerSession` for the socket loop.
"""

from __future__ import annotations

from collections.abc import Sequence

from .connection import ServerSession, SimulatedMeter

__all__ = ["ConcentratorSession"]


class ConcentratorSession:
    """One client connection to the meters behind one port: ``receive(data) -> bytes``."""

    __slots__ = ("meter", "sessions")

    def __init__(self, meters: Sequence[SimulatedMeter]) -> None:
        if not meters:
            raise ValueError("a concentrator needs at least one meter")
        self.meter = meters[0]  # latency and log lines: the first meter's
        self.sessions = [ServerSession(m) for m in meters]

    @property
    def closed(self) -> bool:
        return any(s.closed for s in self.sessions)

    def receive(self, data: bytes) -> bytes:
        return b"".join([s.receive(data) for s in self.sessions])
