"""A built-in catalogue of common OBIS codes (IEC 62056-6-1, IDIS, DSMR) -> a ThingsBoard key and
what the object is, so ``tb-dlms scan`` can name the points of a meter it has never seen.

Matching is on value groups C.D.E with B (the channel) as a wildcard, and A where the medium
does not change the meaning: the simulator lists 1-1:32.7.0, most meters 1-0:32.7.0, both are
``voltage_l1``. F (the billing period) 255 is the current value; another F gets ``_f<F>``.
Unknown codes get ``obis_<a>_<b>_<c>_<d>_<e>[_<f>]``. Keys use only letters, digits and ``_``,
which every ThingsBoard key accepts. ``unique_key`` makes keys unique within one block.
"""

from __future__ import annotations

from typing import Dict, NamedTuple, Optional, Set, Tuple

from .obis import Obis

__all__ = ["IDENTITY_KEYS", "CatalogueEntry", "describe", "fallback_key", "is_identity", "lookup",
           "unique_key"]


class CatalogueEntry(NamedTuple):
    key: str
    meaning: str


# (A or None for any medium, C, D, E) -> entry
_TABLE: Dict[Tuple[Optional[int], int, int, int], CatalogueEntry] = {}


def _add(a: Optional[int], c: int, d: int, e: int, key: str, meaning: str) -> None:
    _TABLE[(a, c, d, e)] = CatalogueEntry(key, meaning)


# Electricity quantities (A = 1): C -> (name, meaning); D 7 instantaneous, 8 energy,
# 6 maximum demand, 4/5 current/last average demand; E 0 total, 1..4 tariffs.
_POWER = {1: ("active", "import"), 2: ("active", "export"), 3: ("reactive", "import"),
          4: ("reactive", "export"), 9: ("apparent", "import"), 10: ("apparent", "export")}
_PHASES = {0: "", 20: "_l1", 40: "_l2", 60: "_l3"}

for _offset, _phase in _PHASES.items():
    for _c, (_kind, _dir) in _POWER.items():
        _cc = _c + _offset
        _where = f" {_phase[1:].upper()}" if _phase else ""
        _add(1, _cc, 7, 0, f"{_kind}_power_{_dir}{_phase}",
             f"instantaneous {_kind} power {_dir}{_where}")
        _add(1, _cc, 8, 0, f"{_kind}_energy_{_dir}{_phase}", f"{_kind} energy {_dir}{_where}")
        _add(1, _cc, 6, 0, f"max_demand_{_kind}_power_{_dir}{_phase}",
             f"maximum demand, {_kind} power {_dir}{_where}")
        _add(1, _cc, 4, 0, f"current_demand_{_kind}_power_{_dir}{_phase}",
             f"current average demand, {_kind} power {_dir}{_where}")
        _add(1, _cc, 5, 0, f"last_demand_{_kind}_power_{_dir}{_phase}",
             f"last average demand, {_kind} power {_dir}{_where}")
        for _e in range(1, 5):
            _add(1, _cc, 8, _e, f"{_kind}_energy_{_dir}{_phase}_t{_e}",
                 f"{_kind} energy {_dir}{_where}, tariff {_e}")
            _add(1, _cc, 6, _e, f"max_demand_{_kind}_power_{_dir}{_phase}_t{_e}",
                 f"maximum demand, {_kind} power {_dir}{_where}, tariff {_e}")
    if _phase:
        _n = _phase[1:].upper()
        _add(1, 11 + _offset, 7, 0, f"current{_phase}", f"current {_n}")
        _add(1, 12 + _offset, 7, 0, f"voltage{_phase}", f"voltage {_n}")
        _add(1, 13 + _offset, 7, 0, f"power_factor{_phase}", f"power factor {_n}")
        _add(1, 14 + _offset, 7, 0, f"frequency{_phase}", f"frequency {_n}")

_add(1, 11, 7, 0, "current", "current, any phase")
_add(1, 12, 7, 0, "voltage", "voltage, any phase")
_add(1, 13, 7, 0, "power_factor", "power factor")
_add(1, 14, 7, 0, "frequency", "supply frequency")
_add(1, 90, 7, 0, "current_sum", "current, sum of the phases")
_add(1, 91, 7, 0, "current_neutral", "current in the neutral")
_add(1, 15, 7, 0, "active_power_absolute", "instantaneous active power, absolute")
_add(1, 15, 8, 0, "active_energy_absolute", "active energy, absolute")
_add(1, 16, 7, 0, "active_power_net", "instantaneous active power, net")
_add(1, 16, 8, 0, "active_energy_net", "active energy, net")
_add(1, 81, 7, 1, "angle_u_l1_u_l2", "phase angle U(L1)-U(L2)")
_add(1, 81, 7, 2, "angle_u_l1_u_l3", "phase angle U(L1)-U(L3)")
_add(1, 32, 32, 0, "voltage_sags_l1", "number of voltage sags L1")
_add(1, 52, 32, 0, "voltage_sags_l2", "number of voltage sags L2")
_add(1, 72, 32, 0, "voltage_sags_l3", "number of voltage sags L3")
_add(1, 32, 36, 0, "voltage_swells_l1", "number of voltage swells L1")
_add(1, 52, 36, 0, "voltage_swells_l2", "number of voltage swells L2")
_add(1, 72, 36, 0, "voltage_swells_l3", "number of voltage swells L3")

# Identity, time, control (the abstract ones are A = 0; firmware exists in both).
_add(1, 0, 2, 0, "firmware_version", "active firmware identifier (metrology)")
_add(0, 0, 2, 0, "firmware_version_core", "active firmware identifier")
_add(None, 0, 2, 8, "firmware_signature", "active firmware signature")
_add(0, 1, 0, 0, "clock", "clock")
_add(0, 96, 1, 0, "serial_number", "device ID 1, manufacturing number")
_add(0, 96, 1, 1, "equipment_id", "device ID 2, equipment identifier")
for _e in range(2, 10):
    _add(0, 96, 1, _e, f"device_id_{_e + 1}", f"device ID {_e + 1}")
_add(0, 42, 0, 0, "logical_device_name", "COSEM logical device name")
_add(0, 96, 3, 10, "disconnect_control", "disconnect control")
_add(0, 96, 14, 0, "active_tariff", "currently active tariff")
_add(0, 96, 7, 21, "power_failures", "number of power failures, all phases")
_add(0, 96, 7, 9, "long_power_failures", "number of long power failures, all phases")
_add(0, 96, 12, 5, "gsm_signal_strength", "GSM/cellular signal strength")
_add(None, 0, 0, 0, "device_address", "device address")
_add(0, 40, 0, 0, "association", "current association")
_add(0, 15, 0, 0, "billing_period_reset", "billing period reset action schedule")
for _e in range(0, 10):
    _add(0, 43, 1, _e, "frame_counter" if _e == 0 else f"frame_counter_{_e}",
         f"invocation (frame) counter, security setup {_e}")
    _add(0, 43, 0, _e, "security_setup" if _e == 0 else f"security_setup_{_e}",
         f"security setup {_e}")
    _add(0, 96, 11, _e, "event_code" if _e == 0 else f"event_code_{_e}",
         f"event code, event log {_e}")
    _add(0, 96, 10, _e, "status_word" if _e == 0 else f"status_word_{_e}", f"status word {_e}")

# Profiles
_add(None, 99, 1, 0, "load_profile", "load profile 1")
_add(None, 99, 2, 0, "load_profile_2", "load profile 2")
_add(None, 98, 1, 0, "billing_values", "billing values (monthly)")
_add(None, 98, 2, 0, "billing_values_daily", "billing values (daily)")
_add(None, 99, 97, 0, "power_failure_log", "power failure event log")
_EVENT_LOGS = ("standard_event_log", "fraud_detection_log", "disconnector_control_log",
               "power_quality_log", "communication_log", "power_failure_event_log",
               "m_bus_event_log", "m_bus_control_log")
for _e, _name in enumerate(_EVENT_LOGS):
    _add(0, 99, 98, _e, _name, _name.replace("_", " "))


# The objects that identify a meter (Data, class 1): static attributes of a scanned block.
IDENTITY_KEYS = frozenset((
    "serial_number", "equipment_id", "firmware_version", "firmware_version_core",
    "firmware_signature", "logical_device_name", *(f"device_id_{n}" for n in range(3, 11)),
))


def is_identity(obis: Obis) -> bool:
    entry = _TABLE.get((obis.a, obis.c, obis.d, obis.e)) or _TABLE.get(
        (None, obis.c, obis.d, obis.e))
    return obis.f == 255 and entry is not None and entry.key in IDENTITY_KEYS


def lookup(obis: Obis) -> Optional[CatalogueEntry]:
    """The catalogue entry of a code (B ignored, then A), with ``_f<F>`` for F != 255."""
    entry = _TABLE.get((obis.a, obis.c, obis.d, obis.e)) or _TABLE.get(
        (None, obis.c, obis.d, obis.e))
    if entry is None:
        return None
    if obis.f != 255:
        return CatalogueEntry(f"{entry.key}_f{obis.f}", f"{entry.meaning}, billing period {obis.f}")
    return entry


def fallback_key(obis: Obis) -> str:
    """A readable key for a code the catalogue does not know: ``obis_1_0_96_5_0``."""
    groups = [obis.a, obis.b, obis.c, obis.d, obis.e] + ([] if obis.f == 255 else [obis.f])
    return "obis_" + "_".join(str(g) for g in groups)


def describe(obis: Obis) -> CatalogueEntry:
    """The catalogue entry, or the fallback key with the meaning "unknown"."""
    return lookup(obis) or CatalogueEntry(fallback_key(obis), f"{obis} (not in the catalogue)")


def unique_key(key: str, taken: Set[str]) -> str:
    """``key``, or ``key_2``, ``key_3``... the first one not in ``taken``; added to it."""
    candidate, n = key, 1
    while candidate in taken:
        n += 1
        candidate = f"{key}_{n}"
    taken.add(candidate)
    return candidate
