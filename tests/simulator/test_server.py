"""The simulator's network side over real loopback sockets, driven by a client built from our own
core (HdlcConnection + Association in the client role over a plain blocking socket).

Expected values come from the MeterModel itself (the server must serve exactly what the model
answers); the clock is frozen so both sides see the same instant.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from tb_dlms.protocol.apdu import (
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    ExceptionResponse,
    MethodDescriptor,
    SelectiveAccess,
)
from tb_dlms.protocol.apdu.acse import AcseServiceUserDiagnostic
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.association import (
    NEED_DATA,
    ActionCompleted,
    Associated,
    Association,
    AssociationSettings,
    Authentication,
    GetResult,
    Released,
    Role,
    ServiceFailure,
    SetResult,
)
from tb_dlms.protocol.axdr import DataType, Typed, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import AuthenticationError
from tb_dlms.protocol.hdlc import (
    Connected,
    DataReceived,
    Disconnected,
    HdlcAddress,
    HdlcConnection,
    HdlcFramer,
    LinkParameters,
)
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.wrapper import WrapperFramer, encode_wrapper
from tb_dlms.simulator import values as v
from tb_dlms.simulator.connection import GARBAGE
from tb_dlms.simulator.model import MeterOptions
from tb_dlms.simulator.objects import OBJECT_DEFS
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.testing.ports import free_port_range

T0 = 1_700_000_437.0  # frozen "now" shared by the server's models and the expectations
PASSWORD = b"22222222"
REGS = [AttributeDescriptor(3, r.obis, 2) for r in v.REGISTERS]
CLOCK = AttributeDescriptor(8, Obis.parse("0-0:1.0.0"), 2)
SERIAL = AttributeDescriptor(1, Obis.parse("0-0:96.1.0"), 2)
PROFILE = AttributeDescriptor(7, Obis.parse("1-0:99.1.0"), 2)
DISCONNECT = Obis.parse("0-0:96.3.10")


class RawClient:
    """A blocking test client: one request at a time, segments, RRs and GET-next handled."""

    def __init__(
        self,
        port: int,
        client_sap: int = 1,
        password: bytes = PASSWORD,
        server: HdlcAddress | None = None,
        wrapper: bool = False,
        max_info: int = 128,
        max_pdu: int = 0xFFFF,
        timeout: float = 1.0,
        sock: socket.socket | None = None,
    ) -> None:
        self.sock = sock or socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        self.client_sap = client_sap
        auth = Authentication.NONE if client_sap == 16 else Authentication.LLS
        self.assoc = Association(
            Role.CLIENT,
            AssociationSettings(
                authentication=auth,
                password=password if auth is Authentication.LLS else b"",
                max_pdu_size=max_pdu,
                typed_values=True,
            ),
        )
        self.wrapper = WrapperFramer() if wrapper else None
        self.link = (
            None
            if wrapper
            else HdlcConnection(
                Role.CLIENT,
                HdlcAddress(client_sap),
                server or HdlcAddress(1),
                LinkParameters(max_info, max_info),
            )
        )
        self.received = bytearray()  # everything read from the socket

    def close(self) -> None:
        self.sock.close()

    # -- bytes --------------------------------------------------------------------------------
    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.received += data
        return data

    def link_event(self) -> Any:
        link = self.link
        while True:
            event = link.next_event()
            out = link.data_to_send()  # RR for segments, next segments of our request
            if out:
                self.sock.sendall(out)
            if event is not NEED_DATA:
                return event
            link.receive_data(self._recv())

    def send_apdu(self, apdu: bytes) -> None:
        if self.wrapper is not None:
            self.sock.sendall(encode_wrapper(apdu, self.client_sap, 1))
        else:
            self.sock.sendall(self.link.send_data(apdu))

    def recv_apdu(self) -> bytes:
        if self.wrapper is not None:
            while (pdu := self.wrapper.next_pdu()) is None:
                self.wrapper.feed(self._recv())
            return pdu.apdu
        while True:
            event = self.link_event()
            if isinstance(event, DataReceived):
                return event.apdu
            if isinstance(event, Disconnected):
                raise EOFError(event.reason)  # noqa: TRY004 - the link ended, not a type issue

    def exchange(self, apdu: bytes) -> Any:
        """Send one request APDU and return the association event that answers it."""
        self.send_apdu(apdu)
        return self.answer()

    def answer(self) -> Any:
        while True:
            self.assoc.receive_data(self.recv_apdu())
            event = self.assoc.next_event()
            follow = self.assoc.data_to_send()  # GET-next during a block transfer
            if follow:
                self.send_apdu(follow)
            if event is not NEED_DATA:
                return event

    # -- services -----------------------------------------------------------------------------
    def open(self) -> Associated:
        if self.link is not None:
            self.sock.sendall(self.link.connect())
            assert isinstance(self.link_event(), Connected)
        return self.exchange(self.assoc.associate())

    def get(self, descriptor: AttributeDescriptor, access: SelectiveAccess | None = None) -> Any:
        event = self.exchange(self.assoc.get(descriptor, access)[1])
        assert isinstance(event, GetResult), event
        return event.results[0]

    def close_gracefully(self) -> None:
        assert isinstance(self.exchange(self.assoc.release()), Released)
        if self.link is not None:
            self.sock.sendall(self.link.disconnect())
            assert isinstance(self.link_event(), Disconnected)
        self.close()


def wire(value: Any) -> bytes:
    return encode_data(value)


@pytest.fixture
def make_server():
    servers: list[SimulatorServer] = []

    def make(count: int = 1, **kw: Any) -> SimulatorServer:
        kw.setdefault("clock", lambda: T0)
        server = SimulatorServer(count, 0, **kw).run_in_thread()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server):
    return make_server()


def client(sim: SimulatorServer, i: int = 0, **kw: Any) -> RawClient:
    return RawClient(sim.ports[i], **kw)


# -- association and every object ----------------------------------------------------------


def test_associate_and_read_every_readable_attribute(server):
    c = client(server)
    event = c.open()
    assert isinstance(event, Associated)
    assert event.conformance & Conformance.MULTIPLE_REFERENCES
    model = server.model(0)
    count = 0
    for obj in OBJECT_DEFS:
        for attr in obj.attributes:
            if attr.getter is None:
                continue
            got = c.get(AttributeDescriptor(obj.class_id, obj.obis, attr.id))
            want = model.get(obj.class_id, obj.obis, attr.id)
            assert wire(got) == wire(want), (obj.obis, attr.id)
            count += 1
    assert count >= 30
    c.close_gracefully()


def test_registers_match_expected_values_and_scalers(server):
    c = client(server)
    c.open()
    model = server.model(0)
    for spec, desc in zip(v.REGISTERS, REGS):
        raw, scaler, unit = model.expected(spec.obis)
        assert c.get(desc).value == raw
        su = c.get(AttributeDescriptor(3, spec.obis, 3))
        assert [x.value for x in su.value] == [scaler, unit]
    c.close_gracefully()


def test_get_with_list_returns_all_nine_registers_in_one_round_trip(server):
    c = client(server)
    c.open()
    event = c.exchange(c.assoc.get_with_list(REGS)[1])
    assert isinstance(event, GetResult)
    model = server.model(0)
    assert [r.value for r in event.results] == [model.expected(r.obis)[0] for r in v.REGISTERS]
    c.close_gracefully()


def test_public_client_without_password_and_one_byte_server_address(server):
    c = client(server, client_sap=16, server=HdlcAddress(1))  # 0x03 like the field meter
    assert isinstance(c.open(), Associated)
    assert c.get(SERIAL).value == b"SIM00000000"
    c.close_gracefully()


@pytest.mark.parametrize("size", [2, 4])
def test_server_address_with_physical_part_in_two_or_four_bytes(make_server, size):
    srv = make_server(2, physical_base=100)
    c = client(srv, 1, server=HdlcAddress(1, 101, size))
    c.open()
    assert c.get(SERIAL).value == b"SIM00000001"
    c.close_gracefully()


def test_frames_for_another_physical_address_are_not_answered(server):
    c = client(server, server=HdlcAddress(1, 99, 2), timeout=0.2)
    c.sock.sendall(c.link.connect())
    with pytest.raises(socket.timeout):
        c.link_event()
    c.close()


def test_wrong_password_is_refused_with_authentication_failure(server):
    c = client(server, password=b"wrong")
    with pytest.raises(AuthenticationError) as info:
        c.open()
    assert info.value.diagnostic == AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
    c.close()


def test_unknown_client_is_refused(server):
    c = client(server, client_sap=99, password=PASSWORD)
    with pytest.raises(AuthenticationError):
        c.open()
    c.close()


def test_get_before_association_is_refused(server):
    c = client(server)
    c.sock.sendall(c.link.connect())
    c.link_event()
    c.send_apdu(bytes.fromhex("c001c1000301012007 00ff0200".replace(" ", "")))
    assert c.recv_apdu()[0] == 0xD8  # exception-response
    c.close()


# -- SET and ACTION ----------------------------------------------------------------------------


def test_set_clock_moves_the_meter_clock(server):
    c = client(server)
    c.open()
    target = CosemDateTime.from_bytes(bytes.fromhex("07e6010207040506ff000000"))
    event = c.exchange(c.assoc.set(CLOCK, Typed(DataType.OCTET_STRING, target.to_bytes()))[1])
    assert isinstance(event, SetResult) and event.results == (DataAccessResult.SUCCESS,)
    # 2022-01-02 (Sunday) 04:05:06 UTC; the clock does not move while time is frozen.
    assert c.get(CLOCK).value[:8] == target.to_bytes()[:8]
    c.close_gracefully()


def test_action_disconnect_then_reconnect(server):
    c = client(server)
    c.open()
    state = AttributeDescriptor(70, DISCONNECT, 3)
    for method, expected in ((1, 0), (2, 1)):  # remote_disconnect, remote_reconnect (mode 1)
        event = c.exchange(
            c.assoc.action(MethodDescriptor(70, DISCONNECT, method), Typed(DataType.INTEGER, 0))[1]
        )
        assert isinstance(event, ActionCompleted) and event.result is ActionResult.SUCCESS
        assert c.get(state).value == expected
        assert server.model(0).control_state == expected
    c.close_gracefully()


def test_set_of_read_only_attribute_is_denied(server):
    c = client(server)
    c.open()
    event = c.exchange(c.assoc.set(REGS[0], Typed(DataType.LONG_UNSIGNED, 1))[1])
    assert event.results == (DataAccessResult.READ_WRITE_DENIED,)
    c.close_gracefully()


# -- block transfer, segmentation and the other quirks -------------------------------------


def test_load_profile_by_entry_uses_block_transfer_with_small_pdu(make_server):
    srv = make_server(options=MeterOptions(max_pdu_size=64))
    c = client(srv, max_pdu=64)
    assert c.open().server_max_pdu_size == 64
    access = SelectiveAccess(
        2,
        Typed(
            DataType.STRUCTURE,
            (
                Typed(DataType.DOUBLE_LONG_UNSIGNED, 1),
                Typed(DataType.DOUBLE_LONG_UNSIGNED, 10),
                Typed(DataType.LONG_UNSIGNED, 0),
                Typed(DataType.LONG_UNSIGNED, 0),
            ),
        ),
    )
    rows = c.get(PROFILE, access)
    assert len(rows.value) == 10
    assert wire(rows) == wire(srv.model(0).get(7, PROFILE.obis, 2, access))
    c.close_gracefully()


def test_small_server_pdu_forces_blocks_even_for_a_large_client_pdu(make_server):
    srv = make_server(options=MeterOptions(max_pdu_size=64))
    c = client(srv)  # proposes 65535
    c.open()
    blocks = []
    orig = c.assoc.receive_data
    c.assoc.receive_data = lambda apdu: (blocks.append(apdu[0]), orig(apdu))[1]
    listed = c.get(AttributeDescriptor(15, Obis.parse("0-0:40.0.0"), 2))
    assert len(listed.value) == len(OBJECT_DEFS)
    assert blocks.count(0xC4) > 10
    c.close_gracefully()


def test_segmentation_with_max_info_32(make_server):
    srv = make_server(options=MeterOptions(max_info_field=32))
    c = client(srv)
    c.open()
    assert c.link.parameters.max_info_rx == 32
    listed = c.get(AttributeDescriptor(15, Obis.parse("0-0:40.0.0"), 2))
    assert len(listed.value) == len(OBJECT_DEFS)
    c.close_gracefully()
    framer = HdlcFramer()
    framer.feed(bytes(c.received))
    frames = []
    while (frame := framer.next_frame()) is not None:
        frames.append(frame)
    assert max(len(f.info) for f in frames) == 32  # segments filled up to the agreed size
    assert sum(f.segmented for f in frames) > 20


def test_no_with_list_is_not_granted_and_refused_if_used(make_server):
    srv = make_server(options=MeterOptions(with_list=False))
    c = client(srv)
    event = c.open()
    assert not event.conformance & Conformance.MULTIPLE_REFERENCES
    # Force the request anyway, as a careless client would.
    c.assoc._conformance |= Conformance.MULTIPLE_REFERENCES
    event = c.exchange(c.assoc.get_with_list(REGS[:2])[1])
    assert isinstance(event, ServiceFailure) and isinstance(event.error, ExceptionResponse)
    assert c.get(REGS[0]).value == srv.model(0).expected(REGS[0].obis)[0]  # still usable
    c.close_gracefully()


def test_latency_delays_replies_without_blocking_other_meters(make_server):
    slow = make_server(options=MeterOptions(latency_s=0.3))
    fast = make_server()
    a, b = client(slow), client(fast)
    a.open()
    b.open()
    a.send_apdu(a.assoc.get(REGS[0])[1])
    start = time.monotonic()
    assert isinstance(b.exchange(b.assoc.get(REGS[0])[1]), GetResult)
    assert time.monotonic() - start < 0.2  # the slow meter's pending reply blocked nothing
    assert isinstance(a.answer(), GetResult)
    assert time.monotonic() - start >= 0.28
    a.close()
    b.close()


def test_dropped_reply_then_hdlc_retransmit_gets_it(make_server):
    srv = make_server(options=MeterOptions(drop_every=2))
    c = client(srv, timeout=0.2)
    c.open()
    assert c.get(REGS[0]).value > 0  # reply 1
    c.send_apdu(c.assoc.get(REGS[1])[1])  # reply 2: dropped
    with pytest.raises(socket.timeout):
        c.answer()
    c.sock.sendall(c.link.retransmit())  # same I frame again: the server repeats its answer
    event = c.answer()
    assert isinstance(event, GetResult)
    assert event.results[0].value == srv.model(0).expected(REGS[1].obis)[0]
    c.close_gracefully()


def test_dropped_reply_over_wrapper_times_out_and_next_request_works(make_server):
    srv = make_server(options=MeterOptions(drop_every=1), wrapper=True)
    c = client(srv, wrapper=True, timeout=0.2)
    c.open()
    c.send_apdu(c.assoc.get(REGS[0])[1])
    with pytest.raises(socket.timeout):
        c.answer()
    assert srv.meters[0].requests == 1
    c.close()


def test_garbage_before_every_other_reply_is_skipped_by_the_hdlc_client(make_server):
    srv = make_server(options=MeterOptions(garbage_every=2))
    c = client(srv)
    c.open()
    for desc in REGS[:4]:
        assert c.get(desc).value == srv.model(0).expected(desc.obis)[0]
    assert bytes(c.received).count(GARBAGE) == 2
    assert c.link.framer.discarded_bytes >= 2 * len(GARBAGE)
    c.close_gracefully()


# -- wrapper ----------------------------------------------------------------------------------


def test_wrapper_associate_read_and_release(make_server):
    srv = make_server(wrapper=True)
    c = client(srv, wrapper=True)
    assert isinstance(c.open(), Associated)
    assert c.get(REGS[8]).value == srv.model(0).expected(REGS[8].obis)[0]
    event = c.exchange(c.assoc.get_with_list(REGS)[1])
    assert len(event.results) == 9
    c.close_gracefully()


def test_wrapper_garbage_from_client_closes_the_connection(make_server):
    srv = make_server(wrapper=True)
    c = client(srv, wrapper=True)
    c.sock.sendall(b"\x00\x02" + b"\x00" * 10)  # version 2: out of step
    with pytest.raises(EOFError):
        c._recv()
    c.close()


# -- several meters, stop/start, timeouts -------------------------------------------------


def test_two_meters_on_two_ports_report_different_serials(make_server):
    srv = make_server(2)
    assert len(set(srv.ports)) == 2
    serials = []
    for i in range(2):
        c = client(srv, i)
        c.open()
        serials.append(c.get(SERIAL).value)
        c.close_gracefully()
    assert serials == [b"SIM00000000", b"SIM00000001"]


def test_consecutive_ports_from_a_base_port():
    base = free_port_range(3)  # the ports after a free one may be taken (seen in CI): probe all three
    srv = SimulatorServer(3, base).start()
    try:
        assert srv.ports == [base, base + 1, base + 2]
    finally:
        srv.stop()


def test_stop_meter_closes_its_connections_and_start_meter_serves_again(make_server):
    srv = make_server(2)
    c = client(srv, 0)
    other = client(srv, 1)
    c.open()
    other.open()
    srv.stop_meter(0)
    with pytest.raises((EOFError, ConnectionError)):
        c.get(REGS[0])
    c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.ports[0]), 0.5)
    assert isinstance(other.get(REGS[0]), Typed)  # the other meter did not notice
    srv.start_meter(0)
    again = client(srv, 0)
    again.open()
    assert again.get(SERIAL).value == b"SIM00000000"
    again.close_gracefully()
    other.close_gracefully()


def test_inactivity_timeout_closes_idle_connections(make_server):
    srv = make_server(options=MeterOptions(inactivity_timeout_s=0.2))
    c = client(srv)
    c.open()
    time.sleep(0.45)
    with pytest.raises((EOFError, ConnectionError)):
        c.get(REGS[0])
    c.close()
    assert srv.connections == 0


def test_rlrq_then_disc_and_reassociation_on_the_same_connection(server):
    c = client(server)
    c.open()
    assert isinstance(c.exchange(c.assoc.release()), Released)
    assert isinstance(c.exchange(c.assoc.associate()), Associated)
    assert c.get(REGS[0]).value > 0
    c.close_gracefully()
    assert server.requests == 1


def test_stop_returns_promptly_and_closes_every_socket(make_server):
    srv = make_server(3)
    clients = [client(srv, i) for i in range(3)]
    for c in clients:
        c.open()
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 0.5
    for c in clients:
        with pytest.raises((EOFError, ConnectionError)):
            c._recv()
        c.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.ports[0]), 0.5)


# -- tb-dlms simulate ---------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_meters_and_exits_cleanly_on_signal(sig):
    base = free_port_range(2)
    cmd = [
        sys.executable,
        "-m",
        "tb_dlms.cli",
        "simulate",
        "--count",
        "2",
        "--base-port",
        str(base),
        "--max-info",
        "64",
        "--physical-base",
        "200",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{base}..{base + 1}" in line and "physical 200..201" in line
        c = RawClient(base + 1, server=HdlcAddress.server(1, 201))
        c.open()
        assert c.link.parameters.max_info_rx == 64
        assert c.get(SERIAL).value == b"SIM00000001"
        c.close_gracefully()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "1 requests served" in out


def test_cli_refuses_a_bad_max_info_with_exit_2():
    cmd = [
        sys.executable,
        "-m",
        "tb_dlms.cli",
        "simulate",
        "--base-port",
        "0",
        "--max-info",
        "5000",
    ]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=10)
    assert proc.returncode == 2
    assert "max_info" in proc.stderr


def test_cli_quirk_options_reach_the_meter_options():
    import argparse

    from tb_dlms.commands import simulate

    parser = argparse.ArgumentParser()
    simulate.register(parser.add_subparsers())
    args = parser.parse_args(
        ["simulate", "--window", "4", "--partial-ack", "1", "--bad-with-list", "block"])
    options = simulate._options(args)
    assert (options.window, options.partial_ack, options.bad_with_list) == (4, 1, "block")
    plain = simulate._options(parser.parse_args(["simulate"]))
    assert (plain.window, plain.partial_ack, plain.bad_with_list) == (1, 0, "")
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--window", "8"])


# -- robustness ---------------------------------------------------------------------------------


def test_another_client_after_disc_on_the_same_connection(server):
    public = client(server, client_sap=16)
    public.open()
    assert isinstance(public.exchange(public.assoc.release()), Released)
    public.sock.sendall(public.link.disconnect())
    assert isinstance(public.link_event(), Disconnected)
    # Same TCP connection, now the LLS client 1 addressing the meter with its physical address.
    lls = RawClient(0, server=HdlcAddress(1, 16, 2), sock=public.sock)
    assert isinstance(lls.open(), Associated)
    assert lls.get(SERIAL).value == b"SIM00000000"
    lls.close_gracefully()


@pytest.mark.parametrize("seed", range(4))
def test_random_bytes_do_not_hurt_the_server(make_server, seed):
    import random

    rng = random.Random(seed)
    srv = make_server(options=MeterOptions(), wrapper=bool(seed % 2))
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", srv.ports[0]), 1) as s:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600)))
            if rng.random() < 0.5:  # HDLC flags and headers make the framer work harder
                noise = b"\x7e\xa0" + noise + b"\x7e"
            s.sendall(noise)
    c = client(srv, wrapper=bool(seed % 2))
    assert isinstance(c.open(), Associated)
    assert isinstance(c.get(REGS[0]), Typed)
    c.close_gracefully()


def test_a_failing_session_costs_one_connection_only(make_server, monkeypatch, caplog):
    srv = make_server(2)
    healthy = client(srv, 1)
    healthy.open()
    from tb_dlms.simulator.connection import ServerSession

    original = ServerSession.receive

    def broken(self, data):
        if self.meter.index == 0:
            raise RuntimeError("simulated bug")
        return original(self, data)

    monkeypatch.setattr(ServerSession, "receive", broken)
    victim = client(srv, 0)
    victim.sock.sendall(victim.link.connect())
    with pytest.raises((EOFError, ConnectionError)):
        victim.link_event()
    victim.close()
    assert isinstance(healthy.get(REGS[0]), Typed)
    assert "simulated bug" in caplog.text
    healthy.close_gracefully()


def test_options_per_meter_index(make_server):
    srv = make_server(2, options=lambda i: MeterOptions(with_list=i != 1))
    first, second = client(srv, 0), client(srv, 1)
    assert first.open().conformance & Conformance.MULTIPLE_REFERENCES
    assert not second.open().conformance & Conformance.MULTIPLE_REFERENCES
    first.close_gracefully()
    second.close_gracefully()


def test_physical_addresses_out_of_range_are_refused():
    with pytest.raises(ValueError, match="16383"):
        SimulatorServer(10, 0, physical_base=16380)


def test_a_week_of_load_profile_by_range_comes_in_blocks(server):
    # 7 days x 96 quarter-hours = 672 rows (about 19 kB): far above the 1024-octet PDU.
    model = server.model(0)
    rows = model.expected_profile_rows("1-0:99.1.0")[-672:]
    lo, hi = (CosemDateTime.from_datetime(r.time).to_bytes() for r in (rows[0], rows[-1]))
    restricting = Typed(DataType.STRUCTURE, (
        Typed(DataType.LONG_UNSIGNED, 8), Typed(DataType.OCTET_STRING, CLOCK.obis.to_bytes()),
        Typed(DataType.INTEGER, 2), Typed(DataType.LONG_UNSIGNED, 0),
    ))
    access = SelectiveAccess(1, Typed(DataType.STRUCTURE, (
        restricting, Typed(DataType.OCTET_STRING, lo), Typed(DataType.OCTET_STRING, hi),
        Typed(DataType.ARRAY, []),
    )))
    c = client(server)
    c.open()
    blocks = []
    orig = c.assoc.receive_data
    c.assoc.receive_data = lambda apdu: (blocks.append(bytes(apdu[:2])), orig(apdu))[1]
    got = c.get(PROFILE, access)
    assert [(r.value[0].value, r.value[1].value, r.value[2].value) for r in got.value] == [
        (r.stamp, *r.raw) for r in rows
    ]
    # GET-response-with-datablock only, at least one per 1024 octets of rows
    assert set(blocks) == {b"\xc4\x02"} and len(blocks) >= 672 * 20 // 1024
    c.close_gracefully()
