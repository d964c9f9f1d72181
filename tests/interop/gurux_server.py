"""A test-only Gurux meter: gurux_dlms's GXDLMSSecureServer made to work, served over loopback TCP.

gurux-dlms (GPLv2) is an independent peer here, never imported by the package. Its server, as
shipped (gurux_dlms 1.0.203, paths under site-packages/gurux_dlms/), cannot complete one
association of any kind, HLS-GMAC or not. What is broken, and what this module does about it
(all test-side: subclasses and patches scoped to ``patched_gurux``; the cryptography, the APDU
codecs, the HLS arithmetic and the object model stay Gurux's own):

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

With these the server answers our HDLC and wrapper clients at every protection level. The
dedicated key is not exercised: our client proposes none (SessionSettings has no such key).
"""

from __future__ import annotations

import contextlib
import datetime
import socket
import threading
from collections.abc import Iterator
from typing import Any

from gurux_dlms import GXByteBuffer, GXDateTime, GXServerReply
from gurux_dlms._GXAPDU import _GXAPDU
from gurux_dlms._HDLCInfo import _HDLCInfo
from gurux_dlms.AesGcmParameter import AesGcmParameter
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AccessMode,
    AssociationResult,
    Authentication,
    Command,
    DataType,
    ErrorCode,
    InterfaceType,
    MethodAccessMode,
    Security,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.enums.RequestTypes import RequestTypes
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.GXDLMSChippering import GXDLMSChippering
from gurux_dlms.GXSecure import GXSecure
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums import AssociationStatus
from gurux_dlms.secure import GXDLMSSecureServer
from gurux_dlms.ValueEventArgs import ValueEventArgs

SERVER_TITLE = b"GRX00042"
LDN = b"GRX-METER-000042"
ENERGY_RAW, ENERGY_SCALER = 1234567, 0.01  # 12345.67 Wh
CLOCK_TIME = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
HLS_CLIENT, PUBLIC_CLIENT = 1, 16
PUBLIC_READABLE = {"0.0.42.0.0.255", "0.0.43.1.0.255", "0.0.40.0.0.255"}


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


@contextlib.contextmanager
def patched_gurux() -> Iterator[list[tuple[bytes, int, int]]]:
    """Fixes 5, 6, 8 (ValueEventArgs), 12 and 13 for the block; yields the list where every APDU Gurux
    deciphers (the AARQ's too) leaves (client system title, security, invocation counter)."""
    seen: list[tuple[bytes, int, int]] = []
    original_handle = GXDLMS.__dict__["handleGloDedRequest"]
    original_decrypt = GXCiphering.__dict__["decrypt"]
    original_aare = _GXAPDU.__dict__["generateAARE"]

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
    GXDLMS.handleGloDedRequest = classmethod(lambda cls, s, d: _handle_glo_ded_request(s, d))
    GXCiphering.decrypt = classmethod(decrypt)
    _GXAPDU.generateAARE = classmethod(lambda cls, *args: _generate_aare(*args))
    try:
        yield seen
    finally:
        GXDLMS.handleGloDedRequest = original_handle
        GXCiphering.decrypt = original_decrypt
        _GXAPDU.generateAARE = original_aare
        del ValueEventArgs.__iter__, ValueEventArgs.isSkipMaxPduSize


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


class GuruxMeter(GXDLMSSecureServer):
    """Gurux's secure LN server with a few objects; clients 1 (HLS-GMAC) and 16 (public).

    ``client_title``: the only client system title accepted (None: any); ``security``: the only
    policy accepted (a gurux Security; None: any). ``reuse_aare_counter`` and ``reset_counter``
    put back Gurux's shipped counter handling (9. and 10.)."""

    def __init__(self, block_key: bytes, auth_key: bytes, seen: list[tuple[bytes, int, int]],
                 *, wrapper: bool = False, counter: int = 1000, client_title: bytes | None = None,
                 security: int | None = None, reuse_aare_counter: bool = False,
                 reset_counter: bool = False) -> None:
        super().__init__(True, InterfaceType.WRAPPER if wrapper else InterfaceType.HDLC)
        self.client_title, self.security, self.reset_counter = client_title, security, reset_counter
        self.settings.reuse_aare_counter = reuse_aare_counter
        cipher = self.settings.cipher = GXCiphering(bytearray(SERVER_TITLE))  # see 1.
        cipher.blockCipherKey = bytearray(block_key)
        cipher.authenticationKey = bytearray(auth_key)
        cipher.invocationCounter = counter
        self.seen = seen
        self.ldn = GXDLMSData("0.0.42.0.0.255")
        self.ldn.value = LDN
        self.ldn.setDataType(2, DataType.OCTET_STRING)
        self.energy = GXDLMSRegister("1.0.1.8.0.255")
        self.energy.value = ENERGY_RAW
        self.energy.setDataType(2, DataType.UINT32)
        self.energy.scaler = ENERGY_SCALER
        self.energy.unit = Unit.ACTIVE_ENERGY
        self.clock = GXDLMSClock("0.0.1.0.0.255")
        self.clock.time = GXDateTime(CLOCK_TIME)
        self.frame_counter = GXDLMSData("0.0.43.1.0.255")
        self.frame_counter.value = 0
        self.frame_counter.setDataType(2, DataType.UINT32)
        self.association = HlsAssociation("0.0.40.0.0.255")
        self.association.authenticationMechanismName.mechanismId = Authentication.HIGH_GMAC
        for item in (self.ldn, self.energy, self.clock, self.frame_counter, self.association):
            self.items.append(item)
            self.association.objectList.append(item)  # see 3.
        self.initialize()
        self.policies: list[int] = []  # the security of each association gurux accepted
        self.failures: list[BaseException] = []  # see handleCommand
        settings = self.settings
        settings.setConnected = lambda value: setattr(settings, "connected", value)  # see 8.

    def handleCommand(self, cmd: Any, data: Any, sr: Any) -> Any:  # noqa: N802
        # GXDLMSServer.handleRequest turns any exception into an error answer and forgets it:
        # keep it, so a test can tell Gurux refusing from Gurux breaking.
        try:
            return super().handleCommand(cmd, data, sr)
        except Exception as exc:
            self.failures.append(exc)
            raise

    def notifyConnected(self, connectionInfo: Any) -> None:  # noqa: N802, N803 - see 8.
        self.onConnected(connectionInfo)

    # ---- GET (see 12.) -------------------------------------------------------------------------
    def notifyRead(self, *args: Any) -> None:  # noqa: N802
        self.onPreRead(args)

    def getTransaction(self) -> Any:  # noqa: N802
        return self.transaction

    def setTransaction(self, value: Any) -> None:  # noqa: N802
        self.transaction = value

    # ---- the counters (see 10. and 11.) --------------------------------------------------------
    def reset(self, connect: bool = False) -> None:
        cipher = self.settings.cipher
        counter = cipher.invocationCounter if cipher else 0
        super().reset(connect)
        if cipher and not self.reset_counter:
            cipher.invocationCounter = counter

    @property
    def client_counters(self) -> list[int]:
        return [ic for _, _, ic in self.seen]

    # ---- HDLC (see 4.) -------------------------------------------------------------------------
    def handleSnrmRequest(self, data: Any) -> None:  # noqa: N802
        GXDLMS.parseSnrmUaResponse(data, self.settings.hdlc)
        self.reset(True)
        self._ua_parameters()
        self.settings.connected = ConnectionState.HDLC

    def generateDisconnectRequest(self) -> None:  # noqa: N802
        self._ua_parameters()

    def _ua_parameters(self) -> None:
        hdlc, reply = self.settings.hdlc, self.replyData
        for byte in (0x81, 0x80, 0):
            reply.setUInt8(byte)
        for kind, value in ((_HDLCInfo.MAX_INFO_TX, hdlc.maxInfoTX),
                            (_HDLCInfo.MAX_INFO_RX, hdlc.maxInfoRX)):
            reply.setUInt8(kind)
            GXDLMS.appendHdlcParameter(reply, value)
        for kind, value in ((_HDLCInfo.WINDOW_SIZE_TX, hdlc.windowSizeTX),
                            (_HDLCInfo.WINDOW_SIZE_RX, hdlc.windowSizeRX)):
            reply.setUInt8(kind)
            reply.setUInt8(4)
            reply.setUInt32(value)
        reply.setUInt8(len(reply) - 3, 2)  # the group length (gurux swaps value and index)

    # ---- the callbacks GXDLMSServer leaves abstract ----------------------------------------------
    def isTarget(self, serverAddress: int, clientAddress: int) -> bool:  # noqa: N802, N803
        return clientAddress in (HLS_CLIENT, PUBLIC_CLIENT)

    def onValidateAuthentication(self, authentication: int, password: Any) -> int:  # noqa: N802
        client = self.settings.clientAddress
        if client == PUBLIC_CLIENT and authentication == Authentication.NONE:
            return SourceDiagnostic.NONE
        if client != HLS_CLIENT or authentication != Authentication.HIGH_GMAC:
            return SourceDiagnostic.NOT_RECOGNISED
        title = bytes(self.settings.sourceSystemTitle or b"")
        if self.client_title is not None and title != self.client_title:
            return SourceDiagnostic.CALLING_AP_TITLE_NOT_RECOGNIZED
        policy = int(self.settings.cipher.security)
        if self.security is not None and policy != self.security:
            return SourceDiagnostic.NOT_SUPPORTED
        self.policies.append(policy)
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg: Any) -> int:  # noqa: N802
        if self.settings.clientAddress == PUBLIC_CLIENT:
            ok = arg.target.logicalName in PUBLIC_READABLE
            return AccessMode.READ if ok else AccessMode.NO_ACCESS
        return AccessMode.READ_WRITE

    def onGetMethodAccess(self, arg: Any) -> int:  # noqa: N802
        return MethodAccessMode.ACCESS

    def onPreRead(self, args: Any) -> None:  # noqa: N802
        self.frame_counter.value = self.client_counters[-1] if self.client_counters else 0

    def onFindObject(self, objectType: Any, sn: int, ln: str) -> Any:  # noqa: N802, N803
        return None

    def onPostRead(self, args: Any = None) -> None: ...  # noqa: N802
    def onPreGet(self, args: Any) -> None: ...  # noqa: N802
    def onPostGet(self, args: Any) -> None: ...  # noqa: N802
    def onPreWrite(self, args: Any) -> None: ...  # noqa: N802
    def onPostWrite(self, args: Any) -> None: ...  # noqa: N802
    def onPreAction(self, args: Any) -> None: ...  # noqa: N802
    def onPostAction(self, args: Any) -> None: ...  # noqa: N802
    def onConnected(self, connectionInfo: Any) -> None: ...  # noqa: N802, N803
    def onInvalidConnection(self, connectionInfo: Any) -> None: ...  # noqa: N802, N803
    def onDisconnected(self, connectionInfo: Any) -> None: ...  # noqa: N802, N803


class GuruxTcpServer:
    """One GuruxMeter on a loopback port, one connection at a time (a meter's modem)."""

    def __init__(self, meter: GuruxMeter) -> None:
        self.meter = meter
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> GuruxTcpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                self._talk(conn)
            self.meter.reset()

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            reply = ServerReply(bytearray(data))
            try:
                self.meter.handleRequest(reply)
            except Exception as exc:  # noqa: BLE001 - kept for the test to show
                self.errors.append(exc)
                return
            if reply.reply:
                conn.sendall(bytes(reply.reply))


__all__ = ["GuruxMeter", "GuruxTcpServer", "HlsAssociation", "patched_gurux"]
