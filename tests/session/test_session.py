"""BlockingSession against the simulator over real loopback sockets: values, round trips, quirks.

Expected values come from the simulator's own model (MeterModel.expected, clock frozen at T0):
the nine registers of ORIGINAL_SYSTEM.md with the Blue Book scalers and units.
"""

from __future__ import annotations

import logging
import random

import pytest
from session_peer import REGISTERS
from tb_dlms.engine.spec import ObjectRef
from tb_dlms.protocol.apdu import ActionResult, DataAccessResult, SelectiveAccess
from tb_dlms.protocol.axdr import DataType, Typed, to_json
from tb_dlms.protocol.errors import (
    AuthenticationError,
    DataAccessError,
    LocalProtocolError,
    TransportError,
)
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.units import unit_symbol
from tb_dlms.session import BlockingSession, FrameTrace, Reading, SessionSettings, SessionState
from tb_dlms.transport import TcpTransport


def assert_registers(readings: list, model) -> None:
    assert len(readings) == len(REGISTERS)
    for ref, reading in zip(REGISTERS, readings):
        raw, scaler, unit = model.expected(ref.obis)
        assert isinstance(reading, Reading), (ref, reading)
        assert reading.ref == ref
        assert (reading.raw, reading.scaler, reading.unit) == (raw, scaler, unit_symbol(unit))
        assert reading.value == model.expected_value(ref.obis)


def spy_requests(session: BlockingSession) -> list[list[tuple[int, int]]]:
    """(class_id, attribute) of every attribute the session asks for, per GET request."""
    assoc = session._assoc
    seen: list[list[tuple[int, int]]] = []
    get, get_with_list = assoc.get, assoc.get_with_list

    def one(desc, access=None):
        seen.append([(desc.class_id, desc.attribute)])
        return get(desc, access)

    def many(items):
        seen.append([(d.class_id, d.attribute) for d, _ in items])
        return get_with_list(items)

    assoc.get, assoc.get_with_list = one, many
    return seen


def scaler_gets(seen: list[list[tuple[int, int]]]) -> int:
    return sum(item == (3, 3) for request in seen for item in request)


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
def test_nine_registers_exact_values_and_round_trips(simulator, session, wrapper):
    srv = simulator(wrapper=wrapper)
    s = session(srv.ports[0], wrapper=wrapper)
    s.connect()
    assert s.state is SessionState.READY
    assert s.round_trips == (1 if wrapper else 2)  # SNRM/UA + AARQ/AARE; the wrapper has no SNRM
    first = s.read(REGISTERS)
    assert_registers(first, srv.model(0))
    assert s.round_trips <= 4  # association + first cycle (scalers and values in one request)
    before = (s.round_trips, s.requests)
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert (s.round_trips, s.requests) == (before[0] + 1, before[1] + 1)  # steady state: 1
    assert all(r.read_at > 1_600_000_000_000 for r in first)  # wall-clock ms
    s.close()
    assert s.state is SessionState.CLOSED and not s.transport.is_open


def test_scaler_read_once_per_association_and_again_after_reconnect(simulator, session):
    srv = simulator()
    s = session(srv.ports[0])
    s.connect()
    seen = spy_requests(s)
    for _ in range(3):
        s.read(REGISTERS)
    assert scaler_gets(seen) == 9
    assert [len(r) for r in seen] == [18, 9, 9]  # scalers ride with the first values
    s.close()
    s.connect()  # a new association may follow a reconfiguration: the cache is invalidated
    seen = spy_requests(s)
    s.read(REGISTERS)
    s.read(REGISTERS)
    assert scaler_gets(seen) == 9


def test_with_list_not_granted_means_single_gets(simulator, session):
    srv = simulator(with_list=False)
    s = session(srv.ports[0])
    s.connect()
    rt = s.round_trips
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.round_trips - rt == 18  # 9 scalers + 9 values, one GET each
    rt = s.round_trips
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.round_trips - rt == 9
    assert s.with_list.reason == "not-granted"


def test_segmentation_with_max_info_32_both_ways_and_lls(simulator, session):
    srv = simulator(max_info_field=32)
    s = session(
        srv.ports[0],
        client=1,
        authentication="lls",
        password=b"22222222",
        max_info_tx=32,
        max_info_rx=32,
    )
    s.connect()
    assert s._channel.parameters.max_info_rx == 32
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert_registers(s.read(REGISTERS), srv.model(0))
    # The segmented AARQ carried the password; not one byte of it reached the trace.
    masked = sum(e - b for entry in s.trace.entries() for b, e in entry.masked)
    assert masked == 8


@pytest.mark.parametrize("max_info", [32, 40])
def test_a_long_password_over_more_than_8_segments_never_reaches_trace_or_log(
    simulator, caplog, max_info
):
    # N(S) wraps at 8: segments 8.. of the AARQ must be masked by their place in the APDU.
    rng = random.Random(7)
    password = bytes(rng.randrange(1, 256) for _ in range(360))
    srv = simulator(max_info_field=max_info, password=password)
    settings = SessionSettings(client=1, authentication="lls", password=password,
                               max_info_tx=max_info, max_info_rx=max_info, response_timeout=0.5)
    s = BlockingSession(TcpTransport("127.0.0.1", srv.ports[0], 2.0), settings,
                     trace=FrameTrace(size=256))  # room for every frame of the test
    log = logging.getLogger("tb_dlms.test.secret")
    with caplog.at_level(logging.DEBUG):
        s.connect()
        assert_registers(s.read(REGISTERS), srv.model(0))
        s.trace.dump(log, "dumped as after a failure")
        s.close()
    assert len(password) > 8 * max_info  # the AARQ really takes more than 8 segments
    pieces = {password[i : i + 4].hex(" ") for i in range(len(password) - 3)}
    shown = s.trace.lines() + [r.getMessage() for r in caplog.records]
    assert len(caplog.records) > 8
    leaked = [line for line in shown if any(p in line for p in pieces)]
    assert leaked == []
    assert not any(password[i : i + 4] in e.data for e in s.trace.entries()
                   for i in range(len(password) - 3))
    masked = sum(e - b for entry in s.trace.entries() for b, e in entry.masked)
    assert masked == len(password)  # and nothing else was hidden


def test_block_transfer_with_a_small_pdu(simulator, session):
    srv = simulator(max_pdu_size=64)
    s = session(srv.ports[0], max_pdu_size=64)
    s.connect()
    assert_registers(s.read(REGISTERS), srv.model(0))
    entries = SelectiveAccess(
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
    rows = s.get((7, "1-0:99.1.0", 2, entries))
    assert isinstance(rows, Reading) and len(rows.raw) == 10
    truth = srv.model(0).get(7, Obis.parse("1-0:99.1.0"), 2, entries)
    assert to_json(rows.raw) == to_json(truth)
    assert rows.value[0][0].startswith("2023-11-")  # capture time column as ISO-8601
    assert rows.value[0][1:] == to_json(truth)[0][1:]


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
def test_dropped_replies_are_retransmitted(simulator, session, wrapper):
    srv = simulator(wrapper=wrapper, drop_every=2)
    s = session(srv.ports[0], wrapper=wrapper, response_timeout=0.15, retries=2)
    s.connect()
    for _ in range(4):
        assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.retransmissions >= 2
    assert s.state is SessionState.READY


def test_garbage_before_every_reply_is_skipped(simulator, session):
    srv = simulator(garbage_every=1)
    s = session(srv.ports[0])
    s.connect()
    for _ in range(3):
        assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.retransmissions == 0


def test_wrong_password_is_an_authentication_error_naming_the_meter(simulator, session):
    srv = simulator()
    s = session(srv.ports[0], client=1, authentication="lls", password=b"wrong", name="meter-7")
    with pytest.raises(AuthenticationError, match="meter-7"):
        s.connect()
    assert s.state is SessionState.CLOSED and not s.transport.is_open
    assert isinstance(s.last_error, AuthenticationError)


def test_connection_refused_is_a_transport_error(simulator):
    srv = simulator()
    port = srv.ports[0]
    srv.stop()
    s = BlockingSession(TcpTransport("127.0.0.1", port, 1.0), SessionSettings())
    with pytest.raises(TransportError, match=str(port)):
        s.connect()
    assert s.state is SessionState.CLOSED


def test_failures_per_object_and_rpcs(simulator, session):
    srv = simulator()
    s = session(srv.ports[0], client=1, authentication="lls", password="22222222")
    s.connect()
    clock, missing = (8, "0-0:1.0.0.255", 2), (3, "0-0:99.99.0", 2)
    got = s.read([clock, missing, ObjectRef(1, Obis.parse("0-0:96.1.0"), 2)])
    assert got[0].value == "2023-11-14T22:20:37+00:00"  # T0, the meter runs on UTC
    assert isinstance(got[1], DataAccessError) and got[1].name == "object-undefined"
    assert got[2].value == "SIM00000000"
    assert s.state is SessionState.READY
    assert s.action(70, "0-0:96.3.10", 1, Typed(DataType.INTEGER, 0)) == (
        ActionResult.SUCCESS,
        None,
    )
    assert s.get((70, "0-0:96.3.10", 2)).value is False  # output_state after remote_disconnect
    assert s.set((70, "0-0:96.3.10", 4), Typed(DataType.ENUM, 9)) == DataAccessResult.OTHER_REASON


def test_keepalive_only_when_the_link_is_idle_near_the_inactivity_timeout(simulator):
    srv = simulator()
    now = [1000.0]
    s = BlockingSession(
        TcpTransport("127.0.0.1", srv.ports[0]),
        SessionSettings(inactivity_timeout=180, keepalive_margin=30),
        clock=lambda: now[0],
    )
    try:
        s.connect()
        rt = s.round_trips
        now[0] += 149
        assert s.keepalive_if_due() is False and s.round_trips == rt
        now[0] += 2
        assert s.keepalive_if_due() is True and s.round_trips == rt + 1
        assert s.keepalive_if_due() is False  # the GET reset the idle time
    finally:
        s.close()


def test_read_before_connect_is_a_local_error(simulator, session):
    s = session(simulator().ports[0])
    with pytest.raises(LocalProtocolError, match="connect"):
        s.read(REGISTERS)
