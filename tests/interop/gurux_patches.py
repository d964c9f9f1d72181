"""What is broken in gurux_dlms's server as shipped, and the test-side shims that make it work.

gurux-dlms (GPLv2) is an independent peer here, never imported by the package. Its server, as
shipped (gurux_dlms 1.0.203, paths under site-packages/gurux_dlms/), cannot complete one
association of any kind, HLS-GMAC or not. What is broken, and what is done about it, all
test-side: the subclasses and patches here (the patches scoped to ``patched_gurux``) and
``GuruxMeter`` in gurux_server.py. The cryptography, the APDU codecs, the HLS arithmetic and
the object model stay Gurux's own.

1. secure/GXDLMSSecureServer.py:53 stores its GXCiphering as ``settings.ciphering``; everything
   else reads ``settings.cipher``, which stays None: the ciphered AARQ is refused ("no reason
   given"). ``GuruxMeter`` sets ``settings.cipher``.
2. GXServerReply.py has no ``setReply``/``getConnectionInfo``/``getCount``/``setCount``, which
   GXDLMSServer.handleRequest calls on every request: ``ServerReply`` adds them.
3. GXDLMSServer.py:504 ``initialize`` appends the whole object collection to the association's
   object list as one item (TypeError): ``GuruxMeter`` fills the list first.
4. GXDLMSServer.py:667/685 (SNRM and DISC) read ``self.hdlc.maxInfoTX`` with ``self.hdlc`` None
   (and the HDLC setup object has no such attribute), and :676/:695 call
   ``setUInt8(2, len - 3)`` with value and index swapped (the UA's group length is wrong):
   ``GuruxMeter`` writes the UA parameters from the negotiated ``settings.hdlc``.
5. _GXAPDU.py:1055-1057 ``generateAARE`` writes the responding-AP-title with a length 2 short
   and calls ``setUInt8()`` without its argument (TypeError), and :1087 the
   responding-authentication-value length 2 short: every HLS AARE. ``_generate_aare`` writes
   the same fields with the right lengths.
6. GXDLMS.py:2901-2911 ``handleGloDedRequest`` builds AesGcmParameter without the tag argument,
   so the client's title becomes the tag, the block key the title, the authentication key the
   block key: no ciphered request after the AARQ (the pass-3 ACTION, GETs) deciphers.
   ``_handle_glo_ded_request`` passes them in their places.
7. objects/GXDLMSAssociationLogicalName.py:169/177 do ``int(e.parameters)`` on the octet string
   f(StoC) (ValueError): pass 3 of every HLS mechanism. ``HlsAssociation`` redoes method 1 with
   GXSecure.secure, and answers a wrong f(StoC) with read-write-denied, not a bare success.
8. GXDLMSLNCommandHandler.py:786/791 call ``list(e)`` on a ValueEventArgs, which is not
   iterable, and :813-818 call ``getAssociationStatus``, ``server.notifyConnected`` and
   ``settings.setConnected``, none of which exist: every ACTION fails (the error path then hits
   GXDLMSServer.py:782 ``self.receivedData.size(0)``, TypeError, and answers a truncated
   action-response). Shims for each, scoped or on this meter only.
9. _GXAPDU.py:1008 ciphers the AARE's InitiateResponse with the meter's counter without
   counting it, so the next response reuses that nonce. ``_generate_aare`` counts it, unless
   ``reuse_aare_counter`` (Gurux as shipped).
10. GXCiphering.py:149 ``reset`` (called by GXDLMSServer.reset at every SNRM) sets the meter's
   own counter back to 0: nonces reused across associations. ``GuruxMeter.reset`` keeps it,
   unless ``reset_counter`` (Gurux as shipped).
11. The server checks neither the client's system title nor its invocation counter nor the
   security policy (it takes whatever the AARQ brings). ``GuruxMeter`` records every counter
   Gurux deciphers (``client_counters``), serves the last one as the frame counter
   0-0:43.1.0.255 (as a meter does), and refuses an unexpected client title or policy in
   ``onValidateAuthentication``.

12. GXDLMSLNCommandHandler.py:281 (every single GET) calls ``server.notifyRead()``, and its
   block-transfer paths ``server.getTransaction``/``setTransaction``: GXDLMSServer has none of
   them (only GET-with-list works as shipped). ``GuruxMeter`` adds them. Reading the object
   list, objects/GXDLMSAssociationLogicalName.py:285 reads ``e.isSkipMaxPduSize``, which
   ValueEventArgs lacks: set to False for the block.
13. GXDLMSChippering.py:358 ``decryptAesGcm`` runs the GCM stream with forEncrypt=True for an
   authenticated-and-encrypted APDU, so the tag check at GXDLMSChipperingStream.py:706 never
   runs: Gurux accepts an AARQ or a request under auth-enc with any authentication key (and a
   forged one). ``patched_gurux``'s decrypt recomputes the tag with Gurux's own encryptAesGcm
   over the recovered plaintext and refuses a mismatch, as Gurux does under authentication only.
14. Refusals: GXDLMSLNCommandHandler.py:460-473 (GET-with-list) calls ``getValue`` on a None
   target for an undefined object and writes a lone error byte for that item (no
   Get-Data-Result choice), a malformed list; and answers built without an explicit invoke id
   (a single GET of an undefined object, :250, error reports) take GXDLMS.getInvokeIDPriority's
   ``settings.invokeId``, fixed at 1 (GXDLMSSettings.py:119), while requests update
   ``settings.invokeID`` (:465): the refusal carries the wrong invoke id.
   ``_get_request_with_list`` and ``GuruxSettings`` answer them right, unless
   ``shipped_errors``.
15. GXDLMSLNCommandHandler.py:538/553 (every SET) call ``p.isMultipleBlocks()`` and
   ``p.setStatus()``, which GXDLMSLNParameters lacks (it has the fields ``multipleBlocks`` and
   ``status``): every SET answers hardware-fault. ``patched_gurux`` adds both.

With these the server answers our HDLC and wrapper clients at every protection level, with the
global key or a dedicated key (``dedicated_key``: Gurux then deciphers every request after the
HLS exchange with it, whatever the tag, and answers ded-xxx).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from gurux_dlms import GXByteBuffer, GXServerReply
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AccessMode,
    AssociationResult,
    Authentication,
    Command,
    ErrorCode,
    ObjectType,
    Security,
)
from gurux_dlms.enums.RequestTypes import RequestTypes
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.GXDLMSLNCommandHandler import GXDLMSLNCommandHandler
from gurux_dlms.GXDLMSLNParameters import GXDLMSLNParameters
from gurux_dlms.GXDLMSSettings import GXDLMSSettings
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
)
from gurux_dlms.objects.enums import AssociationStatus
from gurux_dlms.ValueEventArgs import ValueEventArgs


class HlsAssociation(GXDLMSAssociationLogicalName):
    """The association object 0-0:40.0.0.255 with a working reply_to_HLS_authentication."""

    def __init__(self, ln: str) -> None:
        super().__init__(ln)
        self.f_stoc_counters: list[int] = []  # the invocation counter inside each f(StoC)

    def getAssociationStatus(self) -> int:  # noqa: N802 - called by the ACTION handler (see 8.)
        return int(self.associationStatus)

    def invoke(self, settings: Any, e: Any) -> Any:
        if e.index != 1:
            return super().invoke(settings, e)
        f_stoc = bytes(e.parameters)
        if settings.authentication == Authentication.HIGH_GMAC:
            # SC || IC || tag: the tag is recomputed over StoC with the client's title and IC.
            ic = int.from_bytes(f_stoc[1:5], "big")
            self.f_stoc_counters.append(ic)
            expected = GXSecure.secure(settings, settings.cipher, ic, settings.stoCChallenge,
                                       settings.sourceSystemTitle)
        else:
            expected = GXSecure.secure(settings, settings.cipher, 0, settings.stoCChallenge,
                                       self.secret)
        if bytes(expected) != f_stoc:
            self.associationStatus = AssociationStatus.NON_ASSOCIATED  # the handler disconnects
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        self.associationStatus = AssociationStatus.ASSOCIATED
        if settings.authentication == Authentication.HIGH_GMAC:
            return GXSecure.secure(settings, settings.cipher, settings.cipher.invocationCounter,
                                   settings.ctoSChallenge, settings.cipher.systemTitle)
        return GXSecure.secure(settings, settings.cipher, 0, settings.ctoSChallenge, self.secret)


def _handle_glo_ded_request(settings: Any, data: Any) -> None:
    """GXDLMS.handleGloDedRequest with the AesGcmParameter arguments in their places (see 6.)."""
    if settings.cipher is None:
        raise ValueError("Secure connection is not supported.")
    data.data.position = data.data.position - 1
    if (data.moreData & RequestTypes.FRAME) != 0:
        return
    dedicated = settings.cipher.dedicatedKey and (settings.connected & ConnectionState.DLMS)
    key = settings.cipher.dedicatedKey if dedicated else settings.cipher.blockCipherKey
    p = AesGcmParameter(0, settings.sourceSystemTitle, key, settings.cipher.authenticationKey)
    plain = GXCiphering.decrypt(settings, p, data.data)
    data.data.clear()
    data.data.set(plain)
    data.command = Command(data.data.getUInt8())


def _generate_aare(settings: Any, data: Any, result: int, diagnostic: int, cipher: Any,
                   error: Any, encrypted: Any) -> None:
    """_GXAPDU.generateAARE with the BER lengths right and the responding-AP-title written
    (see 5.), the InitiateResponse's counter counted (see 9.); the same fields in the same order
    otherwise (``encrypted`` stays unused: the server's only call passes None)."""
    body = GXByteBuffer()
    _GXAPDU.generateApplicationContextName(settings, body, cipher)
    body.set(bytearray([0xA2, 3, 2, 1, result, 0xA3, 5, 0xA1, 3, 2, 1, diagnostic]))
    if cipher and (settings.authentication == Authentication.HIGH_GMAC or cipher.isCiphered()):
        title = bytes(cipher.systemTitle)
        body.set(bytearray([0xA4, len(title) + 2, 0x04, len(title)]) + title)
    if settings.authentication > Authentication.LOW:
        stoc = bytes(settings.stoCChallenge)
        body.set(bytearray([0x88, 2, 7, 0x80, 0x89, 7, 0x60, 0x85, 0x74, 5, 8, 2,
                            settings.authentication, 0xAA, len(stoc) + 2, 0x80, len(stoc)]) + stoc)
    if result == AssociationResult.ACCEPTED or not cipher or cipher.security == Security.NONE:
        info = bytes(error) if error else bytes(_GXAPDU.getUserInformation(settings, cipher))
        if cipher and cipher.isCiphered() and not getattr(settings, "reuse_aare_counter", False):
            cipher.invocationCounter += 1
        body.set(bytearray([0xBE, len(info) + 2, 0x04, len(info)]) + info)
    data.set(bytearray([0x61, len(body)]) + bytes(body.array()))


def _get_request_with_list(settings: Any, invoke_id: int, server: Any, data: Any, reply: Any,
                           xml: Any, shipped: Any) -> None:
    """GET-with-list answering a refused item as data-access-result + its code (see 14.)."""
    if xml is not None or getattr(server, "shipped_errors", True):
        return shipped.__func__(GXDLMSLNCommandHandler, settings, invoke_id, server, data,
                                reply, xml)
    items = []
    for _ in range(_GXCommon.getObjectCount(data)):
        class_id, ln = data.getUInt16(), bytearray(6)
        data.get(ln)
        index = data.getUInt8()
        if data.getUInt8():
            raise ValueError("selective access in a GET-with-list: not served here")
        obj = settings.objects.findByLN(ObjectType(class_id), _GXCommon.toLogicalName(ln))
        item = ValueEventArgs(server, obj, index, 0, None)
        if obj is None:
            item.error = ErrorCode.UNDEFINED_OBJECT
        elif server.onGetAttributeAccess(item) == AccessMode.NO_ACCESS:
            item.error = ErrorCode.READ_WRITE_DENIED
        items.append(item)
    server.onPreRead(items)
    answer = GXByteBuffer()
    _GXCommon.setObjectCount(len(items), answer)
    for item in items:
        if item.error:
            answer.set(bytearray([1, item.error]))
            continue
        value = item.target.getValue(settings, item)
        answer.setUInt8(0)
        GXDLMS.appendData(settings, item.target, item.index, answer, value)
    server.onPostRead(items)
    GXDLMS.getLNPdu(GXDLMSLNParameters(settings, invoke_id, Command.GET_RESPONSE, 3, None,
                                       answer, 0xFF), reply)
    return None


class GuruxSettings(GXDLMSSettings):
    """GXDLMSSettings whose ``invokeId`` (what answers without an explicit id carry) is the
    ``invokeID`` the request set (see 14.)."""

    @property
    def invokeId(self) -> int:  # noqa: N802
        return int(self.invokeID)

    @invokeId.setter
    def invokeId(self, value: int) -> None:  # noqa: N802
        self.invokeID = value


@contextlib.contextmanager
def patched_gurux() -> Iterator[list[tuple[bytes, int, int]]]:
    """Fixes 5, 6, 8 (ValueEventArgs), 12, 13, 14 (GET-with-list) and 15 for the block; yields the
    list where every APDU Gurux deciphers (the AARQ's too) leaves (client system title,
    security, invocation counter)."""
    seen: list[tuple[bytes, int, int]] = []
    original_handle = GXDLMS.__dict__["handleGloDedRequest"]
    original_decrypt = GXCiphering.__dict__["decrypt"]
    original_aare = _GXAPDU.__dict__["generateAARE"]
    original_list = GXDLMSLNCommandHandler.__dict__["getRequestWithList"]

    def decrypt(cls: Any, settings: Any, p: Any, data: Any) -> Any:
        received = bytes(data.array())[data.position:]
        plain = original_decrypt.__func__(cls, settings, p, data)
        if p.security == Security.AUTHENTICATION_ENCRYPTION:  # see 13.
            again = AesGcmParameter(0, p.systemTitle, p.blockCipherKey, p.authenticationKey)
            again.security, again.invocationCounter = p.security, p.invocationCounter
            if bytes(GXDLMSChippering.encryptAesGcm(again, plain))[-12:] != received[-12:]:
                raise ValueError("Decrypt failed. Invalid tag.")
        seen.append((bytes(p.systemTitle or b""), int(p.security), int(p.invocationCounter)))
        return plain

    ValueEventArgs.__iter__ = lambda self: iter((self,))  # see 8.
    ValueEventArgs.isSkipMaxPduSize = False  # see 12.
    GXDLMSLNParameters.isMultipleBlocks = lambda self: bool(self.multipleBlocks)  # see 15.
    GXDLMSLNParameters.setStatus = lambda self, value: setattr(self, "status", value)
    GXDLMS.handleGloDedRequest = classmethod(lambda cls, s, d: _handle_glo_ded_request(s, d))
    GXCiphering.decrypt = classmethod(decrypt)
    _GXAPDU.generateAARE = classmethod(lambda cls, *args: _generate_aare(*args))
    GXDLMSLNCommandHandler.getRequestWithList = classmethod(
        lambda cls, *args: _get_request_with_list(*args, original_list))
    try:
        yield seen
    finally:
        GXDLMS.handleGloDedRequest = original_handle
        GXCiphering.decrypt = original_decrypt
        _GXAPDU.generateAARE = original_aare
        GXDLMSLNCommandHandler.getRequestWithList = original_list
        del ValueEventArgs.__iter__, ValueEventArgs.isSkipMaxPduSize
        del GXDLMSLNParameters.isMultipleBlocks, GXDLMSLNParameters.setStatus


class ServerReply(GXServerReply):
    """GXServerReply with the accessors GXDLMSServer.handleRequest calls (see 2.)."""

    def setReply(self, value: Any) -> None:  # noqa: N802
        self.reply = value

    def getConnectionInfo(self) -> Any:  # noqa: N802
        return self.connectionInfo

    def getCount(self) -> int:  # noqa: N802
        return int(self.count)

    def setCount(self, value: int) -> None:  # noqa: N802
        self.count = value


__all__ = ["GuruxSettings", "HlsAssociation", "ServerReply", "patched_gurux"]
