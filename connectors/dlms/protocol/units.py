"""Units and scalers (Blue Book, IEC 62056-6-2: the ``unit`` enumeration of scal_unit_type).

A Register's attribute 3 is ``scaler_unit ::= structure { scaler integer, unit enum }``; the
physical value is ``value * 10 ** scaler`` in ``unit``. ``apply_scaler`` computes that exactly in
decimal (2301 with scaler -1 gives 230.1, never 230.09999999999999).

Symbols follow the Blue Book table. Where the table names a quantity rather than printing a symbol,
or prints a symbol that needs a qualifier to be told apart, the symbol here is the conventional one
and carries a "# conventional" note. Codes 58, 59, 68, 69, 73..127 and 175..252 are not assigned in
the editions we know of; ``unit_symbol`` renders them as ``unit(<code>)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any, Callable, Dict, NamedTuple, Union

from .errors import DecodeError, LocalProtocolError

__all__ = ["UNIT_SYMBOLS", "ScalerUnit", "Scaling", "apply_scaler", "unit_symbol"]

UNIT_SYMBOLS: Dict[int, str] = {
    1: "a",            # time: year
    2: "mo",           # time: month
    3: "wk",           # time: week
    4: "d",            # time: day
    5: "h",            # time: hour
    6: "min.",         # time: minute (the Blue Book prints the dot)
    7: "s",            # time: second
    8: "°",            # (phase) angle, degree
    9: "°C",           # temperature
    10: "currency",    # (local) currency; conventional: the table has no symbol
    11: "m",           # length
    12: "m/s",         # speed
    13: "m³",          # volume
    14: "m³ (corrected)",   # corrected volume; conventional qualifier, the table prints "m³"
    15: "m³/h",        # volume flux
    16: "m³/h (corrected)",  # conventional qualifier, the table prints "m³/h"
    17: "m³/d",        # volume flux per day
    18: "m³/d (corrected)",  # conventional qualifier, the table prints "m³/d"
    19: "l",           # volume, litre
    20: "kg",          # mass
    21: "N",           # force
    22: "Nm",          # energy, newton metre
    23: "Pa",          # pressure
    24: "bar",         # pressure
    25: "J",           # energy, joule
    26: "J/h",         # thermal power
    27: "W",           # active power
    28: "VA",          # apparent power
    29: "var",         # reactive power
    30: "Wh",          # active energy
    31: "VAh",         # apparent energy
    32: "varh",        # reactive energy
    33: "A",           # current
    34: "C",           # electrical charge
    35: "V",           # voltage
    36: "V/m",         # electric field strength
    37: "F",           # capacitance
    38: "Ω",           # resistance
    39: "Ωm²/m",       # resistivity
    40: "Wb",          # magnetic flux
    41: "T",           # magnetic flux density
    42: "A/m",         # magnetic field strength
    43: "H",           # inductance
    44: "Hz",          # frequency
    45: "1/(Wh)",      # R_W: active energy meter constant or pulse value
    46: "1/(varh)",    # R_B: reactive energy meter constant or pulse value
    47: "1/(VAh)",     # R_S: apparent energy meter constant or pulse value
    48: "V²h",         # volt-squared hours
    49: "A²h",         # ampere-squared hours
    50: "kg/s",        # mass flux
    51: "S",           # conductance, siemens (the table adds "mho")
    52: "K",           # temperature, kelvin
    53: "1/(V²h)",     # R_U2h: volt-squared hour meter constant or pulse value
    54: "1/(A²h)",     # R_I2h: ampere-squared hour meter constant or pulse value
    55: "1/m³",        # R_V: meter constant or pulse value (volume)
    56: "%",           # percentage
    57: "Ah",          # ampere-hours
    60: "Wh/m³",       # energy per volume
    61: "J/m³",        # calorific value, wobbe
    62: "Mol %",       # molar fraction of gas composition
    63: "g/m³",        # mass density, quantity of material
    64: "Pa s",        # dynamic viscosity
    65: "J/kg",        # specific energy
    66: "g/cm²",       # pressure, gram per square centimetre
    67: "atm",         # pressure, atmosphere
    70: "dBm",         # signal strength, dB milliwatt
    71: "dBµV",        # signal strength, dB microvolt
    72: "dB",          # logarithmic unit
    # Imperial / US units (added in later Blue Book editions, codes 128..174).
    128: "in",         # length, inch
    129: "ft",         # length, foot
    130: "lb",         # mass, pound
    131: "°F",         # temperature, Fahrenheit
    132: "°R",         # temperature, Rankine
    133: "sq in",      # area, square inch
    134: "sq ft",      # area, square foot
    135: "ac",         # area, acre
    136: "cu in",      # volume, cubic inch
    137: "cu ft",      # volume, cubic foot
    138: "ac-ft",      # volume, acre-foot
    139: "gal (imp)",  # volume, imperial gallon
    140: "gal (US)",   # volume, US gallon
    141: "lbf",        # force, pound force
    142: "psi",        # pressure, pound force per square inch
    143: "lb/cu ft",   # density, pound per cubic foot
    144: "lb/(ft s)",  # dynamic viscosity
    145: "sq ft/s",    # kinematic viscosity
    146: "Btu",        # energy, British thermal unit
    147: "thm (EU)",   # energy, therm EU
    148: "thm (US)",   # energy, therm US
    149: "Btu/lb",     # enthalpy
    150: "Btu/cu ft",  # calorific value
    151: "cu ft",      # volume, cubic feet (the table lists it again, as in gas metering)
    152: "ft/s",       # speed
    153: "cu ft/s",    # volume flow
    154: "cu ft/min",
    155: "cu ft/h",
    156: "cu ft/d",
    157: "ac-ft/s",
    158: "ac-ft/min",
    159: "ac-ft/h",
    160: "ac-ft/d",
    161: "gal (imp)",  # imperial gallon (as a flow base)
    162: "gal (imp)/s",
    163: "gal (imp)/min",
    164: "gal (imp)/h",
    165: "gal (imp)/d",
    166: "gal (US)",   # US gallon (as a flow base)
    167: "gal (US)/s",
    168: "gal (US)/min",
    169: "gal (US)/h",
    170: "gal (US)/d",
    171: "Btu/s",      # power
    172: "Btu/min",
    173: "Btu/h",
    174: "Btu/d",
    253: "reserved",
    254: "other",      # other unit
    255: "count",      # no unit, unitless, count
}


def unit_symbol(code: int) -> str:
    """Symbol of a unit code; ``unit(<code>)`` for codes the table does not assign."""
    return UNIT_SYMBOLS.get(code) or f"unit({code})"


def apply_scaler(raw: Union[int, float], scaler: int) -> Union[int, float]:
    """``raw * 10 ** scaler`` without binary rounding surprises.

    int raw, scaler >= 0: an exact int. int raw, scaler < 0: int true division, which Python
    rounds correctly, so the result is the float nearest the decimal value. float raw: scaled in
    decimal from its shortest repr, then rounded once to the nearest float.
    """
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise LocalProtocolError(f"cannot scale {raw!r}: not a number")
    if isinstance(raw, int):
        if scaler >= 0:
            factor: int = 10 ** scaler
            return raw * factor
        divisor: int = 10 ** -scaler
        return raw / divisor
    return _scale_float(scaler, raw)


def _scale_float(scaler: int, raw: float) -> float:
    if scaler == 0 or not math.isfinite(raw):
        return raw
    return float(Decimal(repr(raw)).scaleb(scaler))


class Scaling(NamedTuple):
    """A register's scaler_unit resolved once for every cycle: ``ints`` and ``floats`` compute
    exactly what ``apply_scaler`` does for a raw value of that kind (``ints`` a C-level bound
    method: the steady cycle calls it for every value). The one place raw values are scaled, for
    the session's full path and its express path alike."""

    scaler: int
    unit: str  # the unit's symbol
    ints: Callable[[int], Union[int, float]]
    floats: Callable[[float], float]

    @classmethod
    def of(cls, su: ScalerUnit) -> Scaling:
        return _scaling(su.scaler, su.symbol)

    def apply(self, raw: Union[int, float]) -> Union[int, float]:
        """``apply_scaler(raw, self.scaler)`` for an int or float ``raw`` (not a bool)."""
        return self.ints(raw) if type(raw) is int else self.floats(raw)


@lru_cache(maxsize=1024)
def _scaling(scaler: int, symbol: str) -> Scaling:
    """One Scaling per (scaler, unit) for the whole process: a thousand meters share a handful
    (each costs ~250 bytes, nine registers a meter)."""
    # int true division rounds correctly; an int times a power of ten is exact.
    ints: Callable[[int], Union[int, float]] = (
        (10**-scaler).__rtruediv__ if scaler < 0 else (10**scaler).__mul__
    )
    return Scaling(scaler, symbol, ints, partial(_scale_float, scaler))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class ScalerUnit:
    """A decoded ``scal_unit_type``: scaler (-128..127) and unit code (0..255)."""

    scaler: int
    unit: int

    @classmethod
    def from_data(cls, value: Any) -> ScalerUnit:
        """From decoded A-XDR (native or typed): ``structure { integer, enum }``."""
        fields = getattr(value, "value", value)  # unwrap a Typed structure
        if isinstance(fields, (tuple, list)) and len(fields) == 2:
            scaler: Any = getattr(fields[0], "value", fields[0])
            unit: Any = getattr(fields[1], "value", fields[1])
            if _is_int(scaler) and -128 <= scaler <= 127 and _is_int(unit) and 0 <= unit <= 255:
                return cls(int(scaler), int(unit))
        raise DecodeError(f"scaler_unit must be structure {{integer, enum}}, got {value!r}")

    @property
    def symbol(self) -> str:
        return unit_symbol(self.unit)

    def apply(self, raw: Union[int, float]) -> Union[int, float]:
        return apply_scaler(raw, self.scaler)
