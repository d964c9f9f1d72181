"""Our invocation counters: each value handed out once, never again (sans-IO).

An AES-GCM nonce is the system title and the invocation counter: one value used twice under the
same key gives both plaintexts away and lets a forger sign, so a counter is a resource spent,
not a number shown. ``InvocationCounter`` is the in-memory sequence; a subclass that persists it
(the connector's, under the gateway's data folder) overrides ``_reserve`` to write a bound ahead
of use, so a crash can only skip values.

A counter may start unknown (a new meter, a lost state file): the session then reads the meter's
frame counter with the public client and calls ``resync`` before the first ciphered APDU.
"""

from __future__ import annotations

from ..errors import LocalProtocolError
from .control import MAX_INVOCATION_COUNTER

__all__ = ["CounterExhausted", "CounterUnknown", "InvocationCounter"]


class CounterUnknown(LocalProtocolError):
    """No value to send yet: the meter's frame counter must be read first."""


class CounterExhausted(LocalProtocolError):
    """All 2^32 values of this key are spent: the meter needs a new key."""


class InvocationCounter:
    """The next invocation counter of one client towards one meter (None: unknown)."""

    __slots__ = ("_next", "_reserved")

    def __init__(self, next_value: int | None = 0) -> None:
        if next_value is not None and not 0 <= next_value <= MAX_INVOCATION_COUNTER + 1:
            raise ValueError(f"invocation counter {next_value} out of 0..{MAX_INVOCATION_COUNTER}")
        self._next = next_value
        self._reserved = -1  # values below this one are covered by _reserve

    @property
    def known(self) -> bool:
        return self._next is not None

    @property
    def next_value(self) -> int | None:
        """The value ``take`` returns next (None while unknown)."""
        return self._next

    def take(self) -> int:
        value = self._next
        if value is None:
            raise CounterUnknown("invocation counter unknown: read the meter's frame counter first")
        if value > MAX_INVOCATION_COUNTER:
            raise CounterExhausted("every invocation counter of this key has been used: "
                                   "the meter needs a new key")
        if value >= self._reserved:
            self._reserved = self._reserve(value)
        self._next = value + 1
        return value

    def resync(self, meter_last: int) -> None:
        """Continue above ``meter_last`` (the meter's frame counter: the last counter it took
        from us). Never backwards: a value we sent once stays spent, whatever the meter says."""
        if not 0 <= meter_last <= MAX_INVOCATION_COUNTER:
            raise ValueError(f"frame counter {meter_last} out of 0..{MAX_INVOCATION_COUNTER}")
        self._next = max(self._next or 0, meter_last + 1)

    def _reserve(self, value: int) -> int:
        """Make ``value`` safe to send; return the first value not yet covered (the in-memory
        sequence covers everything)."""
        return MAX_INVOCATION_COUNTER + 2

    def __repr__(self) -> str:
        return f"{type(self).__name__}(next={self._next})"
