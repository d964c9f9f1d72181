"""One TCP connection to a simulated meter, without sockets: bytes in, bytes out.

:class:`SimulatedMeter` is what one listening port serves (its MeterModel, HDLC address, link and
association limits, quirks). :class:`ServerSession` is one client connection to it: a server-role
``HdlcConnection`` (or a wrapper framer) under a server-role ``Association``, with the model
answering GET / SET / ACTION. ``receive(data)`` returns the bytes to write back; the socket loop
(:mod:`.server`) owns time (latency, inactivity) and the sockets.

HDLC addressing, like real meters: the server answers logical device 1 with its physical address
(2 or 4 bytes, as the client chose) or without one (1 byte, like the original field meter), so the
link is built on the first frame addressed to us, with the addresses that frame used. The client
address picks the association: 1 and 32 LLS with the meter's password (or the HLS mechanism and
ciphering of ``MeterOptions.authentication``/``security``, with the meter's AssociationSecurity: keys,
system title from its index, replay guard), 16 public without authentication, any other client
is refused at the AARQ.

Quirks applied here (counted on service responses only, so association always works):
``drop_every`` N (the Nth GET/SET/ACTION answer is computed but never written: HDLC clients then
repeat their I frame and get it again, wrapper clients time out) and ``garbage_every`` N (noise
bytes before the Nth answer; over the wrapper this puts the stream out of step, as a broken line
would). ``bad_with_list`` spoils every GET-with-list answer the way some field meters do.
"""

from __future__ import annotations

import os
from typing import Any

from ..protocol.apdu.get import GetResponseWithList
from ..protocol.apdu.xdlms import Conformance
from ..protocol.association import (
    NEED_DATA,
    ActionRequested,
    Association,
    AssociationSettings,
    Authentication,
    GetRequested,
    ReleaseRequested,
    Role,
    SetRequested,
)
from ..protocol.axdr import encode_length
from ..protocol.errors import DlmsError
from ..protocol.hdlc import (
    ConnectRequested,
    DataReceived,
    Disconnected,
    Frame,
    FrameKind,
    HdlcAddress,
    HdlcConnection,
    LinkParameters,
    LinkState,
    encode_frame,
    scan,
)
from ..protocol.security import GcmKey, Policy, SecurityContext
from ..protocol.security.server import AssociationSecurity
from ..protocol.wrapper import WrapperFramer, encode_wrapper
from .model import MeterModel, MeterOptions, server_system_title

__all__ = [
    "GARBAGE", "LLS_CLIENTS", "PUBLIC_CLIENT", "ServerSession", "SimulatedMeter", "spoil_with_list",
]

PUBLIC_CLIENT = 16
LLS_CLIENTS = (1, 32)
MANAGEMENT_LOGICAL = 1
# Noise before a reply: no 0x7E in it, so the HDLC framer skips it as line garbage.
GARBAGE = b"\x00\xff\x55\xaa\x13\x11"
# GET / SET / ACTION request tags: the answers the drop and garbage quirks count.
_SERVICE_TAGS = frozenset((0xC0, 0xC1, 0xC3, 0xC8, 0xC9, 0xCB, 0xDB))  # plain, glo-, general-glo
_PRELINK_LIMIT = 4096  # bytes kept while no frame addressed to us has come


class SimulatedMeter:
    """One simulated meter as the network sees it: model, address, limits, quirks, counters."""

    __slots__ = (
        "_settings",
        "conformance",
        "discs",
        "index",
        "link_limits",
        "model",
        "options",
        "physical",
        "releases",
        "requests",
        "security",
    )

    def __init__(self, model: MeterModel, physical: int) -> None:
        options = model.options
        self.index = model.index
        self.model = model
        self.options = options
        self.physical = physical
        self.link_limits = LinkParameters(
            options.max_info_field, options.max_info_field, options.window, options.window
        )
        self.conformance = server_conformance(options)
        self.security = server_security(model)  # None: LLS meter
        self._settings: dict[tuple[int, bytes], AssociationSettings] = {}
        self.requests = 0  # GET / SET / ACTION requests answered (block transfers count once)
        # Polite closes seen (a client shutting down cleanly sends RLRQ, then DISC on HDLC).
        self.releases = 0  # RLRQ received in an association
        self.discs = 0  # HDLC DISC received on a connected link

    def is_our_address(self, address: HdlcAddress) -> bool:
        return address.logical == MANAGEMENT_LOGICAL and address.physical in (None, self.physical)

    def settings_for(self, client_sap: int) -> AssociationSettings:
        """Association settings for this client SAP (cached; the LLS secret can be changed by a
        SET of the association's attribute 7, which gives a new cache key)."""
        password = self.model.lls_password
        key = (client_sap, password)
        settings = self._settings.get(key)
        if settings is None:
            if client_sap == PUBLIC_CLIENT:
                auth, secret = Authentication.NONE, b""
            else:
                # Unknown clients get a secret nobody knows: their AARQ is refused.
                auth = Authentication(self.options.authentication)
                secret = password if client_sap in LLS_CLIENTS else os.urandom(16)
            settings = AssociationSettings(
                authentication=auth,
                password=secret,
                security=None if client_sap == PUBLIC_CLIENT else self.security,
                conformance=self.conformance,
                max_pdu_size=self.options.max_pdu_size,
            )
            if len(self._settings) > 16:
                self._settings.clear()
            self._settings[key] = settings
        return settings


def server_security(model: MeterModel) -> AssociationSecurity | None:
    """Keys, system title (from the meter index) and replay guard of an HLS meter."""
    options = model.options
    if options.authentication == "lls":
        return None
    policy = {"": None, "auth": Policy.AUTHENTICATION, "enc": Policy.ENCRYPTION,
              "auth-enc": Policy.AUTHENTICATED_ENCRYPTION}[options.security]
    context = SecurityContext(GcmKey(options.block_key, options.auth_key))
    return AssociationSecurity(context, server_system_title(model.index), policy,
                          lambda: os.urandom(16), model.received,
                          refuse_dedicated=options.refuse_dedicated)


def server_conformance(options: MeterOptions) -> Conformance:
    c = (
        Conformance.GET
        | Conformance.SET
        | Conformance.ACTION
        | Conformance.SELECTIVE_ACCESS
        | Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ
        | Conformance.PRIORITY_MGMT_SUPPORTED
    )
    if options.with_list:
        c |= Conformance.MULTIPLE_REFERENCES
    return c


def spoil_with_list(raw: bytes, results: list[Any], quirk: str) -> bytes:
    """A GET-with-list answer ``raw`` (for ``results``) made malformed as field meters do."""
    count = encode_length(len(results))
    if quirk == "short":  # the declared count, one result less
        fewer = GetResponseWithList(0, tuple(results[:-1])).encode()
        return raw[:3] + count + fewer[3 + len(encode_length(len(results) - 1)):]
    if quirk == "block":  # last-block, block number 1, raw-data: what a data block carries
        body = raw[3:]
        return raw[:3] + b"\x01\x00\x00\x00\x01\x00" + encode_length(len(body)) + body
    raise ValueError(f"unknown bad_with_list quirk {quirk!r}")


class ServerSession:
    """One client connection: ``receive(data) -> bytes to write``; ``closed`` asks the loop to
    close the socket (wrapper stream out of step)."""

    __slots__ = (
        "_burst",
        "_pre",
        "_wport",
        "assoc",
        "closed",
        "dropped",
        "errors",
        "garbled",
        "link",
        "meter",
        "replies",
        "wrapper",
    )

    def __init__(self, meter: SimulatedMeter, wrapper: bool = False) -> None:
        self.meter = meter
        self.link: HdlcConnection | None = None
        self.wrapper: WrapperFramer | None = WrapperFramer() if wrapper else None
        self.assoc: Association | None = None
        self._pre = bytearray()  # HDLC bytes before the first frame addressed to us
        self._burst = 0  # I frames of the client's current burst (partial_ack quirk)
        self._wport = (0, 0)  # wrapper: (client wPort, our wPort) of the association
        self.closed = False
        self.replies = 0  # service responses produced (drop/garbage counting)
        self.dropped = 0
        self.garbled = 0
        self.errors = 0  # malformed requests ignored

    # -- bytes in -----------------------------------------------------------------------------
    def receive(self, data: bytes) -> bytes:
        if self.wrapper is not None:
            return self._receive_wrapper(data)
        link = self.link
        if link is None:
            link = self._open_link(data)
            if link is None:
                return b""
        elif self.meter.options.partial_ack:
            self._partial_ack(link, data)
        else:
            link.receive_data(data)
        out: list[bytes] = []
        while True:
            try:
                event = link.next_event()
            except DlmsError:
                self.errors += 1  # the link stays usable (see HdlcConnection)
                continue
            if event is NEED_DATA:
                break
            kind = type(event)
            if isinstance(event, DataReceived):
                auto = link.data_to_send()  # e.g. an RR acknowledging the last segment: rare
                if auto:
                    out.append(auto)
                for apdu, service in self._answer(event.apdu):
                    try:
                        frames = link.send_data(apdu)
                    except DlmsError:  # the client moved on while we were still sending
                        self.errors += 1
                        continue
                    out.append(self._quirks(frames) if service else frames)
            elif kind is ConnectRequested:
                self._new_association(link.client.logical)
            elif kind is Disconnected:
                # Only a DISC: the socket loop closes on EOF and never feeds it to the link.
                self.meter.discs += 1
                if self.assoc is not None:
                    self.assoc.reset()
        auto = link.data_to_send()
        if auto:
            out.append(auto)
        if link.state is LinkState.DISCONNECTED and link.framer.buffered <= 1:  # a flag at most
            # After DISC the next SNRM may come from another client SAP (or address size):
            # take its addresses afresh, as on a new connection.
            self.link = None
        return b"".join(out)

    def _open_link(self, data: bytes) -> HdlcConnection | None:
        """Wait for the first frame addressed to us and take its addresses for the link."""
        pre = self._pre
        pre += data
        while pre:
            consumed, frame, _, _ = scan(pre)
            if (
                frame is not None
                and frame.source.size == 1  # client addresses are one byte
                and self.meter.is_our_address(frame.destination)
            ):
                link = HdlcConnection(
                    Role.SERVER, frame.source, frame.destination, self.meter.link_limits
                )
                link.receive_data(bytes(pre))
                pre.clear()
                self.link = link
                return link
            if not consumed:
                break
            del pre[:consumed]  # garbage, or a frame for another meter: not answered
        if len(pre) > _PRELINK_LIMIT:
            del pre[:-_PRELINK_LIMIT]
        return None

    def _partial_ack(self, link: HdlcConnection, data: bytes) -> None:
        """Hand the link only the first ``partial_ack`` I frames of each burst; a poll beyond them
        is answered as if it had come alone (an RR with the same N(R))."""
        pre = self._pre
        pre += data
        while pre:
            consumed, frame, _, _ = scan(pre)
            if not consumed:
                break
            del pre[:consumed]
            if frame is None:
                continue
            if frame.kind is FrameKind.I:
                self._burst += 1
                taken = self._burst <= self.meter.options.partial_ack
                if frame.poll_final:
                    self._burst = 0
                    if not taken:  # the poll still needs its answer: RR N(R) = what we took
                        frame = Frame(FrameKind.RR, frame.destination, frame.source, True, 0,
                                      frame.nr)
                elif not taken:
                    continue
            link.receive_data(encode_frame(frame))

    def _receive_wrapper(self, data: bytes) -> bytes:
        framer = self.wrapper
        assert framer is not None
        framer.feed(data)
        out: list[bytes] = []
        while True:
            try:
                pdu = framer.next_pdu()
            except DlmsError:
                self.closed = True  # out of step for good: a meter drops the connection
                break
            if pdu is None:
                break
            if pdu.destination != MANAGEMENT_LOGICAL:
                continue  # no such logical device
            if self.assoc is None or self._wport != (pdu.source, pdu.destination):
                self._wport = (pdu.source, pdu.destination)
                self._new_association(pdu.source)
            for apdu, service in self._answer(pdu.apdu):
                raw = encode_wrapper(apdu, pdu.destination, pdu.source)
                out.append(self._quirks(raw) if service else raw)
        return b"".join(out)

    # -- the application ----------------------------------------------------------------------
    def _new_association(self, client_sap: int) -> None:
        self.assoc = Association(Role.SERVER, self.meter.settings_for(client_sap))

    def _answer(self, apdu: bytes) -> list[tuple[bytes, bool]]:
        """The APDUs answering one request, each flagged True if it is a service response."""
        assoc = self.assoc
        if assoc is None:  # data before SNRM cannot happen on a link; be safe anyway
            return []
        service = bool(apdu) and apdu[0] in _SERVICE_TAGS
        answers: list[tuple[bytes, bool]] = []
        try:
            assoc.receive_data(apdu)
            while True:
                event = assoc.next_event()
                if event is NEED_DATA:
                    break
                kind = type(event)
                if kind is GetRequested:
                    answers.append((self._get(assoc, event), True))
                elif kind is SetRequested:
                    answers.append((self._set(assoc, event), True))
                elif kind is ActionRequested:
                    answers.append((self._action(assoc, event), True))
                elif kind is ReleaseRequested:
                    self.meter.releases += 1
        except DlmsError:
            self.errors += 1  # undecodable or out-of-state request: a meter stays silent
        while True:
            raw = assoc.data_to_send()  # AARE, RLRE, refusals, next data blocks
            if not raw:
                break
            answers.append((raw, service))
        if service:
            self.meter.requests += 1
        return answers

    def _get(self, assoc: Association, event: GetRequested) -> bytes:
        get = self.meter.model.get
        results = [get(d.class_id, d.wire[2:8], d.attribute, access) for d, access in event.items]
        raw = assoc.respond_get(event.invoke_id, results)
        quirk = self.meter.options.bad_with_list
        if quirk and event.with_list and raw[:2] == b"\xc4\x03":
            return spoil_with_list(raw, results, quirk)
        return raw

    def _set(self, assoc: Association, event: SetRequested) -> bytes:
        put = self.meter.model.set
        results = [put(d.class_id, d.wire[2:8], d.attribute, v) for d, _, v in event.items]
        return assoc.respond_set(event.invoke_id, results)

    def _action(self, assoc: Association, event: ActionRequested) -> bytes:
        d = event.descriptor
        result, data = self.meter.model.action(d.class_id, d.wire[2:8], d.method, event.parameters)
        return assoc.respond_action(event.invoke_id, result, data)

    def _quirks(self, raw: bytes) -> bytes:
        options = self.meter.options
        self.replies = n = self.replies + 1
        if options.drop_every and n % options.drop_every == 0:
            self.dropped += 1
            return b""
        if options.garbage_every and n % options.garbage_every == 0:
            self.garbled += 1
            return GARBAGE + raw
        return raw

    def describe(self) -> dict[str, Any]:
        return {
            "meter": self.meter.index,
            "link": None if self.link is None else self.link.state.value,
            "association": None if self.assoc is None else self.assoc.state.value,
            "replies": self.replies,
            "dropped": self.dropped,
            "errors": self.errors,
        }
