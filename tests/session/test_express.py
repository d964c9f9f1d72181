"""The express path of steady cycles (session/express.py) against the simulator's sans-IO meter.

What must hold: the same values, requests and round trips as the full path, over the invoke-id
and HDLC sequence wrap-arounds; every answer that differs from the learned one (split over two
reads, other types, an error item, a stale invoke id, a bad FCS) goes through the full path from
the same state, so no value is ever wrong; retransmission and a lost line behave as on the full
path. The meter's clock moves between cycles, so a value taken from the wrong answer shows.
"""

from __future__ import annotations

import pytest
from session_peer import REGISTERS, T0
from tb_dlms.protocol.apdu import DataAccessResult
from tb_dlms.protocol.apdu.get import with_list_response_head
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import DataAccessError, TransportError
from tb_dlms.protocol.units import ScalerUnit
from tb_dlms.session import Reading, SessionMachine, SessionSettings, SessionState
from tb_dlms.session.express import compile_express
from tb_dlms.session.read_plan import DescriptorCache, ReadPlan
from tb_dlms.session.reading import Ref, ScalerCache
from tb_dlms.simulator.connection import ServerSession as MeterConnection
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import DEFAULT_OPTIONS, MeterModel, MeterOptions


class Meter(MeterConnection):
    """The simulator's meter, with a hook that may change its GET-with-list results."""

    __slots__ = ("mutate",)

    def _get(self, assoc, event):
        get = self.meter.model.get
        results = [get(d.class_id, d.wire[2:8], d.attribute, a) for d, a in event.items]
        if event.with_list and self.mutate is not None:
            results = self.mutate(results)
        return assoc.respond_get(event.invoke_id, results)


class Rig:
    def __init__(self, options=DEFAULT_OPTIONS, **settings):
        self.now = T0
        self.model = MeterModel(0, clock=lambda: self.now, options=options)
        self.meter = Meter(SimulatedMeter(self.model, 16), settings.get("wrapper", False))
        self.meter.mutate = None
        self.machine = SessionMachine(
            SessionSettings(client=16, name="meter-7", **settings), wall_clock=lambda: self.now
        )
        self.machine.connect(0.0)
        self.pump()

    def pump(self):
        m = self.machine
        while m.busy:
            m.receive_data(self.meter.receive(m.data_to_send()), 0.0)
        return m.result()

    def cycle(self):
        self.now += 15.0  # every register moves
        self.machine.read(REGISTERS, 0.0)
        return self.pump()

    def warmed(self):
        """Scalers read, the answer learned, one express cycle done: the steady state."""
        for _ in range(3):
            self.cycle()
        return self.machine

    def request(self, now):
        """The next cycle's request (the meter's clock moved on), not answered yet."""
        self.now += 15.0
        self.machine.read(REGISTERS, now)
        return self.machine.data_to_send()

    def expected(self, t=None):
        return [self.model.expected_value(r.obis, t) for r in REGISTERS]


def values(readings):
    assert all(isinstance(r, Reading) for r in readings), readings
    return [r.value for r in readings]


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
def test_steady_cycles_take_the_express_path_and_read_what_the_full_path_reads(wrapper):
    fast, full = Rig(wrapper=wrapper), Rig(wrapper=wrapper, express=False)
    for n in range(40):  # past the invoke-id (16) and HDLC sequence (8) wrap-arounds
        a, b = fast.cycle(), full.cycle()
        assert values(a) == values(b) == fast.expected(), n
        assert a == b  # raw, scaler, unit and read_at too
    assert len({r.value for r in a}) > 5  # the registers are not all alike
    # Cycle 1 reads scalers, cycle 2 teaches the answer's shape: 38 express cycles.
    assert (fast.machine.express_cycles, fast.machine.express_fallbacks) == (38, 0)
    assert full.machine.express_cycles == 0
    for name in ("requests", "round_trips", "bytes_sent", "bytes_received"):
        assert getattr(fast.machine, name) == getattr(full.machine, name), name


def test_answers_that_need_segments_never_take_the_express_path():
    rig = Rig(MeterOptions(max_info_field=32))  # 9 values take 2 frames, the request too
    for _ in range(6):
        assert values(rig.cycle()) == rig.expected()
    assert (rig.machine.express_cycles, rig.machine.express_fallbacks) == (0, 0)
    assert rig.machine._last_plan[2].express is None  # never learned: no attempt every cycle


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
def test_an_answer_in_pieces_still_takes_the_express_path(wrapper):
    rig = Rig(wrapper=wrapper)  # a serial line delivers the answer a few bytes at a time
    m = rig.warmed()
    answer = rig.meter.receive(rig.request(0.0))
    for i in range(len(answer) - 1):
        m.receive_data(answer[i : i + 1], 0.0)
        assert m.busy
    m.receive_data(answer[-1:], 0.0)
    assert values(m.result()) == rig.expected()
    assert (m.express_cycles, m.express_fallbacks) == (2, 0)


def test_a_wrong_beginning_goes_to_the_full_path_at_once():
    rig = Rig()
    m = rig.warmed()
    answer = rig.meter.receive(rig.request(0.0))
    m.receive_data(b"\x00\xff\x55" + answer[:5], 0.0)  # line noise first (a real quirk)
    assert m.express_fallbacks == 1 and m.busy  # decided on the first piece, not at the end
    m.receive_data(answer[5:], 0.0)
    assert values(m.result()) == rig.expected()  # the framer hunted the frame out


def test_a_beginning_then_silence_times_out_after_the_inter_frame_time_and_is_repeated():
    rig = Rig(response_timeout=3.0, inter_frame_timeout=0.5)
    m = rig.warmed()
    request = rig.request(10.0)
    answer = rig.meter.receive(request)
    m.receive_data(answer[:20], 10.1)
    assert m.next_timeout() == pytest.approx(10.6)  # not the 3 s response time-out
    m.check_timeout(10.6)
    assert m.retransmissions == 1 and m.data_to_send() == request
    assert m.express_fallbacks == 1
    m.receive_data(rig.meter.receive(request), 10.7)  # the meter repeats its answer
    assert values(m.result()) == rig.expected()


def _as_double_long_unsigned(results):
    first = results[0]
    return [Typed(DataType.DOUBLE_LONG_UNSIGNED, first.value), *results[1:]]


def _first_unavailable(results):
    return [DataAccessResult.TEMPORARY_FAILURE, *results[1:]]


def test_a_meter_that_changes_a_type_is_read_right_and_then_learned_again():
    rig = Rig()
    rig.warmed()
    rig.meter.mutate = _as_double_long_unsigned  # e.g. after a firmware update
    assert values(rig.cycle()) == rig.expected()
    assert rig.machine.express_fallbacks == 1
    for _ in range(3):
        assert values(rig.cycle()) == rig.expected()
    assert (rig.machine.express_cycles, rig.machine.express_fallbacks) == (4, 1)


def test_a_type_of_the_same_size_is_told_apart_by_its_tag():
    rig = Rig()

    def as_float(results):
        if len(results) != len(REGISTERS):  # the first cycle reads the scalers too
            return results
        return [Typed(DataType.FLOAT32, float(results[0].value)), *results[1:]]

    rig.meter.mutate = as_float
    for _ in range(3):
        assert values(rig.cycle()) == rig.expected()
    assert type(rig.cycle()[0].raw) is float
    rig.meter.mutate = _as_double_long_unsigned  # 4 bytes too: only the tag says it is an int
    first = rig.cycle()[0]
    assert type(first.raw) is int and first.value == rig.expected()[0]
    assert rig.machine.express_fallbacks == 1


def test_an_item_that_fails_goes_through_the_full_path_and_the_shape_is_kept():
    rig = Rig()
    rig.warmed()
    rig.meter.mutate = _first_unavailable
    out = rig.cycle()
    assert isinstance(out[0], DataAccessError) and out[0].name == "temporary-failure"
    assert values(out[1:]) == rig.expected()[1:]
    rig.meter.mutate = None
    assert values(rig.cycle()) == rig.expected()
    assert (rig.machine.express_cycles, rig.machine.express_fallbacks) == (2, 1)


def test_a_stale_answer_is_dropped_and_the_right_one_taken():
    rig = Rig(response_timeout=1.0)
    m = rig.warmed()
    request = rig.request(10.0)
    late = rig.meter.receive(request)  # answered after our time-out ...
    m.check_timeout(11.0)
    assert m.retransmissions == 1 and m.data_to_send() == request  # same N(S), same invoke id
    rig.now += 1.0  # ... and the repeated request is answered later, with other values
    again = rig.meter.receive(request)
    m.receive_data(late, 11.1)  # the first answer completes the exchange (same invoke id)
    assert not m.busy
    assert values(m.result()) == rig.expected(rig.now - 1.0)
    assert rig.expected(rig.now - 1.0) != rig.expected(rig.now)
    m.receive_data(again, 11.2)  # between operations: dropped, never attributed
    assert values(rig.cycle()) == rig.expected()
    assert m.state is SessionState.READY


def test_an_old_answer_with_the_same_sequence_number_is_never_taken_for_this_cycle():
    rig = Rig(response_timeout=1.0)
    answers = []
    m = rig.warmed()
    for _ in range(8):  # the HDLC sequence repeats every 8 cycles, the invoke id every 16
        answers.append(rig.meter.receive(rig.request(0.0)))
        m.receive_data(answers[-1], 0.0)
        m.result()
    rig.request(10.0)
    m.receive_data(answers[0], 10.1)  # right N(S) and N(R), invoke id 8 behind
    assert m.busy and m.stale_responses == 1 and m.express_fallbacks == 1
    m.close(10.2, wire=False)


@pytest.mark.parametrize("cut", [None, 12], ids=["whole", "in-pieces"])
def test_a_corrupted_answer_is_dropped_by_the_full_path_and_the_retransmission_answered(cut):
    rig = Rig(response_timeout=1.0)
    m = rig.warmed()
    request = rig.request(10.0)
    answer = bytes(rig.meter.receive(request))
    answer = answer[:-4] + bytes((answer[-4] ^ 0x40,)) + answer[-3:]  # the FCS no longer fits
    if cut:
        m.receive_data(answer[:cut], 10.1)  # a right beginning: kept, nothing decided yet
        assert m.express_fallbacks == 0
    m.receive_data(answer[cut or 0 :], 10.1)
    assert m.busy and m.express_fallbacks == 1
    assert m.channel.link.framer.bad_frames == 1  # the whole frame reached the full path
    m.check_timeout(11.0)
    assert m.data_to_send() == request  # the link repeats the same I frame
    # The meter got it already: it answers its last frame again (duplicate N(S) handling).
    repeated = rig.meter.receive(request)
    m.receive_data(repeated, 11.1)
    assert values(m.result()) == rig.expected()


def test_a_line_lost_during_an_express_cycle_breaks_the_session_with_that_error():
    rig = Rig()
    m = rig.warmed()
    rig.request(0.0)
    m.connection_lost(TransportError("connection closed by peer"))
    assert not m.busy and m.state is SessionState.BROKEN
    with pytest.raises(TransportError, match="meter-7: connection closed by peer"):
        m.result()


# -- compile_express on its own -----------------------------------------------------------------

def _plan(with_scalers=True):
    scalers = ScalerCache()
    refs = [Ref(3, r.obis, 2) for r in REGISTERS[:2]]
    if with_scalers:
        for r in refs:
            scalers.put(3, r.obis, ScalerUnit(-1, 35))
    return ReadPlan(refs, scalers, DescriptorCache(), True, 0xFFFF, 0xFFFF, None)


ANSWER = bytes.fromhex("c4 03 c1 02 00 12 08 fc 00 06 00 00 30 39".replace(" ", ""))


def test_compile_express_learns_types_and_priority():
    express = compile_express(_plan(), ANSWER)
    assert express is not None and express.apdu_length == len(ANSWER)
    assert express.flags == 0xC0  # high priority, confirmed: as the meter answered
    assert express.decode(ANSWER, 0, with_list_response_head(0xC1, 2)) == (2300, 12345)
    assert express.decode(ANSWER, 0, with_list_response_head(0xC2, 2)) is None  # another invoke id
    readings = express.readings((2300, 12345), 99)
    assert [(r.value, r.raw, r.scaler, r.unit, r.read_at) for r in readings] == [
        (230.0, 2300, -1, "V", 99), (1234.5, 12345, -1, "V", 99)]


@pytest.mark.parametrize("answer, why", [
    ("c4 03 c1 02 00 12 08 fc 01 04", "an item that failed"),
    ("c4 03 c1 02 00 12 08 fc 00 09 02 30 39", "an octet-string"),
    ("c4 03 c1 03 00 12 08 fc 00 06 00 00 30 39", "another item count"),
    ("c4 03 c1 02 00 12 08 fc 00 06 00 00 30 39 00", "a byte too many"),
    ("c4 03 c1 02 00 12 08 fc 00 06 00 00 30", "a byte too few"),
    ("c4 01 c1 00 12 08 fc", "a GET-normal answer"),
])
def test_compile_express_refuses(answer, why):
    assert compile_express(_plan(), bytes.fromhex(answer.replace(" ", ""))) is None, why


def test_compile_express_refuses_a_plan_that_still_reads_scalers():
    assert compile_express(_plan(with_scalers=False), ANSWER) is None
