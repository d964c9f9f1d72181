"""dlms.json loader: the example loads into exact MeterSpecs; every bad field is one error naming
meter and field; a bad meter is skipped while the others load; the schema agrees with the loader.

The example's first meter is the original system's Microstar meter
(/work/shared/design/ORIGINAL_SYSTEM.md): HDLC over TCP 3333, client 1, 1-byte server address,
LLS password (22222222 there; here from an environment variable), 9 class-3 registers.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tb_dlms.connector.config import METER_KEYS, load_config, load_config_file
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, SerialSpec, TcpSpec
from tb_dlms.protocol.axdr import DataType
from tb_dlms.protocol.errors import ConfigError
from tb_dlms.protocol.obis import Obis
from tb_dlms.sandbox.meters import simulator_dlms_config
from tb_dlms.session.settings import SessionSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "dlms.json"
SCHEMA = ROOT / "config" / "dlms.schema.json"
ENV = {"DLMS_MICROSTAR_PASSWORD": "22222222"}

MICROSTAR_REGISTERS = [  # ORIGINAL_SYSTEM.md table: key, OBIS (class 3, attribute 2)
    ("voltage_l1", "1-1:32.7.0"), ("voltage_l2", "1-1:52.7.0"), ("voltage_l3", "1-1:72.7.0"),
    ("current_l1", "1-1:31.7.0"), ("current_l2", "1-1:51.7.0"), ("current_l3", "1-1:71.7.0"),
    ("frequency", "1-1:14.7.0"), ("active_power", "1-1:1.7.0"), ("active_energy", "1-1:1.8.0"),
]


def example() -> dict[str, Any]:
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def ref(obis: str, class_id: int = 3, attribute: int = 2) -> ObjectRef:
    return ObjectRef(class_id, Obis.parse(obis), attribute)


# ---- the example ------------------------------------------------------------------------------
def test_example_loads_into_the_exact_meter_specs() -> None:
    cfg = load_config_file(EXAMPLE, ENV)
    assert cfg.errors == () and cfg.skipped == () and cfg.warnings == ()
    assert cfg.disabled == ("Bus-Meter-17", "Bus-Meter-18")
    assert cfg.report_strategy == {"type": "ON_RECEIVED"}
    assert cfg.log_level == "INFO"
    microstar, second = cfg.meters
    points = tuple(
        PollPoint(key, ref(obis), "timeseries",
                  {"type": "ON_CHANGE_OR_REPORT_PERIOD", "reportPeriod": 60000}
                  if key == "active_energy" else None)
        for key, obis in MICROSTAR_REGISTERS
    )
    assert microstar.spec == MeterSpec(
        name="Microstar-1",
        device_type="DLMS Meter",
        transport=TcpSpec("192.168.1.50", 3333, 5.0),
        session=SessionSettings(
            client=1, server_logical=1, server_physical=None, address_size=1,
            authentication="lls", password=b"22222222", wrapper=False, connect_timeout=5.0,
            response_timeout=3.0, retries=2, inactivity_timeout=180.0, keepalive_margin=30.0,
            name="Microstar-1",
        ),
        poll_period_s=10.0,
        points=points,
        recovery=RecoverySpec(min_connect_spacing_s=15.0, backoff_initial_s=15.0,
                              backoff_max_s=300.0, breaker_threshold=5, breaker_open_s=120.0,
                              watchdog_s=0.0),
        health_period_s=60.0,
    )
    # The original meter answers only with 1-byte HDLC addresses: client 0x03, server 0x03.
    assert microstar.spec.session.client_address.encode() == b"\x03"
    assert microstar.spec.session.server_address.encode() == b"\x03"
    assert microstar.report_strategy == {"type": "ON_RECEIVED"}
    assert microstar.static_attributes == (
        PollPoint("serial_number", ref("0-0:96.1.0.255", 1), "attribute"),)
    (update,) = microstar.attribute_updates
    assert (update.key, update.ref, update.data_type) == (
        "relay_control_mode", ref("0-0:96.3.10.255", 70, 4), DataType.ENUM)
    get_serial, reset = microstar.rpc
    assert (get_serial.kind, get_serial.class_id, get_serial.index) == ("get", 1, 2)
    assert (reset.kind, reset.index, reset.value_type, reset.value, reset.has_value) == (
        "action", 1, DataType.INTEGER, 0, True)
    assert microstar.clock_check_period_s == 3600.0
    assert microstar.clock_drift_threshold_s == 10.0

    s = second.spec.session
    assert (s.client, s.server_logical, s.server_physical, s.address_size) == (16, 1, 12345, 4)
    assert s.authentication == "none" and s.password == b""
    # 4-byte address (Green Book HDLC addressing: 7 bits per byte, low bit 1 on the last byte):
    # logical 1 -> 0x00 0x02; physical 12345 = 96 * 128 + 57 -> 96 << 1, (57 << 1) | 1
    assert s.server_address.encode() == bytes((0x00, 0x02, 0xC0, 0x73))
    assert second.spec.transport == TcpSpec("192.168.1.51", 4059, 5.0)
    assert [p.key for p in second.spec.points] == [
        "voltage_l1", "current_l1", "active_power", "active_energy"]
    assert [p.ref.class_id for p in second.static_attributes] == [1, 1]


def test_example_serial_bus_meters_load_when_enabled_and_share_one_line() -> None:
    data = example()
    for meter in data["meters"][2:]:
        meter["enabled"] = True
    cfg = load_config(data, ENV)
    assert cfg.errors == ()
    bus = [m.spec for m in cfg.meters[2:]]
    assert [m.name for m in bus] == ["Bus-Meter-17", "Bus-Meter-18"]
    assert bus[0].transport == bus[1].transport == SerialSpec("/dev/ttyUSB0", 9600, 8, "N", 1)
    assert bus[0].transport.channel_key == bus[1].transport.channel_key
    assert [m.session.server_address.encode() for m in bus] == [b"\x02\x23", b"\x02\x25"]


def test_example_validates_against_the_schema_and_the_schema_knows_every_meter_key() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(example())) == []
    assert set(schema["$defs"]["meter"]["properties"]) == set(METER_KEYS)
    bad = example()
    bad["meters"][0]["timeseries"][3]["obis"] = "1-1:99"
    assert any("obis" in list(e.path) for e in validator.iter_errors(bad))


def test_every_meter_key_is_documented_in_the_readme() -> None:
    readme = (ROOT / "config" / "README.md").read_text(encoding="utf-8")
    missing = [k for k in METER_KEYS if f"`{k}`" not in readme]
    assert missing == []


# ---- bad fields: one error each, naming meter and field; the other meter still loads -----------
def _set(path: str, value: Any):
    def apply(meter: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = meter
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is _DELETE:
            del node[int(last) if last.isdigit() else last]
        else:
            node[int(last) if last.isdigit() else last] = value
    return apply


_DELETE = object()

BAD_FIELDS = [
    ("timeseries.3.obis", "1-1:99", "timeseries[3].obis: '1-1:99' is not an OBIS code"),
    ("timeseries.0.obis", 10, "timeseries[0].obis: 10 is not an OBIS code"),
    ("timeseries.0.obis", "1-0:1.8.256", "timeseries[0].obis: '1-0:1.8.256' is not an OBIS"),
    ("timeseries.0.classId", True, "timeseries[0].classId: must be an integer"),
    ("timeseries.1.attribute", 0, "timeseries[1].attribute: 0 is out of range 1..127"),
    ("timeseries.2.key", "voltage_l1", ("timeseries[2].key: 'voltage_l1' is already used by "
                                       "timeseries[0]")),
    ("timeseries.2.key", "", "timeseries[2].key: must be a non-empty string"),
    ("timeseries.4.reportStrategy", {"type": "ON_REPORT_PERIOD"},
     "timeseries[4].reportStrategy.reportPeriod: is required"),
    ("reportStrategy", {"type": "SOMETIMES"}, "reportStrategy.type: 'SOMETIMES' is not one of"),
    ("pollPeriod", "1000", "pollPeriod: must be a number, got a string '1000'"),
    ("pollPeriod", 50, "pollPeriod: 50 is out of range 100..86400000"),
    ("timeout", 0, "timeout: 0 is out of range"),
    ("retries", -1, "retries: -1 is out of range 0..10"),
    ("retries", 1.5, "retries: must be an integer"),
    ("clientAddress", 200, "clientAddress: 200 is out of range 0..127"),
    ("serverAddressSize", 3, "serverAddressSize: 3 is not one of 1, 2, 4"),
    ("serverPhysicalAddress", 17, ("serverPhysicalAddress: a 1-byte server address has no "
                                  "physical part")),
    ("serverLogicalAddress", 200, ("serverLogicalAddress: 200 does not fit a 1-byte server "
                                  "address (0..127)")),
    ("authentication", "hls", "authentication: 'hls' is not one of 'none', 'lls'"),
    ("passwordEnv", "NOT_SET_ANYWHERE", ("passwordEnv: environment variable 'NOT_SET_ANYWHERE' "
                                        "is not set")),
    ("password", "secret", "password: give only one of password, passwordEnv"),
    ("passwordEnv", _DELETE, "password: lls authentication needs password, passwordEnv or passwordFile"),
    ("connection.port", 70000, "connection.port: 70000 is out of range 1..65535"),
    ("connection.type", "udp", "connection.type: 'udp' is not one of 'tcp', 'serial'"),
    ("connection.host", _DELETE, "connection.host: is required"),
    ("connection.wrapper", "no", "connection.wrapper: must be true or false"),
    ("connection", _DELETE, "connection: is required"),
    ("backoffMaxMs", 500, "backoffMaxMs: 500 is below backoffInitialMs 15000"),
    ("watchdogMs", 5000, "watchdogMs: 5000 must be longer than pollPeriod 10000"),
    ("healthPeriod", 0, "healthPeriod: 0 is out of range 1000..86400000"),
    ("clockDriftThresholdS", -1, "clockDriftThresholdS: -1 is out of range"),
    ("clockCheckPeriod", 5, "clockCheckPeriod: 5 is out of range 10000..86400000 (or 0"),
    ("deviationSign", 0, "deviationSign: 0 is not one of -1, 1"),
    ("maxInfoLength", 4096, "maxInfoLength: 4096 is out of range 32..2030"),
    ("enabled", "yes", "enabled: must be true or false"),
    ("timeseries", {}, "timeseries: must be a list, got an object"),
    ("timeseries.0", "voltage", "timeseries[0]: must be an object"),
    ("attributeUpdates.0.type", "long-long", ("attributeUpdates[0].type: 'long-long' is not an "
                                             "A-XDR type")),
    ("attributeUpdates.0.classId", _DELETE, "attributeUpdates[0].classId: is required"),
    ("rpc.0.method", "read", "rpc[0].method: 'read' is a built-in RPC"),
    ("rpc.0.type", "write", "rpc[0].type: 'write' is not one of 'get', 'set', 'action'"),
    ("rpc.1.methodIndex", _DELETE, "rpc[1].methodIndex: is required"),
    ("rpc.1.valueType", _DELETE, "rpc[1].valueType: is required with a fixed value"),
]


@pytest.mark.parametrize("path, value, message", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_each_bad_field_is_one_error_naming_meter_and_field(path: str, value: Any,
                                                           message: str) -> None:
    data = example()
    _set(path, value)(data["meters"][0])
    cfg = load_config(data, ENV)
    assert len(cfg.errors) == 1, cfg.errors
    assert cfg.errors[0].startswith(f"meter 'Microstar-1': {message}"), cfg.errors[0]
    assert [m.name for m in cfg.meters] == ["Meter-0012345"]  # the other meter still runs
    (skipped,) = cfg.skipped
    assert skipped.startswith("meter 'Microstar-1' skipped (1 error): ") and message in skipped


def test_a_meter_without_a_name_is_named_by_its_index() -> None:
    data = example()
    del data["meters"][1]["deviceName"]
    cfg = load_config(data, ENV)
    assert cfg.errors == ("meters[1]: deviceName: is required",)
    assert [m.name for m in cfg.meters] == ["Microstar-1"]


def test_several_bad_fields_of_one_meter_give_one_error_each_and_one_skip_line() -> None:
    data = example()
    data["meters"][1]["pollPeriod"] = -5
    data["meters"][1]["timeseries"][0]["obis"] = "nonsense"
    cfg = load_config(data, ENV)
    assert len(cfg.errors) == 2
    assert all(e.startswith("meter 'Meter-0012345': ") for e in cfg.errors)
    assert len(cfg.skipped) == 1 and "(2 errors)" in cfg.skipped[0]
    assert [m.name for m in cfg.meters] == ["Microstar-1"]


def test_duplicate_device_names_are_refused() -> None:
    data = example()
    data["meters"][1]["deviceName"] = "Microstar-1"
    cfg = load_config(data, ENV)
    assert cfg.errors == (
        "meter 'Microstar-1': deviceName: 'Microstar-1' is already used by meters[0]",)
    assert [m.name for m in cfg.meters] == ["Microstar-1"]
    assert cfg.meters[0].spec.transport.port == 3333  # the first one stays


def test_meters_on_one_serial_port_must_agree_on_the_line_settings() -> None:
    data = example()
    data["meters"][2]["enabled"] = data["meters"][3]["enabled"] = True
    data["meters"][3]["connection"] = {"baudrate": 19200}  # over the template's connection
    cfg = load_config(data, ENV)
    assert cfg.errors == (("meter 'Bus-Meter-18' (template 'bus-meter'): connection.baudrate: "
                           "19200 differs from 9600 of meter 'Bus-Meter-17' on the same port "
                           "/dev/ttyUSB0"),)
    assert [m.name for m in cfg.meters][-1] == "Bus-Meter-17"


def test_the_same_address_twice_on_one_line_is_refused() -> None:
    data = example()
    data["meters"][2]["enabled"] = data["meters"][3]["enabled"] = True
    data["meters"][3]["serverPhysicalAddress"] = 17
    cfg = load_config(data, ENV)
    assert len(cfg.errors) == 1 and "meter 'Bus-Meter-17' already uses" in cfg.errors[0]


def test_serial_settings_are_checked() -> None:
    data = example()
    bus = data["meters"][2]
    bus["enabled"] = True
    bus["connection"] = {"baudrate": 12345, "parity": "X", "stopbits": 3}
    cfg = load_config(data, ENV)
    assert sorted(e.split(": ")[1] for e in cfg.errors) == [
        "connection.baudrate", "connection.parity", "connection.stopbits"]


def test_wrapper_takes_no_hdlc_addressing_but_wide_addresses() -> None:
    data = example()
    meter = data["meters"][1]
    meter["connection"]["wrapper"] = True
    cfg = load_config(data, ENV)
    assert sorted(e.split(": ")[1] for e in cfg.errors) == [
        "serverAddressSize", "serverPhysicalAddress"]
    del meter["serverAddressSize"], meter["serverPhysicalAddress"]
    meter["clientAddress"], meter["serverLogicalAddress"] = 300, 1000  # 16-bit wPorts
    cfg = load_config(data, ENV)
    assert cfg.errors == ()
    s = cfg.meters[1].spec.session
    assert (s.wrapper, s.client, s.server_logical) == (True, 300, 1000)


def test_unknown_keys_are_warnings_with_a_hint_and_the_meter_still_loads() -> None:
    data = example()
    data["meters"][0]["pollperiod"] = 5000
    data["meters"][0]["connection"]["hots"] = "x"
    data["colour"] = "blue"
    cfg = load_config(data, ENV)
    assert cfg.errors == ()
    assert "meter 'Microstar-1': pollperiod: unknown key ignored (did you mean 'pollPeriod'?)" \
        in cfg.warnings
    assert any(w.startswith("meter 'Microstar-1': connection.hots: unknown key ignored")
               for w in cfg.warnings)
    assert "dlms.json: colour: unknown key ignored" in cfg.warnings
    assert cfg.meters[0].spec.poll_period_s == 10.0  # the misspelt key was not used


def test_password_env_is_resolved_and_never_shown() -> None:
    cfg = load_config(example(), {"DLMS_MICROSTAR_PASSWORD": "s3cr3t-Lls"})
    session = cfg.meters[0].spec.session
    assert session.password == b"s3cr3t-Lls"
    assert "s3cr3t" not in repr(cfg) and "s3cr3t" not in str(session)
    data = example()
    data["meters"][0]["passwordEnv"] = "EMPTY"
    cfg = load_config(data, {"EMPTY": ""})
    assert cfg.errors == (("meter 'Microstar-1': passwordEnv: environment variable 'EMPTY' is "
                          "empty"),)


def test_a_password_in_the_file_is_taken_and_never_echoed_when_bad() -> None:
    data = example()
    meter = data["meters"][0]
    del meter["passwordEnv"]
    meter["password"] = "22222222"
    assert load_config(data, {}).meters[0].spec.session.password == b"22222222"
    meter["password"] = "x" * 300
    cfg = load_config(data, {})
    assert cfg.errors == ("meter 'Microstar-1': password: is longer than 255 bytes",)
    assert "xxx" not in " ".join(cfg.errors + cfg.skipped)


def test_defaults_of_a_minimal_meter() -> None:
    cfg = load_config({"meters": [{
        "deviceName": "m", "connection": {"type": "tcp", "host": "h", "port": 4059},
        "timeseries": [{"key": "e", "obis": "1.0.1.8.0.255"}]}]})
    (m,) = cfg.meters
    assert m.spec.points == (PollPoint("e", ref("1-0:1.8.0"), "timeseries"),)
    assert m.spec.poll_period_s == 60.0 and m.spec.health_period_s == 60.0
    assert m.spec.device_type == "default"
    assert m.spec.recovery == RecoverySpec()
    s = m.spec.session
    assert (s.client, s.server_logical, s.authentication, s.retries) == (16, 1, "none", 2)


def test_top_level_errors() -> None:
    assert load_config([]).errors == ("dlms.json: must be a JSON object, got list",)
    assert load_config({}).errors == ("dlms.json: meters: is required",)
    cfg = load_config({"meters": [], "logLevel": "LOUD"})
    assert cfg.errors == (("dlms.json: logLevel: 'LOUD' is not one of 'TRACE', 'DEBUG', 'INFO', "
                          "'WARNING', 'ERROR', 'CRITICAL', 'NONE'"),)
    assert "dlms.json: meters: the list is empty, nothing to poll" in cfg.warnings


def test_a_file_that_is_not_json_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "dlms.json"
    path.write_text("{ not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config_file(path)


def test_the_loader_does_not_modify_its_input() -> None:
    data = example()
    before = copy.deepcopy(data)
    load_config(data, ENV)
    assert data == before


def test_operation_timeout_bounds_every_operation_of_the_meter() -> None:
    cfg = example()
    cfg["meters"][0]["operationTimeout"] = 5000
    meter = load_config(cfg, ENV).meters[0]
    assert meter.spec.session.operation_timeout == 5.0
    assert meter.spec.session.operation_limit == 5.0
    cfg["meters"][0]["operationTimeout"] = 0  # off: twenty answer time-outs, at least 60 s
    session = load_config(cfg, ENV).meters[0].spec.session
    longest = max(session.response_timeout, session.connect_timeout)
    assert session.operation_limit == max(60.0, 20 * longest) > 5.0


def test_meters_with_the_same_points_share_one_object_for_each_point():
    # 10,000 meters x 9 points: one PollPoint (and OBIS code, and reference) each, not one per
    # meter; a point that differs (key, strategy) stays its own.
    raw = simulator_dlms_config([4000, 4001, 4002])
    raw["meters"][2]["timeseries"][0]["reportStrategy"] = {"type": "ON_CHANGE"}
    a, b, c = load_config(raw).meters
    assert all(p is q for p, q in zip(a.spec.points, b.spec.points))
    assert c.spec.points[0] is not a.spec.points[0]
    assert c.spec.points[0].ref is a.spec.points[0].ref
    assert all(p is q for p, q in zip(a.spec.points[1:], c.spec.points[1:]))
    assert a.spec.points == b.spec.points and c.spec.points[0] != a.spec.points[0]
