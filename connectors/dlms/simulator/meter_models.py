"""The three meter models a simulated fleet mixes, and their registers' deterministic values.

=====  ==========================================================================================
model  what it is
=====  ==========================================================================================
poly   the original three-phase meter (channel 1-1 registers of :data:`.values.REGISTERS`,
       billing, maximum demand, three profiles, disconnect control): unchanged
mono   a single-phase residential meter, channel 1-0: voltage, current, active power, energy
       import/export, frequency; firmware version, disconnect control, a load profile
ct     a C&I CT-connected three-phase meter, channel 1-0: voltages, currents, active and
       reactive power, power factor, frequency, active and reactive energies in both
       directions; finer scalers; firmware version, maximum demand, billing and load profiles,
       no disconnect control
=====  ==========================================================================================

Every value is a pure function of (meter index, time), built on the signals of :mod:`.values`:
mono is phase L1 of the same meter (its energy the exact integral of L1 power); ct's reactive
power is P * tan(acos(pf)) per phase, so its reactive energy is the same constant times each
phase's energy integral; export energies come from :func:`.profile_data.export_wh_at`.
``model_of(index, "mixed")`` gives a fleet of all three in turn.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..protocol.axdr import DataType
from ..protocol.obis import Obis
from . import values as _v
from .profile_data import export_wh_at

__all__ = [
    "CHOICES",
    "MODELS",
    "ModelRegister",
    "expected",
    "model_of",
    "raw_at",
    "registers_of",
    "spec_for",
]

MODELS = ("poly", "mono", "ct")
CHOICES = (*MODELS, "mixed")  # what MeterOptions.model and ``--model`` take

# Quantities beyond values' five (VOLTAGE .. ENERGY = 0..4).
PHASE_POWER, REACTIVE_POWER, POWER_FACTOR, EXPORT_ENERGY, REACTIVE_IMPORT, REACTIVE_EXPORT = (
    range(5, 11))
UNIT_VAR, UNIT_VARH, UNIT_NONE = 29, 32, 255  # Blue Book unit enumeration

_DLU, _DL = DataType.DOUBLE_LONG_UNSIGNED, DataType.DOUBLE_LONG
_LU, _L = DataType.LONG_UNSIGNED, DataType.LONG


def model_of(index: int, choice: str) -> str:
    """The model of meter ``index`` in a fleet of ``choice`` (a model, or "mixed")."""
    if choice == "mixed":
        return MODELS[index % 3]
    if choice not in MODELS:
        raise ValueError(f"meter model must be one of {CHOICES}, got {choice!r}")
    return choice


class ModelRegister(NamedTuple):
    """A class 3 register of a model: where and how scaled (``spec``), and its wire type."""

    spec: _v.RegisterSpec
    type: DataType


def _reg(key: str, obis: str, quantity: int, phase: int, scaler: int, unit: int,
         typ: DataType) -> ModelRegister:
    return ModelRegister(_v.RegisterSpec(key, Obis.parse(obis), quantity, phase, scaler, unit), typ)


_MONO = (
    _reg("voltage", "1-0:32.7.0", _v.VOLTAGE, 0, -1, _v.UNIT_V, _LU),
    _reg("current", "1-0:31.7.0", _v.CURRENT, 0, -2, _v.UNIT_A, _LU),
    _reg("active_power", "1-0:1.7.0", PHASE_POWER, 0, 0, _v.UNIT_W, _DL),
    _reg("energy_import", "1-0:1.8.0", _v.ENERGY, 0, 0, _v.UNIT_WH, _DLU),
    _reg("energy_export", "1-0:2.8.0", EXPORT_ENERGY, -1, 0, _v.UNIT_WH, _DLU),
    _reg("frequency", "1-0:14.7.0", _v.FREQUENCY, -1, -2, _v.UNIT_HZ, _LU),
)
# A CT meter reports finer: 10 mV, 1 mA, 1 mHz, pf to 0.001, energies in 0.01 kWh / kvarh.
_CT = (
    *(_reg(f"voltage_l{k + 1}", f"1-0:{32 + 20 * k}.7.0", _v.VOLTAGE, k, -2, _v.UNIT_V, _LU)
      for k in range(3)),
    *(_reg(f"current_l{k + 1}", f"1-0:{31 + 20 * k}.7.0", _v.CURRENT, k, -3, _v.UNIT_A, _DLU)
      for k in range(3)),
    _reg("active_power", "1-0:1.7.0", _v.POWER, -1, 0, _v.UNIT_W, _DL),
    _reg("reactive_power", "1-0:3.7.0", REACTIVE_POWER, -1, 0, UNIT_VAR, _DL),
    _reg("power_factor", "1-0:13.7.0", POWER_FACTOR, -1, -3, UNIT_NONE, _L),
    _reg("frequency", "1-0:14.7.0", _v.FREQUENCY, -1, -3, _v.UNIT_HZ, _LU),
    _reg("energy_import", "1-0:1.8.0", _v.ENERGY, -1, 1, _v.UNIT_WH, _DLU),
    _reg("energy_export", "1-0:2.8.0", EXPORT_ENERGY, -1, 1, _v.UNIT_WH, _DLU),
    _reg("reactive_import", "1-0:3.8.0", REACTIVE_IMPORT, -1, 1, UNIT_VARH, _DLU),
    _reg("reactive_export", "1-0:4.8.0", REACTIVE_EXPORT, -1, 1, UNIT_VARH, _DLU),
)


def _poly_type(spec: _v.RegisterSpec) -> DataType:
    return _DLU if spec.quantity == _v.ENERGY else _DL if spec.quantity == _v.POWER else _LU


_REGISTERS: dict[str, tuple[ModelRegister, ...]] = {
    "poly": tuple(ModelRegister(s, _poly_type(s)) for s in _v.REGISTERS),
    "mono": _MONO,
    "ct": _CT,
}
_BY_RAW = {m: {r.spec.obis.to_bytes(): r.spec for r in regs} for m, regs in _REGISTERS.items()}


def registers_of(model: str) -> tuple[ModelRegister, ...]:
    """The class 3 registers of ``model`` that follow :func:`raw_at` (poly: values.REGISTERS;
    its billing registers and all profiles are served by the profile book)."""
    return _REGISTERS[model]


def spec_for(model: str, obis: Obis | str | bytes) -> _v.RegisterSpec:
    """The register of ``model`` at ``obis``; KeyError if that model has none there."""
    raw = obis.to_bytes() if isinstance(obis, Obis) else (
        obis if isinstance(obis, bytes) else Obis.parse(obis).to_bytes())
    try:
        return _BY_RAW[model][raw]
    except KeyError:
        raise KeyError(f"no {model} register at {Obis.from_bytes(raw)}") from None


# -- signals ---------------------------------------------------------------------------------


def _tan_phi(index: int, k: int) -> float:
    pf = _v.power_factor(index, k)
    return math.sqrt(1.0 - pf * pf) / pf


def reactive_power(index: int, tau: int) -> float:
    """Total reactive power in var (inductive, imported): sum of P_k tan(phi_k)."""
    t = tau + _v.EPOCH
    return sum(_v.phase_power(index, k, t) * _tan_phi(index, k) for k in range(3))


def energy_wh(model: str, index: int, tau: int) -> float:
    """The active energy import of ``model`` in Wh while always connected (mono: phase L1)."""
    if model == "mono":
        return _v.phase_energy_wh_at(index, 0, tau)
    return _v.energy_wh_at(index, tau)


def signal(model: str, index: int, spec: _v.RegisterSpec, tau: int) -> float:
    """The physical value of register ``spec`` of ``model`` at ``tau`` (energies: Wh, varh)."""
    q, k, t = spec.quantity, spec.phase, tau + _v.EPOCH
    if q == _v.VOLTAGE:
        return _v.voltage(index, k, t)
    if q == _v.CURRENT:
        return _v.current(index, k, t)
    if q == _v.FREQUENCY:
        return _v.frequency(index, t)
    if q == _v.POWER:
        return _v.active_power(index, t)
    if q == PHASE_POWER:
        return _v.phase_power(index, k, t)
    if q == REACTIVE_POWER:
        return reactive_power(index, tau)
    if q == POWER_FACTOR:
        p = _v.active_power(index, t)
        return p / math.hypot(p, reactive_power(index, tau))
    if q == _v.ENERGY:
        return energy_wh(model, index, tau)
    if q == EXPORT_ENERGY:
        return export_wh_at(index, tau)
    if q == REACTIVE_IMPORT:
        return sum(_v.phase_energy_wh_at(index, k, tau) * _tan_phi(index, k) for k in range(3))
    return 0.3 * export_wh_at(index, tau)  # REACTIVE_EXPORT: capacitive while feeding in


_ENERGIES = (_v.ENERGY, EXPORT_ENERGY, REACTIVE_IMPORT, REACTIVE_EXPORT)


def raw_of(value: float, spec: _v.RegisterSpec) -> int:
    """The raw integer of a physical value: energies truncate, the rest round half up."""
    s = spec.scaler
    scaled = value / float(10**s) if s >= 0 else value * float(10**-s)
    if spec.quantity in _ENERGIES:
        return math.floor(scaled)
    return math.floor(scaled + 0.5)


def raw_at(model: str, index: int, spec: _v.RegisterSpec, tau: int) -> int:
    """The raw integer of ``spec`` (a register of ``model``) at ``tau`` while connected."""
    if model == "poly":
        return _v.raw_at(index, spec, tau)  # the original meter's own arithmetic
    return raw_of(signal(model, index, spec, tau), spec)


def expected(model: str, index: int, obis: Obis | str | bytes, t: float) -> tuple[int, int, int]:
    """(raw, scaler, unit) meter ``index`` of ``model`` reports for ``obis`` at unix time ``t``
    while connected."""
    spec = spec_for(model, obis)
    return raw_at(model, index, spec, math.floor(t) - _v.EPOCH), spec.scaler, spec.unit
