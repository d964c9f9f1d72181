"""Load profile of the simulated meter (Profile generic, class 7, 1-0:99.1.0).

Selective access parameters are encoded with SelectiveAccess.encode and decoded with
decode_access, so the model sees exactly what the server wiring will hand it. Descriptor layouts
per the Blue Book (Profile generic attribute 2: range_descriptor = selector 1,
entry_descriptor = selector 2).
"""

from __future__ import annotations

import datetime as dt

import pytest
from profile_access import WILDCARD, Clock, by_entry, by_range, wire
from tb_dlms.protocol.apdu.common import DataAccessResult
from tb_dlms.protocol.axdr import DataType, Typed, decode_data, encode_data
from tb_dlms.protocol.cosem_datetime import CosemDateTime
from tb_dlms.simulator import values as v
from tb_dlms.simulator.model import MeterModel
from tb_dlms.simulator.objects import PROFILE
from tb_dlms.simulator.profile import (
    CLOCK_OBIS,
    CaptureObject,
    datetime_bytes,
    row_span,
)

PG = (7, "1-0:99.1.0")
T_Q = 1_700_000_100  # 2023-11-14T22:15:00Z: a quarter-hour boundary
assert T_Q % 900 == v.EPOCH % 900 == 0
NOW = T_Q + 437  # mid-interval: the newest row is T_Q

S, A, O, U, LU, I8 = (  # noqa: E741 - short type names keep the vectors readable
    DataType.STRUCTURE,
    DataType.ARRAY,
    DataType.OCTET_STRING,
    DataType.DOUBLE_LONG_UNSIGNED,
    DataType.LONG_UNSIGNED,
    DataType.INTEGER,
)


@pytest.fixture
def meter():
    return MeterModel(7, clock=Clock(NOW))


def stamps(buffer):
    return [row.value[0].value for row in buffer.value]


def test_static_attributes(meter):
    assert meter.get(*PG, 4) == Typed(U, 900)
    assert meter.get(*PG, 5) == Typed(DataType.ENUM, 1)  # fifo: oldest first
    assert meter.get(*PG, 8) == Typed(U, 960)
    assert meter.get(*PG, 7) == Typed(U, 960)  # years after EPOCH the buffer is full
    # capture_objects: clock time, active energy, voltage L1 (class, LN, attribute, data index)
    decoded, _ = decode_data(encode_data(meter.get(*PG, 3)))
    assert decoded == [
        (8, bytes([0, 0, 1, 0, 0, 255]), 2, 0),
        (3, bytes([1, 1, 1, 8, 0, 255]), 2, 0),
        (3, bytes([1, 1, 32, 7, 0, 255]), 2, 0),
    ]


def test_full_buffer_oldest_first_up_to_now(meter):
    buf = meter.get(*PG, 2)
    assert len(buf.value) == 960
    times = stamps(buf)
    assert times[-1] == datetime_bytes(T_Q)
    assert times[0] == datetime_bytes(T_Q - 959 * 900)
    first = buf.value[0].value
    assert first[1] == Typed(U, meter.expected("1-1:1.8.0", T_Q - 959 * 900)[0])
    assert first[2] == Typed(LU, v.expected(7, "1-1:32.7.0", T_Q - 959 * 900)[0])
    energies = [row.value[1].value for row in buf.value]
    assert energies == sorted(energies)
    assert energies[-1] == v.expected(7, "1-1:1.8.0", T_Q)[0]
    assert energies[-1] <= v.expected(7, "1-1:1.8.0", NOW)[0]


def test_row_stamps_are_cosem_datetimes_in_utc():
    # Cross-check the fast packer with the protocol's CosemDateTime (deviation 0, status 0).
    d = dt.datetime.fromtimestamp(T_Q, tz=dt.timezone.utc)
    assert datetime_bytes(T_Q) == CosemDateTime.from_datetime(d).to_bytes()
    assert datetime_bytes(T_Q + 0.25)[8] == 25  # byte 8: hundredths


def test_boundary_row_appears_exactly_at_the_boundary():
    clock = Clock(T_Q - 1)
    m = MeterModel(7, clock=clock)
    assert stamps(m.get(*PG, 2, by_entry(960, 0)))[-1] == datetime_bytes(T_Q - 900)
    clock.t = T_Q
    assert stamps(m.get(*PG, 2, by_entry(960, 0)))[-1] == datetime_bytes(T_Q)


def test_entries_in_use_grows_from_epoch():
    clock = Clock(v.EPOCH + 3 * 900 + 5)
    m = MeterModel(1, clock=clock)
    assert m.get(*PG, 7) == Typed(U, 4)  # rows at EPOCH + 0, 900, 1800, 2700
    assert len(m.get(*PG, 2).value) == 4
    clock.t = v.EPOCH - 10
    assert m.get(*PG, 2) == Typed(A, [])
    assert m.get(*PG, 7) == Typed(U, 0)
    assert row_span(PROFILE, -1) == (0, -1)


def test_range_inclusive_boundaries(meter):
    buf = meter.get(*PG, 2, by_range(datetime_bytes(T_Q - 2 * 900), datetime_bytes(T_Q)))
    assert stamps(buf) == [
        datetime_bytes(T_Q - 1800),
        datetime_bytes(T_Q - 900),
        datetime_bytes(T_Q),
    ]
    assert buf.value == meter.get(*PG, 2).value[-3:]


def test_range_mid_interval_bounds(meter):
    buf = meter.get(*PG, 2, by_range(datetime_bytes(T_Q - 1799), datetime_bytes(T_Q - 1)))
    assert stamps(buf) == [datetime_bytes(T_Q - 900)]


@pytest.mark.parametrize(
    "frm, to",
    [
        (T_Q - 899, T_Q - 1),  # between two captures
        (T_Q, T_Q - 900),  # from after to
        (T_Q + 900, T_Q + 9000),  # the future
        (v.EPOCH - 86400, v.EPOCH - 1),  # before anything was captured
        (T_Q - 2000 * 900, T_Q - 961 * 900),  # older than the buffer keeps
    ],
)
def test_empty_ranges(meter, frm, to):
    assert meter.get(*PG, 2, by_range(datetime_bytes(frm), datetime_bytes(to))) == Typed(A, [])


def test_range_clamped_to_buffer(meter):
    buf = meter.get(
        *PG,
        2,
        by_range(datetime_bytes(T_Q - 5000 * 900), datetime_bytes(T_Q - 958 * 900)),
    )
    assert stamps(buf) == [
        datetime_bytes(T_Q - 959 * 900),
        datetime_bytes(T_Q - 958 * 900),
    ]


def test_wildcard_bounds_are_open(meter):
    assert len(meter.get(*PG, 2, by_range(WILDCARD, datetime_bytes(T_Q - 958 * 900))).value) == 2
    assert len(meter.get(*PG, 2, by_range(datetime_bytes(T_Q - 900), WILDCARD)).value) == 2
    assert len(meter.get(*PG, 2, by_range(WILDCARD, WILDCARD)).value) == 960


def test_range_bounds_as_date_time_type_and_with_deviation(meter):
    frm = CosemDateTime.from_datetime(dt.datetime.fromtimestamp(T_Q - 900, tz=dt.timezone.utc))
    buf = meter.get(*PG, 2, by_range(Typed(DataType.DATE_TIME, frm), WILDCARD))
    assert len(buf.value) == 2
    # Blue Book sign: deviation = minutes of local time to UTC, so CET (UTC+1) is -60; 23:15 CET
    # on 14 Nov 2023 is 22:15 UTC = T_Q. Unspecified deviation means UTC for this meter.
    cet = CosemDateTime(2023, 11, 14, None, 23, 15, 0, 0, -60, None).to_bytes()
    assert stamps(meter.get(*PG, 2, by_range(cet, cet))) == [datetime_bytes(T_Q)]
    utc = CosemDateTime(2023, 11, 14, None, 22, 15, 0, None, None, None).to_bytes()
    assert stamps(meter.get(*PG, 2, by_range(utc, utc))) == [datetime_bytes(T_Q)]


def test_range_selected_columns(meter):
    energy = CaptureObject(3, v.REGISTERS_BY_KEY["active_energy"].obis, 2)
    clock = CaptureObject(8, CLOCK_OBIS, 2)
    buf = meter.get(*PG, 2, by_range(datetime_bytes(T_Q), WILDCARD, [energy, clock]))
    assert buf.value == [
        Typed(
            S,
            (
                Typed(U, v.expected(7, "1-1:1.8.0", T_Q)[0]),
                Typed(O, datetime_bytes(T_Q)),
            ),
        )
    ]


def test_range_refusals(meter):
    not_captured = CaptureObject(3, v.REGISTERS_BY_KEY["frequency"].obis, 2)
    assert (
        meter.get(*PG, 2, by_range(WILDCARD, WILDCARD, [not_captured]))
        == DataAccessResult.OTHER_REASON
    )
    energy = CaptureObject(3, v.REGISTERS_BY_KEY["active_energy"].obis, 2)
    assert (
        meter.get(*PG, 2, by_range(WILDCARD, WILDCARD, restricting=energy))
        == DataAccessResult.OTHER_REASON
    )
    assert meter.get(*PG, 2, by_range(b"\x07\xe7", WILDCARD)) == DataAccessResult.TYPE_UNMATCHED
    bad = wire(1, Typed(S, (Typed(U, 1),)))
    assert meter.get(*PG, 2, bad) == DataAccessResult.TYPE_UNMATCHED


def test_entries_whole_and_single(meter):
    full = meter.get(*PG, 2).value
    assert meter.get(*PG, 2, by_entry(1, 0)).value == full
    assert meter.get(*PG, 2, by_entry(0, 0)).value == full  # 0 read as 1: lenient, as most meters
    assert meter.get(*PG, 2, by_entry(1, 1)).value == full[:1]  # entry 1 = oldest
    assert meter.get(*PG, 2, by_entry(960, 960)).value == full[-1:]
    assert meter.get(*PG, 2, by_entry(959, 0)).value == full[-2:]
    assert meter.get(*PG, 2, by_entry(10, 12)).value == full[9:12]


def test_entries_out_of_range(meter):
    full = meter.get(*PG, 2).value
    assert meter.get(*PG, 2, by_entry(955, 5000)).value == full[-6:]  # clamped to the last
    assert meter.get(*PG, 2, by_entry(961, 0)) == Typed(A, [])
    assert meter.get(*PG, 2, by_entry(5, 4)) == Typed(A, [])


def test_entry_columns(meter):
    row = meter.get(*PG, 2, by_entry(960, 0)).value[0].value
    assert meter.get(*PG, 2, by_entry(960, 0, 2, 2)).value[0].value == row[1:2]
    assert meter.get(*PG, 2, by_entry(960, 0, 2, 0)).value[0].value == row[1:]
    assert meter.get(*PG, 2, by_entry(960, 0, 1, 3)).value[0].value == row
    assert meter.get(*PG, 2, by_entry(960, 0, 3, 2)) == DataAccessResult.OTHER_REASON
    assert meter.get(*PG, 2, by_entry(960, 0, 1, 4)) == DataAccessResult.OTHER_REASON


def test_entry_refusals(meter):
    assert meter.get(*PG, 2, wire(3, Typed(U, 1))) == DataAccessResult.OTHER_REASON
    assert meter.get(*PG, 2, wire(2, Typed(S, (Typed(U, 1),)))) == DataAccessResult.TYPE_UNMATCHED
    assert (
        meter.get(*PG, 2, wire(2, Typed(S, (Typed(O, b"x"),) * 4)))
        == DataAccessResult.TYPE_UNMATCHED
    )
    # Selective access on an attribute that takes none.
    assert meter.get(*PG, 3, by_entry(1, 0)) == DataAccessResult.OTHER_REASON


def test_entries_move_every_quarter_hour():
    clock = Clock(NOW)
    m = MeterModel(7, clock=clock)
    newest = m.get(*PG, 2, by_entry(960, 0)).value
    clock.t = NOW + 900
    assert m.get(*PG, 2, by_entry(959, 959)).value == newest
    assert stamps(m.get(*PG, 2, by_entry(960, 0))) == [datetime_bytes(T_Q + 900)]


def test_energy_flat_while_disconnected():
    clock = Clock(T_Q - 3 * 900 + 10)
    m = MeterModel(7, clock=clock)
    assert m.action(70, "0-0:96.3.10", 1, 0)[0] == 0
    clock.t = T_Q - 900 + 10
    m.action(70, "0-0:96.3.10", 2, 0)
    clock.t = NOW
    e = [row.value[1].value for row in m.get(*PG, 2, by_entry(957, 0)).value]
    # rows T_Q-2700 (connected), -1800 and -900 (off), T_Q (connected again for 890 s)
    assert e[1] == e[2] > e[0]
    assert e[3] > e[2]
    assert e == [m.expected("1-1:1.8.0", T_Q - k * 900)[0] for k in (3, 2, 1, 0)]


def test_whole_buffer_encodes(meter):
    data = encode_data(meter.get(*PG, 2))
    decoded, end = decode_data(data)
    assert end == len(data) and len(decoded) == 960
    assert decoded[-1] == (
        datetime_bytes(T_Q),
        v.expected(7, "1-1:1.8.0", T_Q)[0],
        v.expected(7, "1-1:32.7.0", T_Q)[0],
    )
