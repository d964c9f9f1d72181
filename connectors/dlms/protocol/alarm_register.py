"""The bits of Alarm register 1 (0-0:97.98.0.255, and its filter and descriptor 0-0:97.98.10/20).

Source: the DSMR 5 P3 / IDIS companion specifications' "Alarm register" (double-long-unsigned,
one bit per alarm; the groups "other", "critical" and "M-Bus"), cross-checked against a public
head-end's alarm table. Bits not listed are reserved or manufacturer specific and are reported by
number. Pure data and a lookup: the push receiver turns a pushed alarm register into the alarm
keys of config/README.md, the simulator raises bits with the same names.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ALARM_BITS", "ALARM_REGISTER_OBIS", "alarm_flags", "is_alarm_object"]

# (A, B, C, D) of the alarm objects: register 1, filter 1, descriptor 1 (E = 0; 2 for the second)
ALARM_REGISTER_OBIS = bytes((0, 0, 97, 98, 0, 255))
_ALARM_C_D = (97, 98)
_ALARM_E = (0, 1, 10, 11, 20, 21)  # register, filter and descriptor 1 and 2

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


def is_alarm_object(obis: bytes) -> bool:
    """Whether a logical name is an alarm register, filter or descriptor (bits as above)."""
    return len(obis) == 6 and obis[2:4] == bytes(_ALARM_C_D) and obis[4] in _ALARM_E and \
        obis[:2] == b"\x00\x00"


def alarm_flags(bits: int) -> dict[str, bool]:
    """Every named alarm as true/false, plus ``bit_N`` for each unnamed bit that is set."""
    flags = {name: bool(bits >> bit & 1) for bit, name in ALARM_BITS.items()}
    for bit in range(32):
        if bits >> bit & 1 and bit not in ALARM_BITS:
            flags[f"bit_{bit}"] = True
    return flags
