"""HDLC addresses (IEC 62056-46 clause 6.4.2.3 / Green Book "HDLC addressing").

Each address byte carries 7 address bits; its least-significant bit is 1 only on the last byte, so
an address is 1, 2 or 4 bytes long. Clients always use one byte. A server address has an upper part
(logical device, e.g. 1 = management) and an optional lower part (physical device, e.g. the meter's
number on a multidrop RS-485 bus): 2 bytes carry 7 + 7 bits, 4 bytes carry 14 + 14 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DecodeError, LocalProtocolError

__all__ = ["ALL_STATION_7", "ALL_STATION_14", "HdlcAddress", "decode_address"]

# "All-station" (broadcast) values of a 7-bit and a 14-bit address part.
ALL_STATION_7 = 0x7F
ALL_STATION_14 = 0x3FFF

_PART_MAX = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}


@dataclass(frozen=True)
class HdlcAddress:
    """One HDLC address. ``size`` is the number of bytes on the wire (1, 2 or 4)."""

    logical: int
    physical: int | None = None
    size: int = 1
    # The wire form, computed once: addresses are encoded into every frame.
    _wire: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.size not in _PART_MAX:
            raise LocalProtocolError(f"HDLC address size must be 1, 2 or 4, not {self.size!r}")
        limit = _PART_MAX[self.size]
        if not isinstance(self.logical, int) or not 0 <= self.logical <= limit:
            raise LocalProtocolError(
                f"HDLC address logical={self.logical!r} out of range 0..{limit}"
            )
        if self.size == 1:
            if self.physical is not None:
                raise LocalProtocolError("HDLC address physical must be None for a 1-byte address")
            wire = bytes(((self.logical << 1) | 1,))
        else:
            if not isinstance(self.physical, int) or not 0 <= self.physical <= limit:
                raise LocalProtocolError(
                    f"HDLC address physical={self.physical!r} out of range 0..{limit}"
                )
            if self.size == 2:
                wire = bytes((self.logical << 1, (self.physical << 1) | 1))
            else:
                lo, ph = self.logical, self.physical
                wire = bytes(
                    ((lo >> 7) << 1, (lo & 0x7F) << 1, (ph >> 7) << 1, ((ph & 0x7F) << 1) | 1)
                )
        object.__setattr__(self, "_wire", wire)

    @classmethod
    def server(cls, logical: int = 1, physical: int | None = None) -> HdlcAddress:
        """The shortest server address holding ``logical`` and ``physical``."""
        if physical is None:
            return cls(logical)
        size = 2 if logical <= 0x7F and physical <= 0x7F else 4
        return cls(logical, physical, size)

    def encode(self) -> bytes:
        return self._wire

    def matches(self, other: HdlcAddress) -> bool:
        """Same logical and physical parts, whatever the byte size used to carry them."""
        return self.logical == other.logical and self.physical == other.physical

    @property
    def is_all_station(self) -> bool:
        """True when every part is the broadcast value (a server must not answer those)."""
        limit = _PART_MAX[self.size]
        return self.logical == limit and self.physical in (None, limit)


def decode_address(buf: bytes, offset: int) -> tuple[HdlcAddress, int]:
    """Decode the address starting at ``buf[offset]``; returns it and the offset just after it."""
    end = offset
    limit = min(len(buf), offset + 4)
    while end < limit and not buf[end] & 1:
        end += 1
    if end >= limit:
        if limit - offset < 4:
            raise DecodeError("HDLC address truncated", offset)
        raise DecodeError("HDLC address longer than 4 bytes", offset)
    count = end - offset + 1
    key = bytes(buf[offset : end + 1])
    address = _DECODED.get(key)
    if address is None:
        address = _build(key, count, offset)
        if len(_DECODED) < _DECODED_MAX:
            _DECODED[key] = address
    return address, end + 1


# Wire form -> address: a link sees the same two or three addresses in every frame, so decoding
# (and validating) each once saves most of the per-frame address cost. Bounded against floods.
_DECODED: dict[bytes, HdlcAddress] = {}
_DECODED_MAX = 4096


def _build(raw: bytes, count: int, offset: int) -> HdlcAddress:
    if count == 1:
        return HdlcAddress(raw[0] >> 1)
    if count == 2:
        return HdlcAddress(raw[0] >> 1, raw[1] >> 1, 2)
    if count == 4:
        logical = ((raw[0] >> 1) << 7) | (raw[1] >> 1)
        physical = ((raw[2] >> 1) << 7) | (raw[3] >> 1)
        return HdlcAddress(logical, physical, 4)
    raise DecodeError("HDLC address of 3 bytes is not allowed", offset)
