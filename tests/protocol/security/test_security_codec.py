"""The security layer on its own: control byte, ciphered framing, errors, round trips, fuzz."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.apdu.acse import AARE, AARQ, ApplicationContext, AuthMechanism
from tb_dlms.protocol.apdu.service import ConfirmedServiceError
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateRequest, InitiateResponse
from tb_dlms.protocol.errors import (
    DecodeError,
    DlmsError,
    LocalProtocolError,
    RemoteProtocolError,
)
from tb_dlms.protocol.security import (
    CIPHERED_TAGS,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    AuthenticationTagMismatch,
    CipheredApdu,
    Ciphering,
    GcmKey,
    HlsAuthenticationFailed,
    KeyKind,
    Policy,
    SecurityContext,
    SecurityControl,
    SecurityHeader,
    SecurityPolicyViolation,
    UnsupportedSecurity,
    ciphered_tag,
    gmac_response,
    hash_response,
    hls_aarq,
    open_aare,
    open_aarq,
    server_title_and_stoc,
    sha256_response,
    verify_gmac_response,
    verify_response,
)

H = bytes.fromhex
EK, AK = H("000102030405060708090A0B0C0D0E0F"), H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DK = H("00112233445566778899AABBCCDDEEFF")
CLIENT, SERVER = H("4D4D4D0000000001"), H("4D4D4D0000BC614E")
CTX = SecurityContext(GcmKey(EK, AK), dedicated_key=GcmKey(DK, AK))
GET = H("C0010000080000010000FF0200")
ALL = {p: SecurityControl(p) for p in Policy}


# ---- security control byte -------------------------------------------------------------------
@pytest.mark.parametrize("byte,policy,suite,broadcast", [
    (0x10, Policy.AUTHENTICATION, 0, False), (0x20, Policy.ENCRYPTION, 0, False),
    (0x30, Policy.AUTHENTICATED_ENCRYPTION, 0, False), (0x21, Policy.ENCRYPTION, 1, False),
    (0x70, Policy.AUTHENTICATED_ENCRYPTION, 0, True)])
def test_control_byte_both_ways(byte: int, policy: Policy, suite: int, broadcast: bool) -> None:
    control = SecurityControl.decode(byte)
    assert control == SecurityControl(policy, suite, broadcast)
    assert control.byte == byte


def test_suite_2_and_reserved_refused_clearly() -> None:
    with pytest.raises(UnsupportedSecurity, match="suite 2 .AES-GCM-256. is not supported"):
        SecurityControl.decode(0x32)
    with pytest.raises(UnsupportedSecurity, match="suite 7 is reserved"):
        SecurityControl.decode(0x37)
    with pytest.raises(LocalProtocolError, match="suite 2"):
        SecurityControl(suite=2)


def test_compression_and_no_protection_refused() -> None:
    with pytest.raises(UnsupportedSecurity, match="compression"):
        SecurityControl.decode(0xB0)
    with pytest.raises(UnsupportedSecurity, match="neither"):
        SecurityControl.decode(0x00)


def test_suite_1_is_aes_gcm_128_like_suite_0() -> None:
    # Field fact: encryption-only pushes with suite id 1 decipher with the same AES-GCM-128.
    suite0 = CTX.global_key.seal(SecurityControl(Policy.ENCRYPTION, 0), SERVER, 7, GET)
    suite1 = CTX.global_key.seal(SecurityControl(Policy.ENCRYPTION, 1), SERVER, 7, GET)
    assert suite1[0] == 0x21 and suite1[1:] == suite0[1:]
    assert CTX.global_key.open(SERVER, suite1)[1] == GET


# ---- keys stay secret ------------------------------------------------------------------------
def test_no_key_material_in_repr_or_errors() -> None:
    assert EK.hex() not in repr(CTX).lower() and AK.hex() not in repr(CTX).lower()
    assert "hidden" in repr(CTX.global_key)
    with pytest.raises(LocalProtocolError) as info:
        GcmKey(EK + b"\x01", AK)
    assert EK.hex() not in str(info.value).lower() and "17" in str(info.value)
    sealed = bytearray(CTX.encrypt(GET, ALL[Policy.AUTHENTICATED_ENCRYPTION], SERVER, 1))
    sealed[-1] ^= 1
    with pytest.raises(AuthenticationTagMismatch) as mismatch:
        CTX.decrypt(bytes(sealed), SERVER, required=None)
    text = str(mismatch.value).lower()
    assert EK.hex() not in text and AK.hex() not in text and GET.hex() not in text


# ---- framing ---------------------------------------------------------------------------------
def test_service_specific_tags_match_the_green_book() -> None:
    assert [ciphered_tag(t) for t in (0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0x01, 0x08)] == [
        0xC8, 0xC9, 0xCB, 0xCC, 0xCD, 0xCF, 0x21, 0x28]
    assert [ciphered_tag(t, KeyKind.DEDICATED) for t in (0xC0, 0xC4, 0xC2, 0x01)] == [
        0xD0, 0xD4, 0xD2, 0x41]
    with pytest.raises(LocalProtocolError, match="general-glo-ciphering"):
        ciphered_tag(0x0F)


def test_general_glo_ciphering_carries_the_system_title() -> None:
    notification = H("0F000000010C07E80C0405000000FF800000") + H("0203")
    apdu = CTX.encrypt(notification, ALL[Policy.ENCRYPTION], SERVER, 5)  # no specific tag
    assert apdu[:2] == b"\xDB\x08" and apdu[2:10] == SERVER
    out = CTX.decrypt(apdu, None, required=None)  # the title comes from the APDU
    assert out.apdu == notification and out.system_title == SERVER and out.tag == 0xDB
    forced = CTX.encrypt(GET, ALL[Policy.AUTHENTICATION], CLIENT, 6, general=True)
    assert forced[0] == GENERAL_GLO_CIPHERING
    assert CTX.decrypt(forced, None, required=None).apdu == GET


def test_dedicated_key_is_used_for_ded_tags() -> None:
    apdu = CTX.encrypt(GET, ALL[Policy.AUTHENTICATED_ENCRYPTION], CLIENT, 9, KeyKind.DEDICATED)
    assert apdu[0] == 0xD0
    assert CTX.decrypt(apdu, CLIENT, required=None).apdu == GET
    general = CTX.encrypt(GET, ALL[Policy.AUTHENTICATED_ENCRYPTION], CLIENT, 9,
                          KeyKind.DEDICATED, general=True)
    assert general[0] == GENERAL_DED_CIPHERING
    assert CTX.decrypt(general, None, required=None).apdu == GET
    with pytest.raises(UnsupportedSecurity, match="dedicated key"):
        SecurityContext(GcmKey(EK, AK)).decrypt(apdu, CLIENT, required=None)
    # Under the global key instead, the tag does not verify.
    swapped = bytes((0xC8,)) + apdu[1:]
    with pytest.raises(AuthenticationTagMismatch):
        CTX.decrypt(swapped, CLIENT, required=None)


def test_broadcast_key_needed_for_broadcast_sc() -> None:
    control = SecurityControl(Policy.AUTHENTICATED_ENCRYPTION, broadcast=True)
    with pytest.raises(UnsupportedSecurity, match="broadcast key"):
        CTX.encrypt(GET, control, SERVER, 1)
    ctx = SecurityContext(GcmKey(EK, AK), broadcast_key=GcmKey(DK, AK))
    assert ctx.decrypt(ctx.encrypt(GET, control, SERVER, 1), SERVER, required=None).apdu == GET


# ---- errors on bad input ---------------------------------------------------------------------
@pytest.mark.parametrize("policy", [Policy.AUTHENTICATION, Policy.AUTHENTICATED_ENCRYPTION])
def test_every_altered_byte_is_a_tag_mismatch(policy: Policy) -> None:
    apdu = CTX.encrypt(GET, ALL[policy], SERVER, 0x42)
    for i in range(2, len(apdu)):  # SC, IC, content and tag: all authenticated
        bad = bytearray(apdu)
        bad[i] ^= 0x01 if i != 2 else 0x10  # on SC, flip to another valid policy
        with pytest.raises(RemoteProtocolError):
            CTX.decrypt(bytes(bad), SERVER, required=policy)


def test_downgrade_of_the_sc_byte_caught_by_the_required_policy() -> None:
    apdu = bytearray(CTX.encrypt(GET, ALL[Policy.AUTHENTICATED_ENCRYPTION], SERVER, 0x42))
    apdu[2] = 0x20  # announce encryption only: no tag to check any more
    with pytest.raises(SecurityPolicyViolation, match="enc, the security policy requires auth-enc"):
        CTX.decrypt(bytes(apdu), SERVER, required=Policy.AUTHENTICATED_ENCRYPTION)
    with pytest.raises(SecurityPolicyViolation):
        CTX.decrypt(bytes(apdu), SERVER, required=Policy.AUTHENTICATION)
    # More protection than required is fine.
    auth_enc = CTX.encrypt(GET, ALL[Policy.AUTHENTICATED_ENCRYPTION], SERVER, 1)
    assert CTX.decrypt(auth_enc, SERVER, required=Policy.ENCRYPTION).apdu == GET


@pytest.mark.parametrize("policy", [Policy.AUTHENTICATION, Policy.AUTHENTICATED_ENCRYPTION])
def test_wrong_system_title_or_key_is_a_tag_mismatch(policy: Policy) -> None:
    apdu = CTX.encrypt(GET, ALL[policy], SERVER, 3)
    with pytest.raises(AuthenticationTagMismatch, match="system title"):
        CTX.decrypt(apdu, CLIENT, required=None)
    with pytest.raises(AuthenticationTagMismatch):
        SecurityContext(GcmKey(DK, AK)).decrypt(apdu, SERVER, required=None)
    with pytest.raises(AuthenticationTagMismatch):
        SecurityContext(GcmKey(EK, DK)).decrypt(apdu, SERVER, required=None)


def test_encryption_only_wrong_title_caught_by_the_inner_tag() -> None:
    apdu = CTX.encrypt(GET, ALL[Policy.ENCRYPTION], SERVER, 3)
    with pytest.raises(DecodeError, match="wrong key or system title"):
        CTX.decrypt(apdu, CLIENT, required=None)


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)
def test_truncated_apdus(policy: Policy) -> None:
    apdu = CTX.encrypt(GET, ALL[policy], SERVER, 3)
    for cut in range(len(apdu)):
        with pytest.raises(DlmsError):
            CTX.decrypt(apdu[:cut], SERVER, required=None)
    with pytest.raises(DecodeError, match="does not match"):
        CTX.decrypt(apdu + b"\x00", SERVER, required=None)


def test_short_tag_and_missing_title() -> None:
    with pytest.raises(DecodeError, match="12-octet"):
        CTX.decrypt(H("C8 0A 30 00000001 0102030405".replace(" ", "")), SERVER, required=None)
    with pytest.raises(RemoteProtocolError, match="system title"):
        CTX.decrypt(CTX.encrypt(GET, ALL[Policy.ENCRYPTION], SERVER, 1), None, required=None)
    with pytest.raises(DecodeError, match="system title of 5"):
        CipheredApdu.decode(H("DB05") + b"12345" + H("0530") + b"1234")


def test_local_errors() -> None:
    with pytest.raises(LocalProtocolError, match="system title must be 8"):
        CTX.encrypt(GET, ALL[Policy.ENCRYPTION], b"short", 1)
    with pytest.raises(LocalProtocolError, match="invocation counter"):
        SecurityHeader(ALL[Policy.ENCRYPTION], 2**32)
    with pytest.raises(LocalProtocolError, match="empty"):
        CTX.encrypt(b"", ALL[Policy.ENCRYPTION], SERVER, 1)


# ---- round trips -----------------------------------------------------------------------------
plain_apdus = st.sampled_from([0xC0, 0xC1, 0xC3, 0xC4, 0xC5, 0xC7, 0x01, 0x08, 0x0F, 0xC2]).flatmap(
    lambda tag: st.binary(max_size=300).map(lambda rest: bytes((tag,)) + rest))


@settings(max_examples=300, deadline=None)
@given(plain_apdus, st.sampled_from(list(Policy)), st.sampled_from([0, 1]), st.booleans(),
       st.sampled_from(list(KeyKind)), st.integers(0, 2**32 - 1), st.binary(min_size=8, max_size=8))
def test_round_trip(apdu: bytes, policy: Policy, suite: int, general: bool, kind: KeyKind,
                    counter: int, title: bytes) -> None:
    ciphered = CTX.encrypt(apdu, SecurityControl(policy, suite), title, counter, kind, general)
    framed = CipheredApdu.decode(ciphered)
    assert framed.encode() == ciphered and framed.key_kind is kind
    out = CTX.decrypt(ciphered, title, required=None)
    assert out.apdu == apdu
    assert out.header == SecurityHeader(SecurityControl(policy, suite), counter)


# ---- fuzz: whatever the peer sends, only RemoteProtocolError escapes ---------------------------
_SEEDS = [CTX.encrypt(GET, ALL[p], SERVER, 1, k, g) for p in Policy for k in KeyKind
          for g in (False, True)]


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(_SEEDS), st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)),
                                         max_size=4), st.integers(0, 120))
def test_fuzz_decrypt_mutations(seed: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        CTX.decrypt(bytes(data[:len(data) - cut % (len(data) + 1)]), SERVER, required=None)
    except RemoteProtocolError:
        pass


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(sorted(CIPHERED_TAGS)), st.binary(max_size=80))
def test_fuzz_decrypt_random(tag: int, rest: bytes) -> None:
    try:
        CTX.decrypt(bytes((tag,)) + rest, SERVER, required=None)
    except RemoteProtocolError:
        pass


# ---- HLS -------------------------------------------------------------------------------------
def test_hls_md5_sha1_are_hash_of_challenge_then_secret() -> None:
    stoc, secret = b"P6wRJ21F", b"12345678"
    assert hash_response(AuthMechanism.HLS_MD5, secret, stoc) == hashlib.md5(stoc + secret).digest()
    assert hash_response(AuthMechanism.HLS_SHA1, secret, stoc) == hashlib.sha1(
        stoc + secret).digest()
    with pytest.raises(LocalProtocolError):
        hash_response(AuthMechanism.HLS_GMAC, secret, stoc)


def test_hls_sha256_order_of_titles_and_challenges() -> None:
    secret, ctos, stoc = b"secret", b"K56iVagY", b"P6wRJ21F"
    client = sha256_response(secret, CLIENT, SERVER, stoc, ctos)
    assert client == hashlib.sha256(secret + CLIENT + SERVER + stoc + ctos).digest()
    server = sha256_response(secret, SERVER, CLIENT, ctos, stoc)
    assert server == hashlib.sha256(secret + SERVER + CLIENT + ctos + stoc).digest()
    verify_response(client, client, AuthMechanism.HLS_SHA256)
    with pytest.raises(HlsAuthenticationFailed):
        verify_response(client, server, AuthMechanism.HLS_SHA256)


def test_hls_challenge_length_and_bad_gmac_replies() -> None:
    key = CTX.global_key
    with pytest.raises(RemoteProtocolError, match="8..64"):
        gmac_response(key, CLIENT, 1, b"short")
    with pytest.raises(RemoteProtocolError, match="8..64"):
        gmac_response(key, CLIENT, 1, b"x" * 65)
    with pytest.raises(LocalProtocolError, match="invocation counter"):
        gmac_response(key, CLIENT, 2**32, b"K56iVagY")
    good = gmac_response(key, SERVER, 5, b"K56iVagY")
    with pytest.raises(HlsAuthenticationFailed, match="does not verify"):
        verify_gmac_response(key, CLIENT, b"K56iVagY", good)  # wrong title
    with pytest.raises(HlsAuthenticationFailed, match="17"):
        verify_gmac_response(key, SERVER, b"K56iVagY", good[:-1])
    with pytest.raises(HlsAuthenticationFailed, match="0x30"):
        verify_gmac_response(key, SERVER, b"K56iVagY", b"\x30" + good[1:])
    assert verify_gmac_response(key, SERVER, b"K56iVagY", good) == 5


# ---- ACSE helpers ----------------------------------------------------------------------------
def test_hls_aarq_ciphered_round_trip_through_the_acse_codec() -> None:
    request = InitiateRequest(Conformance(0x401E5D), dedicated_key=DK)
    ciphering = Ciphering(CTX, SecurityControl(), 77)
    aarq = hls_aarq(AuthMechanism.HLS_GMAC, CLIENT, b"K56iVagY", request, ciphering)
    wire = aarq.encode()
    decoded = AARQ.decode(wire)
    assert decoded.application_context is ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
    assert decoded.mechanism is AuthMechanism.HLS_GMAC
    assert decoded.calling_ap_title == CLIENT
    assert decoded.calling_authentication_value == b"K56iVagY"
    assert isinstance(decoded.user_information, bytes) and decoded.user_information[0] == 0x21
    assert DK not in wire  # the dedicated key travels ciphered
    assert open_aarq(decoded, CTX) == request


def test_hls_aarq_refusals() -> None:
    request = InitiateRequest(Conformance(0x401E5D))
    with pytest.raises(LocalProtocolError, match="not an HLS"):
        hls_aarq(AuthMechanism.LLS, CLIENT, b"K56iVagY", request)
    with pytest.raises(LocalProtocolError, match="dedicated key"):
        hls_aarq(AuthMechanism.HLS_GMAC, CLIENT, b"K56iVagY",
                 InitiateRequest(Conformance(0x401E5D), dedicated_key=DK))
    plain = hls_aarq(AuthMechanism.HLS_SHA256, CLIENT, b"K56iVagY", request)
    assert open_aarq(AARQ.decode(plain.encode()), None) == request


def test_aare_with_ciphered_initiate_response() -> None:
    response = InitiateResponse(Conformance(0x00501F), 1024)
    info = CTX.encrypt(response.encode(), SecurityControl(), SERVER, 12)
    aare = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=b"P6wRJ21F",
                user_information=info, responding_ap_title=SERVER,
                application_context=ApplicationContext.LOGICAL_NAME_WITH_CIPHERING)
    decoded = AARE.decode(aare.encode())
    assert decoded.user_information == info and info[0] == 0x28
    assert open_aare(decoded, CTX) == response
    assert server_title_and_stoc(decoded) == (SERVER, b"P6wRJ21F")
    error = ConfirmedServiceError.decode(H("0E0106 01".replace(" ", "")))
    refused = AARE(user_information=CTX.encrypt(error.encode(), SecurityControl(), SERVER, 13),
                   responding_ap_title=SERVER)
    assert open_aare(AARE.decode(refused.encode()), CTX) == error
    with pytest.raises(RemoteProtocolError, match="without responding-AP-title"):
        open_aare(AARE(user_information=info), CTX)
    with pytest.raises(RemoteProtocolError, match="responding-AP-title .* of 5 octets"):
        open_aare(AARE(user_information=info, responding_ap_title=b"short"), CTX)
    with pytest.raises(AuthenticationTagMismatch):
        open_aare(AARE(user_information=info, responding_ap_title=CLIENT), CTX)


# ---- replay protection -----------------------------------------------------------------------
def test_counter_guard_refuses_replay_and_restores_from_last() -> None:
    from tb_dlms.protocol.security import CounterGuard, ReplayedInvocationCounter

    guard = CounterGuard()
    control = ALL[Policy.AUTHENTICATED_ENCRYPTION]
    for counter in (5, 6, 100):
        apdu = CTX.encrypt(GET, control, SERVER, counter)
        guard.accept(CTX.decrypt(apdu, SERVER, required=None).header)
    replay = CTX.decrypt(CTX.encrypt(GET, control, SERVER, 100), SERVER, required=None).header
    with pytest.raises(ReplayedInvocationCounter, match="100 not above the last accepted 100"):
        guard.accept(replay)
    assert guard.last == 100
    restored = CounterGuard(guard.last)  # e.g. after a restart, from persisted state
    with pytest.raises(ReplayedInvocationCounter):
        restored.accept(SecurityHeader(control, 99))
    restored.accept(SecurityHeader(control, 101))
    assert restored.last == 101


# ---- fuzz of the ACSE helpers ----------------------------------------------------------------
_AARE = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=b"P6wRJ21F",
             user_information=CTX.encrypt(InitiateResponse(Conformance(0x00501F), 1024).encode(),
                                          SecurityControl(), SERVER, 12),
             responding_ap_title=SERVER).encode()
_AARQ = hls_aarq(AuthMechanism.HLS_GMAC, CLIENT, b"K56iVagY",
                 InitiateRequest(Conformance(0x401E5D), dedicated_key=DK),
                 Ciphering(CTX, SecurityControl(), 77)).encode()


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([_AARE, _AARQ]),
       st.lists(st.tuples(st.integers(0, 130), st.integers(0, 255)), min_size=1, max_size=3))
def test_fuzz_acse_helpers(seed: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        if pos < len(data):
            data[pos] = value
    try:
        if seed is _AARE:
            aare = AARE.decode(bytes(data))
            server_title_and_stoc(aare)
            open_aare(aare, CTX, Policy.AUTHENTICATED_ENCRYPTION)
        else:
            open_aarq(AARQ.decode(bytes(data)), CTX, Policy.AUTHENTICATED_ENCRYPTION)
    except RemoteProtocolError:  # the peer's bytes: never a local error, never a crash
        pass


def test_secrets_of_the_acse_apdus_not_in_repr() -> None:
    # The dedicated key (in the InitiateRequest before it is ciphered) and the LLS password /
    # CtoS (calling-authentication-value) must not reach a log line through repr().
    request = InitiateRequest(Conformance(0x401E5D), dedicated_key=DK)
    assert DK.hex() not in repr(request).lower() and repr(DK) not in repr(request)
    aarq = AARQ(mechanism=AuthMechanism.LLS, calling_authentication_value=b"SeCrEt-PW",
                user_information=request)
    assert "SeCrEt-PW" not in repr(aarq) and repr(DK) not in repr(aarq)
