"""``tb-dlms decode`` deciphers what gurux-dlms (independent implementation, test-only) ciphers.

The client side of each capture is Gurux's GXDLMSSecureClient in HDLC mode (AARQ with its
glo-initiate-request, the HLS pass 3 action, a GET), the server side is ciphered by Gurux's
GXDLMSChippering and framed by our HDLC encoder. Plus a suite id 1 encryption-only
data-notification push under general-glo-ciphering, as meters in service send them.
"""

from __future__ import annotations

import json

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms import GXByteBuffer  # noqa: E402
from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: E402
from gurux_dlms.enums import Authentication as GAuth  # noqa: E402
from gurux_dlms.enums import Command, InterfaceType, Security  # noqa: E402
from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: E402
from gurux_dlms.objects import GXDLMSRegister  # noqa: E402
from gurux_dlms.objects.enums.SecuritySuite import SecuritySuite  # noqa: E402
from gurux_dlms.secure import GXDLMSSecureClient  # noqa: E402
from tb_dlms.cli import main  # noqa: E402
from tb_dlms.protocol.apdu import AARE, ApplicationContext, AuthMechanism  # noqa: E402
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateResponse  # noqa: E402
from tb_dlms.protocol.hdlc import Frame, FrameKind, HdlcAddress, encode_frame  # noqa: E402
from tb_dlms.protocol.hdlc.link import LLC_RESPONSE  # noqa: E402

pytestmark = pytest.mark.interop

H = bytes.fromhex
EK, AK = "000102030405060708090A0B0C0D0E0F", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
DK = "00112233445566778899AABBCCDDEEFF"
CLIENT, SERVER = H("4D4D4D0000000001"), H("4D4D4D0000BC614E")
SECURITY = {"auth": Security.AUTHENTICATION, "enc": Security.ENCRYPTION,
            "auth-enc": Security.AUTHENTICATION_ENCRYPTION}


def gurux_cipher(security: Security, tag: int, title: bytes, counter: int, plain: bytes,
                 key: str = EK, suite: int = 0) -> bytes:
    p = AesGcmParameter(tag, title, H(key), H(AK))
    p.security, p.securitySuite, p.invocationCounter = security, SecuritySuite(suite), counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, plain))


def frames_of(pdus) -> bytes:
    return b"".join(bytes(f) for f in pdus)


def server_frame(apdu: bytes, ns: int, nr: int) -> bytes:
    return encode_frame(Frame(FrameKind.I, HdlcAddress(1), HdlcAddress(1), True, ns, nr, False,
                              LLC_RESPONSE + apdu))


def gurux_capture(level: str, dedicated: bool) -> bytes:
    security = SECURITY[level]
    c = GXDLMSSecureClient(True, 1, 1, GAuth.HIGH_GMAC, None, InterfaceType.HDLC)
    c.ciphering.security, c.ciphering.systemTitle = security, CLIENT
    c.ciphering.blockCipherKey, c.ciphering.authenticationKey = H(EK), H(AK)
    c.ciphering.invocationCounter = 100
    if dedicated:
        c.ciphering.dedicatedKey = H(DK)
    key = DK if dedicated else EK
    aarq = frames_of(c.aarqRequest())
    initiate = InitiateResponse(Conformance(0x00501F), 1024).encode()
    aare = AARE(mechanism=AuthMechanism.HLS_GMAC, responding_authentication_value=b"P6wRJ21F-srv!",
                user_information=gurux_cipher(security, Command.GLO_INITIATE_RESPONSE, SERVER,
                                              7, initiate),
                application_context=ApplicationContext.LOGICAL_NAME_WITH_CIPHERING,
                responding_ap_title=SERVER).encode()
    c.parseAareResponse(GXByteBuffer(aare))
    action = frames_of(c.getApplicationAssociationRequest())
    f_ctos = H("0911") + bytes(17)  # octet-string(17): its value is not checked by decode
    action_response = gurux_cipher(
        security, Command.DED_METHOD_RESPONSE if dedicated else Command.GLO_METHOD_RESPONSE,
        SERVER, 8, H("C701C1000100") + f_ctos, key)
    get = frames_of(c.read(GXDLMSRegister("1.1.32.7.0.255"), 2))
    get_response = gurux_cipher(
        security, Command.DED_GET_RESPONSE if dedicated else Command.GLO_GET_RESPONSE,
        SERVER, 9, H("C401C100120915"), key)
    return (aarq + server_frame(aare, 0, 1) + action + server_frame(action_response, 1, 2)
            + get + server_frame(get_response, 2, 3))


def decode(capsys, *args: str) -> tuple[int, dict, str]:
    capsys.readouterr()  # Gurux prints to stdout while it builds frames
    code = main(["decode", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.parametrize("dedicated", [False, True], ids=["global", "dedicated-key"])
@pytest.mark.parametrize("level", list(SECURITY))
def test_gurux_hls_gmac_capture_deciphered(capsys, level, dedicated):
    capture = gurux_capture(level, dedicated)
    code, out, err = decode(capsys, "--block-key", EK, "--auth-key", AK, capture.hex())
    assert code == 0, (err, out)
    aarq, aare, action, action_response, get, get_response = (
        f["apdu"] for f in out["frames"])
    initiate = aarq["user_information"]
    assert initiate["type"] == "glo-initiate-request"
    assert initiate["system_title"] == CLIENT.hex()
    assert initiate["security"]["invocation_counter"] == 100
    assert initiate["plain_apdu"]["proposed_conformance"]  # Gurux's InitiateRequest, decoded
    assert (initiate["plain_apdu"]["dedicated_key"] is not None) == dedicated
    assert aare["user_information"]["plain_apdu"]["server_max_receive_pdu_size"] == 1024
    prefix = "ded-" if dedicated else "glo-"
    assert action["type"] == prefix + "action-request"
    assert action["plain_apdu"]["descriptor"] == {"class_id": 15, "obis": "0-0:40.0.0.255",
                                                  "method": 1}
    assert action_response["type"] == prefix + "action-response"
    assert action_response["plain_apdu"]["result"] == "success"
    assert get["type"] == prefix + "get-request" and get["sender"] == "client"
    assert get["plain_apdu"]["descriptor"]["obis"] == "1-1:32.7.0.255"
    assert get_response["system_title"] == SERVER.hex()
    assert get_response["plain_apdu"]["result"] == 2325
    everything = [initiate, aare["user_information"], action, action_response, get,
                  get_response]
    authenticated = level != "enc"
    for apdu in everything:
        assert apdu["security"]["authentication"] is authenticated
        assert apdu["tag_verified"] is (True if authenticated else None)
    text = json.dumps(out).lower() + err.lower()
    assert EK.lower() not in text and AK.lower() not in text and DK.lower() not in text


def test_gurux_capture_with_a_wrong_authentication_key(capsys):
    capture = gurux_capture("auth-enc", False)
    code, out, _ = decode(capsys, "--block-key", EK, "--auth-key", "AB" * 16, capture.hex())
    assert code == 1
    errors = [f["apdu"].get("error") or f["apdu"].get("user_information", {}).get("error")
              for f in out["frames"]]
    assert len(errors) == 6 and all("authentication tag mismatch" in e for e in errors)


# A push as a customer-interface meter sends it: data-notification (long-invoke-id 1, a
# date-time, a structure of an OBIS code and a double-long-unsigned energy value).
PUSH = H("0F" "00000001" "0C" "07EA0C04" "05" "08000000" "8000" "00"  # date-time: 12 octets
         "0202" "0906" "0100010800FF" "0600001234")


def test_suite_1_encryption_only_push_with_the_block_key_only(capsys):
    apdu = gurux_cipher(Security.ENCRYPTION, Command.GENERAL_GLO_CIPHERING, SERVER, 42, PUSH,
                        suite=1)
    assert apdu[11] == 0x21  # SC: encryption, suite id 1
    code, out, err = decode(capsys, "--block-key", EK, apdu.hex())
    assert code == 0, err
    push = out["apdu"]
    assert push["type"] == "general-glo-ciphering" and push["apdu_system_title"] == SERVER.hex()
    assert push["security"]["suite"] == 1 and push["security"]["cipher"] == "AES-GCM-128"
    assert push["security"]["invocation_counter"] == 42 and push["tag_verified"] is None
    body = push["plain_apdu"]
    assert body["type"] == "DataNotification" and body["long_invoke_id"] == 1
    assert body["date_time"].startswith("2026-12-04T08:00:00")
    assert body["body"] == ["0100010800ff", 0x1234]
    # An authenticated push needs the authentication key: a clear per-APDU error without it.
    signed = gurux_cipher(Security.AUTHENTICATION_ENCRYPTION, Command.GENERAL_GLO_CIPHERING,
                          SERVER, 43, PUSH, suite=1)
    code, out, _ = decode(capsys, "--block-key", EK, signed.hex())
    assert code == 1 and "--auth-key" in out["apdu"]["error"]
