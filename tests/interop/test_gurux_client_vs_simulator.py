"""The simulator proven with an independent client: gurux_dlms's GXDLMSClient over a plain socket.

Gurux builds every request frame and parses every answer (its own HDLC, wrapper, ACSE and xDLMS
code); we only move bytes: write what Gurux builds, read until ``getData`` says the reply is
complete, ``receiverReady`` for more (HDLC RR or GET-next). Values are compared with the
MeterModel of the same meter at the same frozen instant. Gurux's own server classes are not used.
gurux_dlms is GPLv2 and imported here, in tests only.
"""

from __future__ import annotations

import datetime as dt
import socket
from typing import Any

import pytest

gurux = pytest.importorskip("gurux_dlms")

from gurux_dlms import GXByteBuffer, GXDateTime, GXDLMSClient, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.objects import (
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from tb_dlms.protocol.hdlc import HdlcFramer
from tb_dlms.simulator import values as v
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.objects import OBJECT_DEFS
from tb_dlms.simulator.server import SimulatorServer

pytestmark = pytest.mark.interop

T0 = 1_700_000_437.0  # frozen now: 2023-11-14T22:20:37Z, 7 s after a quarter-hour row
UTC = dt.timezone.utc


class GuruxSession:
    """Moves Gurux's frames over a socket (the loop of Gurux's own reader examples)."""

    def __init__(self, port: int, client: GXDLMSClient) -> None:
        self.client = client
        self.sock = socket.create_connection(("127.0.0.1", port), 2.0)
        self.sock.settimeout(2.0)
        self.received = bytearray()  # the simulator's whole answer stream

    def packet(self, data: Any, reply: GXReplyData) -> None:
        if data:
            self.sock.sendall(bytes(data))
        buffer = GXByteBuffer()
        notify = GXReplyData()
        while not self.client.getData(buffer, reply, notify):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError("simulator closed the connection")
            self.received += chunk
            buffer.set(chunk)

    def block(self, frames: Any, reply: GXReplyData | None = None) -> GXReplyData:
        reply = reply if reply is not None else GXReplyData()
        for frame in frames if isinstance(frames, list) else [frames]:
            reply.clear()
            self.packet(frame, reply)
            while reply.isMoreData():
                self.packet(self.client.receiverReady(reply), reply)
        return reply

    def open(self) -> None:
        snrm = self.client.snrmRequest()
        if snrm:  # the wrapper has no link layer to open
            self.client.parseUAResponse(self.block(snrm).data)
        self.client.parseAareResponse(self.block(self.client.aarqRequest()).data)

    def read(self, obj: Any, attribute: int) -> Any:
        reply = self.block(self.client.read(obj, attribute))
        self.client.updateValue(obj, attribute, reply.value)
        return reply.value

    def close(self) -> None:
        try:
            self.block(self.client.releaseRequest())
            disc = self.client.disconnectRequest()
            if disc:
                self.block(disc)
        finally:
            self.sock.close()


@pytest.fixture
def make_server():
    servers: list[SimulatorServer] = []

    def make(**kw: Any) -> SimulatorServer:
        kw.setdefault("clock", lambda: T0)
        server = SimulatorServer(2, 0, **kw).run_in_thread()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def lls_client(interface: InterfaceType = InterfaceType.HDLC) -> GXDLMSClient:
    return GXDLMSClient(True, 1, 1, Authentication.LOW, "22222222", interface)


def public_client(interface: InterfaceType = InterfaceType.HDLC) -> GXDLMSClient:
    return GXDLMSClient(True, 16, 1, Authentication.NONE, None, interface)


def gx_time(value: Any) -> dt.datetime:
    return (value.value if isinstance(value, GXDateTime) else value).astimezone(UTC)


def read_everything(session: GuruxSession, server: SimulatorServer, index: int = 1) -> None:
    """Every object of the meter, checked against the model of meter ``index``."""
    model = server.model(index)
    # Registers: value and scaler_unit, against the model's truth.
    for spec in v.REGISTERS:
        reg = GXDLMSRegister(spec.obis.dotted())
        session.read(reg, 3)
        raw = session.read(reg, 2)
        want_raw, scaler, unit = model.expected(spec.obis)
        assert raw == want_raw, spec.key
        assert (reg.scaler, int(reg.unit)) == (10.0**scaler, unit), spec.key
    # Clock.
    clock = GXDLMSClock("0.0.1.0.0.255")
    session.read(clock, 2)
    assert gx_time(clock.time) == dt.datetime.fromtimestamp(int(T0), UTC)
    # Serial number: different per meter.
    serial = GXDLMSData("0.0.96.1.0.255")
    value = session.read(serial, 2)
    assert bytes(value) == b"SIM%08d" % index
    # Disconnect control: output state, control state, mode.
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    assert session.read(dc, 2) is True
    assert session.read(dc, 3) == 1
    assert session.read(dc, 4) == 1
    # Load profile: capture objects first (Gurux needs them to read rows).
    pg = GXDLMSProfileGeneric("1.0.99.1.0.255")
    session.read(pg, 3)
    assert len(pg.captureObjects) == 3
    assert session.read(pg, 4) == 900
    entries = session.read(pg, 7)
    assert entries > 0
    reply = session.block(session.client.readRowsByEntry(pg, 1, 3))
    session.client.updateValue(pg, 2, reply.value)
    assert len(pg.buffer) == 3
    newest = dt.datetime.fromtimestamp(int(T0) // 900 * 900, UTC)
    start, end = newest - dt.timedelta(hours=1), newest
    reply = session.block(session.client.readRowsByRange(pg, start, end))
    session.client.updateValue(pg, 2, reply.value)
    stamps = [gx_time(row[0]) for row in pg.buffer]
    assert stamps == [start + dt.timedelta(minutes=15 * k) for k in range(5)]
    energy = [row[1] for row in pg.buffer]
    assert energy == [
        model.expected(v.REGISTERS_BY_KEY["active_energy"].obis, s.timestamp())[0] for s in stamps
    ]


def test_gurux_lls_client_reads_every_object_over_hdlc(make_server):
    server = make_server()
    session = GuruxSession(server.ports[1], lls_client())
    session.open()
    read_everything(session, server)
    session.close()
    assert server.meters[1].requests == 2 * 9 + 1 + 1 + 3 + 3 + 2  # one GET per read above


def test_gurux_reads_the_association_object_list(make_server):
    server = make_server()
    session = GuruxSession(server.ports[0], lls_client())
    session.open()
    reply = session.block(session.client.getObjectsRequest())
    objects = session.client.parseObjects(reply.data, True)
    listed = sorted((int(o.objectType), o.logicalName) for o in objects)
    assert listed == sorted((d.class_id, d.obis.dotted()) for d in OBJECT_DEFS)
    session.close()


def test_gurux_read_list_gets_all_registers_in_one_request(make_server):
    server = make_server()
    session = GuruxSession(server.ports[0], lls_client())
    session.open()
    regs = [GXDLMSRegister(spec.obis.dotted()) for spec in v.REGISTERS]
    values: list[Any] = []
    reply = GXReplyData()
    for frame in session.client.readList([(r, 2) for r in regs]):
        session.block(frame, reply)
        values.extend(reply.value)
    assert values == [server.model(0).expected(spec.obis)[0] for spec in v.REGISTERS]
    assert server.meters[0].requests == 1
    session.close()


def test_gurux_action_remote_disconnect_and_reconnect(make_server):
    server = make_server()
    session = GuruxSession(server.ports[0], lls_client())
    session.open()
    dc = GXDLMSDisconnectControl("0.0.96.3.10.255")
    session.block(dc.remoteDisconnect(session.client))
    assert session.read(dc, 3) == 0 and server.model(0).control_state == 0
    session.block(dc.remoteReconnect(session.client))
    assert session.read(dc, 2) is True
    session.close()


def test_gurux_public_client_without_authentication(make_server):
    server = make_server()
    session = GuruxSession(server.ports[0], public_client())
    session.open()
    assert bytes(session.read(GXDLMSData("0.0.96.1.0.255"), 2)) == b"SIM00000000"
    session.close()


def test_gurux_wrong_password_is_refused(make_server):
    server = make_server()
    client = GXDLMSClient(True, 1, 1, Authentication.LOW, "wrong", InterfaceType.HDLC)
    session = GuruxSession(server.ports[0], client)
    client.parseUAResponse(session.block(client.snrmRequest()).data)
    with pytest.raises(Exception, match="(?i)authentication"):
        client.parseAareResponse(session.block(client.aarqRequest()).data)
    session.sock.close()


def test_gurux_wrapper_client_reads_every_object(make_server):
    server = make_server(wrapper=True)
    session = GuruxSession(server.ports[1], public_client(InterfaceType.WRAPPER))
    session.open()
    read_everything(session, server)
    session.close()


def test_gurux_with_segmentation_and_block_transfer(make_server):
    """Max info 32 (HDLC segments both ways) and PDU 64 (GET blocks): Gurux reassembles both."""
    server = make_server(options=MeterOptions(max_info_field=32, max_pdu_size=64))
    client = lls_client()
    client.hdlcSettings.maxInfoTX = client.hdlcSettings.maxInfoRX = 32
    session = GuruxSession(server.ports[0], client)
    session.open()
    assert (client.hdlcSettings.maxInfoTX, client.hdlcSettings.maxInfoRX) == (32, 32)
    read_everything(session, server, 0)
    reply = session.block(client.getObjectsRequest())
    assert len(client.parseObjects(reply.data, True)) == len(OBJECT_DEFS)
    session.close()
    framer = HdlcFramer()
    framer.feed(bytes(session.received))
    frames = []
    while (frame := framer.next_frame()) is not None:
        frames.append(frame)
    assert framer.discarded_bytes == 0
    assert max(len(f.info) for f in frames) == 32
    assert sum(f.segmented for f in frames) > 20
    # First segment of each GET response with a data block: LLC, then tag C4 02.
    assert sum(f.info.startswith(b"\xe6\xe7\x00\xc4\x02") for f in frames) > 20


def test_gurux_sees_no_with_list_when_the_meter_refuses_it(make_server):
    server = make_server(options=MeterOptions(with_list=False))
    client = lls_client()
    session = GuruxSession(server.ports[0], client)
    session.open()
    from gurux_dlms.enums import Conformance as GxConformance

    assert not client.negotiatedConformance & GxConformance.MULTIPLE_REFERENCES
    session.close()
