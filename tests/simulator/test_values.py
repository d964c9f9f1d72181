"""Deterministic signals of the simulated meter (tb_dlms.simulator.values)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.obis import Obis
from tb_dlms.simulator import values as v

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z, an arbitrary fixed instant
OBIS_ENERGY = "1-1:1.8.0"


def test_register_table_matches_original_system():
    # OBIS codes and Blue Book units from ORIGINAL_SYSTEM.md (Wh=30, W=27, A=33, V=35, Hz=44).
    table = {r.key: (str(r.obis), r.unit) for r in v.REGISTERS}
    assert table == {
        "voltage_l1": ("1-1:32.7.0.255", 35),
        "voltage_l2": ("1-1:52.7.0.255", 35),
        "voltage_l3": ("1-1:72.7.0.255", 35),
        "current_l1": ("1-1:31.7.0.255", 33),
        "current_l2": ("1-1:51.7.0.255", 33),
        "current_l3": ("1-1:71.7.0.255", 33),
        "frequency": ("1-1:14.7.0.255", 44),
        "active_power": ("1-1:1.7.0.255", 27),
        "active_energy": ("1-1:1.8.0.255", 30),
    }
    assert [r.scaler for r in v.REGISTERS] == [-1, -1, -1, -2, -2, -2, -2, -1, 0]


def test_expected_is_rounded_signal():
    for i in (0, 7, 999):
        assert v.expected(i, "1-1:32.7.0", T0) == (
            math.floor(v.voltage(i, 0, T0) * 10 + 0.5),
            -1,
            35,
        )
        assert v.expected(i, "1-1:51.7.0", T0)[0] == math.floor(v.current(i, 1, T0) * 100 + 0.5)
        assert v.expected(i, "1-1:14.7.0", T0)[0] == math.floor(v.frequency(i, T0) * 100 + 0.5)
        assert v.expected(i, "1-1:1.7.0", T0)[0] == math.floor(v.active_power(i, T0) * 10 + 0.5)
        assert v.expected(i, OBIS_ENERGY, T0)[0] == math.floor(v.active_energy_wh(i, T0))


def test_plausible_ranges():
    for i in range(50):
        for t in range(T0, T0 + 86400, 3607):
            for k in range(3):
                assert 225.0 < v.voltage(i, k, t) < 235.0
                assert 0.5 < v.current(i, k, t) < 10.0
            assert 49.9 < v.frequency(i, t) < 50.1
            assert 500.0 < v.active_power(i, t) < 5000.0


def test_power_is_v_times_i_times_pf():
    for i in (1, 2, 3):
        for t in (T0, T0 + 1234):
            total = sum(
                v.voltage(i, k, t) * v.current(i, k, t) * v.power_factor(i, k) for k in range(3)
            )
            assert total == pytest.approx(v.active_power(i, t), rel=1e-12)


def test_constant_within_a_second_and_moving_between_seconds():
    assert v.expected(5, "1-1:32.7.0", T0) == v.expected(5, "1-1:32.7.0", T0 + 0.999)
    # The ripple terms make the raw values move from one second to the next most of the time.
    for obis in ("1-1:32.7.0", "1-1:31.7.0", "1-1:14.7.0", "1-1:1.7.0"):
        raws = [v.raw_value(5, obis, T0 + s) for s in range(61)]
        changes = sum(a != b for a, b in zip(raws, raws[1:]))
        assert changes >= 30, (obis, changes)


def test_meters_and_phases_differ():
    l1 = {v.raw_value(i, "1-1:32.7.0", T0) for i in range(100)}
    assert len(l1) > 20
    assert len({v.raw_value(3, o, T0) for o in ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0")}) >= 2


def test_deterministic_across_cache_clear():
    before = [v.expected(11, r.obis, T0) for r in v.REGISTERS]
    v._params.cache_clear()
    assert [v.expected(11, r.obis, T0) for r in v.REGISTERS] == before


def test_energy_monotonic_every_second():
    raws = [v.raw_value(3, OBIS_ENERGY, T0 + s) for s in range(3600)]
    assert all(b >= a for a, b in zip(raws, raws[1:]))
    assert raws[-1] - raws[0] > 500  # > 0.5 kWh per hour: at least ~0.6 * 3 * 300 W


def test_energy_is_the_integral_of_power():
    # Simpson's rule over one hour of the (continuous) power signal must match the closed form.
    i, a, n = 4, T0, 3600
    p = v._params(i)
    tau0 = a - v.EPOCH
    h = 1.0  # the energy closed form is continuous; evaluate power at whole seconds
    s = v._active_power(p, tau0) + v._active_power(p, tau0 + n)
    s += 4 * sum(v._active_power(p, tau0 + k) for k in range(1, n, 2))
    s += 2 * sum(v._active_power(p, tau0 + k) for k in range(2, n, 2))
    integral_wh = s * h / 3 / 3600
    closed = v._energy_wh(p, tau0 + n) - v._energy_wh(p, tau0)
    assert closed == pytest.approx(integral_wh, rel=1e-6)


def test_energy_starts_at_per_meter_reading_at_epoch():
    e0 = v.active_energy_wh(8, v.EPOCH)
    assert e0 == v._params(8).e_start_wh
    assert 1_000_000 <= e0 < 10_000_000


def test_expected_value_scales_exactly():
    raw, scaler, _ = v.expected(2, "1-1:32.7.0", T0)
    assert v.expected_value(2, "1-1:32.7.0", T0) == float(Decimal(raw).scaleb(scaler))
    assert v.scale(2308, -1) == 230.8
    assert v.scale(5003, -2) == 50.03
    assert v.scale(7, 0) == 7.0
    assert v.scale(7, 3) == 7000.0


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**31), 2**32), st.integers(-6, 6))
def test_scale_is_correctly_rounded(raw, scaler):
    assert v.scale(raw, scaler) == float(Decimal(raw).scaleb(scaler))


def test_obis_notations_and_unknown():
    assert v.expected(1, Obis.parse("1.1.1.8.0.255"), T0) == v.expected(1, OBIS_ENERGY, T0)
    assert v.spec_for(bytes([1, 1, 1, 8, 0, 255])).key == "active_energy"
    with pytest.raises(KeyError):
        v.spec_for("1-0:99.99.0")
