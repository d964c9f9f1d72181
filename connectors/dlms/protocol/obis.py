"""OBIS codes (IEC 62056-6-1): six value groups A-B:C.D.E.F, each 0..255.

Config files and users write OBIS codes in many notations; ``Obis.parse`` accepts the common ones
and refuses anything else loudly (a silently wrong OBIS code reads the wrong register). The six
bytes are computed once: every request encodes them and every cache hashes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

from .errors import DecodeError, LocalProtocolError

__all__ = ["Obis"]

# "A-B:C.D.E" + optional ("*F" | ".F" | "&F"); Green Book writes "*", tools often write ".".
_REDUCED = re.compile(r"^(\d+)-(\d+):(\d+)\.(\d+)\.(\d+)(?:[.*&](\d+))?$")
# "A.B.C.D.E.F" or "A.B.C.D.E" (F defaults to 255, as in most tools).
_DOTTED = re.compile(r"^(\d+)\.(\d+)\.(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?$")
_HEX12 = re.compile(r"^[0-9A-Fa-f]{12}$")


@dataclass(frozen=True, eq=False)
class Obis:
    """One OBIS code. Frozen and hashable (by its six bytes); ``to_bytes()`` is cached."""

    a: int
    b: int
    c: int
    d: int
    e: int
    f: int = 255
    _raw: bytes = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        groups = (self.a, self.b, self.c, self.d, self.e, self.f)
        for g in groups:
            # bool is an int subclass; refuse it as it is surely a mistake.
            if type(g) is not int or not 0 <= g <= 255:
                raise LocalProtocolError(f"OBIS value group out of range 0..255: {groups!r}")
        object.__setattr__(self, "_raw", bytes(groups))

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, b: bytes) -> Obis:
        """Six raw bytes as sent in a Cosem-Attribute-Descriptor."""
        if len(b) != 6:
            raise DecodeError(f"OBIS code needs 6 bytes, got {len(b)}", 0)
        raw = bytes(b)
        obj = object.__new__(cls)
        # Skip the range checks: bytes are always 0..255.
        for name, v in zip(("a", "b", "c", "d", "e", "f"), raw):
            object.__setattr__(obj, name, v)
        object.__setattr__(obj, "_raw", raw)
        return obj

    @classmethod
    def parse(cls, value: Union[str, bytes, bytearray, Obis]) -> Obis:
        """Accept an Obis, 6 raw bytes, or text in the notations listed in the module doc."""
        if isinstance(value, Obis):
            return value
        if isinstance(value, (bytes, bytearray)):
            if len(value) != 6:
                raise LocalProtocolError(
                    f"OBIS code needs 6 bytes, got {len(value)}: {bytes(value)!r}")
            return cls.from_bytes(bytes(value))
        if not isinstance(value, str):
            raise LocalProtocolError(
                f"cannot read an OBIS code from {type(value).__name__}: {value!r}")
        text = value.strip()
        m = _REDUCED.match(text) or _DOTTED.match(text)
        if m is not None:
            groups = [int(g) if g is not None else 255 for g in m.groups()]
            if any(g > 255 for g in groups):
                raise LocalProtocolError(f"OBIS value group out of range 0..255 in {value!r}")
            return cls(*groups)
        if _HEX12.match(text):
            return cls.from_bytes(bytes.fromhex(text))
        raise LocalProtocolError(
            f"not an OBIS code: {value!r} (expected e.g. '1-0:1.8.0', '1-0:1.8.0*255', "
            "'1.0.1.8.0.255' or 12 hex digits)"
        )

    # Equality and hash on the cached bytes: one C-level compare instead of six fields.
    def __eq__(self, other: object) -> bool:
        if isinstance(other, Obis):
            return self._raw == other._raw
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._raw)

    def __lt__(self, other: Obis) -> bool:
        return self._raw < other._raw

    # -- output -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self._raw

    def __str__(self) -> str:
        return f"{self.a}-{self.b}:{self.c}.{self.d}.{self.e}.{self.f}"

    def dotted(self) -> str:
        return f"{self.a}.{self.b}.{self.c}.{self.d}.{self.e}.{self.f}"
