"""The simulator counts the polite closes it sees (RLRQ, HDLC DISC): the gateway shutdown test
uses these counters to prove that every session was released and disconnected, not just cut.

Driven by our own client session (tb_dlms.session.BlockingSession) over loopback TCP.
"""

from __future__ import annotations

import time

from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

REF = (3, "1-1:32.7.0", 2)


def _session(port: int, **settings: object) -> BlockingSession:
    base: dict[str, object] = {
        "client": 1,
        "authentication": "lls",
        "password": b"22222222",
        "response_timeout": 1.0,
    }
    base.update(settings)
    return BlockingSession(TcpTransport("127.0.0.1", port, 2.0), SessionSettings(**base))


def _wait(predicate: object, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)


def test_clean_close_counts_one_rlrq_and_one_disc() -> None:
    with SimulatorServer(2, 0) as server:
        session = _session(server.ports[0])
        session.connect()
        session.read([REF])
        meter, other = server.meters
        assert (meter.releases, meter.discs) == (0, 0)
        session.close()
        _wait(lambda: meter.discs)
        assert (meter.releases, meter.discs) == (1, 1)
        assert (other.releases, other.discs) == (0, 0)  # per meter, not per server


def test_cut_connection_counts_nothing() -> None:
    with SimulatorServer(1, 0) as server:
        session = _session(server.ports[0])
        session.connect()
        session.read([REF])
        session.transport.close()  # a dropped line: no goodbye
        meter = server.meters[0]
        _wait(lambda: server.connections == 0)
        assert (meter.releases, meter.discs) == (0, 0)


def test_wrapper_close_counts_rlrq_only() -> None:
    # The wrapper has no link layer: RLRQ is the whole goodbye.
    with SimulatorServer(1, 0, wrapper=True) as server:
        session = _session(server.ports[0], wrapper=True)
        session.connect()
        session.read([REF])
        session.close()
        meter = server.meters[0]
        _wait(lambda: meter.releases)
        assert (meter.releases, meter.discs) == (1, 0)
