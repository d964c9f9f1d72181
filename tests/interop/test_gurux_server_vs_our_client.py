"""Our client (BlockingSession, the code the connector and ``tb-dlms read`` use) against a Gurux
meter: gurux_dlms's GXDLMSSecureServer over loopback TCP (gurux_server.py; GPLv2, tests only).

The other direction of test_gurux_hls_vs_simulator: here Gurux checks our AARQ (its tag, our
CtoS), draws StoC, verifies our f(StoC) and computes f(CtoS), ciphers every answer with its own
AES-GCM, and we read its objects at each protection level, over HDLC and the wrapper. Gurux's
server as shipped cannot complete an association; gurux_patches.py lists each defect (file and
line in gurux_dlms 1.0.203) and the test-side shim that works around it, so that what is tested
is Gurux's ciphering, HLS arithmetic, APDU coding and object model, not our own code twice.

Covered: the four passes and GET (with-list, single, segmented, refused items) under auth, enc
and auth-enc, over HDLC and the wrapper; our invocation counter as Gurux sees it across
associations, the frame counter read by the public client and `tb-dlms read`; wrong keys, an
unknown system title and a weaker policy refused within the deadline; Gurux's shipped counter
resets and refusals met by our guards and deadlines; our client with ``dedicated_key`` (a fresh
key per association, ded-get-request answered ded-get-response by Gurux), and the same exchange
driven in-process with our codecs. Nothing is left out because of Gurux: it has no replay guard
of its own, so GuruxMeter records the counters it deciphers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest

pytest.importorskip("gurux_dlms")

from gurux_dlms import GXByteBuffer  # noqa: E402
from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: E402
from gurux_dlms.enums import InterfaceType, Security  # noqa: E402
from gurux_dlms.GXCiphering import GXCiphering  # noqa: E402
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: E402
from gurux_dlms.secure import GXDLMSSecureServer  # noqa: E402
from gurux_patches import ServerReply  # noqa: E402
from gurux_server import (
    CLOCK_TIME,
    ENERGY_RAW,
    LDN,
    SERVER_TITLE,
    GuruxMeter,
    GuruxTcpServer,
    gurux_meters,  # noqa: E402
    patched_gurux,
)
from tb_dlms.protocol.apdu import (  # noqa: E402
    AARE,
    ActionRequestNormal,
    ActionResponseNormal,
    AttributeDescriptor,
    AuthMechanism,
    GetRequestNormal,
    GetResponseNormal,
    MethodDescriptor,
    decode_apdu,
)
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateRequest, InitiateResponse  # noqa: E402
from tb_dlms.protocol.axdr import DataType, Typed  # noqa: E402
from tb_dlms.protocol.errors import (  # noqa: E402
    AssociationError,
    AuthenticationError,
    DataAccessError,
    DlmsError,
    RemoteProtocolError,
)
from tb_dlms.protocol.security import (  # noqa: E402
    Ciphering,
    GcmKey,
    KeyKind,
    Policy,
    SecurityContext,
    SecurityControl,
    gmac_response,
    hls_aarq,
    open_aare,
    server_title_and_stoc,
    verify_gmac_response,
)
from tb_dlms.protocol.wrapper import WrapperFramer, encode_wrapper  # noqa: E402
from tb_dlms.session import BlockingSession, SessionSettings  # noqa: E402
from tb_dlms.transport import TcpTransport  # noqa: E402

pytestmark = pytest.mark.interop

BLOCK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AUTH = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
TITLE = b"TBDLMS01"
LEVELS = {"auth": Security.AUTHENTICATION, "enc": Security.ENCRYPTION,
          "auth-enc": Security.AUTHENTICATION_ENCRYPTION}
LDN_REF, ENERGY_REF = (1, "0-0:42.0.0", 2), (3, "1-0:1.8.0", 2)
CLOCK_REF, COUNTER_REF = (8, "0-0:1.0.0", 2), (1, "0-0:43.1.0", 2)
DEADLINE = 4.0  # operation_timeout of every session here


@pytest.fixture
def gurux() -> Iterator[Callable[..., GuruxTcpServer]]:
    """Start Gurux meters (GuruxMeter options); every one is stopped, and none may have raised."""
    with gurux_meters(BLOCK, AUTH) as start:
        yield start


@pytest.fixture
def session() -> Iterator[Callable[..., BlockingSession]]:
    made: list[BlockingSession] = []

    def make(server: GuruxTcpServer, **settings: Any) -> BlockingSession:
        options: dict[str, Any] = {
            "client": 1, "authentication": "hls-gmac", "security": "auth-enc",
            "system_title": TITLE, "block_key": BLOCK, "auth_key": AUTH,
            "invocation_counter": 5, "response_timeout": 0.5, "retries": 1,
            "operation_timeout": DEADLINE, "name": "gurux", **settings}
        if options["authentication"] == "none":
            for key in ("security", "system_title", "block_key", "auth_key",
                        "invocation_counter"):
                options.pop(key)
        s = BlockingSession(TcpTransport("127.0.0.1", server.port, 2.0), SessionSettings(**options))
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def check_values(meter: GuruxMeter, readings: list[Any]) -> None:
    """LDN, energy and clock as the Gurux objects hold them."""
    ldn, energy, clock = readings
    assert ldn.raw == bytes(meter.ldn.value) == LDN
    assert energy.raw == meter.energy.value == ENERGY_RAW
    assert energy.scaler == -2 and energy.unit == "Wh"
    assert energy.value == pytest.approx(ENERGY_RAW * meter.energy.scaler)
    assert clock.value == CLOCK_TIME.isoformat()


# ---- HLS-GMAC at every protection level ---------------------------------------------------------
@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
@pytest.mark.parametrize("level", list(LEVELS))
def test_hls_gmac_get_with_list_at_every_level(gurux, session, level, wrapper):
    server = gurux(wrapper=wrapper, security=LEVELS[level], client_title=TITLE)
    meter = server.meter
    s = session(server, security=level, wrapper=wrapper)
    s.connect()
    *values, counter = s.read([LDN_REF, ENERGY_REF, CLOCK_REF, COUNTER_REF])
    check_values(meter, values)
    assert meter.policies == [LEVELS[level]]
    # Gurux deciphered three APDUs of ours: the AARQ (5), the ACTION carrying f(StoC) (7; f(StoC)
    # itself took 6) and ONE GET-with-list of 4 values and the scaler (8), each under our title
    # and at our level.
    assert meter.seen == [(TITLE, LEVELS[level], ic) for ic in (5, 7, 8)]
    assert meter.association.f_stoc_counters == [6]
    assert counter.value == 8  # the frame counter: the last counter Gurux took from us
    (scaler_again,) = s.read([ENERGY_REF])  # the scaler cached: a single GET this time
    assert scaler_again.value == values[1].value and meter.client_counters[-1] == 9
    s.close()


def test_single_gets_and_a_segmented_ciphered_answer(gurux, session):
    """The association's object list: one ciphered APDU longer than an HDLC frame (segments)."""
    server = gurux()
    s = session(server, max_info_rx=64, max_info_tx=64)
    s.connect()
    assert server.meter.settings.hdlc.maxInfoTX == 64
    s.trace.clear()
    (objects,) = s.read([(15, "0-0:40.0.0", 2)])
    listed = {(item.objectType, item.logicalName) for item in server.meter.association.objectList}
    assert {(c, ".".join(str(b) for b in ln)) for c, _, ln, _ in objects.raw} == listed
    segmented = [e for e in s.trace.entries() if e.direction == "rx" and e.data[1] & 0x08]
    assert segmented  # Gurux's ciphered answer came in HDLC segments we acknowledged
    assert s.get(LDN_REF).raw == LDN
    assert s.get(CLOCK_REF).value == CLOCK_TIME.isoformat()
    s.close()


def test_an_object_gurux_does_not_have_is_a_per_item_refusal(gurux, session):
    server = gurux()
    s = session(server)
    s.connect()
    missing = (1, "0-0:96.99.0", 2)
    ldn, absent, energy = s.read([LDN_REF, missing, ENERGY_REF])
    assert ldn.raw == LDN and energy.raw == ENERGY_RAW
    assert isinstance(absent, DataAccessError) and "object-undefined" in str(absent)
    assert isinstance(s.get(missing), DataAccessError)
    assert s.get(LDN_REF).raw == LDN  # the association is still up
    s.close()


def test_gurux_shipped_refusals_end_within_the_deadline(gurux, session):
    """Gurux's own refusals (gurux_server.py, 14.): a malformed GET-with-list answer, then a
    single GET's refusal under a stale invoke id. We drop to single GETs, wait no longer than
    the retries allow, and a reconnect reads again."""
    server = gurux(shipped_errors=True)
    s = session(server)
    s.connect()
    start = time.monotonic()
    with pytest.raises(DlmsError):
        s.read([LDN_REF, (1, "0-0:96.99.0", 2), ENERGY_REF])
    assert time.monotonic() - start < DEADLINE
    assert s.with_list.reason == "failed"  # remembered: single GETs for this meter
    s.close()
    s.connect()
    assert s.get(LDN_REF).raw == LDN
    s.close()


# ---- counters ----------------------------------------------------------------------------------
def test_our_invocation_counter_strictly_increases_across_associations(gurux, session):
    server = gurux()
    s = session(server, invocation_counter=100)
    for _ in range(2):  # one SessionSettings, two associations: the counter goes on
        s.connect()
        assert s.get(LDN_REF).raw == LDN
        s.close()
    counters = server.meter.client_counters
    assert len(counters) == 6 and counters[0] == 100  # AARQ, ACTION, GET twice
    assert all(b > a for a, b in zip(counters, counters[1:]))


def test_public_client_reads_the_frame_counter_and_nothing_secret(gurux, session):
    server = gurux()
    secure = session(server, invocation_counter=41)
    secure.connect()
    secure.read([LDN_REF])
    secure.close()
    public = session(server, client=16, authentication="none")
    public.connect()
    counter, ldn, energy = public.read([COUNTER_REF, LDN_REF, ENERGY_REF])
    public.close()
    assert counter.value == server.meter.client_counters[-1] == 44  # AARQ 41, f(StoC) 42 in
    # the ACTION 43, GET 44
    assert ldn.raw == LDN
    assert isinstance(energy, DataAccessError)  # the public client may not read the energy
    # Continuing from counter + 1 (what `tb-dlms read` does) is accepted.
    resumed = session(server, invocation_counter=counter.value + 1)
    resumed.connect()
    assert resumed.get(LDN_REF).raw == LDN
    resumed.close()


def test_tb_dlms_read_reads_the_frame_counter_then_associates(gurux):
    """The `tb-dlms read` process against the Gurux meter, no --invocation-counter given."""
    server = gurux()
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1", "--port",
             str(server.port), "--timeout", "5", "--auth", "hls-gmac", "--system-title",
             TITLE.hex(), "--block-key", BLOCK.hex(), "--auth-key", AUTH.hex(),
             "1-0:1.8.0", "0-0:42.0.0/1/2"],
            capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        assert out["1-0:1.8.0"]["unit"] == "Wh"
        assert out["1-0:1.8.0"]["value"] == pytest.approx(ENERGY_RAW / 100)
    counters = server.meter.client_counters
    assert all(b > a for a, b in zip(counters, counters[1:])) and len(counters) >= 6


def test_gurux_resetting_its_counter_is_refused_as_a_replay(gurux, session):
    """Gurux as shipped (GXCiphering.reset at every SNRM) starts its own counter at 0 again in
    the next association: our client's replay guard, kept across associations, refuses it."""
    server = gurux(reset_counter=True, counter=0)
    s = session(server)
    s.connect()
    s.close()
    start = time.monotonic()
    with pytest.raises(RemoteProtocolError, match="replay"):
        s.connect()
    assert time.monotonic() - start < DEADLINE


def test_aare_counter_reused_by_the_next_answer_is_refused(gurux, session):
    server = gurux(reuse_aare_counter=True)  # Gurux as shipped: _GXAPDU.py:1008
    s = session(server)
    with pytest.raises(RemoteProtocolError, match="replay"):
        s.connect()


# ---- refusals: the right error, within the deadline ----------------------------------------------
def refused(s: BlockingSession, error: type[DlmsError]) -> DlmsError:
    start = time.monotonic()
    with pytest.raises(error) as caught:
        s.connect()
    assert time.monotonic() - start < DEADLINE
    return caught.value


@pytest.mark.parametrize("level", list(LEVELS))
@pytest.mark.parametrize("wrong", ["block_key", "auth_key"])
def test_a_wrong_key_is_refused(gurux, session, level, wrong):
    server = gurux()
    bad = session(server, security=level, **{wrong: b"\x55" * 16})
    error = refused(bad, AssociationError)
    assert (b"\x55" * 16).hex() not in str(error).lower()
    # Only under encryption alone does the AARQ open without the authentication key: Gurux
    # accepts it and the wrong key shows at pass 3; otherwise the AARQ itself is refused.
    reached_pass_3 = level == "enc" and wrong == "auth_key"
    assert server.meter.policies == ([LEVELS[level]] if reached_pass_3 else [])
    good = session(server, security=level, invocation_counter=1000)  # Gurux still serves
    good.connect()
    assert good.get(LDN_REF).raw == LDN


def test_a_wrong_auth_key_under_encryption_only_fails_at_pass_3(gurux, session):
    """Encryption only: the AARQ deciphers without the authentication key, so Gurux accepts it
    and our f(StoC) is what fails; Gurux answers read-write-denied -> AuthenticationError."""
    server = gurux()
    bad = session(server, security="enc", auth_key=b"\x55" * 16)
    error = refused(bad, AuthenticationError)
    assert "refused by the meter" in str(error)
    assert server.meter.policies == [Security.ENCRYPTION]


def test_a_system_title_the_meter_does_not_know_is_refused(gurux, session):
    server = gurux(client_title=TITLE)
    refused(session(server, system_title=b"STRANGER"), AssociationError)
    assert server.meter.policies == []


def test_a_weaker_policy_than_the_meter_requires_is_refused(gurux, session):
    server = gurux(security=Security.AUTHENTICATION_ENCRYPTION)
    refused(session(server, security="auth"), AssociationError)


# ---- two of Gurux's defects pinned: when an upgrade fixes one, its shim in gurux_server can go --
def test_shipped_secure_server_has_no_cipher():
    class Shipped(GXDLMSSecureServer):  # the abstract callbacks only matter once requests come
        pass

    assert Shipped(True, InterfaceType.HDLC).settings.cipher is None  # gurux_server.py, 1.


def test_gurux_decrypt_does_not_check_an_auth_enc_tag():
    """gurux_server.py, 13.: why patched_gurux recomputes the tag. Under authentication only
    Gurux checks it; under auth-enc it deciphers a forged APDU."""
    context = SecurityContext(GcmKey(BLOCK, AUTH))
    get = bytes.fromhex("C0010000080000010000FF0200")
    for policy, checked in ((Policy.AUTHENTICATION, True),
                            (Policy.AUTHENTICATED_ENCRYPTION, False)):
        forged = bytearray(context.encrypt(get, SecurityControl(policy), TITLE, 7))
        forged[-1] ^= 1
        p = AesGcmParameter(0, TITLE, BLOCK, AUTH)
        if checked:
            with pytest.raises(ValueError, match="Invalid tag"):
                GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(forged))
        else:
            assert bytes(GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(forged))) == get
        with patched_gurux() as seen:  # the meter's decrypt refuses both
            settings = GuruxMeter(BLOCK, AUTH, seen).settings
            with pytest.raises(ValueError, match="Invalid tag"):
                GXCiphering.decrypt(settings, AesGcmParameter(0, TITLE, BLOCK, AUTH),
                                    GXByteBuffer(forged))
            assert seen == []


# ---- the dedicated key, step by step: our codecs drive Gurux in-process -----------------------
def test_dedicated_key_with_gurux_server_in_process():
    """Our AARQ carries a dedicated key (ciphered InitiateRequest); Gurux's server takes it,
    answers pass 4 under the global key (the association is not up yet) and the GET after it
    with ded-get-response, which we open with the dedicated key."""
    dedicated = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    ctx = SecurityContext(GcmKey(BLOCK, AUTH), dedicated_key=GcmKey(dedicated, AUTH))
    ae = SecurityControl(Policy.AUTHENTICATED_ENCRYPTION)
    ctos = b"CtoS-of-tb-dlms!"
    with patched_gurux() as seen:
        meter = GuruxMeter(BLOCK, AUTH, seen, wrapper=True)

        def exchange(apdu: bytes) -> bytes:  # through Gurux's own wrapper framing
            reply = ServerReply(bytearray(encode_wrapper(apdu, 1, 1)))
            meter.handleRequest(reply)
            framer = WrapperFramer()
            framer.feed(bytes(reply.reply))
            pdu = framer.next_pdu()
            assert pdu is not None
            return pdu.apdu

        initiate = InitiateRequest(Conformance(0x00501F), dedicated_key=dedicated)
        aarq = hls_aarq(AuthMechanism.HLS_GMAC, TITLE, ctos, initiate, Ciphering(ctx, ae, 10))
        aare = AARE.decode(exchange(aarq.encode()))
        server_title, stoc = server_title_and_stoc(aare)
        assert server_title == SERVER_TITLE
        assert isinstance(open_aare(aare, ctx, Policy.AUTHENTICATED_ENCRYPTION),
                          InitiateResponse)
        assert bytes(meter.settings.cipher.dedicatedKey) == dedicated
        f_stoc = gmac_response(ctx.global_key, TITLE, 11, stoc)
        action = ActionRequestNormal(1, MethodDescriptor(15, "0-0:40.0.0.255", 1),
                                     Typed(DataType.OCTET_STRING, f_stoc))
        opened = ctx.decrypt(exchange(ctx.encrypt(action.encode(), ae, TITLE, 12)),
                             server_title, required=Policy.AUTHENTICATED_ENCRYPTION)
        assert opened.tag == 0xCF  # glo-action-response
        answer = decode_apdu(opened.apdu, typed=True)
        assert isinstance(answer, ActionResponseNormal)
        verify_gmac_response(ctx.global_key, server_title, ctos, answer.return_data.value)
        get = GetRequestNormal(2, AttributeDescriptor(1, "0-0:42.0.0.255", 2)).encode()
        request = ctx.encrypt(get, ae, TITLE, 13, KeyKind.DEDICATED)
        assert request[0] == 0xD0  # ded-get-request
        opened = ctx.decrypt(exchange(request), server_title, required=None)
        assert opened.tag == 0xD4  # ded-get-response
        response = decode_apdu(opened.apdu)
        assert isinstance(response, GetResponseNormal) and response.result == LDN
        assert [ic for _, _, ic in seen] == [10, 12, 13]
        assert meter.failures == []


# ---- the dedicated key over TCP: our client (dedicated_key=True) proposes one per association --
@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
@pytest.mark.parametrize("level", list(LEVELS))
def test_our_client_with_a_dedicated_key_against_gurux(gurux, session, level, wrapper):
    """Gurux's server takes the key from our ciphered InitiateRequest and, once the HLS exchange
    is done, deciphers our ded-get-requests with it (it uses no other key then) and answers
    ded-get-response; a second association brings Gurux a new key."""
    server = gurux(wrapper=wrapper, client_title=TITLE)
    meter = server.meter
    s = session(server, security=level, wrapper=wrapper, dedicated_key=True)
    keys = []
    for _ in range(2):
        s.connect()
        for _ in range(3):
            *values, _counter = s.read([LDN_REF, ENERGY_REF, CLOCK_REF, COUNTER_REF])
            check_values(meter, values)
        keys.append(bytes(meter.settings.cipher.dedicatedKey))
        tags = apdu_tags(s.trace.entries(), wrapper)
        assert ("tx", 0xD0) in tags and ("rx", 0xD4) in tags  # ded-get-request / -response
        assert ("tx", 0xC8) not in tags  # no glo-get-request once the key is in place
        s.close()
    assert len(keys[0]) == 16 and keys[0] != keys[1]
    # The InitiateRequest carrying the key is auth-enc at every level (never readable); Gurux
    # takes that as the association's protection and answers auth-enc, which covers ours.
    assert meter.policies == [Security.AUTHENTICATION_ENCRYPTION] * 2
    # Our counter went on as one sequence across glo- (AARQ, pass 3) and ded- APDUs.
    counters = meter.client_counters
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    text = "\n".join(s.trace.lines())
    for key in keys:
        assert key.hex(" ") not in text and key.hex() not in text


def apdu_tags(entries: Any, wrapper: bool) -> set[tuple[str, int]]:
    """(direction, APDU tag) of each frame that starts an APDU (after the LLC header on HDLC,
    the 8-octet header with the wrapper)."""
    tags = set()
    for e in entries:
        data = bytes(e.data)
        if wrapper:
            if len(data) > 8:
                tags.add((e.direction, data[8]))
            continue
        at = data.find(b"\xE6\xE6\x00" if e.direction == "tx" else b"\xE6\xE7\x00")
        if at > 0:
            tags.add((e.direction, data[at + 3]))
    return tags
