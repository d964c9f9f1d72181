"""Deterministic meter signals: pure functions of (meter index, unix time).

Tests compare what the gateway publishes with what a simulated meter "measured", so every value
must be computable for any meter at any instant, with no state and no randomness:

* time is quantised to whole seconds (``floor(t)``): a value is constant within a second and
  changes from one second to the next (a short "ripple" term sees to that);
* per-meter and per-phase differences come from a splitmix-style integer hash of the index, which
  is exact on every platform (Python's ``hash()`` and ``random`` are not part of the contract);
* active power is defined per phase, and current is derived from it (I = P / (V * pf)), so
  P = sum(V * I * pf) holds before rounding;
* active energy is the closed-form integral of power since :data:`EPOCH` plus a per-meter start
  reading, so it is monotonic and exact at any instant without integrating step by step.

Raw integers use the scalers a real meter would (voltage 0.1 V, current 0.01 A, frequency
0.01 Hz, power 0.1 W, energy 1 Wh) and the Blue Book unit enum. Valid for ``t >= EPOCH``.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

from ..protocol.obis import Obis

__all__ = [
    "EPOCH",
    "REGISTERS",
    "REGISTERS_BY_KEY",
    "UNIT_A",
    "UNIT_HZ",
    "UNIT_V",
    "UNIT_W",
    "UNIT_WH",
    "RegisterSpec",
    "active_energy_wh",
    "active_power",
    "current",
    "energy_raw",
    "energy_wh_at",
    "expected",
    "expected_value",
    "frequency",
    "phase_energy_wh_at",
    "phase_power",
    "power_factor",
    "raw_at",
    "raw_value",
    "scale",
    "spec_for",
    "unit_hash",
    "voltage",
]

# 2020-01-01T00:00:00Z: energy integrates from here; the load profile never reaches before it.
EPOCH = 1577836800

# Blue Book unit enumeration (the original system got these wrong; see ORIGINAL_SYSTEM.md).
UNIT_W = 27
UNIT_WH = 30
UNIT_A = 33
UNIT_V = 35
UNIT_HZ = 44

_TWO_PI = 2.0 * math.pi
_MASK64 = (1 << 64) - 1
_DAY = 86400.0

# Quantity codes (small ints: cheap dispatch in the model's hot path).
VOLTAGE, CURRENT, FREQUENCY, POWER, ENERGY = range(5)


class RegisterSpec(NamedTuple):
    """One register of the original meter: where it lives and how its raw value is scaled."""

    key: str
    obis: Obis
    quantity: int  # VOLTAGE, CURRENT, FREQUENCY, POWER or ENERGY
    phase: int  # 0..2 for per-phase quantities, -1 otherwise
    scaler: int
    unit: int


# The nine registers of ORIGINAL_SYSTEM.md, in its order.
REGISTERS: tuple[RegisterSpec, ...] = (
    RegisterSpec("voltage_l1", Obis.parse("1-1:32.7.0"), VOLTAGE, 0, -1, UNIT_V),
    RegisterSpec("voltage_l2", Obis.parse("1-1:52.7.0"), VOLTAGE, 1, -1, UNIT_V),
    RegisterSpec("voltage_l3", Obis.parse("1-1:72.7.0"), VOLTAGE, 2, -1, UNIT_V),
    RegisterSpec("current_l1", Obis.parse("1-1:31.7.0"), CURRENT, 0, -2, UNIT_A),
    RegisterSpec("current_l2", Obis.parse("1-1:51.7.0"), CURRENT, 1, -2, UNIT_A),
    RegisterSpec("current_l3", Obis.parse("1-1:71.7.0"), CURRENT, 2, -2, UNIT_A),
    RegisterSpec("frequency", Obis.parse("1-1:14.7.0"), FREQUENCY, -1, -2, UNIT_HZ),
    RegisterSpec("active_power", Obis.parse("1-1:1.7.0"), POWER, -1, -1, UNIT_W),
    RegisterSpec("active_energy", Obis.parse("1-1:1.8.0"), ENERGY, -1, 0, UNIT_WH),
)
REGISTERS_BY_KEY: dict[str, RegisterSpec] = {r.key: r for r in REGISTERS}
_BY_RAW: dict[bytes, RegisterSpec] = {r.obis.to_bytes(): r for r in REGISTERS}


def spec_for(obis: Obis | str | bytes) -> RegisterSpec:
    """The register at ``obis``; KeyError if the simulated meter has no such register."""
    raw = obis.to_bytes() if isinstance(obis, Obis) else Obis.parse(obis).to_bytes()
    try:
        return _BY_RAW[raw]
    except KeyError:
        raise KeyError(f"no simulated register at {Obis.from_bytes(raw)}") from None


# -- per-meter parameters -------------------------------------------------------------------


def _unit(index: int, salt: int) -> float:
    """A uniform-looking number in [0, 1) from (index, salt): splitmix64 finaliser, exact ints."""
    x = (index * 0x9E3779B97F4A7C15 + (salt + 1) * 0xD1B54A32D192ED03) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return (x >> 11) / float(1 << 53)


def unit_hash(index: int, salt: int) -> float:
    """The same exact hash for the other modules' deterministic content (event times, codes)."""
    return _unit(index, salt)


class _Params(NamedTuple):
    # per phase: (offset, wander amp, wander w, wander phase, ripple amp, ripple w, ripple phase)
    v: tuple[tuple[float, float, float, float, float, float, float], ...]
    # per phase: (base W, daily amp, daily w, daily phase, ripple amp, ripple w, ripple phase)
    p: tuple[tuple[float, float, float, float, float, float, float], ...]
    pf: tuple[float, float, float]
    f: tuple[float, float, float, float, float]  # (amp, w, phase, ripple amp, ripple w)
    f_phase2: float  # ripple phase
    e_start_wh: float  # reading at EPOCH
    e_base_w: float  # sum of per-phase base powers
    e_const: float  # sum of A/w * cos(phase) terms: the integral's value at tau = 0 is 0


@lru_cache(maxsize=4096)
def _params(index: int) -> _Params:
    """Everything that makes meter ``index`` different, derived once and shared by all callers."""
    meter_offset = 4.0 * (_unit(index, 0) - 0.5)  # this meter's line sits a little high or low
    v = []
    p = []
    pf = []
    e_const = 0.0
    for k in range(3):
        s = 10 * (k + 1)
        v.append(
            (
                230.0 + meter_offset + (k - 1) * 0.4 + 0.6 * (_unit(index, s) - 0.5),
                1.5,  # slow wander, +-1.5 V
                _TWO_PI / (1500.0 + 200.0 * k + 600.0 * _unit(index, s + 1)),
                _TWO_PI * _unit(index, s + 2),
                0.4,  # ripple, +-0.4 V, makes the 0.1 V raw value move most seconds
                _TWO_PI / (9.0 + 2.0 * k),
                _TWO_PI * _unit(index, s + 3),
            )
        )
        base = 300.0 + 900.0 * _unit(index, s + 4)
        day_amp, day_w, day_ph = (
            0.35 * base,
            _TWO_PI / _DAY,
            _TWO_PI * _unit(index, s + 5),
        )
        rip_amp, rip_w, rip_ph = (
            0.04 * base,
            _TWO_PI / (17.0 + 3.0 * k),
            _TWO_PI * _unit(index, s + 6),
        )
        p.append((base, day_amp, day_w, day_ph, rip_amp, rip_w, rip_ph))
        pf.append(0.88 + 0.1 * _unit(index, s + 7))
        e_const += day_amp / day_w * math.cos(day_ph) + rip_amp / rip_w * math.cos(rip_ph)
    f = (0.04, _TWO_PI / 480.0, _TWO_PI * _unit(index, 90), 0.015, _TWO_PI / 5.0)
    return _Params(
        v=tuple(v),
        p=tuple(p),
        pf=(pf[0], pf[1], pf[2]),
        f=f,
        f_phase2=_TWO_PI * _unit(index, 91),
        e_start_wh=float(1_000_000 + int(9_000_000 * _unit(index, 92))),
        e_base_w=sum(x[0] for x in p),
        e_const=e_const,
    )


# -- signals (float, physical units) ---------------------------------------------------------
# ``tau`` is whole seconds since EPOCH; the public functions take unix time and quantise it.


def _tau(t: float) -> int:
    return math.floor(t) - EPOCH


def _voltage(p: _Params, k: int, tau: int) -> float:
    off, a, w, ph, ra, rw, rph = p.v[k]
    return off + a * math.sin(w * tau + ph) + ra * math.sin(rw * tau + rph)


def _phase_power(p: _Params, k: int, tau: int) -> float:
    base, da, dw, dph, ra, rw, rph = p.p[k]
    return base + da * math.sin(dw * tau + dph) + ra * math.sin(rw * tau + rph)


def _current(p: _Params, k: int, tau: int) -> float:
    return _phase_power(p, k, tau) / (_voltage(p, k, tau) * p.pf[k])


def _frequency(p: _Params, tau: int) -> float:
    a, w, ph, ra, rw = p.f
    return 50.0 + a * math.sin(w * tau + ph) + ra * math.sin(rw * tau + p.f_phase2)


def _active_power(p: _Params, tau: int) -> float:
    return _phase_power(p, 0, tau) + _phase_power(p, 1, tau) + _phase_power(p, 2, tau)


def _energy_wh(p: _Params, tau: int) -> float:
    # Integral of sum_k [base + A sin(w s + ph) + R sin(r s + q)] ds over [0, tau]:
    # base*tau + A/w (cos ph - cos(w tau + ph)) + R/r (cos q - cos(r tau + q)).
    ws = p.e_base_w * tau + p.e_const
    for _base, da, dw, dph, ra, rw, rph in p.p:
        ws -= da / dw * math.cos(dw * tau + dph) + ra / rw * math.cos(rw * tau + rph)
    return p.e_start_wh + ws / 3600.0


def voltage(index: int, phase: int, t: float) -> float:
    """Phase voltage in V (phase 0..2 = L1..L3)."""
    return _voltage(_params(index), phase, _tau(t))


def phase_power(index: int, phase: int, t: float) -> float:
    """Active power of one phase in W."""
    return _phase_power(_params(index), phase, _tau(t))


def current(index: int, phase: int, t: float) -> float:
    """Phase current in A, derived so that P = V * I * pf."""
    return _current(_params(index), phase, _tau(t))


def power_factor(index: int, phase: int) -> float:
    return _params(index).pf[phase]


def frequency(index: int, t: float) -> float:
    """Line frequency in Hz."""
    return _frequency(_params(index), _tau(t))


def active_power(index: int, t: float) -> float:
    """Total active power in W (sum of the phases)."""
    return _active_power(_params(index), _tau(t))


def active_energy_wh(index: int, t: float) -> float:
    """Total active energy in Wh: start reading plus the exact integral of power since EPOCH."""
    return _energy_wh(_params(index), _tau(t))


# -- raw register values ---------------------------------------------------------------------


def _round(x: float) -> int:
    return math.floor(x + 0.5)  # half-up: fixed, unlike round()'s banker's rule


def raw_at(index: int, spec: RegisterSpec, tau: int) -> int:
    """The raw integer of ``spec`` at ``tau`` seconds after EPOCH (the model's hot path)."""
    p = _params(index)
    q = spec.quantity
    if q == VOLTAGE:
        return _round(_voltage(p, spec.phase, tau) * 10.0)
    if q == CURRENT:
        return _round(_current(p, spec.phase, tau) * 100.0)
    if q == FREQUENCY:
        return _round(_frequency(p, tau) * 100.0)
    if q == POWER:
        return _round(_active_power(p, tau) * 10.0)
    return math.floor(_energy_wh(p, tau))  # an energy register truncates, it never rounds up


def energy_wh_at(index: int, tau: int) -> float:
    """Total active energy in Wh at ``tau`` seconds after EPOCH (the model's disconnector sums)."""
    return _energy_wh(_params(index), tau)


def phase_energy_wh_at(index: int, phase: int, tau: int) -> float:
    """Active energy of one phase in Wh at ``tau``: a third of the start reading plus the exact
    integral of that phase's power (the three phases sum to :func:`energy_wh_at`)."""
    p = _params(index)
    base, da, dw, dph, ra, rw, rph = p.p[phase]
    ws = base * tau + da / dw * (math.cos(dph) - math.cos(dw * tau + dph))
    ws += ra / rw * (math.cos(rph) - math.cos(rw * tau + rph))
    return p.e_start_wh / 3.0 + ws / 3600.0


def energy_raw(index: int, tau: int) -> int:
    """Raw energy register (Wh, scaler 0) at ``tau`` seconds after EPOCH."""
    return math.floor(_energy_wh(_params(index), tau))


def raw_value(index: int, obis: Obis | str | bytes, t: float) -> int:
    return raw_at(index, spec_for(obis), _tau(t))


def scale(raw: int, scaler: int) -> float:
    """raw * 10**scaler, correctly rounded: dividing by an exact power of ten, never by 0.1."""
    if scaler >= 0:
        return float(raw * 10**scaler)
    den: int = 10 ** (-scaler)
    return raw / den  # int / int: one correctly rounded division


def expected(index: int, obis: Obis | str | bytes, t: float) -> tuple[int, int, int]:
    """(raw, scaler, unit) that meter ``index`` reports for ``obis`` at unix time ``t``
    while its supply is connected (the model zeroes currents and power when disconnected)."""
    spec = spec_for(obis)
    return raw_at(index, spec, _tau(t)), spec.scaler, spec.unit


def expected_value(index: int, obis: Obis | str | bytes, t: float) -> float:
    """The physical value a client should compute from :func:`expected`."""
    raw, scaler, _ = expected(index, obis, t)
    return scale(raw, scaler)
