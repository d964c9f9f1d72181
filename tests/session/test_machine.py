"""SessionMachine without any socket: the simulator's sans-IO meter answers in-process.

Vectors: the replies are built by our server-role core + MeterModel (the simulator), frozen at T0;
expected values from MeterModel.expected_value, as in test_session.py.
"""

from __future__ import annotations

import time

import pytest
from session_peer import REGISTERS, T0
from tb_dlms.protocol.errors import NoAnswer
from tb_dlms.session import Reading, SessionMachine, SessionSettings, SessionState
from tb_dlms.simulator.connection import ServerSession as MeterConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import MeterModel


def rig(**settings):
    model = MeterModel(0, clock=lambda: T0)
    conn = MeterConnection(SimulatedMeter(model, 16), False)
    machine = SessionMachine(
        SessionSettings(client=16, name="meter-7", **settings), wall_clock=lambda: T0
    )
    return machine, conn, model


def pump(machine, conn, now=0.0):
    while machine.busy:
        machine.receive_data(conn.receive(machine.data_to_send()), now)
    return machine.result()


def values(readings):
    assert all(isinstance(r, Reading) for r in readings)
    return [r.value for r in readings]


def test_connect_fed_one_byte_at_a_time_completes_only_on_the_last_byte():
    machine, conn, _ = rig()
    machine.connect(0.0)
    for _ in range(2):  # SNRM/UA, then AARQ/AARE
        reply = conn.receive(machine.data_to_send())
        for i in range(len(reply)):
            assert machine.busy
            machine.receive_data(reply[i : i + 1], 0.0)
    assert not machine.busy and machine.result() is None
    assert machine.state is SessionState.READY and machine.round_trips == 2


def test_a_read_cycle_is_one_request_once_scalers_are_cached():
    machine, conn, model = rig()
    machine.connect(0.0)
    pump(machine, conn)
    expected = [model.expected_value(r.obis) for r in REGISTERS]
    machine.read(REGISTERS, 1.0)
    assert values(pump(machine, conn)) == expected
    before = machine.round_trips
    machine.read(REGISTERS, 2.0)
    assert values(pump(machine, conn)) == expected
    assert machine.round_trips - before == 1


def test_timeouts_come_from_now_retransmit_then_break():
    machine, conn, _ = rig(response_timeout=2.0, retries=1)
    machine.connect(0.0)
    pump(machine, conn)
    machine.read(REGISTERS, 10.0)
    assert machine.data_to_send()
    assert machine.next_timeout() == pytest.approx(12.0)
    machine.check_timeout(11.9)  # not yet
    assert machine.busy and machine.data_to_send() == b""
    machine.check_timeout(12.0)
    assert machine.retransmissions == 1 and machine.data_to_send()
    assert machine.next_timeout() == pytest.approx(14.0)
    machine.check_timeout(14.0)
    assert not machine.busy and machine.state is SessionState.BROKEN
    with pytest.raises(NoAnswer, match="meter-7: no answer within 2 s after 1 retransmission"):
        machine.result()


def test_a_late_duplicate_answer_is_never_attributed_to_the_next_request():
    machine, conn, model = rig(response_timeout=1.0)
    machine.connect(0.0)
    pump(machine, conn)
    machine.read(REGISTERS, 1.0)
    pump(machine, conn)  # scalers cached
    machine.read(REGISTERS, 5.0)
    first = conn.receive(machine.data_to_send())
    machine.check_timeout(6.0)  # silence: the same request again
    second = conn.receive(machine.data_to_send())
    machine.receive_data(first, 6.1)
    assert not machine.busy
    expected = [model.expected_value(r.obis) for r in REGISTERS]
    assert values(machine.result()) == expected
    machine.receive_data(second, 6.2)  # between operations: traced and dropped
    assert not machine.busy and machine.state is SessionState.READY
    machine.read(REGISTERS, 7.0)
    assert values(pump(machine, conn)) == expected


def test_close_releases_then_disconnects_and_never_raises():
    machine, conn, _ = rig()
    machine.connect(0.0)
    pump(machine, conn)
    machine.close(1.0)
    pump(machine, conn)
    assert machine.state is SessionState.CLOSED
    machine.close(2.0, wire=False)  # closing a closed session: nothing to send
    assert not machine.busy and machine.data_to_send() == b""


def test_no_clock_is_read_by_the_machine():
    import tb_dlms.session.machine as module

    assert not hasattr(module, "time") and not hasattr(module, "socket")
    assert time  # the test itself may
