"""COSEM object model of one simulated meter (tb_dlms.simulator.model).

Attribute and method numbers, types and the disconnect control state machine per the Blue Book
(IEC 62056-6-2): Register (3), Clock (8), Data (1), Disconnect control (70), Association LN (15).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tracemalloc

import pytest
from tb_dlms.protocol.apdu.common import ActionResult, DataAccessResult, SelectiveAccess
from tb_dlms.protocol.axdr import DataType, Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.obis import Obis
from tb_dlms.simulator import values as v
from tb_dlms.simulator.model import ControlState, MeterModel, MeterOptions
from tb_dlms.simulator.objects import OBJECT_DEFS
from tb_dlms.simulator.profile import datetime_bytes

T0 = 1_700_000_000.0
DC = (70, "0-0:96.3.10")
CLOCK = (8, "0-0:1.0.0")
ENERGY = "1-1:1.8.0"
DAR = DataAccessResult


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def meter(clock):
    return MeterModel(42, clock=clock)


# -- registers --------------------------------------------------------------------------------

VALUE_TYPES = {
    "voltage": DataType.LONG_UNSIGNED,
    "current": DataType.LONG_UNSIGNED,
    "frequency": DataType.LONG_UNSIGNED,
    "active_power": DataType.DOUBLE_LONG,
    "active_energy": DataType.DOUBLE_LONG_UNSIGNED,
}


@pytest.mark.parametrize("spec", v.REGISTERS, ids=lambda s: s.key)
def test_register_matches_expected_at_fixed_instants(spec, clock):
    for index in (0, 42, 999):
        m = MeterModel(index, clock=clock)
        for t in (T0, T0 + 0.5, T0 + 1, T0 + 3600 * 7 + 13):
            clock.t = t
            raw, scaler, unit = v.expected(index, spec.obis, t)
            value = m.get(3, spec.obis, 2)
            assert value.type == VALUE_TYPES[spec.key.rsplit("_l", 1)[0]]
            assert value.value == raw
            assert m.get(3, spec.obis, 3) == Typed(
                DataType.STRUCTURE,
                (Typed(DataType.INTEGER, scaler), Typed(DataType.ENUM, unit)),
            )
            assert m.get(3, spec.obis, 1) == Typed(DataType.OCTET_STRING, spec.obis.to_bytes())
            assert m.expected(spec.obis) == (raw, scaler, unit)


def test_obis_in_any_notation(meter):
    a = meter.get(3, "1-1:32.7.0", 2)
    assert meter.get(3, Obis.parse("1.1.32.7.0.255"), 2) == a
    assert meter.get(3, bytes([1, 1, 32, 7, 0, 255]), 2) == a
    assert meter.get(3, memoryview(bytes([1, 1, 32, 7, 0, 255])), 2) == a


def test_energy_monotonic_and_closed_form(meter, clock):
    last = -1
    for s in range(0, 7200, 7):
        clock.t = T0 + s
        raw = meter.get(3, ENERGY, 2).value
        assert raw == v.expected(42, ENERGY, clock.t)[0]
        assert raw >= last
        last = raw


def test_every_readable_attribute_encodes(meter):
    for obj in OBJECT_DEFS:
        for attr in obj.attributes:
            result = meter.get(obj.class_id, obj.obis, attr.id)
            if attr.getter is None:
                assert result == DAR.READ_WRITE_DENIED
            else:
                assert isinstance(result, Typed), (obj.obis, attr.id)
                encode_data(result)  # raises if a value does not fit its type


# -- errors -----------------------------------------------------------------------------------


def test_unknown_and_inconsistent(meter):
    assert meter.get(3, "1-0:99.99.0", 2) == DAR.OBJECT_UNDEFINED
    assert meter.get(3, "0-0:1.0.0", 2) == DAR.OBJECT_CLASS_INCONSISTENT  # the clock is class 8
    assert meter.get(3, "1-1:32.7.0", 4) == DAR.OBJECT_UNDEFINED  # Register has no attribute 4
    assert meter.get(3, b"\x01\x02", 2) == DAR.OBJECT_UNDEFINED
    assert meter.set(3, "1-0:99.99.0", 2, 1) == DAR.OBJECT_UNDEFINED
    assert meter.action(3, "1-0:99.99.0", 1, 0) == (ActionResult.OBJECT_UNDEFINED, None)
    assert meter.action(1, "0-0:96.3.10", 1, 0) == (
        ActionResult.OBJECT_CLASS_INCONSISTENT,
        None,
    )
    assert meter.action(8, "0-0:1.0.0", 7, 0) == (ActionResult.OBJECT_UNDEFINED, None)


def test_access_denied(meter):
    assert meter.set(3, "1-1:32.7.0", 2, Typed(DataType.LONG_UNSIGNED, 1)) == DAR.READ_WRITE_DENIED
    assert meter.set(1, "0-0:96.1.0", 2, b"X") == DAR.READ_WRITE_DENIED
    assert meter.get(15, "0-0:40.0.0", 7) == DAR.READ_WRITE_DENIED  # secret: write-only
    assert meter.get(15, "0-0:40.0.0", 3) == DAR.READ_WRITE_DENIED  # no_access
    assert meter.action(3, ENERGY, 1, 0) == (
        ActionResult.READ_WRITE_DENIED,
        None,
    )  # reset
    assert meter.action(*CLOCK, 2, 0) == (ActionResult.READ_WRITE_DENIED, None)
    assert meter.get(3, ENERGY, 2, SelectiveAccess(2, (1, 0, 0, 0))) == DAR.OTHER_REASON


# -- identity, options, authentication --------------------------------------------------------


def test_serial_and_logical_device_name(clock):
    m = MeterModel(42, clock=clock)
    assert m.get(1, "0-0:96.1.0", 2) == Typed(DataType.OCTET_STRING, b"SIM00000042")
    ldn = m.get(1, "0-0:42.0.0", 2).value
    assert len(ldn) == 16 and ldn.startswith(b"SIM")  # Blue Book: up to 16 octets, 3-letter id
    assert MeterModel(1, serial="ABC123", clock=clock).get(1, "0-0:96.1.0", 2).value == b"ABC123"


def test_options_frozen_with_defaults():
    o = MeterOptions()
    assert (o.max_info_field, o.max_pdu_size, o.with_list, o.latency_s) == (
        128,
        1024,
        True,
        0.0,
    )
    assert (o.drop_every, o.garbage_every, o.password) == (0, 0, b"22222222")
    assert (o.inactivity_timeout_s, o.wrapper) == (180, False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.password = b"x"  # type: ignore[misc]
    with pytest.raises(LocalProtocolError):
        MeterModel(1, options=MeterOptions(control_mode=9))


def test_authentication_like_the_original_meter(meter, clock):
    assert meter.authenticate(16, None)
    assert meter.authenticate(1, b"22222222") and meter.authenticate(32, b"22222222")
    assert not meter.authenticate(1, b"wrong") and not meter.authenticate(1, None)
    assert not meter.authenticate(2, b"22222222")
    # Association attribute 7 (secret) changes the LLS password of this meter only.
    assert meter.set(15, "0-0:40.0.0", 7, Typed(DataType.OCTET_STRING, b"12345678")) == DAR.SUCCESS
    assert meter.authenticate(1, b"12345678") and not meter.authenticate(1, b"22222222")
    assert MeterModel(43, clock=clock).authenticate(1, b"22222222")
    assert meter.set(15, "0-0:40.0.0", 7, 5) == DAR.TYPE_UNMATCHED


# -- clock --------------------------------------------------------------------------------------


def test_clock_reads_injected_time(meter, clock):
    clock.t = T0 + 0.37
    expected = CosemDateTime.from_datetime(dt.datetime.fromtimestamp(clock.t, tz=dt.timezone.utc))
    assert meter.get(*CLOCK, 2) == Typed(DataType.OCTET_STRING, expected.to_bytes())
    assert meter.get(*CLOCK, 3) == Typed(DataType.LONG, 0)
    assert meter.get(*CLOCK, 9) == Typed(DataType.ENUM, 1)


def test_clock_set_then_runs_on(meter, clock):
    target = T0 + 3600
    assert meter.set(*CLOCK, 2, datetime_bytes(target)) == DAR.SUCCESS
    clock.t += 10
    assert meter.get(*CLOCK, 2).value == datetime_bytes(target + 10)
    # Registers follow true time, not the meter's clock.
    assert meter.get(3, ENERGY, 2).value == v.expected(42, ENERGY, T0 + 10)[0]
    # As the server hands it over: Typed, or a date-time typed value.
    assert meter.set(*CLOCK, 2, Typed(DataType.OCTET_STRING, datetime_bytes(T0))) == DAR.SUCCESS
    assert meter.meter_time() == T0
    cdt = CosemDateTime.from_datetime(dt.datetime.fromtimestamp(T0 + 5, tz=dt.timezone.utc))
    assert meter.set(*CLOCK, 2, Typed(DataType.DATE_TIME, cdt)) == DAR.SUCCESS
    assert meter.meter_time() == T0 + 5


def test_clock_set_with_deviation_and_refusals(meter):
    # 23:13:20 CET (deviation -60, Blue Book sign) is 22:13:20 UTC = T0.
    cet = CosemDateTime(2023, 11, 14, 2, 23, 13, 20, 0, -60, 0).to_bytes()
    assert meter.set(*CLOCK, 2, cet) == DAR.SUCCESS
    assert meter.meter_time() == T0
    assert meter.set(*CLOCK, 2, b"\x07\xe7") == DAR.TYPE_UNMATCHED
    assert meter.set(*CLOCK, 2, 12) == DAR.TYPE_UNMATCHED
    assert meter.set(*CLOCK, 2, bytes.fromhex("ffffffffffffffffff8000ff")) == DAR.OTHER_REASON
    assert meter.set(*CLOCK, 3, Typed(DataType.LONG, 60)) == DAR.READ_WRITE_DENIED


def test_clock_offset_and_drift(clock):
    m = MeterModel(
        1,
        clock=clock,
        options=MeterOptions(clock_offset_s=-30.0, clock_drift_ppm=100.0),
    )
    assert m.meter_time() == T0 - 30
    clock.t = T0 + 10_000  # 100 ppm of 10,000 s = 1 s fast
    assert m.meter_time() == pytest.approx(T0 + 10_000 - 30 + 1, abs=1e-6)
    m.set(*CLOCK, 2, datetime_bytes(clock.t))  # the clock-sync RPC's job
    assert m.meter_time() == clock.t
    clock.t += 20_000
    assert m.meter_time() == pytest.approx(clock.t + 2, abs=1e-6)  # drift starts again


def test_clock_methods(meter, clock):
    clock.t = T0 + 7 * 60 + 31  # T0 is 22:13:20; now 22:20:51
    assert meter.action(*CLOCK, 1, 0) == (
        ActionResult.SUCCESS,
        None,
    )  # adjust_to_quarter
    assert meter.meter_time() == 1_700_000_100  # nearest quarter: 22:15:00
    clock.t += 50  # meter now reads 22:15:50
    assert meter.action(*CLOCK, 3, 0)[0] == ActionResult.SUCCESS  # adjust_to_minute
    assert meter.meter_time() == 1_700_000_100 + 60
    assert (
        meter.action(*CLOCK, 6, Typed(DataType.LONG, -30))[0] == ActionResult.SUCCESS
    )  # shift_time
    assert meter.meter_time() == 1_700_000_100 + 30
    assert meter.action(*CLOCK, 6, 901) == (ActionResult.OTHER_REASON, None)
    assert meter.action(*CLOCK, 6, b"x") == (ActionResult.TYPE_UNMATCHED, None)


# -- disconnect control -------------------------------------------------------------------------


def test_remote_disconnect_and_reconnect_mode_1(meter, clock):
    assert meter.get(*DC, 2) == Typed(DataType.BOOLEAN, True)
    assert meter.get(*DC, 3) == Typed(DataType.ENUM, ControlState.CONNECTED)
    assert meter.get(*DC, 4) == Typed(DataType.ENUM, 1)
    e_before = meter.get(3, ENERGY, 2).value

    assert meter.action(*DC, 1, Typed(DataType.INTEGER, 0)) == (
        ActionResult.SUCCESS,
        None,
    )
    assert meter.get(*DC, 2).value is False
    assert meter.get(*DC, 3).value == ControlState.DISCONNECTED
    clock.t += 3600
    for key in ("current_l1", "current_l2", "current_l3", "active_power"):
        assert meter.get(3, v.REGISTERS_BY_KEY[key].obis, 2).value == 0
    assert meter.get(3, "1-1:32.7.0", 2).value == v.expected(42, "1-1:32.7.0", clock.t)[0]
    assert meter.get(3, ENERGY, 2).value == e_before  # energy stops growing

    assert meter.action(*DC, 2, 0) == (ActionResult.SUCCESS, None)  # transition d
    assert meter.get(*DC, 3).value == ControlState.CONNECTED
    assert meter.get(3, "1-1:31.7.0", 2).value == v.expected(42, "1-1:31.7.0", clock.t)[0] > 0
    clock.t += 600
    # Energy grows again from where it stopped, by exactly the closed-form integral since.
    lost = v.active_energy_wh(42, T0 + 3600) - v.active_energy_wh(42, T0)
    truth = int(v.active_energy_wh(42, clock.t) - lost)
    assert meter.get(3, ENERGY, 2).value == truth == meter.expected(ENERGY)[0]
    assert truth > e_before
    assert meter.expected("1-1:1.7.0", T0 + 1800)[0] == 0  # the history is kept


def test_disconnect_is_idempotent(meter):
    meter.action(*DC, 1, 0)
    assert meter.action(*DC, 1, 0) == (ActionResult.SUCCESS, None)
    assert meter.control_state == ControlState.DISCONNECTED
    assert meter.action(*DC, 1, "zero") == (ActionResult.TYPE_UNMATCHED, None)


def test_mode_2_needs_a_manual_reconnect(meter):
    assert meter.set(*DC, 4, Typed(DataType.ENUM, 2)) == DAR.SUCCESS
    meter.action(*DC, 1, 0)
    meter.action(*DC, 2, 0)  # transition a: ready, still off
    assert meter.get(*DC, 3).value == ControlState.READY_FOR_RECONNECTION
    assert meter.get(*DC, 2).value is False
    assert meter.get(3, "1-1:1.7.0", 2).value == 0
    assert meter.trigger("manual_reconnect")  # transition e: the customer presses the button
    assert meter.output_state and meter.get(3, "1-1:1.7.0", 2).value > 0


def test_mode_0_is_always_connected(meter):
    meter.action(*DC, 1, 0)
    assert meter.set(*DC, 4, 0) == DAR.SUCCESS
    assert meter.control_state == ControlState.CONNECTED
    assert meter.action(*DC, 1, 0) == (ActionResult.READ_WRITE_DENIED, None)
    assert meter.set(*DC, 4, 7) == DAR.OTHER_REASON
    assert meter.set(*DC, 4, b"\x01") == DAR.TYPE_UNMATCHED
    assert meter.set(*DC, 2, False) == DAR.READ_WRITE_DENIED


# Blue Book disconnect control: transitions a..h and the ones each control_mode allows.
TRANSITIONS = {
    "a": ("remote_reconnect", 0, 2),
    "b": ("remote_disconnect", 1, 0),
    "c": ("remote_disconnect", 2, 0),
    "d": ("remote_reconnect", 0, 1),
    "e": ("manual_reconnect", 2, 1),
    "f": ("manual_disconnect", 1, 2),
    "g": ("local_disconnect", 1, 2),
    "h": ("local_reconnect", 2, 1),
}
MODES = {1: "bcfgde", 2: "bcfgae", 3: "bcgde", 4: "bcgae", 5: "bcfgdeh", 6: "bcgaeh"}
TRIGGERS = sorted({t for t, _, _ in TRANSITIONS.values()})


@pytest.mark.parametrize("mode", sorted(MODES))
def test_state_machine_table(mode, clock):
    for state in (0, 1, 2):
        for trig in TRIGGERS:
            m = MeterModel(1, clock=clock, options=MeterOptions(control_mode=mode))
            m._set_state(state)
            allowed = [
                dst
                for x, (t, src, dst) in TRANSITIONS.items()
                if x in MODES[mode] and t == trig and src == state
            ]
            changed = m.trigger(trig)
            assert changed == bool(allowed)
            assert m.control_state == (allowed[0] if allowed else state)
            assert m.output_state == (m.control_state == 1)
    with pytest.raises(LocalProtocolError):
        MeterModel(1, clock=clock).trigger("kick")


# -- association --------------------------------------------------------------------------------


def test_object_list_complete_and_consistent(meter):
    decoded, _ = decode_data(encode_data(meter.get(15, "0-0:40.0.0", 2)))
    listed = {(cid, ln): (ver, rights) for cid, ver, ln, rights in decoded}
    want = {
        (15, "0-0:40.0.0"),
        (8, "0-0:1.0.0"),
        (1, "0-0:96.1.0"),
        (1, "0-0:42.0.0"),
        (1, "0-0:43.1.0"),  # frame counter (security suite 0)
        (70, "0-0:96.3.10"),
        (7, "1-0:99.1.0"),
        (7, "1-0:98.1.0"),  # daily billing profile
        (7, "0-0:99.98.0"),  # standard event log
        (1, "0-0:96.11.0"),  # event code
        (3, "1-0:1.8.0"),  # billing registers: import, export
        (3, "1-0:2.8.0"),
        (4, "1-0:1.6.0"),  # maximum demand
        *((3, str(r.obis)) for r in v.REGISTERS),
        (40, "0-0:25.9.0"),  # push setups: regular, alarm
        (40, "0-4:25.9.0"),
        (1, "0-0:97.98.0"),  # alarm register 1
        (1, "0-0:96.11.2"),  # disconnector control event code (the alarm push)
    }
    assert {(cid, str(Obis.from_bytes(ln))) for cid, ln in listed} == {
        (c, str(Obis.parse(o))) for c, o in want
    }
    assert len(decoded) == 26
    for (cid, ln), (_ver, (attrs, methods)) in listed.items():
        for attr_id, mode, _selectors in attrs:
            result = meter.get(cid, ln, attr_id)
            assert isinstance(result, Typed) == bool(mode & 1), (cid, ln, attr_id)
        for _method_id, mode in methods:
            assert mode in (0, 1)
    assert listed[(7, bytes([1, 0, 99, 1, 0, 255]))][1][0][1] == (
        2,
        1,
        [1, 2],
    )  # buffer: selectors
    assert listed[(8, bytes([0, 0, 1, 0, 0, 255]))][1][0][1][1] == 3  # clock time: read and write
    assert listed[(15, bytes([0, 0, 40, 0, 0, 255]))][1][0][6][1] == 2  # secret: write only
    assert listed[(3, bytes([1, 1, 32, 7, 0, 255]))][0] == 0  # Register version 0


# -- footprint ----------------------------------------------------------------------------------


def test_thousand_meters_are_small(clock):
    MeterModel(0, clock=clock).get(3, ENERGY, 2)  # warm the shared tables and caches
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    meters = [MeterModel(i, clock=clock) for i in range(1000)]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_meter = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(meters)
    assert per_meter < 400, per_meter
    # Instances are independent.
    meters[1].action(*DC, 1, 0)
    assert meters[2].output_state and not meters[1].output_state


def test_unknown_bad_with_list_quirk_is_refused():
    with pytest.raises(LocalProtocolError, match="bad_with_list"):
        MeterOptions(bad_with_list="sometimes")
