"""Published suite 0 (AES-GCM-128) example vectors of the DLMS UA Green Book.

Provenance (the Green Book itself is not public; these are its examples as quoted, with their
section, by independent open-source DLMS stacks' tests):

- GB_APDU: Green Book ed. 7, p. 133-134, "security suite 0" examples: a get-request
  (C0 01 00 | 0008 0000010000FF 02 00) protected by authentication only, encryption only and
  authenticated encryption. Quoted in Elster's DLMS Java library test
  com/elster/dlms/security/DlmsSecurityProviderGcmTest.java ("Examples from GB ed.7 p.133-134").
- GB_INITIATE: Green Book ed. 7, p. 265, the xDLMS InitiateRequest with a dedicated key
  ciphered as glo-initiate-request. Quoted in the same Elster test
  (testEncodeAutheticatedEncryption2), in gvtret/gosem pkg/dlms/cipher_test.go (TestCipherData,
  with the 21 30 tag and length) and in openmuc jDLMS (testDecryptionExampleFromStandard).
- GB_HLS_GMAC: Green Book 8.1, 9.2.7.4, Table 43 "HLS example using authentication-mechanism 5
  with GMAC" (Green Book ed. 7 Amendment 2, Table 18). Quoted in Elster's
  DlmsSecurityProviderGcmTest.testCheckServerReplyToChallenge and GcmCipherModTest, and in
  openmuc jDLMS GmacTest.doGmacTestFromStandardExample.
"""

from __future__ import annotations

import pytest
from tb_dlms.protocol.apdu.xdlms import InitiateRequest
from tb_dlms.protocol.security import (
    GcmKey,
    Policy,
    SecurityContext,
    SecurityControl,
    gmac_response,
    verify_gmac_response,
)

H = bytes.fromhex
EK = H("000102030405060708090A0B0C0D0E0F")
AK = H("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SERVER_TITLE = H("4D4D4D0000BC614E")
CLIENT_TITLE = H("4D4D4D0000000001")
IC = 0x01234567
KEY = GcmKey(EK, AK)

GB_PLAIN = H("C0010000080000010000FF0200")
GB_APDU = {  # SC || IC || protected content, sender system title SERVER_TITLE
    Policy.AUTHENTICATION: H("1001234567" "C0010000080000010000FF0200" "06725D910F9221D263877516"),
    Policy.ENCRYPTION: H("2001234567" "411312FF935A47566827C467BC"),
    Policy.AUTHENTICATED_ENCRYPTION: H(
        "3001234567" "411312FF935A47566827C467BC" "7D825C3BE4A77C3FCC056B6B"),
}
GB_INITIATE_PLAIN = H("01011000112233445566778899AABBCCDDEEFF0000065F1F0400007E1F04B0")
GB_INITIATE = H("2130" "3001234567" "801302FF8A7874133D414CED25B42534D28DB0047720606B175BD522"
                "11BE68" "41DB204D39EE6FDB8E356855")


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)
def test_green_book_apdu_sealed_byte_for_byte(policy: Policy) -> None:
    assert KEY.seal(SecurityControl(policy), SERVER_TITLE, IC, GB_PLAIN) == GB_APDU[policy]


@pytest.mark.parametrize("policy", list(Policy), ids=lambda p: p.label)
def test_green_book_apdu_opened(policy: Policy) -> None:
    header, plain = KEY.open(SERVER_TITLE, GB_APDU[policy])
    assert plain == GB_PLAIN
    assert header.invocation_counter == IC and header.control.policy is policy
    assert header.control.suite == 0


def test_green_book_glo_get_request_framing() -> None:
    # The same example as a whole APDU: glo-get-request [200] = 0xC8, length, SC || IC || ...
    ctx = SecurityContext(KEY)
    ours = ctx.encrypt(GB_PLAIN, SecurityControl(), SERVER_TITLE, IC)
    assert ours == b"\xC8" + bytes((len(GB_APDU[Policy.AUTHENTICATED_ENCRYPTION]),)) + GB_APDU[
        Policy.AUTHENTICATED_ENCRYPTION]
    assert ctx.decrypt(ours, SERVER_TITLE, required=None).apdu == GB_PLAIN


def test_green_book_glo_initiate_request() -> None:
    ctx = SecurityContext(KEY)
    request = InitiateRequest.decode(GB_INITIATE_PLAIN)
    assert request.dedicated_key == H("00112233445566778899AABBCCDDEEFF")
    assert ctx.encrypt(request.encode(), SecurityControl(), SERVER_TITLE, IC) == GB_INITIATE
    assert ctx.decrypt(GB_INITIATE, SERVER_TITLE, required=None).apdu == GB_INITIATE_PLAIN


def test_green_book_hls_gmac_both_passes() -> None:
    ctos, stoc = b"K56iVagY", b"P6wRJ21F"  # 4B35366956616759, 503677524A323146
    # Pass 3: the client (IC 00000001) answers StoC.
    f_stoc = gmac_response(KEY, CLIENT_TITLE, 1, stoc)
    assert f_stoc == H("1000000001" "1A52FE7DD3E72748973C1E28")
    # Pass 4: the server (IC 01234567) answers CtoS; the client checks it.
    f_ctos = gmac_response(KEY, SERVER_TITLE, IC, ctos)
    assert f_ctos == H("1001234567" "FE1466AFB3DBCD4F9389E2B7")
    assert verify_gmac_response(KEY, SERVER_TITLE, ctos, f_ctos) == IC
    assert verify_gmac_response(KEY, CLIENT_TITLE, stoc, f_stoc) == 1
