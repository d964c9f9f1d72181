"""dlms.json that can never stop the connector (issue 8): hostile numbers, nulls, control
characters, deep nesting, names that collide after trimming; a bounded fuzz of whole documents;
get_config() without secrets.

Every bad entry must end as errors naming its meter and field, the other meters loading, and the
engine accepting what the loader accepted: nothing may raise out of load_config() or open().
"""

from __future__ import annotations

import copy
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idle_engine import CheckingIdleEngine
from tb_dlms.connector.config import MASK, is_secret_key, load_config, load_config_file, masked
from tb_dlms.connector.dlms_connector import DlmsConnector
from tb_dlms.engine.engine import PollingEngine
from tb_dlms.protocol.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "dlms.json"
ENV = {"DLMS_MICROSTAR_PASSWORD": "22222222"}
HUGE = 10**309  # one past what a float holds: float(HUGE) raises OverflowError


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def put(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = doc
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = value


def engine_accepts(cfg: Any) -> None:
    """The engine refuses (ConfigError) what it cannot run: it must accept all the loader let by."""
    PollingEngine(cfg.specs, sink=None, transport_factory=lambda t: None).build(0.0)


def assert_only_meter_errors(cfg: Any, meter: str, field: str) -> None:
    assert cfg.errors, "the bad value was accepted"
    for line in cfg.errors:
        assert line.startswith(f"meter '{meter}': {field}"), line
    assert meter not in cfg.by_name
    assert len(cfg.meters) == 1  # the other meter still runs
    engine_accepts(cfg)


# ---- numbers beyond a float ------------------------------------------------------------------
NUMERIC = [
    "pollPeriod", "timeout", "retries", "connectAttemptSpacingMs", "backoffInitialMs",
    "backoffMaxMs", "circuitBreakerFailures", "circuitBreakerOpenMs", "watchdogMs", "healthPeriod",
    "clockCheckPeriod", "clockDriftThresholdS", "inactivityTimeout", "maxInfoLength", "windowSize",
    "maxPduSize", "maxListItems", "deviationSign", "clientAddress", "serverLogicalAddress",
    "serverAddressSize", "connection.port", "connection.connectTimeout",
    "timeseries.0.classId", "timeseries.0.attribute", "timeseries.8.reportStrategy.reportPeriod",
    "staticAttributes.0.classId", "attributeUpdates.0.attribute", "rpc.1.methodIndex",
    "rpc.1.value",
]


@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("path", NUMERIC)
def test_a_number_too_large_for_a_float_is_an_error_of_its_meter(path: str, sign: int) -> None:
    data = example()
    put(data["meters"][0], path, sign * HUGE)
    cfg = load_config(data, ENV)
    field = path.split(".")[0]
    assert_only_meter_errors(cfg, "Microstar-1", field)
    assert all(len(line) < 300 for line in cfg.errors)  # quoted as "<integer of ...>"


def test_a_huge_top_level_number_is_a_top_level_error() -> None:
    data = example()
    data["gcFreezeAfterMs"] = HUGE
    cfg = load_config(data, ENV)
    assert cfg.errors == (
        "dlms.json: gcFreezeAfterMs: <integer of about 310 digits> is out of range "
        "1000..86400000 (or 0 to turn it off)",)
    assert len(cfg.meters) == 2


# ---- names ------------------------------------------------------------------------------------
def test_names_that_differ_only_by_spaces_are_one_name() -> None:
    data = example()
    data["meters"][1]["deviceName"] = "  Microstar-1 "
    cfg = load_config(data, ENV)
    assert cfg.errors == (
        "meter 'Microstar-1': deviceName: 'Microstar-1' is already used by meters[0]",)
    assert [m.name for m in cfg.meters] == ["Microstar-1"]
    engine_accepts(cfg)


@pytest.mark.parametrize("name", ["Meter\n2", "Meter\t2", "Meter\x002", "Meter\u20282",
                                  "Meter\x7f", "Meter\ud8002"])
def test_a_name_with_a_control_character_is_refused(name: str) -> None:
    data = example()
    data["meters"][1]["deviceName"] = name
    data["meters"][0]["timeseries"][0]["key"] = name
    cfg = load_config(data, ENV)
    assert cfg.meters == ()
    assert len(cfg.errors) == 2
    assert all("contains the control character U+" in e for e in cfg.errors)
    assert all("\n" not in e for e in cfg.errors + cfg.skipped)


# ---- null --------------------------------------------------------------------------------------
NULLABLE = ["deviceType", "pollPeriod", "retries", "authentication", "passwordEnv",
            "serverPhysicalAddress", "reportStrategy", "timeseries", "connection.wrapper",
            "connection.connectTimeout", "timeseries.0.classId", "attributeUpdates.0.type",
            "rpc.0.valueType", "enabled"]


@pytest.mark.parametrize("path", NULLABLE)
def test_null_is_an_error_not_a_silent_default(path: str) -> None:
    data = example()
    put(data["meters"][0], path, None)
    cfg = load_config(data, ENV)
    field = path.split(".")[0]
    assert_only_meter_errors(cfg, "Microstar-1", field)
    assert "null" in cfg.errors[0]


def test_null_for_a_required_field_says_required() -> None:
    data = example()
    put(data["meters"][0], "connection.host", None)
    cfg = load_config(data, ENV)
    assert cfg.errors == ("meter 'Microstar-1': connection.host: is required, got null",)


# ---- readable messages, deep nesting ----------------------------------------------------------
def test_a_bad_value_is_quoted_cut_to_a_readable_length() -> None:
    data = example()
    data["meters"][0]["pollPeriod"] = "9" * 10_000
    data["meters"][0]["timeseries"][0]["obis"] = "1-0:" + "x" * 10_000
    data["meters"][0]["retries"] = [list(range(1000))] * 1000
    cfg = load_config(data, ENV)
    assert len(cfg.errors) == 3
    assert all(len(e) < 250 for e in cfg.errors), [len(e) for e in cfg.errors]
    assert "..." in cfg.errors[0]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_a_deeply_nested_meter_entry_is_a_clear_error() -> None:
    data = example()
    data["meters"][0]["rpc"][0]["value"] = nested(sys.getrecursionlimit() + 100)
    cfg = load_config(data, ENV)
    assert cfg.errors == (
        "meter 'Microstar-1': nested more than 32 levels deep: not a meter entry",)
    assert [m.name for m in cfg.meters] == ["Meter-0012345"]
    assert MASK in json.dumps(masked({"password": "x", "deep": nested(50)}))
    masked({"deep": nested(sys.getrecursionlimit() + 100)})  # walked without recursion


def test_a_deeply_nested_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "dlms.json"
    path.write_text('{"meters": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config_file(path)


# ---- meters on one TCP host:port share one connection -----------------------------------------
@pytest.mark.parametrize("key, value, said", [
    ("connectTimeout", 9000, "connection.connectTimeout: 9000 differs from 5000"),
    ("wrapper", True, "connection.wrapper: true differs from false")])
def test_meters_on_one_tcp_port_must_agree_on_the_connection(key: str, value: Any,
                                                             said: str) -> None:
    data = example()
    second = data["meters"][1]
    second["connection"] = dict(data["meters"][0]["connection"], **{key: value})
    second["serverLogicalAddress"] = 2
    for drop in ("serverPhysicalAddress", "serverAddressSize"):
        second.pop(drop)
    cfg = load_config(data, ENV)
    assert len(cfg.errors) == 1 and cfg.errors[0].startswith(f"meter 'Meter-0012345': {said}")
    assert "of meter 'Microstar-1' on the same host:port 192.168.1.50:3333" in cfg.errors[0]
    engine_accepts(cfg)


def test_a_fixed_rpc_value_that_cannot_be_sent_is_an_error_at_load() -> None:
    data = example()
    data["meters"][0]["rpc"][1]["value"] = 300  # valueType integer: -128..127
    cfg = load_config(data, ENV)
    assert cfg.errors == ("meter 'Microstar-1': rpc[1].value: cannot send 300 as integer: out of "
                          "range -128..127",)


# ---- the connector itself ---------------------------------------------------------------------
def _open(data: dict[str, Any]) -> DlmsConnector:
    gateway = type("Gw", (), {"add_device": lambda *a, **k: True,
                              "send_to_storage": lambda *a, **k: None})()
    log = logging.getLogger("test.dlms.hardening")
    c = DlmsConnector(gateway, data, "dlms", engine_factory=CheckingIdleEngine, environ=ENV, logger=log,
                      converter_logger=log)
    c.open()
    return c


def test_open_polls_the_good_meters_whatever_one_entry_holds() -> None:
    data = example()
    data["meters"][0]["pollPeriod"] = HUGE
    data["meters"][1]["deviceName"] = "Meter-0012345 "
    data["meters"].append(copy.deepcopy(data["meters"][1]))
    data["meters"][2]["deviceName"] = " Meter-0012345"
    c = _open(data)
    try:
        assert c.is_connected()
        assert [m.name for m in c.config.meters] == ["Meter-0012345"]
    finally:
        c.close()


# ---- get_config() -----------------------------------------------------------------------------
def test_get_config_masks_secrets_and_leaves_the_running_config_alone() -> None:
    data = example()
    data["meters"][1].update(authentication="lls", password="inline-s3cret")
    data["meters"][1]["blockCipherKey"] = "000102030405060708090A0B0C0D0E0F"
    data["meters"][1]["connection"]["authenticationKey"] = "D0D1D2D3"
    before = copy.deepcopy(data)
    c = _open(data)
    try:
        shown = c.get_config()
        text = json.dumps(shown)
        assert "inline-s3cret" not in text and "0A0B0C" not in text and "D0D1" not in text
        meter = shown["meters"][1]
        assert meter["password"] == meter["blockCipherKey"] == MASK
        assert meter["connection"]["authenticationKey"] == MASK
        # Names of variables and ThingsBoard keys are not secrets.
        assert shown["meters"][0]["passwordEnv"] == "DLMS_MICROSTAR_PASSWORD"
        assert shown["meters"][0]["timeseries"][0]["key"] == "voltage_l1"
        assert {k: v for k, v in shown.items() if k != "meters"} == {
            k: v for k, v in before.items() if k != "meters"}
        assert data == before  # the config the connector runs on keeps its secrets
        assert c.config.by_name["Meter-0012345"].spec.session.password == b"inline-s3cret"
    finally:
        c.close()


@pytest.mark.parametrize("name, secret", [
    ("password", True), ("blockCipherKey", True), ("authenticationKey", True),
    ("masterKey", True), ("hlsSecret", True), ("secret", True), ("passwordEnv", False),
    ("key", False), ("deviceName", False), ("keys", False), ("blockCipherKeyEnv", False)])
def test_which_keys_are_secret(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


# ---- fuzz: generated documents only ever give per-meter errors --------------------------------
JSON_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.sampled_from([HUGE, -HUGE, 10**4000, 0, -1, 1.5, 2**64, 1e308, float("inf")]),
    st.text(max_size=12), st.sampled_from(["", " ", "tcp", "serial", "lls", "1-0:1.8.0", "a\nb"]),
)
JSON = st.recursive(JSON_LEAF, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for k, v in items:
        out.extend(_paths(v, (*prefix, k)))
    return out


BASE = example()
for _m in BASE["meters"]:
    _m["enabled"] = True
PATHS = _paths(BASE)
NAMES = st.sampled_from(["Microstar-1", " Microstar-1", "Microstar-1 ", "Meter-0012345", "M\n",
                         "Bus-Meter-17", ""])


# The values that broke the loader or the engine before: drawn often, so 60 examples find them.
HOSTILE = st.sampled_from([HUGE, -HUGE, None, "x\ny", [[[[]]]], 1e308, "", " Microstar-1"])


@st.composite
def documents(draw: st.DrawFn, values: st.SearchStrategy[Any] = JSON) -> Any:
    if values is JSON and draw(st.integers(0, 9)) == 0:
        return draw(JSON)  # now and then a document that is not a dlms.json at all
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(PATHS))
        *parents, last = path
        node: Any = doc
        try:
            for p in parents:
                node = node[p]
            action = draw(st.integers(0, 3))
            if action == 0 and isinstance(node, dict):
                del node[last]
            elif action == 1 and last == "deviceName":
                node[last] = draw(NAMES)
            else:
                node[last] = draw(values)
        except (KeyError, IndexError, TypeError):
            pass  # an earlier edit replaced a parent
    # a copy of a meter: clashing names, ports and addresses
    if isinstance(doc.get("meters"), list) and draw(st.booleans()):
        doc["meters"].append(copy.deepcopy(draw(st.sampled_from(BASE["meters"]))))
    return doc


@settings(max_examples=400, deadline=None)
@given(documents())
def test_fuzzed_documents_give_only_per_meter_errors(doc: Any) -> None:
    cfg = load_config(doc, ENV)
    for line in cfg.errors:
        assert line.startswith(("dlms.json: ", "meter '", "meters[")), line
        assert len(line) < 500 and "\n" not in line, line  # type list: ~250
    names = [m.name for m in cfg.meters]
    assert len(set(names)) == len(names)
    engine_accepts(cfg)
    if isinstance(doc, (dict, list)):
        json.dumps(masked(doc), default=str)  # never raises, whatever the document


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:  # open() logs "cannot start" with the exception that escaped
            self.crashes.append(record.getMessage())


@settings(max_examples=60, deadline=None)
@given(documents(HOSTILE))
def test_fuzzed_documents_never_stop_open(doc: Any) -> None:
    recorder = _Recorder()
    log = logging.getLogger("test.dlms.hardening")
    log.addHandler(recorder)
    try:
        c = _open(doc)
        try:
            assert recorder.crashes == [] and c.is_connected()
            assert [m.name for m in c.config.meters] == [m.name for m in load_config(doc, ENV).meters]
        finally:
            c.close()
    finally:
        log.removeHandler(recorder)
