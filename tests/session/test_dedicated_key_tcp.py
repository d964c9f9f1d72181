"""Our client with ``dedicated_key`` against the simulator over loopback TCP (HDLC and the
wrapper, every protection level): each association proposes a fresh key that the meter takes,
requests and answers go ded-xxx, steady cycles take the express path under it (learned again in
each association: the session rebuilds its plans at connect, so no cipher outlives its key), and
the key never shows in a repr, log line or frame trace (not even under authentication only,
where the InitiateRequest carrying it would otherwise travel readable)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from tb_dlms.protocol.association_hls import HlsServer
from tb_dlms.protocol.errors import ConfigError, DlmsError
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.model import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY, MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

HLS = {"authentication": "hls-gmac", "client": 1, "system_title": b"ABCDEFGH",
       "block_key": GREEN_BOOK_BLOCK_KEY, "auth_key": GREEN_BOOK_AUTH_KEY,
       "dedicated_key": True}
REFS = ((3, "1-1:32.7.0", 2), (3, "1-1:52.7.0", 2))  # one tuple every cycle: its plan is reused
DED_REQUESTS = range(0xD0, 0xD4)  # ded-get/set/event/action-request
GLO_REQUESTS = range(0xC8, 0xCC)


@pytest.fixture
def spy(monkeypatch) -> Iterator[dict[str, list[Any]]]:
    """On the meter's side: every dedicated key it takes and every ciphered tag it opens."""
    seen: dict[str, list[Any]] = {"keys": [], "tags": []}
    take, open_ = HlsServer._take_dedicated, HlsServer._server_open

    def take_dedicated(self: HlsServer, key: bytes | None) -> bool:
        seen["keys"].append(key)
        return take(self, key)

    def server_open(self: HlsServer, raw: bytes) -> bytes | None:
        seen["tags"].append(raw[0])
        return open_(self, raw)

    monkeypatch.setattr(HlsServer, "_take_dedicated", take_dedicated)
    monkeypatch.setattr(HlsServer, "_server_open", server_open)
    yield seen


def serve(level: str, wrapper: bool, **options: Any) -> SimulatorServer:
    return SimulatorServer(1, 0, options=MeterOptions(
        authentication="hls-gmac", security=level, wrapper=wrapper, **options)).run_in_thread()


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
@pytest.mark.parametrize("level", ["auth", "enc", "auth-enc"])
def test_two_associations_two_keys_ded_requests_and_express_cycles(spy, caplog, level, wrapper):
    caplog.set_level(logging.DEBUG)
    server = serve(level, wrapper)
    try:
        session = BlockingSession(TcpTransport("127.0.0.1", server.ports[0]),
                                  SessionSettings(**HLS, security=level, wrapper=wrapper))
        machine = session.machine
        for association in (1, 2):
            session.connect()
            spy["tags"].clear()
            for _ in range(8):
                l1, l2 = session.read(REFS)
                assert 200 < l1.value < 260 and 200 < l2.value < 260  # volts
            # After the HLS exchange every request went out under the dedicated key.
            assert spy["tags"] and all(tag in DED_REQUESTS for tag in spy["tags"])
            assert machine.express_cycles >= 6 * association  # steady cycles: express
            session.close()
        assert machine.express_fallbacks == 0  # the second association learned its own
        keys = spy["keys"]
        assert len(keys) == 2 and all(len(k) == 16 for k in keys) and keys[0] != keys[1]
        assert server.meters[0].security.dedicated == 2 and server.meters[0].security.replays == 0
        text = "\n".join([caplog.text, *machine.trace.lines(), repr(session),
                          repr(session.settings), repr(machine.assoc.settings)])
        for key in keys:  # in any spelling: hex (spaced, as traces print it) or bytes
            for form in (key.hex(), key.hex(" "), repr(key)):
                assert form not in text and form.upper() not in text
    finally:
        server.stop()


def test_without_the_setting_requests_stay_glo(spy):
    server = serve("auth-enc", False)
    try:
        settings = SessionSettings(**{**HLS, "dedicated_key": False})
        with BlockingSession(TcpTransport("127.0.0.1", server.ports[0]), settings) as session:
            session.read(REFS)
        assert spy["keys"] == []  # no AARQ brought one
        ciphered = [tag for tag in spy["tags"] if tag not in (0x60, 0x62)]  # AARQ, RLRQ: plain
        assert ciphered and all(tag in GLO_REQUESTS for tag in ciphered)
    finally:
        server.stop()


def test_a_meter_refusing_dedicated_keys_refuses_the_association():
    server = serve("auth-enc", False, refuse_dedicated=True)
    try:
        session = BlockingSession(TcpTransport("127.0.0.1", server.ports[0]),
                                  SessionSettings(**HLS, operation_timeout=5.0))
        with pytest.raises(DlmsError, match="rejected"):
            session.connect()
        assert server.meters[0].security.dedicated == 0
    finally:
        server.stop()


@pytest.mark.parametrize("change", [{"security": "none"}, {"authentication": "lls",
                                                            "password": b"x"}])
def test_dedicated_key_needs_hls_and_a_policy(change):
    with pytest.raises(ConfigError, match="dedicated_key"):
        SessionSettings(**{**HLS, **change})
    with pytest.raises(ConfigError, match="dedicated_key"):
        SessionSettings(**{**HLS, "dedicated_key": "yes"})
    assert SessionSettings(**HLS).public().dedicated_key is False
