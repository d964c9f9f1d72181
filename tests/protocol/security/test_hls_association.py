"""Client and server roles of Association against each other with HLS and ciphering (no I/O):
the four passes, ciphered GET, replay refusal, a wrong key."""

from __future__ import annotations

import itertools

import pytest
from tb_dlms.protocol.apdu import AttributeDescriptor, GetResponseNormal
from tb_dlms.protocol.association import (
    NEED_DATA,
    Associated,
    Association,
    AssociationSettings,
    AssociationState,
    Authentication,
    GetRequested,
    GetResult,
    RequestRefused,
    Role,
)
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import AuthenticationError, RemoteProtocolError
from tb_dlms.protocol.security import (
    GcmKey,
    Policy,
    ReplayedInvocationCounter,
    SecurityContext,
    SecurityControl,
)
from tb_dlms.protocol.security.server import AssociationSecurity

BLOCK, AUTH = bytes(range(16)), bytes(range(0xD0, 0xE0))
_draws = itertools.count()


def challenge() -> bytes:
    return next(_draws).to_bytes(16, "big")


def security(title: bytes, policy: Policy | None, auth: bytes = AUTH) -> AssociationSecurity:
    return AssociationSecurity(SecurityContext(GcmKey(BLOCK, auth)), title, policy, challenge)


def pair(auth: Authentication, policy: Policy | None, client_auth: bytes = AUTH,
         ) -> tuple[Association, Association]:
    client = Association(Role.CLIENT, AssociationSettings(
        authentication=auth, password=b"secret12", security=security(b"CLIENT01", policy,
                                                                     client_auth)))
    server = Association(Role.SERVER, AssociationSettings(
        authentication=auth, password=b"secret12", security=security(b"SERVER01", policy)))
    return client, server


def pump(sender: Association, receiver: Association, apdu: bytes) -> list[object]:
    """Hand ``apdu`` to ``receiver``; return its events (its automatic replies go back)."""
    receiver.receive_data(apdu)
    events = []
    while (event := receiver.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def exchange(client: Association, server: Association, apdu: bytes) -> list[object]:
    """Client request through the server and back (server answers queued ones)."""
    out = []
    server_events = pump(client, server, apdu)
    for event in server_events:
        if isinstance(event, GetRequested):
            out.append(server.respond_get(event.invoke_id, [Typed(DataType.OCTET_STRING,
                                                                   b"SIM1")]))
    while raw := server.data_to_send():
        out.append(raw)
    events: list[object] = list(server_events)
    for raw in out:
        events += pump(server, client, raw)
        while auto := client.data_to_send():  # pass 3: f(StoC)
            events += exchange(client, server, auto)
    return events


SERIAL = AttributeDescriptor(1, "0-0:96.1.0", 2)


@pytest.mark.parametrize("policy", [*Policy], ids=lambda p: p.label)
@pytest.mark.parametrize("auth", [Authentication.HLS_GMAC, Authentication.HLS_SHA256,
                                  Authentication.HLS_MD5, Authentication.HLS_SHA1],
                         ids=lambda a: a.value)
def test_four_passes_then_ciphered_get(auth, policy):
    client, server = pair(auth, policy)
    events = exchange(client, server, client.associate())
    assert any(isinstance(e, Associated) for e in events)
    assert client.state is server.state is AssociationState.ASSOCIATED
    _, request = client.get(SERIAL)
    assert request[0] == 0xC8  # glo-get-request
    events = exchange(client, server, request)
    assert [e.results for e in events if isinstance(e, GetResult)] == [(b"SIM1",)]
    assert client.settings.security.counter.next_value == server.settings.security.guard.last + 1


def test_replayed_request_refused_and_counted():
    client, server = pair(Authentication.HLS_GMAC, Policy.AUTHENTICATED_ENCRYPTION)
    exchange(client, server, client.associate())
    _, request = client.get(SERIAL)
    exchange(client, server, request)
    events = pump(client, server, request)  # the same APDU again: same invocation counter
    assert [type(e) for e in events] == [RequestRefused]
    assert server.settings.security.replays == 1


def test_wrong_authentication_key_fails_the_client_with_authentication_error():
    # Encryption only: the ciphered APDUs open, the GMAC of f(StoC) does not.
    client, server = pair(Authentication.HLS_GMAC, Policy.ENCRYPTION, b"\x55" * 16)
    with pytest.raises(AuthenticationError, match="refused"):
        exchange(client, server, client.associate())
    assert server.state is AssociationState.IDLE
    assert server.settings.security.hls_refused == 1


def test_general_glo_ciphering_request_is_answered_in_kind():
    client, server = pair(Authentication.HLS_GMAC, Policy.AUTHENTICATED_ENCRYPTION)
    exchange(client, server, client.associate())
    sec = client.settings.security
    iid, glo = client.get(SERIAL)
    plain = sec.context.decrypt(glo, b"CLIENT01", required=None).apdu  # the plain GET inside
    general = sec.context.encrypt(plain, SecurityControl(Policy.AUTHENTICATED_ENCRYPTION),
                                  sec.system_title, sec.take_counter(), general=True)
    assert general[0] == 0xDB
    (event,) = pump(client, server, general)
    answer = server.respond_get(event.invoke_id, [Typed(DataType.OCTET_STRING, b"SIM1")])
    assert answer[0] == 0xDB and answer[2:10] == b"SERVER01"  # general-glo, with its title
    assert [e.results for e in pump(server, client, answer)] == [(b"SIM1",)]


def test_client_refuses_a_plain_or_replayed_answer():
    client, server = pair(Authentication.HLS_GMAC, Policy.AUTHENTICATED_ENCRYPTION)
    exchange(client, server, client.associate())
    _, request = client.get(SERIAL)
    (event,) = pump(client, server, request)
    answer = server.respond_get(event.invoke_id, [Typed(DataType.OCTET_STRING, b"SIM1")])
    pump(server, client, answer)
    with pytest.raises(ReplayedInvocationCounter):  # the same ciphered answer again
        pump(server, client, answer)
    plain = GetResponseNormal(event.invoke_id, Typed(DataType.OCTET_STRING, b"SIM1")).encode()
    client.get(SERIAL)
    with pytest.raises(RemoteProtocolError, match="plain response"):  # a downgrade
        pump(server, client, plain)
