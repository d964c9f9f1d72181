"""A test-only Gurux meter: gurux_dlms's GXDLMSSecureServer made to work, served over loopback TCP.

gurux-dlms (GPLv2) is an independent peer here, never imported by the package. Its server as
shipped cannot complete an association; gurux_patches.py lists each defect (file and line in
gurux_dlms 1.0.203) and its shim; the numbers below refer to that list. ``GuruxMeter`` holds a
logical device name, a register with scaler and unit, a clock, the frame counter 0-0:43.1.0.255
(the last invocation counter Gurux took from the client, readable by the public client 16) and
the current association 0-0:40.0.0.255 with HLS-GMAC (mechanism 5) under Gurux's keys.
"""

from __future__ import annotations

import datetime
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gurux_dlms import GXDateTime
from gurux_dlms._HDLCInfo import _HDLCInfo
from gurux_dlms.ConnectionState import ConnectionState
from gurux_dlms.enums import (
    AccessMode,
    Authentication,
    DataType,
    InterfaceType,
    MethodAccessMode,
    SourceDiagnostic,
    Unit,
)
from gurux_dlms.GXCiphering import GXCiphering
from gurux_dlms.GXDLMS import GXDLMS
from gurux_dlms.objects import (
    GXDLMSCaptureObject,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSPushSetup,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums import ServiceType
from gurux_dlms.secure import GXDLMSSecureServer
from gurux_patches import GuruxSettings, HlsAssociation, ServerReply, patched_gurux

SERVER_TITLE = b"GRX00042"
LDN = b"GRX-METER-000042"
ENERGY_RAW, ENERGY_SCALER = 1234567, 0.01  # 12345.67 Wh
CLOCK_TIME = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
HLS_CLIENT, PUBLIC_CLIENT = 1, 16
PUBLIC_READABLE = {"0.0.42.0.0.255", "0.0.43.1.0.255", "0.0.40.0.0.255"}
PUSH_DESTINATION = "192.0.2.7:4059"  # where GuruxMeter(push_setup=...) pushes at first
PUSH_WINDOW = (datetime.datetime(2026, 1, 1, 0, 0, 0, tzinfo=datetime.timezone.utc),
               datetime.datetime(2026, 1, 1, 6, 0, 0, tzinfo=datetime.timezone.utc))


class GuruxMeter(GXDLMSSecureServer):
    """Gurux's secure LN server with a few objects; clients 1 (HLS-GMAC) and 16 (public).

    ``client_title``: the only client system title accepted (None: any); ``security``: the only
    policy accepted (a gurux Security; None: any). ``reuse_aare_counter`` and ``reset_counter``
    put back Gurux's shipped counter handling (9. and 10.), ``shipped_errors`` its refusals
    (14.). ``push_setup``: a Push setup 0-0:25.9.0.255 of that class version (None: none)
    pushing the clock and the register to PUSH_DESTINATION."""

    def __init__(self, block_key: bytes, auth_key: bytes, seen: list[tuple[bytes, int, int]],
                 *, wrapper: bool = False, counter: int = 1000, client_title: bytes | None = None,
                 security: int | None = None, reuse_aare_counter: bool = False,
                 reset_counter: bool = False, shipped_errors: bool = False,
                 push_setup: int | None = None) -> None:
        super().__init__(True, InterfaceType.WRAPPER if wrapper else InterfaceType.HDLC)
        self.client_title, self.security, self.reset_counter = client_title, security, reset_counter
        self.settings.reuse_aare_counter = reuse_aare_counter
        self.shipped_errors = shipped_errors
        if not shipped_errors:
            self.settings.__class__ = GuruxSettings  # see 14.
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
        items = [self.ldn, self.energy, self.clock, self.frame_counter, self.association]
        if push_setup is not None:
            self.push = self._push_setup(push_setup)
            items.append(self.push)
        for item in items:
            self.items.append(item)
            self.association.objectList.append(item)  # see 3.
        self.initialize()
        self.policies: list[int] = []  # the security of each association gurux accepted
        self.failures: list[BaseException] = []  # see handleCommand
        settings = self.settings
        settings.setConnected = lambda value: setattr(settings, "connected", value)  # see 8.

    def _push_setup(self, version: int) -> Any:
        push = GXDLMSPushSetup("0.0.25.9.0.255")
        push.version = version
        push.pushObjectList = [(self.clock, GXDLMSCaptureObject(2, 0)),
                               (self.energy, GXDLMSCaptureObject(2, 0))]
        push.service, push.destination = ServiceType.TCP, PUSH_DESTINATION
        push.communicationWindow = [tuple(GXDateTime(t) for t in PUSH_WINDOW)]
        push.randomisationStartInterval, push.numberOfRetries = 5, 3
        push.repetitionDelay = 120
        push.repetitionDelay2.min, push.repetitionDelay2.exponent, push.repetitionDelay2.max = \
            60, 2, 600
        return push

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


__all__ = ["GuruxMeter", "GuruxTcpServer", "HlsAssociation", "gurux_meters", "patched_gurux"]


@contextmanager
def gurux_meters(block_key: bytes, auth_key: bytes) -> Iterator[Callable[..., GuruxTcpServer]]:
    """Start Gurux meters (GuruxMeter options) under the patches; every one is stopped on exit,
    and none may have raised (refusing is fine, breaking is not)."""
    with patched_gurux() as seen:
        started: list[GuruxTcpServer] = []

        def start(**options: Any) -> GuruxTcpServer:
            server = GuruxTcpServer(GuruxMeter(block_key, auth_key, seen, **options)).start()
            started.append(server)
            return server

        try:
            yield start
        finally:
            for server in started:
                server.stop()
    for server in started:
        assert server.errors == [] and server.meter.failures == []
