"""SessionSettings for HLS-GMAC: validated, keys never in repr, express on, the association's
security state built from them (a BlockingSession reading the simulator over TCP)."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.errors import ConfigError
from tb_dlms.protocol.security import Policy
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.model import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY, MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

HLS = {"authentication": "hls-gmac", "client": 1, "system_title": b"ABCDEFGH",
       "block_key": GREEN_BOOK_BLOCK_KEY, "auth_key": GREEN_BOOK_AUTH_KEY}


def test_defaults_keys_hidden_and_express_on_unless_turned_off():
    s = SessionSettings(**HLS, invocation_counter=7)
    assert s.security == "auth-enc" and s.express is True
    assert SessionSettings(**HLS, express=False).express is False
    text = repr(s)
    assert GREEN_BOOK_BLOCK_KEY.hex() not in text and str(GREEN_BOOK_BLOCK_KEY) not in text
    assert str(GREEN_BOOK_AUTH_KEY) not in text
    sec = s.association_settings().security
    assert sec is not None and sec.policy is Policy.AUTHENTICATED_ENCRYPTION
    assert sec.counter.next_value == 7 and sec.system_title == b"ABCDEFGH"


@pytest.mark.parametrize(("change", "field"), [
    ({"system_title": b"short"}, "system_title"),
    ({"block_key": b"\x01" * 15}, "block_key"),
    ({"auth_key": b""}, "auth_key"),
    ({"security": "strong"}, "security"),
    ({"invocation_counter": -1}, "invocation_counter"),
])
def test_bad_values_name_the_field_not_the_key(change, field):
    with pytest.raises(ConfigError, match=field) as caught:
        SessionSettings(**{**HLS, **change})
    assert GREEN_BOOK_AUTH_KEY.hex() not in str(caught.value)


def test_ciphering_without_hls_is_refused():
    with pytest.raises(ConfigError, match="security"):
        SessionSettings(security="auth")


@pytest.mark.parametrize("level", ["auth", "enc", "auth-enc"])
def test_blocking_session_reads_a_hls_gmac_meter_twice_without_reusing_a_counter(level):
    server = SimulatorServer(1, 0, options=MeterOptions(authentication="hls-gmac",
                                                        security=level)).run_in_thread()
    try:
        settings = SessionSettings(**HLS, security=level, invocation_counter=1)
        session = BlockingSession(TcpTransport("127.0.0.1", server.ports[0]), settings)
        for _ in range(2):  # reconnect: the same association settings go on counting
            session.connect()
            (serial,) = session.read([(1, "0-0:96.1.0", 2)])
            assert serial.value == "SIM00000000"
            session.close()
        assert server.meters[0].security.replays == 0
        assert server.meters[0].security.guard.last >= 6
    finally:
        server.stop()
