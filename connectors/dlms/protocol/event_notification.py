"""event-notification-request (xDLMS tag 0xC2): a meter tells one attribute's new value unasked.

    EventNotificationRequest ::= SEQUENCE {
        time                        OCTET STRING OPTIONAL,   -- a COSEM date-time (12 octets)
        cosem-attribute-descriptor  Cosem-Attribute-Descriptor,
        attribute-value             Data }

A-XDR: OPTIONAL is one octet (0 absent, 1 present); the octet string has its length; the
descriptor is class-id (2 octets), logical name (6) and attribute-id (1, signed). Sans-IO.
"""

from __future__ import annotations

from typing import Any

from .axdr import decode_data
from .cosem_datetime import CosemDateTime
from .errors import DecodeError

__all__ = ["EVENT_NOTIFICATION", "decode_event_notification"]

EVENT_NOTIFICATION = 0xC2


def decode_event_notification(
    apdu: bytes,
) -> tuple[CosemDateTime | None, tuple[int, bytes, int], Any]:
    """(date-time or None, (class id, logical name, attribute), value). DecodeError if bad."""
    if not apdu or apdu[0] != EVENT_NOTIFICATION:
        raise DecodeError(f"not an event-notification (tag 0x{apdu[0] if apdu else 0:02X})", 0)
    if len(apdu) < 2:
        raise DecodeError("truncated event-notification", len(apdu))
    pos, stamp = 2, None
    if apdu[1] == 1:
        if len(apdu) < 16 or apdu[2] != 12:
            raise DecodeError("event-notification time is not a 12-octet date-time", 2)
        stamp, pos = CosemDateTime.from_bytes(apdu[3:15]), 15
    elif apdu[1] != 0:
        raise DecodeError(f"event-notification time flag {apdu[1]} is neither 0 nor 1", 1)
    if len(apdu) < pos + 10:
        raise DecodeError("event-notification truncated in its attribute descriptor", len(apdu))
    class_id = int.from_bytes(apdu[pos:pos + 2], "big")
    obis = bytes(apdu[pos + 2:pos + 8])
    attribute = int.from_bytes(apdu[pos + 8:pos + 9], "big", signed=True)
    value, end = decode_data(apdu, pos + 9)
    if end != len(apdu):
        raise DecodeError(f"{len(apdu) - end} octets after the event-notification value", end)
    return stamp, (class_id, obis, attribute), value
