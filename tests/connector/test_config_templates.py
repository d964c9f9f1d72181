"""Meter templates in dlms.json: merge rules, errors naming meter + template + field, warnings
said once per template, secrets from a template's sources, masking, and the schema's verdict."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
from tb_dlms.connector.config import MASK, load_config, masked
from tb_dlms.connector.field_readers import Report, Section
from tb_dlms.connector.meter_entry import METER_KEYS
from tb_dlms.connector.templates import parse_templates
from tb_dlms.engine.spec import TcpSpec

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "config" / "dlms.schema.json").read_text(encoding="utf-8"))
ENV = {"KAIFA_PASSWORD": "kaifa-secret-1"}


def kaifa() -> dict[str, Any]:
    return {
        "deviceType": "Kaifa",
        "connection": {"type": "tcp", "port": 4059, "wrapper": True, "connectTimeout": 2000},
        "clientAddress": 1, "serverLogicalAddress": 1,
        "authentication": "lls", "passwordEnv": "KAIFA_PASSWORD",
        "pollPeriod": 60000,
        "reportStrategy": {"type": "ON_REPORT_PERIOD", "reportPeriod": 60000, "ttl": 3600},
        "timeseries": [{"key": "energy", "obis": "1-0:1.8.0"},
                       {"key": "power", "obis": "1-0:1.7.0"}],
    }


def doc(*meters: dict[str, Any], **templates: Any) -> dict[str, Any]:
    return {"templates": templates or {"kaifa-poly": kaifa()}, "meters": list(meters)}


def meter(name: str, host: str = "10.0.0.1", **fields: Any) -> dict[str, Any]:
    return {"deviceName": name, "template": "kaifa-poly", "connection": {"host": host}, **fields}


def test_the_meter_takes_the_template_and_its_own_fields_win() -> None:
    data = doc(meter("M-1"),
               meter("M-2", "10.0.0.2", pollPeriod=15000, deviceType="Kaifa-B",
                     connection={"host": "10.0.0.2", "port": 4060},
                     reportStrategy={"type": "ON_RECEIVED"},
                     timeseries=[{"key": "voltage", "obis": "1-0:32.7.0"}]))
    cfg = load_config(data, ENV)
    assert cfg.errors == ()
    # M-2's strategy type merged over the template's reportPeriod: said once, for the template
    assert cfg.warnings == ("dlms.json: template 'kaifa-poly': reportStrategy.reportPeriod: "
                            "ignored with type ON_RECEIVED",)
    m1, m2 = cfg.meters
    assert m1.spec.transport == TcpSpec("10.0.0.1", 4059, 2.0)
    assert m1.spec.session.wrapper and m1.spec.session.password == b"kaifa-secret-1"
    assert (m1.spec.device_type, m1.spec.poll_period_s) == ("Kaifa", 60.0)
    assert [p.key for p in m1.spec.points] == ["energy", "power"]
    assert m1.report_strategy == {"type": "ON_REPORT_PERIOD", "reportPeriod": 60000, "ttl": 3600}
    # connection and reportStrategy merge one level deep; lists are replaced as a whole
    assert m2.spec.transport == TcpSpec("10.0.0.2", 4060, 2.0) and m2.spec.session.wrapper
    assert (m2.spec.device_type, m2.spec.poll_period_s) == ("Kaifa-B", 15.0)
    assert m2.report_strategy == {"type": "ON_RECEIVED", "ttl": 3600}
    assert [p.key for p in m2.spec.points] == ["voltage"]


def test_a_secret_the_meter_gives_replaces_every_form_of_it_in_the_template() -> None:
    data = doc(meter("M-1", password="own-password"),
               meter("M-2", "10.0.0.2", passwordEnv="M2_PASSWORD"))
    cfg = load_config(data, {**ENV, "M2_PASSWORD": "m2-secret"})
    assert cfg.errors == ()
    assert [m.spec.session.password for m in cfg.meters] == [b"own-password", b"m2-secret"]


def test_a_field_error_names_the_meter_the_template_and_the_field() -> None:
    data = doc(meter("M-7", timeseries=[{"key": "e", "obis": "1-1:99"}]), meter("M-8", "10.0.0.8"))
    data["templates"]["kaifa-poly"]["pollPeriod"] = 50  # the template's own field, merged
    cfg = load_config(data, ENV)
    assert cfg.errors == (
        "meter 'M-7' (template 'kaifa-poly'): pollPeriod: 50 is out of range 100..86400000",
        "meter 'M-7' (template 'kaifa-poly'): timeseries[0].obis: '1-1:99' is not an OBIS code "
        "(e.g. '1-0:1.8.0' or '1.0.1.8.0.255')",
        "meter 'M-8' (template 'kaifa-poly'): pollPeriod: 50 is out of range 100..86400000",
    )
    assert cfg.meters == () and len(cfg.skipped) == 2


def test_an_unknown_template_is_one_error_listing_the_templates() -> None:
    data = doc(meter("M-1", template="kaifa-pol"), meter("M-2", "10.0.0.2"),
               **{"kaifa-poly": kaifa(), "iskra": kaifa()})
    cfg = load_config(data, ENV)
    assert cfg.errors == ("meter 'M-1' (template 'kaifa-pol'): template: 'kaifa-pol' is not "
                          "defined (did you mean 'kaifa-poly'?); templates: 'kaifa-poly', "
                          "'iskra'",)
    assert [m.name for m in cfg.meters] == ["M-2"]
    assert "dlms.json: templates.iskra: no meter uses this template" in cfg.warnings
    no_templates = load_config({"meters": [meter("M-1")]}, ENV)
    assert no_templates.errors == ("meter 'M-1' (template 'kaifa-poly'): template: 'kaifa-poly' "
                                   "is not defined: dlms.json has no \"templates\"",)


def test_bad_templates_are_errors_and_their_meters_are_skipped() -> None:
    named = {**kaifa(), "deviceName": "X"}
    data = doc(meter("M-1", template="list"), meter("M-2", "10.0.0.2", template="named"),
               meter("M-3", "10.0.0.3"), **{"list": [1], "named": named, "kaifa-poly": kaifa()})
    data["templates"]["templates"] = "nested"
    cfg = load_config(data, ENV)
    assert cfg.errors[:3] == (
        "dlms.json: templates.list: must be an object of meter fields, got [1]",
        "dlms.json: templates.named.deviceName: is not allowed in a template (each meter gives "
        "its own deviceName; templates do not nest)",
        "dlms.json: templates.templates: must be an object of meter fields, got 'nested'",
    )
    assert cfg.errors[3:] == (
        "meter 'M-1' (template 'list'): template: template 'list' has errors (reported above): "
        "meter not loaded",
        "meter 'M-2' (template 'named'): template: template 'named' has errors (reported above): "
        "meter not loaded",
    )
    assert [m.name for m in cfg.meters] == ["M-3"]
    assert load_config({"templates": [], "meters": []}).errors == (
        "dlms.json: templates: must be an object, got a list",)


def test_unknown_keys_in_a_template_are_warned_once_not_once_per_meter() -> None:
    template = kaifa()
    template["pollperiod"] = 1000
    template["timeseries"][1]["colour"] = "red"
    template["connection"]["baud"] = 9600
    data = doc(*(meter(f"M-{i}", f"10.0.0.{i}") for i in range(5)), **{"kaifa-poly": template})
    data["meters"][2]["timeseries"] = [{"key": "e", "obis": "1-0:1.8.0", "shade": 1}]
    cfg = load_config(data, ENV)
    assert cfg.errors == ()
    assert sorted(cfg.warnings) == [
        "dlms.json: template 'kaifa-poly': connection.baud: unknown key ignored",
        "dlms.json: template 'kaifa-poly': timeseries[1].colour: unknown key ignored",
        "dlms.json: templates.kaifa-poly.pollperiod: unknown key ignored (did you mean "
        "'pollPeriod'?)",
        "meter 'M-2' (template 'kaifa-poly'): timeseries[0].shade: unknown key ignored",
    ]
    assert len(cfg.meters) == 5


def test_enabled_false_in_the_template_disables_its_meters_unless_they_say_otherwise() -> None:
    template = {**kaifa(), "enabled": False}
    data = doc(meter("M-1"), meter("M-2", "10.0.0.2", enabled=True), **{"kaifa-poly": template})
    cfg = load_config(data, ENV)
    assert cfg.disabled == ("M-1",) and [m.name for m in cfg.meters] == ["M-2"]
    assert cfg.warnings == ()  # a template used only by disabled meters is still used


def test_get_config_masks_the_secrets_inside_templates() -> None:
    template = {**kaifa(), "password": "in-template-secret", "blockCipherKey": "00" * 16}
    out = masked(doc(meter("M-1"), **{"kaifa-poly": template}))
    assert out["templates"]["kaifa-poly"]["password"] == MASK
    assert out["templates"]["kaifa-poly"]["blockCipherKey"] == MASK
    assert "in-template-secret" not in json.dumps(out)
    assert out["templates"]["kaifa-poly"]["passwordEnv"] == "KAIFA_PASSWORD"  # a name, no secret


def test_the_merged_meter_shares_the_template_lists_instead_of_copying_them() -> None:
    templates = parse_templates(Section(doc(), Report("dlms.json")), METER_KEYS)
    one = templates.merged("kaifa-poly", meter("M-1"))
    two = templates.merged("kaifa-poly", meter("M-2"))
    assert one["timeseries"] is two["timeseries"] is templates.valid["kaifa-poly"]["timeseries"]
    assert one["connection"] == {"type": "tcp", "port": 4059, "wrapper": True,
                                 "connectTimeout": 2000, "host": "10.0.0.1"}
    assert templates.valid["kaifa-poly"]["connection"].get("host") is None  # not written into


def test_the_schema_takes_templates_and_partial_connections() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    data = doc(meter("M-1"), meter("M-2", "10.0.0.2", password="x"))
    assert list(validator.iter_errors(data)) == []
    bad = copy.deepcopy(data)
    bad["meters"][0]["connection"]["port"] = 0
    bad["templates"]["kaifa-poly"]["deviceName"] = "X"
    assert len(list(validator.iter_errors(bad))) == 2
    assert load_config(bad, ENV).meters == ()


def test_ten_thousand_meters_of_one_template_load() -> None:
    """Prints the load time (a figure for the report, nothing asserted on time)."""
    template = kaifa()
    template["timeseries"] = [{"key": f"k{i}", "obis": f"1-0:{i}.8.0"} for i in range(1, 21)]
    data = doc(*(meter(f"M-{i}", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
                 for i in range(10_000)), **{"kaifa-poly": template})
    started = time.perf_counter()
    cfg = load_config(data, ENV)
    elapsed = time.perf_counter() - started
    assert cfg.errors == () and len(cfg.meters) == 10_000
    assert all(len(m.spec.points) == 20 for m in cfg.meters)
    print(f"\n10000 meters x 20 points from one template: load_config {elapsed:.2f} s")


def test_a_meter_on_another_kind_of_line_replaces_the_templates_connection() -> None:
    # A serial meter over a TCP template: no host, port or wrapper carried over (they would be
    # unknown serial keys, warned about against the template).
    serial = {"type": "serial", "port": "/dev/ttyUSB0", "baudrate": 9600}
    cfg = load_config(doc(meter("M-9", connection=serial)), ENV)
    assert cfg.errors == () and cfg.warnings == ()
    (m,) = cfg.meters
    assert m.spec.transport.port == "/dev/ttyUSB0" and m.spec.transport.baudrate == 9600


def test_a_hostile_template_name_is_quoted_and_keeps_messages_on_one_line() -> None:
    # Found by the fuzzed-documents test: a name with a newline split the error in two lines.
    cfg = load_config({"templates": {"a\nb": None, "ok": kaifa()}, "meters": []}, ENV)
    assert cfg.errors == ("dlms.json: templates['a\\nb']: must be an object of meter fields, "
                          "got None",)
    assert "dlms.json: templates.ok: no meter uses this template" in cfg.warnings
