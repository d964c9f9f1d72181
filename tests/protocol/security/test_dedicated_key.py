"""The dedicated key of an association (security suite 0), client and server roles against each
other (no I/O): proposed inside the ciphered InitiateRequest, ded-xxx after the HLS exchange,
answered ded-xxx, one counter sequence, forgotten at release; the Green Book's example
InitiateRequest taken by our server."""

from __future__ import annotations

import itertools

import pytest
from tb_dlms.protocol.apdu import AARQ, RLRQ
from tb_dlms.protocol.association import (
    Associated,
    Association,
    AssociationSettings,
    AssociationState,
    Authentication,
    GetResult,
    Released,
    Role,
)
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.security import CipheredApdu, GcmKey, Policy, SecurityControl
from tb_dlms.protocol.security.server import AssociationSecurity
from test_hls_association import AUTH, SERIAL, exchange, pump, security
from test_security_vectors import GB_INITIATE, GB_INITIATE_PLAIN

DED_GET_REQUEST, DED_GET_RESPONSE = 0xD0, 0xD4
GLO_ACTION_REQUEST = 0xCB
_keys = itertools.count(1)


def fresh_key() -> bytes:
    return next(_keys).to_bytes(16, "big")


def pair(policy: Policy | None = Policy.AUTHENTICATED_ENCRYPTION, *, refuse: bool = False,
         keys=fresh_key) -> tuple[Association, Association]:
    client_sec = security(b"CLIENT01", policy)
    client_sec.dedicated_keys = keys
    server_sec = security(b"SERVER01", policy)
    server_sec.refuse_dedicated = refuse
    client = Association(Role.CLIENT, AssociationSettings(
        authentication=Authentication.HLS_GMAC, security=client_sec))
    server = Association(Role.SERVER, AssociationSettings(
        authentication=Authentication.HLS_GMAC, security=server_sec))
    return client, server


def associate(client: Association, server: Association) -> list[bytes]:
    """The association, recording every APDU the client sent."""
    sent: list[bytes] = []
    original = server.receive_data
    server.receive_data = lambda apdu: (sent.append(apdu), original(apdu))[1]  # type: ignore
    events = exchange(client, server, client.associate())
    assert any(isinstance(e, Associated) for e in events)
    return sent


def server_key(server: Association) -> object:
    keys = server._keys
    return None if keys is None else keys.dedicated_key


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)
def test_dedicated_key_proposed_ciphered_then_ded_get_both_ways(policy):
    client, server = pair(policy)
    sent = associate(client, server)
    aarq = AARQ.decode(sent[0])
    assert isinstance(aarq.user_information, bytes)
    assert aarq.user_information[0] == 0x21  # glo-initiate-request: the key travels ciphered
    assert sent[1][0] == GLO_ACTION_REQUEST  # pass 3: the association is not up yet
    assert server_key(server) is not None and server.settings.security.dedicated == 1
    _iid, request = client.get(SERIAL)
    assert request[0] == DED_GET_REQUEST
    server_events = pump(client, server, request)
    answer = server.respond_get(server_events[0].invoke_id, [b"SIM1"])
    assert answer[0] == DED_GET_RESPONSE  # answered the way it came
    (result,) = pump(server, client, answer)
    assert isinstance(result, GetResult) and result.results == (b"SIM1",)
    # One counter sequence per sender, across glo- and ded- APDUs.
    counters = [CipheredApdu.decode(a).header.invocation_counter for a in (sent[1], request)]
    assert counters[1] == counters[0] + 1  # the next value of the same sequence
    assert client.settings.security.guard.last == CipheredApdu.decode(answer).header.invocation_counter


def test_the_dedicated_key_is_not_the_global_one():
    client, server = pair()
    associate(client, server)
    _iid, request = client.get(SERIAL)
    global_only = security(b"SERVER01", Policy.AUTHENTICATED_ENCRYPTION)
    with pytest.raises(Exception, match="dedicated key"):  # no key of that kind known
        global_only.open(request, b"CLIENT01")
    with pytest.raises(Exception, match="tag mismatch"):  # the global key does not open it
        global_only.open(bytes((0xC8,)) + request[1:], b"CLIENT01")


def test_each_association_its_own_key_forgotten_at_release():
    client, server = pair()
    associate(client, server)
    first = client._keys
    events = pump(server, client, pump_release(client, server))
    assert any(isinstance(e, Released) for e in events)
    assert client._keys is None and server._keys is None  # forgotten on both sides
    associate(client, server)
    assert client._keys is not None and client._keys.dedicated_key is not first.dedicated_key
    assert server.settings.security.dedicated == 2
    client.reset()
    assert client._keys is None


def pump_release(client: Association, server: Association) -> bytes:
    pump(client, server, client.release())
    return server.data_to_send()


def test_two_associations_draw_two_keys():
    drawn: list[bytes] = []

    def keys() -> bytes:
        drawn.append(fresh_key())
        return drawn[-1]

    client, server = pair(keys=keys)
    for _ in range(2):
        associate(client, server)
        pump(server, client, pump_release(client, server))
    assert len(drawn) == 2 and drawn[0] != drawn[1]


def test_a_key_needs_a_policy_and_16_octets():
    client, _ = pair(None)
    with pytest.raises(LocalProtocolError, match="security policy"):
        client.associate()
    client, _ = pair(keys=lambda: b"short")
    with pytest.raises(LocalProtocolError, match="16 octets"):
        client.associate()


def test_a_meter_refusing_dedicated_keys_rejects_the_aarq():
    client, server = pair(refuse=True)
    with pytest.raises(Exception, match="rejected"):
        exchange(client, server, client.associate())
    assert server.state is AssociationState.IDLE and server_key(server) is None


def test_a_ded_request_without_a_dedicated_key_is_refused():
    client, server = pair()
    associate(client, server)
    _iid, request = client.get(SERIAL)
    server._keys = None  # as a meter that took none
    (refused,) = pump(client, server, request)
    assert "dedicated key" in refused.reason


def test_green_book_initiate_request_gives_our_server_its_dedicated_key():
    """The Green Book's glo-initiate-request (ed. 7 p. 265, IC 01234567, sender 4D4D4D0000BC614E)
    carries the dedicated key 00112233...EEFF: our server deciphers it and takes that key."""
    server = Association(Role.SERVER, AssociationSettings(
        authentication=Authentication.HLS_GMAC,
        security=AssociationSecurity(security(b"SERVER01", None).context, b"SERVER01",
                                     Policy.AUTHENTICATED_ENCRYPTION, fresh_key)))
    aarq = AARQ(AARQ.decode(pair()[0].associate()).application_context,
                Authentication.HLS_GMAC.mechanism, b"K56iVagYK56iVagY", GB_INITIATE,
                bytes.fromhex("4D4D4D0000BC614E"))
    pump(None, server, aarq.encode())
    assert server.state is AssociationState.AWAITING_HLS
    key = server_key(server)
    assert key is not None
    dedicated = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
    probe = GcmKey(dedicated, AUTH).seal(SecurityControl(), b"CLIENT01", 5, b"\xC0\x01")
    assert key.open(b"CLIENT01", probe)[1] == b"\xC0\x01"
    assert GB_INITIATE_PLAIN[3:19] == dedicated
    server.receive_data(RLRQ().encode())
    server.next_event()
    assert server_key(server) is None
