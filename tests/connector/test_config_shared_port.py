"""Meters behind one TCP host:port (a data concentrator) share one connection: the config accepts
them with their own addresses, each on the same channel (refusals of settings one connection
cannot honour for both are in test_config_hardening.py)."""

from __future__ import annotations

from typing import Any

from tb_dlms.connector.config import load_config
from tb_dlms.sandbox.meters import simulator_dlms_config


def two_on_one_port() -> dict[str, Any]:
    data = simulator_dlms_config([4059, 4059])
    for physical, meter in enumerate(data["meters"], start=16):
        del meter["serverAddressSize"]
        meter["serverPhysicalAddress"] = physical
    return data


def test_two_meters_with_their_own_addresses_on_one_port_are_accepted() -> None:
    cfg = load_config(two_on_one_port(), {})
    assert cfg.errors == ()
    assert [m.spec.transport.channel_key for m in cfg.meters] == ["tcp://127.0.0.1:4059"] * 2


def test_the_same_address_twice_on_one_port_is_refused() -> None:
    data = two_on_one_port()
    data["meters"][1]["serverPhysicalAddress"] = 16
    cfg = load_config(data, {})
    assert len(cfg.errors) == 1 and "meter 'Meter-1' already uses" in cfg.errors[0], cfg.errors
    assert [m.name for m in cfg.meters] == ["Meter-1"]
