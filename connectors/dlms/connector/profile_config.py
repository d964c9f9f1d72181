"""The ``profiles`` of a meter entry and its ``timeZone``: what to read, how often, which keys.

Keys, defaults and ranges come from ``config_fields`` (PROFILE_FIELDS, PROFILE_COLUMN_FIELDS);
this module adds the rules across fields (a column named twice, two profiles on one object, a
time zone that does not exist). Every error names the meter and the field.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..protocol.errors import DlmsError
from ..protocol.obis import Obis
from .config_fields import PROFILE_COLUMN_FIELDS, PROFILE_FIELDS, by_key, keys
from .field_readers import Section, show

__all__ = ["ColumnConfig", "ProfileConfig", "parse_profiles", "parse_time_zone"]

_PROFILE, _COLUMN = by_key(PROFILE_FIELDS), by_key(PROFILE_COLUMN_FIELDS)


@dataclass(frozen=True)
class ColumnConfig:
    """A capture column's key (``attribute`` None: whichever attribute of ``obis``)."""

    obis: Obis
    attribute: int | None
    key: str
    skip: bool = False

    def matches(self, obis: Obis, attribute: int) -> bool:
        return self.obis == obis and self.attribute in (None, attribute)


@dataclass(frozen=True)
class ProfileConfig:
    obis: Obis
    poll_period_s: float = 900.0
    backfill_days: float = 7.0
    max_rows_per_read: int = 96
    columns: tuple[ColumnConfig, ...] = ()

    @property
    def name(self) -> str:
        return str(self.obis)

    def column_key(self, obis: Obis, attribute: int, default: str) -> str | None:
        """The key of a capture column (``default`` when not configured); None: skipped."""
        for column in self.columns:
            if column.matches(obis, attribute):
                return None if column.skip else column.key
        return default


def parse_time_zone(m: Section) -> _dt.tzinfo | None:
    """The meter's ``timeZone``; None: the gateway's local zone."""
    name = m.string("timeZone")
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        m.error("timeZone", f"{show(name)} is not a time zone name (e.g. Europe/Madrid)")
        return None


def parse_profiles(m: Section) -> list[ProfileConfig]:
    out: list[ProfileConfig] = []
    seen: dict[Obis, int] = {}
    for i, s in enumerate(m.items("profiles")):
        s.warn_unknown(keys(PROFILE_FIELDS))
        obis = _obis(s)
        period_ms, days, rows = (s.read(_PROFILE[k]) for k in
                                 ("pollPeriod", "backfillDays", "maxRowsPerRead"))
        columns = _columns(s)
        if obis is not None and obis in seen:
            s.error("obis", f"{obis} is already read by profiles[{seen[obis]}]")
            continue
        if obis is None or s.bad:
            continue
        seen[obis] = i
        out.append(ProfileConfig(obis, period_ms / 1000.0, float(days), rows, tuple(columns)))
    return out


def _obis(s: Section) -> Obis | None:
    text = s.string("obis", required=True)
    if text is None:
        return None
    try:
        return Obis.parse(text)
    except (DlmsError, ValueError) as exc:
        s.error("obis", str(exc))
        return None


def _columns(profile: Section) -> list[ColumnConfig]:
    out: list[ColumnConfig] = []
    names: dict[str, int] = {}
    for i, s in enumerate(profile.items("columns")):
        s.warn_unknown(keys(PROFILE_COLUMN_FIELDS))
        obis = _obis(s)
        attribute = s.read(_COLUMN["attribute"])
        skip = bool(s.read(_COLUMN["skip"]))
        key = s.string("key")
        if key is None and not skip and obis is not None:
            key = str(obis)
        if key is not None and not skip:
            if key in names:
                s.error("key", f"{show(key)} is already used by columns[{names[key]}]")
                continue
            names[key] = i
        if obis is not None and not s.bad:
            out.append(ColumnConfig(obis, attribute, key or "", skip))
    return out
