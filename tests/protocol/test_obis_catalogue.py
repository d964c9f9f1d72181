"""The built-in OBIS catalogue: known codes, A/B wildcards, F suffixes, the fallback key and
unique keys within a block."""

from __future__ import annotations

import re

import pytest
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.obis_catalogue import _TABLE, describe, fallback_key, lookup, unique_key


@pytest.mark.parametrize(("code", "key"), [
    ("1-0:32.7.0", "voltage_l1"), ("1-0:52.7.0", "voltage_l2"), ("1-0:72.7.0", "voltage_l3"),
    ("1-0:31.7.0", "current_l1"), ("1-0:51.7.0", "current_l2"), ("1-0:71.7.0", "current_l3"),
    ("1-0:91.7.0", "current_neutral"), ("1-0:14.7.0", "frequency"),
    ("1-0:1.7.0", "active_power_import"), ("1-0:2.7.0", "active_power_export"),
    ("1-0:3.7.0", "reactive_power_import"), ("1-0:4.7.0", "reactive_power_export"),
    ("1-0:9.7.0", "apparent_power_import"), ("1-0:21.7.0", "active_power_import_l1"),
    ("1-0:41.7.0", "active_power_import_l2"), ("1-0:61.7.0", "active_power_import_l3"),
    ("1-0:13.7.0", "power_factor"), ("1-0:33.7.0", "power_factor_l1"),
    ("1-0:1.8.0", "active_energy_import"), ("1-0:2.8.0", "active_energy_export"),
    ("1-0:3.8.0", "reactive_energy_import"), ("1-0:4.8.0", "reactive_energy_export"),
    ("1-0:1.8.1", "active_energy_import_t1"), ("1-0:1.8.4", "active_energy_import_t4"),
    ("1-0:1.6.0", "max_demand_active_power_import"), ("0-0:1.0.0", "clock"),
    ("0-0:96.1.0", "serial_number"), ("0-0:96.1.1", "equipment_id"),
    ("1-0:0.2.0", "firmware_version"), ("0-0:0.2.0", "firmware_version_core"),
    ("0-0:42.0.0", "logical_device_name"), ("0-0:96.3.10", "disconnect_control"),
    ("1-0:99.1.0", "load_profile"), ("1-0:99.2.0", "load_profile_2"),
    ("1-0:98.1.0", "billing_values"), ("0-0:98.1.0", "billing_values"),
    ("0-0:99.98.0", "standard_event_log"), ("0-0:99.98.1", "fraud_detection_log"),
    ("0-0:43.1.0", "frame_counter"), ("0-0:43.1.3", "frame_counter_3"),
])
def test_known_codes(code: str, key: str) -> None:
    entry = lookup(Obis.parse(code))
    assert entry is not None and entry.key == key and entry.meaning


def test_the_channel_b_does_not_change_the_meaning() -> None:
    # the simulator lists 1-1:..., most meters 1-0:...
    for b in (0, 1, 2, 65):
        assert describe(Obis(1, b, 32, 7, 0)).key == "voltage_l1"


def test_the_medium_a_matters_where_it_changes_the_meaning() -> None:
    assert lookup(Obis(7, 0, 32, 7, 0)) is None  # A = 7: gas, C 32 is not a voltage there
    assert lookup(Obis(0, 0, 32, 7, 0)) is None


def test_a_billing_period_f_gets_a_suffix() -> None:
    assert describe(Obis(1, 0, 1, 8, 0, 3)).key == "active_energy_import_f3"


@pytest.mark.parametrize(("code", "key"), [
    ("1-0:96.5.0", "obis_1_0_96_5_0"), ("0-1:128.0.5", "obis_0_1_128_0_5"),
    ("1-0:96.5.0*7", "obis_1_0_96_5_0_7"),
])
def test_unknown_codes_get_a_readable_fallback(code: str, key: str) -> None:
    obis = Obis.parse(code)
    assert lookup(obis) is None and fallback_key(obis) == key == describe(obis).key


def test_every_key_is_a_safe_thingsboard_key_and_unique_per_medium() -> None:
    keys = [entry.key for entry in _TABLE.values()]
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", k) for k in keys)
    by_medium: dict[object, set[str]] = {}
    for (a, *_), entry in _TABLE.items():
        assert entry.key not in by_medium.setdefault(a, set()), entry.key
        by_medium[a].add(entry.key)


def test_unique_key_suffixes_collisions() -> None:
    taken: set[str] = set()
    assert [unique_key(k, taken) for k in ("a", "a", "b", "a")] == ["a", "a_2", "b", "a_3"]
    assert taken == {"a", "a_2", "a_3", "b"}
