"""Security suite 0 against gurux-dlms (an independent implementation, test-only).

Both directions at every protection level: Gurux's GXDLMSChippering ciphers, we decipher, and
the reverse; then the whole HLS exchange with Gurux's GXDLMSSecureClient (PDU interface) as the
client and our security layer + APDU codecs as the server: Gurux's AARQ decoded and deciphered
by us, our AARE (ciphered InitiateResponse, StoC, server system title) accepted by Gurux, Gurux's
f(StoC) equal to ours for mechanisms 3 to 6, our f(CtoS) accepted by Gurux, and a ciphered GET.
"""

from __future__ import annotations

from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms import GXByteBuffer, GXReplyData  # noqa: E402
from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: E402
from gurux_dlms.enums import Authentication as GAuth  # noqa: E402
from gurux_dlms.enums import Command, InterfaceType, Security  # noqa: E402
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: E402
from gurux_dlms.objects import GXDLMSRegister  # noqa: E402
from gurux_dlms.objects.enums.SecuritySuite import SecuritySuite  # noqa: E402
from gurux_dlms.secure import GXDLMSSecureClient  # noqa: E402
from tb_dlms.protocol.apdu import (  # noqa: E402
    AARE,
    AARQ,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    ApplicationContext,
    AuthMechanism,
    GetRequestNormal,
    GetResponseNormal,
    decode_apdu,
)
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateResponse  # noqa: E402
from tb_dlms.protocol.axdr import DataType, Typed  # noqa: E402
from tb_dlms.protocol.security import (  # noqa: E402
    AuthenticationTagMismatch,
    GcmKey,
    KeyKind,
    Policy,
    SecurityContext,
    SecurityControl,
    gmac_response,
    hash_response,
    open_aarq,
    sha256_response,
    verify_gmac_response,
)

pytestmark = pytest.mark.interop

H = bytes.fromhex
EK, AK = H("000102030405060708090A0B0C0D0E0F"), H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
DK = H("00112233445566778899AABBCCDDEEFF")
CLIENT, SERVER = H("4D4D4D0000000001"), H("4D4D4D0000BC614E")
CTX = SecurityContext(GcmKey(EK, AK), dedicated_key=GcmKey(DK, AK))
GET = H("C0010000080000010000FF0200")
GURUX_SECURITY = {Policy.AUTHENTICATION: Security.AUTHENTICATION,
                  Policy.ENCRYPTION: Security.ENCRYPTION,
                  Policy.AUTHENTICATED_ENCRYPTION: Security.AUTHENTICATION_ENCRYPTION}
POLICIES = pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)


def gurux_encrypt(policy: Policy, tag: int, title: bytes, counter: int, plain: bytes,
                  key: bytes = EK, suite: int = 0) -> bytes:
    p = AesGcmParameter(tag, title, key, AK)
    p.security = GURUX_SECURITY[policy]
    p.securitySuite = SecuritySuite(suite)
    p.invocationCounter = counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, plain))


def gurux_decrypt(data: bytes, title: bytes, key: bytes = EK) -> tuple[bytes, Any]:
    p = AesGcmParameter(0, title, key, AK)
    plain = GXDLMSChippering.decryptAesGcm(None, p, GXByteBuffer(data))
    return bytes(plain), p


# ---- raw ciphering, both directions ----------------------------------------------------------
@POLICIES
@pytest.mark.parametrize("tag", [Command.GLO_GET_REQUEST, Command.GENERAL_GLO_CIPHERING])
def test_gurux_ciphers_we_decipher(policy: Policy, tag: int) -> None:
    apdu = gurux_encrypt(policy, tag, SERVER, 0x01234567, GET)
    out = CTX.decrypt(apdu, SERVER, required=policy)
    assert out.apdu == GET and out.tag == tag and out.header.invocation_counter == 0x01234567


@POLICIES
@pytest.mark.parametrize("general", [False, True])
def test_we_cipher_gurux_deciphers(policy: Policy, general: bool) -> None:
    apdu = CTX.encrypt(GET, SecurityControl(policy), CLIENT, 0xFEDCBA98, general=general)
    plain, p = gurux_decrypt(apdu, CLIENT)
    assert plain == GET
    assert p.security == GURUX_SECURITY[policy] and p.invocationCounter == 0xFEDCBA98
    if general:
        assert bytes(p.systemTitle) == CLIENT  # Gurux took the title from our APDU


@POLICIES
def test_dedicated_key_both_ways(policy: Policy) -> None:
    apdu = gurux_encrypt(policy, Command.DED_GET_REQUEST, CLIENT, 5, GET, key=DK)
    assert CTX.decrypt(apdu, CLIENT, required=None).apdu == GET
    ours = CTX.encrypt(GET, SecurityControl(policy), CLIENT, 6, KeyKind.DEDICATED)
    assert ours[0] == Command.DED_GET_REQUEST
    assert gurux_decrypt(ours, CLIENT, key=DK)[0] == GET


def test_suite_1_encryption_only_from_gurux() -> None:
    apdu = gurux_encrypt(Policy.ENCRYPTION, Command.GENERAL_GLO_CIPHERING, SERVER, 9, GET, suite=1)
    out = CTX.decrypt(apdu, None, required=None)
    assert out.apdu == GET and out.header.control.suite == 1


def test_gurux_tampered_apdu_refused() -> None:
    apdu = bytearray(gurux_encrypt(Policy.AUTHENTICATED_ENCRYPTION, Command.GLO_GET_RESPONSE,
                                   SERVER, 1, GET))
    apdu[8] ^= 0x80
    with pytest.raises(AuthenticationTagMismatch):
        CTX.decrypt(bytes(apdu), SERVER, required=None)


# ---- HLS with Gurux's client against our security layer as the server --------------------------
MECHANISMS = {AuthMechanism.HLS_MD5: GAuth.HIGH_MD5, AuthMechanism.HLS_SHA1: GAuth.HIGH_SHA1,
              AuthMechanism.HLS_GMAC: GAuth.HIGH_GMAC, AuthMechanism.HLS_SHA256: GAuth.HIGH_SHA256}
SECRET = b"Gurux-HLS-secret"
STOC = b"P6wRJ21F-server!"


def only(frames: Any) -> bytes:
    while isinstance(frames, list):
        assert len(frames) == 1
        frames = frames[0]
    return bytes(frames)


class Meter:
    """Our server side, by hand: the security layer and APDU codecs, no state machine."""

    def __init__(self, policy: Policy | None) -> None:
        self.policy = policy
        self.counter = 0x01234567

    def cipher(self, plain: bytes) -> bytes:
        if self.policy is None:
            return plain
        self.counter += 1
        return CTX.encrypt(plain, SecurityControl(self.policy), SERVER, self.counter)

    def decipher(self, apdu: bytes) -> bytes:
        if self.policy is None:
            return apdu
        return CTX.decrypt(apdu, CLIENT, required=self.policy).apdu


def gurux_client(mechanism: AuthMechanism, policy: Policy | None) -> GXDLMSSecureClient:
    password = None if mechanism is AuthMechanism.HLS_GMAC else SECRET
    c = GXDLMSSecureClient(True, 1, 1, MECHANISMS[mechanism], password, InterfaceType.PDU)
    c.ciphering.security = Security.NONE if policy is None else GURUX_SECURITY[policy]
    c.ciphering.systemTitle = CLIENT
    c.ciphering.blockCipherKey = EK
    c.ciphering.authenticationKey = AK
    c.ciphering.invocationCounter = 100
    return c


def proof_for(mechanism: AuthMechanism, challenge: bytes, other: bytes, sender: bytes,
              receiver: bytes, counter: int) -> bytes:
    if mechanism is AuthMechanism.HLS_GMAC:
        return gmac_response(CTX.global_key, sender, counter, challenge)
    if mechanism is AuthMechanism.HLS_SHA256:
        return sha256_response(SECRET, sender, receiver, challenge, other)
    return hash_response(mechanism, SECRET, challenge)


@pytest.mark.parametrize("mechanism", list(MECHANISMS), ids=lambda m: m.name)
@pytest.mark.parametrize("policy", [None, *Policy], ids=lambda p: p.label if p else "plain")
def test_gurux_client_hls_exchange_and_ciphered_get(mechanism: AuthMechanism,
                                                    policy: Policy | None) -> None:
    if mechanism is AuthMechanism.HLS_GMAC and policy is None:
        policy = Policy.AUTHENTICATED_ENCRYPTION  # Gurux ciphers whenever GMAC is used
    c, meter = gurux_client(mechanism, policy), Meter(policy)

    # Pass 1: Gurux's AARQ, decoded and (when ciphered) deciphered by us.
    aarq = AARQ.decode(only(c.aarqRequest()))
    assert aarq.mechanism is mechanism
    if policy is not None or mechanism is AuthMechanism.HLS_SHA256:
        assert aarq.calling_ap_title == CLIENT  # Gurux sends it when it is needed
    ctos = aarq.calling_authentication_value
    assert ctos is not None and 8 <= len(ctos) <= 64
    request = open_aarq(aarq, CTX if policy else None, policy)
    assert request.proposed_conformance & Conformance.GET
    if policy is not None:
        assert aarq.application_context is ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
        assert isinstance(aarq.user_information, bytes) and aarq.user_information[0] == 0x21

    # Pass 2: our AARE, accepted by Gurux's parser.
    initiate = InitiateResponse(Conformance(0x00501F) | Conformance.GENERAL_PROTECTION, 1024)
    aare = AARE(mechanism=mechanism, responding_authentication_value=STOC,
                user_information=meter.cipher(initiate.encode()) if policy else initiate,
                application_context=aarq.application_context, responding_ap_title=SERVER)
    c.parseAareResponse(GXByteBuffer(aare.encode()))
    assert bytes(c.settings.sourceSystemTitle) == SERVER

    # Pass 3: Gurux's f(StoC) in reply_to_HLS_authentication equals ours.
    action = decode_apdu(meter.decipher(only(c.getApplicationAssociationRequest())), typed=True)
    assert isinstance(action, ActionRequestNormal) and action.descriptor.method == 1
    f_stoc = action.parameters.value
    counter = int.from_bytes(f_stoc[1:5], "big")
    assert f_stoc == proof_for(mechanism, STOC, ctos, CLIENT, SERVER, counter)
    if mechanism is AuthMechanism.HLS_GMAC:
        assert verify_gmac_response(CTX.global_key, CLIENT, STOC, f_stoc) == counter

    # Pass 4: our f(CtoS), accepted by Gurux.
    f_ctos = proof_for(mechanism, ctos, STOC, SERVER, CLIENT, meter.counter + 1)
    answer = ActionResponseNormal(action.invoke_id, ActionResult.SUCCESS,
                                  Typed(DataType.OCTET_STRING, f_ctos))
    reply = GXReplyData()
    c.getData(GXByteBuffer(meter.cipher(answer.encode())), reply)
    c.parseApplicationAssociationResponse(reply.data)

    # A GET under the association's protection, both ways.
    get = decode_apdu(meter.decipher(only(c.read(GXDLMSRegister("1.1.32.7.0.255"), 2))))
    assert isinstance(get, GetRequestNormal) and str(get.descriptor.obis) == "1-1:32.7.0.255"
    reply = GXReplyData()
    response = GetResponseNormal(get.invoke_id, Typed(DataType.LONG_UNSIGNED, 2301))
    assert c.getData(GXByteBuffer(meter.cipher(response.encode())), reply)
    assert reply.value == 2301


def test_gurux_rejects_our_wrong_f_ctos() -> None:
    c, meter = gurux_client(AuthMechanism.HLS_GMAC, Policy.AUTHENTICATED_ENCRYPTION), Meter(
        Policy.AUTHENTICATED_ENCRYPTION)
    aarq = AARQ.decode(only(c.aarqRequest()))
    aare = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=STOC,
                user_information=meter.cipher(InitiateResponse(Conformance(0x00501F), 1024)
                                              .encode()),
                application_context=aarq.application_context, responding_ap_title=SERVER)
    c.parseAareResponse(GXByteBuffer(aare.encode()))
    action = decode_apdu(meter.decipher(only(c.getApplicationAssociationRequest())), typed=True)
    wrong = gmac_response(CTX.global_key, CLIENT, 7, aarq.calling_authentication_value)  # title
    answer = ActionResponseNormal(action.invoke_id, ActionResult.SUCCESS,
                                  Typed(DataType.OCTET_STRING, wrong))
    reply = GXReplyData()
    c.getData(GXByteBuffer(meter.cipher(answer.encode())), reply)
    with pytest.raises(Exception, match="do not match"):
        c.parseApplicationAssociationResponse(reply.data)


@pytest.mark.parametrize("dedicated", [None, DK], ids=["global", "dedicated-key"])
def test_our_hls_gmac_aarq_deciphered_by_gurux_translator(dedicated: bytes | None) -> None:
    from gurux_dlms import GXDLMSTranslator
    from gurux_dlms.enums import TranslatorOutputType
    from tb_dlms.protocol.apdu.xdlms import InitiateRequest
    from tb_dlms.protocol.security import Ciphering, hls_aarq

    request = InitiateRequest(Conformance(0x401E5D), dedicated_key=dedicated)
    aarq = hls_aarq(AuthMechanism.HLS_GMAC, CLIENT, b"K56iVagY", request,
                    Ciphering(CTX, SecurityControl(), 77)).encode()
    translator = GXDLMSTranslator(TranslatorOutputType.SIMPLE_XML)
    translator.blockCipherKey, translator.authenticationKey = EK, AK
    translator.systemTitle = CLIENT  # Gurux's translator does not take it from the AARQ
    translator.comments = True
    text = translator.pduToXml(GXByteBuffer(aarq))
    assert '<ApplicationContextName Value="LN_WITH_CIPHERING" />' in text
    assert '<CallingAPTitle Value="4D4D4D0000000001" />' in text
    assert '<MechanismName Value="HighGmac" />' in text
    assert '<CallingAuthentication Value="4B35366956616759" />' in text
    assert "Invocation Counter: 77" in text and "Failed" not in text
    assert '<ConformanceBit Name="Get" />' in text  # the deciphered InitiateRequest
    assert ('<DedicatedKey Value="00112233445566778899AABBCCDDEEFF" />' in text) == bool(dedicated)
