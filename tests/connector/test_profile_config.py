"""dlms.json profiles and timeZone: validated field by field, errors naming meter and field."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from tb_dlms.connector.config import load_config
from tb_dlms.connector.profile_reader import local_zone
from tb_dlms.protocol.obis import Obis


def meter(**kw: Any) -> dict[str, Any]:
    entry = {"deviceName": "M1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1},
             "profiles": [{"obis": "1-0:99.1.0.255"}]}
    entry.update(kw)
    return entry


def test_defaults_and_a_profile_only_meter_is_fine() -> None:
    cfg = load_config({"meters": [meter()]})
    assert not cfg.errors and not any("only health" in w for w in cfg.warnings)
    (profile,) = cfg.meters[0].profiles
    assert profile.obis == Obis.parse("1-0:99.1.0.255")
    assert (profile.poll_period_s, profile.backfill_days, profile.max_rows_per_read) == (900, 7, 96)
    assert profile.column_key(Obis.parse("1-0:1.8.0.255"), 2, "x") == "x"


def test_columns_rename_and_skip() -> None:
    cfg = load_config({"meters": [meter(profiles=[{"obis": "1-0:99.1.0.255", "columns": [
        {"obis": "1-0:1.8.0.255", "key": "energy"}, {"obis": "1-0:32.7.0", "skip": True},
        {"obis": "1-0:2.8.0.255", "attribute": 3, "key": "export_scaler"}]}])]})
    assert not cfg.errors, cfg.errors
    (profile,) = cfg.meters[0].profiles
    assert profile.column_key(Obis.parse("1-0:1.8.0.255"), 2, "d") == "energy"
    assert profile.column_key(Obis.parse("1-0:32.7.0.255"), 2, "d") is None
    assert profile.column_key(Obis.parse("1-0:2.8.0.255"), 2, "d") == "d"  # other attribute


def test_time_zone() -> None:
    cfg = load_config({"meters": [meter(timeZone="Europe/Madrid")]})
    zone = cfg.meters[0].time_zone
    assert zone is not None and dt.datetime(2026, 7, 1, tzinfo=zone).utcoffset() == dt.timedelta(
        hours=2)


@pytest.mark.parametrize(("change", "field"), [
    ({"timeZone": "Mars/Olympus"}, "timeZone"),
    ({"profiles": [{"obis": "99.1.0"}]}, "profiles[0].obis"),
    ({"profiles": [{"obis": "1-0:99.1.0.255", "pollPeriod": 10}]}, "profiles[0].pollPeriod"),
    ({"profiles": [{"obis": "1-0:99.1.0.255", "backfillDays": -1}]}, "profiles[0].backfillDays"),
    ({"profiles": [{"obis": "1-0:99.1.0.255", "maxRowsPerRead": 0}]},
     "profiles[0].maxRowsPerRead"),
    ({"profiles": [{"obis": "1-0:99.1.0.255"}, {"obis": "1-0:99.1.0"}]}, "profiles[1].obis"),
    ({"profiles": [{"obis": "1-0:99.1.0.255", "columns": [
        {"obis": "1-0:1.8.0.255", "key": "e"}, {"obis": "1-0:2.8.0.255", "key": "e"}]}]},
     "profiles[0].columns[1].key"),
    ({"profiles": {"obis": "1-0:99.1.0.255"}}, "profiles"),
])
def test_each_bad_field_is_one_error_naming_meter_and_field(change: dict[str, Any],
                                                            field: str) -> None:
    errors = load_config({"meters": [meter(**change)]}).errors
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"meter 'M1': {field}"), errors[0]


def test_local_zone_follows_tz_with_its_dst_rules(monkeypatch: Any) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    zone = local_zone()
    assert dt.datetime(2026, 1, 1, tzinfo=zone).utcoffset() == dt.timedelta(hours=-5)
    assert dt.datetime(2026, 7, 1, tzinfo=zone).utcoffset() == dt.timedelta(hours=-4)
