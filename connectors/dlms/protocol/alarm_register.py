"""The bits of Alarm register 1 (0-0:97.98.0.255; its filter 0-0:97.98.10 and descriptor
0-0:97.98.20 share the layout).

Source: the DSMR 5 P3 / IDIS companion specifications' "Alarm register" (double-long-unsigned,
one bit per alarm; the groups "other", "critical" and "M-Bus"), cross-checked against a public
head-end's alarm table. Bits not listed are reserved or manufacturer specific and are reported
together, as a mask. Pure data and a lookup: the push receiver turns a pushed alarm register into the alarm
keys of config/README.md, the simulator raises bits with the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["ALARM_BITS", "alarm_flags", "alarm_set"]

# E of the alarm objects whose bits mean alarms: register and descriptor, first and second set.
# (The filters, E = 10/11, are masks: not alarms. The second set's bits are the companion
# specification's other group, named by number only.)
_FIRST, _SECOND = (0, 20), (1, 21)

ALARM_BITS: Mapping[int, str] = MappingProxyType({
    0: "clock_invalid",
    1: "replace_battery",
    2: "power_up",
    3: "auxiliary_event",
    4: "configuration_changed",
    8: "program_memory_error",
    9: "ram_error",
    10: "nv_memory_error",
    11: "measurement_system_error",
    12: "watchdog_error",
    13: "fraud_attempt",
    16: "mbus_communication_error_1",
    17: "mbus_communication_error_2",
    18: "mbus_communication_error_3",
    19: "mbus_communication_error_4",
    20: "mbus_fraud_attempt_1",
    21: "mbus_fraud_attempt_2",
    22: "mbus_fraud_attempt_3",
    23: "mbus_fraud_attempt_4",
    24: "mbus_new_device_1",
    25: "mbus_new_device_2",
    26: "mbus_new_device_3",
    27: "mbus_new_device_4",
})


def alarm_set(obis: bytes) -> int:
    """1 or 2 for alarm register/descriptor 1 or 2 (0-0:97.98.0/20.255, 0-0:97.98.1/21.255),
    0 for any other logical name."""
    if len(obis) != 6 or obis[:4] != bytes((0, 0, 97, 98)) or obis[5] != 255:
        return 0
    return 1 if obis[4] in _FIRST else 2 if obis[4] in _SECOND else 0


def alarm_flags(bits: int) -> dict[str, Any]:
    """Every named alarm of set 1 as true/false, and ``other_bits``: the mask of the bits the
    table does not name (0 when none: a key that clears, unlike one key per odd bit)."""
    flags: dict[str, Any] = {name: bool(bits >> bit & 1) for bit, name in ALARM_BITS.items()}
    named = sum(1 << bit for bit in ALARM_BITS)
    flags["other_bits"] = bits & 0xFFFFFFFF & ~named
    return flags
