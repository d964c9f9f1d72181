"""The simulator's HLS-GMAC and ciphered xDLMS proven with an independent client: gurux_dlms's
GXDLMSSecureClient (its own AES-GCM, AARQ/AARE, f(StoC)/f(CtoS) and glo-* code) over TCP.

Same byte mover and object walk as test_gurux_client_vs_simulator; gurux_dlms (GPLv2) is imported
here, in tests only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms.enums import Authentication, InterfaceType, Security
from gurux_dlms.objects import GXDLMSData
from gurux_dlms.secure import GXDLMSSecureClient
from tb_dlms.protocol.hdlc import HdlcFramer
from tb_dlms.protocol.security import GcmKey, SecurityContext
from tb_dlms.simulator.model import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY, MeterOptions
from tb_dlms.simulator.objects import OBJECT_DEFS
from tb_dlms.simulator.server import SimulatorServer
from test_gurux_client_vs_simulator import (  # the plain case's mover and object walk
    T0,
    GuruxSession,
    public_client,
    read_everything,
)

pytestmark = pytest.mark.interop

CLIENT_TITLE = b"GRX12345"
LEVELS = {"auth": Security.AUTHENTICATION, "enc": Security.ENCRYPTION,
          "auth-enc": Security.AUTHENTICATION_ENCRYPTION}


def secure_client(security: Security, counter: int = 1, auth_key: bytes = GREEN_BOOK_AUTH_KEY,
                  ) -> GXDLMSSecureClient:
    client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.HDLC)
    client.ciphering.security = security
    client.ciphering.systemTitle = bytearray(CLIENT_TITLE)
    client.ciphering.blockCipherKey = bytearray(GREEN_BOOK_BLOCK_KEY)
    client.ciphering.authenticationKey = bytearray(auth_key)
    client.ciphering.invocationCounter = counter
    return client


def hls_open(session: GuruxSession) -> None:
    """SNRM/UA, AARQ/AARE, then pass 3/4 (f(StoC) out, f(CtoS) checked by Gurux)."""
    session.open()
    client = session.client
    client.parseApplicationAssociationResponse(
        session.block(client.getApplicationAssociationRequest()).data)


@pytest.fixture
def make_server():
    servers: list[SimulatorServer] = []

    def make(**kw: Any) -> SimulatorServer:
        server = SimulatorServer(2, 0, clock=lambda: T0, **kw).run_in_thread()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def hls_server(make: Any, security: str) -> Any:
    return make(options=MeterOptions(authentication="hls-gmac", security=security))


@pytest.mark.parametrize("level", list(LEVELS))
def test_gurux_hls_gmac_client_reads_every_object(make_server, level):
    server = hls_server(make_server, level)
    session = GuruxSession(server.ports[1], secure_client(LEVELS[level]))
    hls_open(session)
    read_everything(session, server)
    reply = session.block(session.client.getObjectsRequest())  # long answer: GET blocks
    assert len(session.client.parseObjects(reply.data, True)) == len(OBJECT_DEFS)
    session.sock.close()
    security = server.meters[1].security
    assert security.replays == 0 and security.refused == 0
    assert security.guard.last is not None and security.guard.last > 20  # one IC per request
    # Every answer after the AARE travelled ciphered (the service-specific glo- tags).
    framer = HdlcFramer()
    framer.feed(bytes(session.received))
    tags = set()
    while (frame := framer.next_frame()) is not None:
        if frame.info[3:4]:
            tags.add(frame.info[3])
    assert {0xCC, 0xCF} & tags and not {0xC4, 0xC7} & tags


def test_per_meter_system_titles_differ(make_server):
    server = hls_server(make_server, "auth-enc")
    titles = {m.security.system_title for m in server.meters}
    assert len(titles) == 2
    session = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION))
    hls_open(session)
    assert bytes(session.client.ciphering.recipientSystemTitle
                 or session.client.settings.sourceSystemTitle) == server.meters[0].security.system_title
    session.sock.close()


def test_replayed_invocation_counter_is_refused(make_server):
    server = hls_server(make_server, "auth-enc")
    first = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION, 100))
    hls_open(first)
    first.read(GXDLMSData("0.0.96.1.0.255"), 2)
    first.sock.close()
    last = server.meters[0].security.guard.last
    # A second client starts again at the same counter: its AARQ is a replay, refused.
    again = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION, 100))
    with pytest.raises(Exception):  # noqa: B017 - Gurux raises its own exception types
        again.open()
    again.sock.close()
    assert server.meters[0].security.replays == 1
    assert server.meters[0].security.guard.last == last  # a refused counter moves nothing


def test_replayed_request_inside_an_association_is_refused(make_server):
    server = hls_server(make_server, "auth-enc")
    session = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION, 7))
    hls_open(session)
    client = session.client
    serial = GXDLMSData("0.0.96.1.0.255")
    client.ciphering.invocationCounter = 5  # below what the meter accepted already
    with pytest.raises(Exception):  # noqa: B017
        session.read(serial, 2)
    assert server.meters[0].security.replays == 1
    client.ciphering.invocationCounter = server.meters[0].security.guard.last + 1
    assert bytes(session.read(serial, 2)) == b"SIM00000000"  # the association is still there
    session.sock.close()


def test_wrong_f_stoc_is_refused_and_the_association_released(make_server):
    # Encryption only: the APDU carrying f(StoC) opens without the authentication key, so the
    # wrong key shows in f(StoC) alone (with auth-enc the APDU's own tag would fail first).
    server = hls_server(make_server, "enc")
    session = GuruxSession(server.ports[0], secure_client(Security.ENCRYPTION))
    session.open()
    client = session.client
    client.ciphering.authenticationKey = bytearray(b"\x55" * 16)  # a wrong f(StoC) follows
    with pytest.raises(Exception):  # noqa: B017
        client.parseApplicationAssociationResponse(
            session.block(client.getApplicationAssociationRequest()).data)
    assert server.meters[0].security.hls_refused == 1
    client.ciphering.authenticationKey = bytearray(GREEN_BOOK_AUTH_KEY)
    with pytest.raises(Exception):  # noqa: B017 - no association any more: refused
        session.read(GXDLMSData("0.0.96.1.0.255"), 2)
    assert server.meters[0].requests == 2  # pass 3, then the GET, refused: association gone
    session.sock.close()


def test_frame_counter_object_read_by_the_public_client(make_server):
    server = hls_server(make_server, "auth-enc")
    secure = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION, 41))
    hls_open(secure)
    secure.read(GXDLMSData("0.0.96.1.0.255"), 2)
    secure.sock.close()
    public = GuruxSession(server.ports[0], public_client())
    public.open()
    value = public.read(GXDLMSData("0.0.43.1.0.255"), 2)
    assert value == server.meters[0].security.guard.last >= 43  # AARQ 41, reply 42, GET 43
    public.close()
    # A client continuing from value + 1 is accepted.
    resumed = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION,
                                                          value + 1))
    hls_open(resumed)
    assert bytes(resumed.read(GXDLMSData("0.0.96.1.0.255"), 2)) == b"SIM00000000"
    resumed.sock.close()


def test_plain_request_refused_under_a_security_policy(make_server):
    server = hls_server(make_server, "auth-enc")
    session = GuruxSession(server.ports[0], secure_client(Security.AUTHENTICATION_ENCRYPTION))
    hls_open(session)
    session.client.ciphering.security = Security.NONE
    with pytest.raises(Exception):  # noqa: B017
        session.read(GXDLMSData("0.0.96.1.0.255"), 2)
    assert server.meters[0].security.refused == 1
    session.sock.close()


def test_server_context_repr_hides_keys():
    context = SecurityContext(GcmKey(GREEN_BOOK_BLOCK_KEY, GREEN_BOOK_AUTH_KEY))
    options = MeterOptions(authentication="hls-gmac", security="auth")
    for text in (repr(context), repr(options)):
        assert GREEN_BOOK_BLOCK_KEY.hex() not in text.lower()
        assert GREEN_BOOK_AUTH_KEY.hex() not in text.lower()



MECHANISMS = {"hls-md5": Authentication.HIGH_MD5, "hls-sha1": Authentication.HIGH_SHA1,
              "hls-sha256": Authentication.HIGH_SHA256}


@pytest.mark.parametrize("security", ["", "auth-enc"], ids=["plain", "auth-enc"])
@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_gurux_hash_mechanisms(make_server, mechanism, security):
    """Mechanisms 3, 4, 6 with the LLS password as the HLS secret, plain or ciphered xDLMS."""
    server = make_server(options=MeterOptions(authentication=mechanism, security=security,
                                              password=b"12345678"))
    client = GXDLMSSecureClient(True, 1, 1, MECHANISMS[mechanism], "12345678", InterfaceType.HDLC)
    client.ciphering.security = LEVELS[security] if security else Security.NONE
    client.ciphering.systemTitle = bytearray(CLIENT_TITLE)
    client.ciphering.blockCipherKey = bytearray(GREEN_BOOK_BLOCK_KEY)
    client.ciphering.authenticationKey = bytearray(GREEN_BOOK_AUTH_KEY)
    session = GuruxSession(server.ports[0], client)
    hls_open(session)
    assert bytes(session.read(GXDLMSData("0.0.96.1.0.255"), 2)) == b"SIM00000000"
    session.sock.close()
    wrong = GXDLMSSecureClient(True, 1, 1, MECHANISMS[mechanism], "87654321", InterfaceType.HDLC)
    wrong.ciphering.security = client.ciphering.security
    wrong.ciphering.systemTitle = bytearray(CLIENT_TITLE)
    wrong.ciphering.blockCipherKey = bytearray(GREEN_BOOK_BLOCK_KEY)
    wrong.ciphering.authenticationKey = bytearray(GREEN_BOOK_AUTH_KEY)
    wrong.ciphering.invocationCounter = 1000
    bad = GuruxSession(server.ports[0], wrong)
    with pytest.raises(Exception):  # noqa: B017 - the server refuses the wrong f(StoC)
        hls_open(bad)
    bad.sock.close()
    assert server.meters[0].security.hls_refused == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_cli_simulate_hls_gmac_with_keys_read_by_gurux():
    """`tb-dlms simulate --auth hls-gmac` in its own process, over TCP, keys from the options."""
    block, auth = bytes(range(0x40, 0x50)), bytes(range(0x60, 0x70))
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tb_dlms.cli", "simulate", "--base-port", str(port), "--auth",
         "hls-gmac", "--security", "auth", "--block-key", block.hex(), "--auth-key", auth.hex()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "hls-gmac auth" in line and block.hex() not in line.lower()
        client = secure_client(Security.AUTHENTICATION, 10, auth)
        client.ciphering.blockCipherKey = bytearray(block)
        session = GuruxSession(port, client)
        hls_open(session)
        assert bytes(session.read(GXDLMSData("0.0.96.1.0.255"), 2)) == b"SIM00000000"
        session.sock.close()
        wrong = GuruxSession(port, secure_client(Security.AUTHENTICATION, 100))  # test keys
        with pytest.raises(Exception):  # noqa: B017 - the AARQ's tag does not verify
            hls_open(wrong)
        wrong.sock.close()
        proc.terminate()
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert block.hex() not in (out + err).lower() and auth.hex() not in (out + err).lower()


@pytest.mark.parametrize("level", list(LEVELS))
def test_gurux_client_with_a_dedicated_key(make_server, monkeypatch, level):
    """Gurux's client puts its dedicated key in the ciphered InitiateRequest and, after the HLS
    exchange, sends ded-get-request; the simulator takes that key for the association and answers
    ded-get-response, which Gurux opens with it."""
    from tb_dlms.protocol.association_hls import HlsServer

    taken: list[bytes | None] = []
    take = HlsServer._take_dedicated
    monkeypatch.setattr(HlsServer, "_take_dedicated",
                        lambda self, key: (taken.append(key), take(self, key))[1])
    server = hls_server(make_server, level)
    client = secure_client(LEVELS[level])
    dedicated = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    client.ciphering.dedicatedKey = bytearray(dedicated)
    session = GuruxSession(server.ports[0], client)
    hls_open(session)
    serial = session.read(GXDLMSData("0.0.96.1.0.255"), 2)
    assert bytes(serial) == b"SIM00000000"
    session.sock.close()
    assert taken == [dedicated]
    security = server.meters[0].security
    assert security.dedicated == 1 and security.refused == 0 and security.replays == 0
    framer = HdlcFramer()
    framer.feed(bytes(session.received))
    tags = set()
    while (frame := framer.next_frame()) is not None:
        if frame.info[3:4]:
            tags.add(frame.info[3])
    assert 0xD4 in tags and 0xCC not in tags  # ded-get-response, no glo-get-response
