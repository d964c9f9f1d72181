"""The connector's converter is found by class name, the way the gateway finds converters: ours by
default, a user's class from the gateway's extensions folder (the real TBModuleLoader), and an
unknown name is one error naming the field, with ours used instead."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import test_connector_unit as unit
from tb_dlms.connector.converter_loading import DEFAULT_CONVERTER, converter_class
from tb_dlms.converters.uplink import DlmsUplinkConverter
from tb_dlms.engine.events import PointReading
from tb_dlms.session.reading import Reading, Ref
from thingsboard_gateway.tb_utility.tb_loader import TBModuleLoader

T0, config = unit.T0, unit.config
gateway, make = unit.gateway, unit.make  # the connector unit tests' fixtures

CUSTOM = '''
from tb_dlms.converters.uplink import DlmsUplinkConverter


class DoublingDlmsConverter(DlmsUplinkConverter):
    """Telemetry values doubled: proof that the user's class did the converting."""

    def convert(self, config, data):
        out = super().convert(config, data)
        for entry in out.telemetry:
            for key in list(entry.values):
                entry.values[key] = entry.values[key] * 2
        return out
'''


@pytest.fixture
def extensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An extensions folder on the gateway loader's search path, with a custom converter file."""
    folder = tmp_path / "extensions"
    (folder / "dlms").mkdir(parents=True)
    (folder / "dlms" / "doubling_converter.py").write_text(CUSTOM, encoding="utf-8")
    if not TBModuleLoader.PATHS:
        TBModuleLoader.find_paths()
    monkeypatch.setattr(TBModuleLoader, "PATHS", [str(folder), *TBModuleLoader.PATHS])
    monkeypatch.setattr(TBModuleLoader, "LOADED_CONNECTORS", {})
    return folder


def test_the_default_is_ours() -> None:
    assert converter_class("dlms", DEFAULT_CONVERTER) is DlmsUplinkConverter


def test_a_missing_class_is_none(extensions: Path) -> None:
    assert converter_class("dlms", "NoSuchConverter") is None


def _one_reading(engine: Any) -> None:
    spec = engine.spec("Microstar-1")
    p = spec.points[0]
    ref = Ref(p.ref.class_id, p.ref.obis, p.ref.attribute)
    engine.sink.on_readings(spec, [PointReading(p, Reading(ref, 230.1, 2301, -1, "V", T0))], T0)


def test_a_custom_converter_from_the_extensions_folder_converts(make, gateway, extensions) -> None:
    cfg = config()
    cfg["converter"] = "DoublingDlmsConverter"
    _c, engine = make(cfg)
    _one_reading(engine)
    telemetry = [cd.to_dict()["telemetry"] for _n, _i, cd in gateway.stored
                 if cd.device_name == "Microstar-1" and cd.telemetry_datapoints_count == 1]
    assert [{"ts": T0, "values": {"voltage_l1": 460.2}}] in telemetry


def test_an_unknown_converter_is_an_error_and_ours_converts(make, gateway, extensions,
                                                              caplog) -> None:
    cfg = config()
    cfg["converter"] = "NoSuchConverter"
    with caplog.at_level(logging.ERROR, logger="test.dlms"):
        _c, engine = make(cfg)
    assert any("converter" in r.getMessage() and "'NoSuchConverter'" in r.getMessage()
               for r in caplog.records)
    _one_reading(engine)
    telemetry = [cd.to_dict()["telemetry"] for _n, _i, cd in gateway.stored]
    assert [{"ts": T0, "values": {"voltage_l1": 230.1}}] in telemetry
