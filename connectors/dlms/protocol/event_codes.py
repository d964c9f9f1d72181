"""Event codes of the DLMS/COSEM event logs (the "event code" Data object 0-0:96.11.x.255).

Source: the IDIS companion specification (IDIS Package 2, "Event codes" of the Standard event
log 0-0:99.98.0.255, the Fraud detection log 0-0:99.98.1.255 and the Disconnector control log
0-0:99.98.2.255; the three logs share one code space), cross-checked against the event tables of
public head-end implementations (names paraphrased). The codes listed (1..18 standard, 40..46
fraud, 59..67 disconnector) agree across the tables checked; codes where they differ (19..39,
47..58, 68..230) are left unnamed rather than guessed. 231..255 are manufacturer specific.

Pure data and a lookup: the simulator writes these codes into its event log and the client can
turn them into names for ThingsBoard.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "CLOCK_ADJUSTED_NEW",
    "CLOCK_ADJUSTED_OLD",
    "DISCONNECTOR_EVENTS",
    "EVENT_CODES",
    "FRAUD_EVENTS",
    "POWER_DOWN",
    "POWER_UP",
    "STANDARD_EVENTS",
    "event_name",
]

POWER_DOWN = 1
POWER_UP = 2
CLOCK_ADJUSTED_OLD = 4
CLOCK_ADJUSTED_NEW = 5

# Standard event log 0-0:99.98.0.255.
STANDARD_EVENTS: Mapping[int, str] = MappingProxyType({
    1: "Power down",
    2: "Power up",
    3: "Daylight saving time enabled or disabled",
    4: "Clock adjusted (old date/time)",
    5: "Clock adjusted (new date/time)",
    6: "Clock invalid",
    7: "Replace battery",
    8: "Battery voltage low",
    9: "TOU activated",
    10: "Error register cleared",
    11: "Alarm register cleared",
    12: "Program memory error",
    13: "RAM error",
    14: "NV memory error",
    15: "Watchdog error",
    16: "Measurement system error",
    17: "Firmware ready for activation",
    18: "Firmware activated",
})

# Fraud detection log 0-0:99.98.1.255.
FRAUD_EVENTS: Mapping[int, str] = MappingProxyType({
    40: "Terminal cover removed",
    41: "Terminal cover closed",
    42: "Strong DC field detected",
    43: "No strong DC field anymore",
    44: "Meter cover removed",
    45: "Meter cover closed",
    46: "Association authentication failure (n times wrong password)",
})

# Disconnector control log 0-0:99.98.2.255.
DISCONNECTOR_EVENTS: Mapping[int, str] = MappingProxyType({
    59: "Ready for reconnection",
    60: "Manual disconnection",
    61: "Manual connection",
    62: "Remote disconnection",
    63: "Remote connection",
    64: "Local disconnection",
    65: "Limiter threshold exceeded",
    66: "Limiter threshold ok",
    67: "Limiter threshold changed",
})

EVENT_CODES: Mapping[int, str] = MappingProxyType(
    {**STANDARD_EVENTS, **FRAUD_EVENTS, **DISCONNECTOR_EVENTS}
)


def event_name(code: int) -> str:
    """The name of event ``code``; codes not in the table get a stable placeholder name."""
    name = EVENT_CODES.get(code)
    if name is not None:
        return name
    if 231 <= code <= 255:
        return f"Manufacturer specific event {code}"
    return f"Unknown event {code}"
