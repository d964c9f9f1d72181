"""What the simulated meter's three profiles capture, and when (pure functions, no meter state).

=================  =============  ========================================================
profile            OBIS           columns (capture_objects: class/OBIS/attribute)
=================  =============  ========================================================
load profile       1-0:99.1.0     clock 8/0-0:1.0.0/2, active energy 3/1-1:1.8.0/2
                                  (double-long-unsigned, Wh, scaler 0), voltage L1
                                  3/1-1:32.7.0/2 (long-unsigned, V, scaler -1)
daily billing      1-0:98.1.0     clock, active energy import 3/1-0:1.8.0/2 and export
                                  3/1-0:2.8.0/2 (double-long-unsigned, Wh, scaler 1),
                                  maximum demand 4/1-0:1.6.0/2 (double-long-unsigned, W,
                                  scaler 0)
standard event log 0-0:99.98.0    clock, event code 1/0-0:96.11.0/2 (unsigned)
=================  =============  ========================================================

That is the "poly" meter model. A "mono" meter has a load profile only (clock, 3/1-0:1.8.0/2
Wh scaler 0, 3/1-0:32.7.0/2 V scaler -1: its own registers); a "ct" meter the daily billing
above and a load profile of clock, 3/1-0:1.8.0/2 and 3/1-0:3.8.0/2 (0.01 kWh / kvarh), and
3/1-0:32.7.0/2 (V scaler -2). See meter_models.py.

Capture instants, row ``j`` (seconds since EPOCH = 2020-01-01T00:00Z):

* load profile: every quarter-hour, ``900 * j``; capacity 960 (10 days);
* daily billing: local midnight of day ``j`` (day 0 = 2020-01-01 in the meter's time zone);
  capacity 62; the row holds the import/export registers at that instant and the maximum
  demand of the day that just ended: the highest quarter-hour mean import power (4 x the Wh
  the import register gained in the quarter; quarters start at the local midnight). The
  extended register 1-0:1.6.0 shows the same for the day so far (complete quarters), its
  capture_time (attribute 5) the end of that quarter;
* event log: irregular. Events come in pairs (k = j // 2) in 8-hour slots: the first at a
  per-meter pseudo-random second of the slot, the second 1..600 s later: power down then power
  up (half of the pairs), clock adjusted old then new date/time, error then alarm register
  cleared, firmware ready for activation then activated. Capacity 100 (about 16 days).

The import register is the meter's total active energy (1-1:1.8.0, Wh) in tens of Wh; export is
the closed-form integral of a per-meter daytime feed-in power A (1 - cos(2 pi t / day + phase)),
never negative, so both registers only grow. Each meter differs (index-seeded hash).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..protocol import event_codes as ev
from ..protocol.obis import Obis
from . import values as _v
from .meter_time import MeterZone
from .profile import CLOCK_OBIS, CaptureObject, ProfileSpec

__all__ = [
    "BILLING",
    "BILLING_OBIS",
    "BILLING_REGISTERS",
    "EVENT_CODE_OBIS",
    "EVENT_LOG",
    "EVENT_LOG_OBIS",
    "EXPORT",
    "IMPORT",
    "LOAD_PROFILE",
    "LOAD_PROFILE_CT",
    "LOAD_PROFILE_MONO",
    "LOAD_PROFILE_OBIS",
    "MAX_DEMAND",
    "PROFILES",
    "PROFILES_OF",
    "BillingRegister",
    "daily_last_at",
    "event_code",
    "event_last_at",
    "event_time",
    "export_wh_at",
]

LOAD_PROFILE_OBIS = Obis.parse("1-0:99.1.0")
BILLING_OBIS = Obis.parse("1-0:98.1.0")
EVENT_LOG_OBIS = Obis.parse("0-0:99.98.0")
EVENT_CODE_OBIS = Obis.parse("0-0:96.11.0")


class BillingRegister(NamedTuple):
    """A class 3 register captured by the daily billing profile."""

    key: str  # "import" or "export"
    obis: Obis
    scaler: int
    unit: int


IMPORT = BillingRegister("import", Obis.parse("1-0:1.8.0"), 1, _v.UNIT_WH)
EXPORT = BillingRegister("export", Obis.parse("1-0:2.8.0"), 1, _v.UNIT_WH)
BILLING_REGISTERS = (IMPORT, EXPORT)
MAX_DEMAND = BillingRegister("max_demand", Obis.parse("1-0:1.6.0"), 0, _v.UNIT_W)  # class 4

_CLOCK_COLUMN = CaptureObject(8, CLOCK_OBIS, 2)
LOAD_PROFILE = ProfileSpec(
    obis=LOAD_PROFILE_OBIS,
    capture_objects=(
        _CLOCK_COLUMN,
        CaptureObject(3, _v.REGISTERS_BY_KEY["active_energy"].obis, 2),
        CaptureObject(3, _v.REGISTERS_BY_KEY["voltage_l1"].obis, 2),
    ),
    capture_period=900,
    capacity=960,
)
BILLING = ProfileSpec(
    obis=BILLING_OBIS,
    capture_objects=(_CLOCK_COLUMN, CaptureObject(3, IMPORT.obis, 2),
                     CaptureObject(3, EXPORT.obis, 2), CaptureObject(4, MAX_DEMAND.obis, 2)),
    capture_period=86400,
    capacity=62,
)
EVENT_LOG = ProfileSpec(
    obis=EVENT_LOG_OBIS,
    capture_objects=(_CLOCK_COLUMN, CaptureObject(1, EVENT_CODE_OBIS, 2)),
    capture_period=0,  # asynchronous: a row per event
    capacity=100,
)
PROFILES = (LOAD_PROFILE, BILLING, EVENT_LOG)
LOAD_PROFILE_MONO = ProfileSpec(
    obis=LOAD_PROFILE_OBIS,
    capture_objects=(_CLOCK_COLUMN, CaptureObject(3, Obis.parse("1-0:1.8.0"), 2),
                     CaptureObject(3, Obis.parse("1-0:32.7.0"), 2)),
    capture_period=900,
    capacity=960,
)
LOAD_PROFILE_CT = ProfileSpec(
    obis=LOAD_PROFILE_OBIS,
    capture_objects=(_CLOCK_COLUMN, CaptureObject(3, Obis.parse("1-0:1.8.0"), 2),
                     CaptureObject(3, Obis.parse("1-0:3.8.0"), 2),
                     CaptureObject(3, Obis.parse("1-0:32.7.0"), 2)),
    capture_period=900,
    capacity=960,
)
PROFILES_OF = {"poly": PROFILES, "mono": (LOAD_PROFILE_MONO,), "ct": (LOAD_PROFILE_CT, BILLING)}

# -- daily billing -------------------------------------------------------------------------


def daily_last_at(zone: MeterZone, tau: int) -> int:
    """The newest day whose local midnight is at or before ``tau`` (-1: none)."""
    day = zone.day_of_tau(tau)
    if zone.day_start_tau(day) > tau:  # a zone whose midnight itself was skipped by DST
        day -= 1
    return max(day, -1)


_DAY = 86400.0
_TWO_PI = 2.0 * math.pi


def export_wh_at(index: int, tau: int) -> float:
    """Exported active energy in Wh at ``tau``: start reading + integral of the feed-in power."""
    amp = 50.0 + 150.0 * _v.unit_hash(index, 200)  # mean feed-in power, W
    phase = _TWO_PI * _v.unit_hash(index, 201)
    start = 10_000.0 + 500_000.0 * _v.unit_hash(index, 202)
    w = _TWO_PI / _DAY
    ws = amp * (tau - (math.sin(w * tau + phase) - math.sin(phase)) / w)
    return start + ws / 3600.0


# -- event log -----------------------------------------------------------------------------

_SLOT = 28800  # one pair of events per 8 hours
_PAIRS = (
    (ev.POWER_DOWN, ev.POWER_UP),
    (ev.POWER_DOWN, ev.POWER_UP),
    (ev.POWER_DOWN, ev.POWER_UP),
    (ev.POWER_DOWN, ev.POWER_UP),
    (ev.CLOCK_ADJUSTED_OLD, ev.CLOCK_ADJUSTED_NEW),
    (ev.CLOCK_ADJUSTED_OLD, ev.CLOCK_ADJUSTED_NEW),
    (10, 11),  # error register cleared, alarm register cleared
    (17, 18),  # firmware ready for activation, firmware activated
)


def event_time(index: int, j: int) -> int:
    """Seconds since EPOCH of meter ``index``'s event ``j`` (strictly increasing with j)."""
    k, second = divmod(j, 2)
    t = k * _SLOT + math.floor(_v.unit_hash(index, 1_000_000 + 2 * k) * (_SLOT - 700))
    if second:
        t += 1 + math.floor(_v.unit_hash(index, 1_000_001 + 2 * k) * 600)
    return t


def event_last_at(index: int, tau: int) -> int:
    """The newest event at or before ``tau`` (-1: none)."""
    if tau < 0:
        return -1
    k = tau // _SLOT
    for j in (2 * k + 1, 2 * k):
        if event_time(index, j) <= tau:
            return j
    return 2 * k - 1


def event_code(index: int, j: int) -> int:
    """The event code of meter ``index``'s event ``j`` (see tb_dlms.protocol.event_codes)."""
    k, second = divmod(j, 2)
    pair = _PAIRS[math.floor(_v.unit_hash(index, 3_000_000 + k) * len(_PAIRS))]
    return pair[second]
