"""One source of truth for dlms.json (issue 9): the table in config_fields drives the loader,
generates config/dlms.schema.json and the README's key tables, and takes its defaults from the
session and engine dataclasses. Loader and schema agree at every range edge of the table.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tb_dlms.connector import config_docs
from tb_dlms.connector.config import load_config
from tb_dlms.connector.config_fields import (
    METER_FIELDS,
    POINT_FIELDS,
    SERIAL_FIELDS,
    TCP_FIELDS,
    TOP_FIELDS,
    Field,
    by_key,
    ms,
)
from tb_dlms.engine.spec import RecoverySpec
from tb_dlms.session.settings import SessionSettings

ROOT = Path(__file__).resolve().parents[2]
ENV = {"DLMS_MICROSTAR_PASSWORD": "22222222"}
SCHEMA = json.loads((ROOT / "config" / "dlms.schema.json").read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def example() -> dict[str, Any]:
    return json.loads((ROOT / "config" / "dlms.json").read_text(encoding="utf-8"))


def test_the_committed_schema_and_readme_are_what_the_table_generates() -> None:
    assert (ROOT / "config" / "dlms.schema.json").read_text("utf-8") == config_docs.schema_text(), \
        "run: python -m tb_dlms.connector.config_docs --write"
    readme = (ROOT / "config" / "README.md").read_text("utf-8")
    assert readme == config_docs.readme(readme), \
        "run: python -m tb_dlms.connector.config_docs --write"
    assert config_docs.main(["--check"]) == 0


def test_a_stale_readme_table_is_noticed() -> None:
    readme = (ROOT / "config" / "README.md").read_text("utf-8")
    edited = readme.replace("| `pollPeriod` | ms | `60000` |", "| `pollPeriod` | ms | `30000` |")
    assert edited != readme
    assert config_docs.readme(edited) == readme
    with pytest.raises(ValueError, match="fields:meter"):
        config_docs.readme(readme.replace("<!-- fields:meter -->", ""))


def test_the_generated_schema_is_valid_and_accepts_the_example() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert list(VALIDATOR.iter_errors(example())) == []


def test_defaults_are_the_session_and_recovery_defaults() -> None:
    cfg = load_config({"meters": [{"deviceName": "m", "connection": {
        "type": "tcp", "host": "h", "port": 4059}}]})
    (meter,) = cfg.meters
    session, default = meter.spec.session, SessionSettings()
    for name in ("client", "server_logical", "authentication", "wrapper", "connect_timeout",
                 "response_timeout", "retries", "max_info_rx", "max_info_tx", "window_rx",
                 "window_tx", "max_pdu_size", "max_list_items", "inactivity_timeout",
                 "keepalive_margin", "deviation_sign"):
        assert getattr(session, name) == getattr(default, name), name
    assert meter.spec.recovery == RecoverySpec()
    table = by_key(METER_FIELDS)
    assert table["timeout"].default == ms(default.response_timeout)
    assert table["backoffMaxMs"].default == ms(RecoverySpec().backoff_max_s)


# ---- loader and schema agree at every range edge of the table ----------------------------------
def _where(section: str) -> tuple[tuple[Field, ...], Any]:
    """(fields, function placing a value into a copy of the example)."""
    def meter(doc: dict[str, Any], key: str, value: Any) -> None:
        doc["meters"][1][key] = value

    def tcp(doc: dict[str, Any], key: str, value: Any) -> None:
        doc["meters"][1]["connection"][key] = value

    def point(doc: dict[str, Any], key: str, value: Any) -> None:
        doc["meters"][1]["timeseries"][0][key] = value

    def serial(doc: dict[str, Any], key: str, value: Any) -> None:
        doc["meters"][2]["enabled"] = True  # its connection merges over its template's
        doc["meters"][2].setdefault("connection", {})[key] = value

    def top(doc: dict[str, Any], key: str, value: Any) -> None:
        doc[key] = value

    return {"meter": (METER_FIELDS, meter), "tcp": (TCP_FIELDS, tcp), "point": (POINT_FIELDS, point),
            "serial": (SERIAL_FIELDS, serial), "top": (TOP_FIELDS, top)}[section]


# Ranges the loader narrows by context (HDLC vs wrapper addresses): the schema keeps the widest.
CONTEXTUAL = {"clientAddress", "publicClientAddress", "serverLogicalAddress", "serverPhysicalAddress",
              "serverAddressSize"}
EDGES = [
    (section, f.key, value, ok)
    for section in ("top", "meter", "tcp", "serial", "point")
    for f in _where(section)[0]
    if f.kind in ("int", "number") and not f.manual and f.key not in CONTEXTUAL
    for value, ok in (
        [(c, True) for c in f.choices] + [(max(f.choices) + 1, False)] if f.choices
        else [(f.lo, True), (f.hi, True), (f.lo - (1 if f.kind == "int" else 0.5), False),
              (f.hi + 1, False)]
    )
]


@pytest.mark.parametrize("section, key, value, ok", EDGES,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in EDGES])
def test_loader_and_schema_agree_at_the_range_edges(section: str, key: str, value: Any,
                                                    ok: bool) -> None:
    doc = example()
    _where(section)[1](doc, key, value)
    if section == "meter" and key == "watchdogMs" and ok:
        doc["meters"][1]["pollPeriod"] = 100  # the loader's rule: longer than pollPeriod
    if section == "meter" and key == "backoffInitialMs" and ok:
        doc["meters"][1]["backoffMaxMs"] = value  # the loader's rule: max >= initial
    if section == "meter" and key == "backoffMaxMs" and ok:
        doc["meters"][1]["backoffInitialMs"] = 100
    cfg = load_config(copy.deepcopy(doc), ENV)
    schema_ok = not list(VALIDATOR.iter_errors(doc))
    assert (cfg.errors == ()) is ok, cfg.errors
    assert schema_ok is ok


SECRET_CASES = [
    ({"authentication": "lls", "passwordFile": "/run/secrets/pw"}, True),
    ({"authentication": "lls", "passwordEnv": "PW"}, True),
    ({"authentication": "lls"}, False),
    ({"authentication": "lls", "password": "x", "passwordFile": "/f"}, False),
    ({"authentication": "hls-gmac", "systemTitle": "5442444C4D533031",
      "blockCipherKeyEnv": "K", "authenticationKeyFile": "/f"}, True),
    ({"authentication": "hls-gmac", "systemTitle": "5442444C4D533031",
      "blockCipherKeyEnv": "K"}, False),
    ({"authentication": "hls-gmac", "blockCipherKeyEnv": "K", "authenticationKeyEnv": "A"},
     False),
    ({"authentication": "hls-sha256", "systemTitle": "5442444C4D533031", "passwordEnv": "PW",
      "blockCipherKeyEnv": "K", "authenticationKeyEnv": "A"}, True),
    ({"authentication": "hls-sha256", "systemTitle": "5442444C4D533031",
      "blockCipherKeyEnv": "K", "authenticationKeyEnv": "A"}, False),
]


@pytest.mark.parametrize(("secrets", "ok"), SECRET_CASES)
def test_loader_and_schema_agree_on_where_secrets_come_from(secrets: dict[str, Any], ok: bool,
                                                            tmp_path: Path) -> None:
    secrets = dict(secrets)
    for key in list(secrets):
        if key.endswith("File"):
            path = tmp_path / key
            path.write_text("000102030405060708090A0B0C0D0E0F\n")
            secrets[key] = str(path)
    meter = {"deviceName": "m", "clientAddress": 1, "connection": {
        "type": "tcp", "host": "h", "port": 4059}, **secrets}
    env = {"PW": "secret", "K": "00" * 16, "A": "D0" * 16}
    loaded = not load_config({"meters": [meter]}, env).errors
    valid = not list(VALIDATOR.iter_errors({"meters": [meter]}))
    assert (loaded, valid) == (ok, ok)
