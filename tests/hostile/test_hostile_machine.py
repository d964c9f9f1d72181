"""The session machine alone (sans-IO, ``now`` passed in) against a meter that answers every
frame with one more segment: the operation's deadline and frame budget hold although every
segment makes the link send an RR, which moves the per-answer deadline."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.errors import ConfigError, NoAnswer, RemoteProtocolError
from tb_dlms.session import FrameTrace, Ref, SessionMachine, SessionSettings, SessionState
from tb_dlms.session.trace import ENTRY_BYTES
from tb_dlms.simulator.connection import ServerSession as MeterConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import MeterModel
from tb_dlms.simulator.values import REGISTERS as SIMULATED
from tb_dlms.testing.hostile import SegmentTalker

T0 = 1_700_000_437.0
REGISTERS = tuple(Ref(3, r.obis, 2) for r in SIMULATED)


def associated(**settings):
    conn = MeterConnection(SimulatedMeter(MeterModel(0, clock=lambda: T0), 16), False)
    machine = SessionMachine(
        SessionSettings(client=16, name="meter-7", response_timeout=2.0, **settings),
        wall_clock=lambda: T0,
    )
    machine.connect(0.0)
    while machine.busy:
        machine.receive_data(conn.receive(machine.data_to_send()), 0.0)
    machine.result()
    return machine, SegmentTalker.after(conn)


def test_segments_and_rrs_never_push_the_operation_deadline():
    machine, talker = associated(operation_timeout=10.0)
    now = 100.0
    machine.read(REGISTERS, now)
    while machine.busy and now < 200.0:
        now += 0.5  # a segment every half second: each well within the answer timeout
        machine.check_timeout(now)
        for segment in talker.answer(machine.data_to_send()):
            machine.receive_data(segment, now)
    assert now == pytest.approx(110.0)
    assert machine.state is SessionState.BROKEN
    with pytest.raises(NoAnswer, match=r"meter-7: operation did not end within 10 s \(19 fr"):
        machine.result()


def test_the_frame_budget_counts_where_frames_arrive_whatever_the_link_answers():
    machine, talker = associated(max_operation_frames=300)
    machine.read(REGISTERS, 100.0)
    received = 0
    while machine.busy and received < 10_000:
        for segment in talker.answer(machine.data_to_send()):
            machine.receive_data(segment, 100.0)  # no time passes at all
            received += 1
    assert received == 301
    with pytest.raises(RemoteProtocolError, match="meter-7: the meter kept talking: 301 frames"):
        machine.result()


def test_the_operation_limit_defaults_to_twenty_answer_timeouts_at_least_a_minute():
    assert SessionSettings().operation_limit == 100.0  # 20 x connect_timeout 5 s
    assert SessionSettings(connect_timeout=1, response_timeout=1).operation_limit == 60.0
    assert SessionSettings(response_timeout=10.0).operation_limit == 200.0
    assert SessionSettings(operation_timeout=2.5).operation_limit == 2.5
    with pytest.raises(ConfigError, match="meter 'x': operation_timeout: must be a non-negative"):
        SessionSettings(name="x", operation_timeout=-1)
    with pytest.raises(ConfigError, match="max_operation_frames: must be an integer"):
        SessionSettings(max_operation_frames=0)


def test_the_frame_trace_keeps_a_bounded_part_of_each_read():
    # A meter streaming bytes filled the ring with 32 reads of 64 KiB (2 MB, 6 MB of hex in the
    # failure's dump); the --trace sink still sees every byte.
    seen: list[str] = []
    trace = FrameTrace(clock=lambda: T0, sink=seen.append)
    for _ in range(40):
        trace.record("rx", b"\x55" * 65536)
    entry = trace.entries()[-1]
    assert len(entry.data) == ENTRY_BYTES and entry.cut == 65536 - ENTRY_BYTES
    assert trace.lines()[-1].endswith(f"55 ... (+{65536 - ENTRY_BYTES} bytes)")
    assert sum(len(e.data) for e in trace.entries()) == 32 * ENTRY_BYTES
    assert seen[-1].count("55") == 65536
