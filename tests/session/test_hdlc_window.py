"""HDLC window sizes 2..7 end to end (issue 8): ``windowSize`` from dlms.json, a real TCP socket,
the simulator granting that window, requests long enough to take several bursts (an AARQ with a
200-byte LLS password, a GET-with-list of 18 items, at maxInfoLength 32), and meters that take
the whole burst or only part of it (they answer the poll with RR N(R) below our last frame)."""

from __future__ import annotations

import time

import pytest
from session_peer import REGISTERS, T0
from tb_dlms.connector.config import load_config
from tb_dlms.protocol.hdlc import LinkParameters
from tb_dlms.session import BlockingSession, SessionState
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport
from test_session import assert_registers

PASSWORD = bytes(range(65, 91)).decode() * 7 + "0123456789"[:8]  # 190 bytes: 9 AARQ segments


def settings_from_dlms_json(port: int, window: int):
    cfg = load_config({"meters": [{
        "deviceName": f"window-{window}",
        "connection": {"type": "tcp", "host": "127.0.0.1", "port": port},
        "clientAddress": 1, "authentication": "lls", "password": PASSWORD,
        "maxInfoLength": 32, "windowSize": window, "responseTimeout": 2000, "retries": 0,
        "timeseries": [{"key": "e", "obis": "1-1:1.8.0"}],
    }]}, {})
    assert cfg.errors == (), cfg.errors
    return cfg.meters[0].spec.session


@pytest.mark.parametrize("partial", [0, 1, "all-but-one"], ids=["full", "one", "all-but-one"])
@pytest.mark.parametrize("window", [2, 3, 4, 5, 6, 7])
def test_window_sizes_end_to_end_with_full_and_partial_acknowledgement(window, partial):
    take = window - 1 if partial == "all-but-one" else partial
    options = MeterOptions(max_info_field=32, window=window, partial_ack=take,
                           password=PASSWORD.encode())
    srv = SimulatorServer(1, 0, options=options, clock=lambda: T0).run_in_thread()
    try:
        settings = settings_from_dlms_json(srv.ports[0], window)
        s = BlockingSession(TcpTransport("127.0.0.1", srv.ports[0], 2.0), settings)
        started = time.monotonic()
        s.connect()
        link = s._channel.link
        assert link.parameters == LinkParameters(32, 32, window, window)
        for _ in range(2):
            assert_registers(s.read(REGISTERS), srv.model(0))
        # retries=0: a single time-out would have failed; every repeat was a link go-back.
        assert s.state is SessionState.READY and s.retransmissions == 0
        if take:
            assert link.retransmissions > 0
        else:
            assert link.retransmissions == 0
        assert time.monotonic() - started < 3.0
        s.close()
    finally:
        srv.stop()
