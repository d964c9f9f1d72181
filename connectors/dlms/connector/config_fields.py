"""Every dlms.json key in one table: key, type, default, range, meaning.

The loader (``meter_entry.py``, ``config.py``) reads the scalar keys through these entries, and
``config_docs`` generates ``config/dlms.schema.json`` and the key tables of ``config/README.md``
from them, so the three cannot drift apart (a test compares the committed files with what this
table generates).

Defaults that the session and the engine also use are taken from their dataclasses
(``SessionSettings``, ``RecoverySpec``, ``MeterSpec``): the table shows those values in the file's
units and never holds a second copy. The session and engine layers do not import this module.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..engine.spec import MeterSpec, RecoverySpec
from ..session.settings import SessionSettings
from .model import BUILTIN_RPCS, ConnectorConfig, MeterConfig
from .values import TYPE_NAMES

__all__ = [
    "ATTRIBUTE_UPDATE_FIELDS", "AXDR_TYPE_NAMES", "CONNECT_TIMEOUT", "LOG_LEVELS", "METER_FIELDS",
    "POINT_FIELDS", "PROFILE_COLUMN_FIELDS", "PROFILE_FIELDS", "REPORT_TYPES", "RPC_FIELDS",
    "SCALARS", "SECRET_SOURCES", "SERIAL_FIELDS", "STRATEGY_FIELDS",
    "TABLES", "TCP_FIELDS", "TOP_FIELDS", "Field", "by_key", "keys", "ms", "schema_ref",
    "secret_keys", "secret_source",
]

SCALARS = ("string", "bool", "int", "number")
DAY_MS = 86_400_000
LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "NONE")
REPORT_TYPES = ("ON_RECEIVED", "ON_CHANGE", "ON_REPORT_PERIOD", "ON_CHANGE_OR_REPORT_PERIOD",
                "DISABLED")
AUTHENTICATIONS = ("none", "lls", "hls-gmac", "hls-sha256", "hls-md5", "hls-sha1")
BAUDRATES = (300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


@dataclass(frozen=True)
class Field:
    """One key of a dlms.json object.

    ``kind`` is "string", "bool", "int" or "number" (read by ``Section.read``), or "object",
    "list", "any" (read by the loader's own code; ``schema`` gives their JSON schema). ``lo``..
    ``hi`` bound numbers, ``choices`` lists the accepted values; ``zero_off`` accepts 0 outside
    the range, meaning "off". ``default`` None with ``required`` False: optional, no default.
    ``manual``: the loader reads it by hand (context-dependent rules); ``hidden``: not in README.
    """

    key: str
    kind: str
    meaning: str = ""
    default: Any = None
    required: bool = False
    lo: float | None = None
    hi: float | None = None
    choices: tuple[Any, ...] | None = None
    zero_off: bool = False
    lower: bool = False  # strings: compared in lower case ("LLS" is "lls")
    unit: str = ""  # "ms" or "s": the README's type column
    doc_type: str = ""  # README type column, when not derived
    doc_default: str = ""  # README default column, when not derived
    manual: bool = False
    hidden: bool = False
    secret: bool = False  # masked in get_config() (config.masked)
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def int_range(self) -> tuple[int, int]:
        """(lo, hi) of an integer field that has both."""
        if self.lo is None or self.hi is None:
            raise ValueError(f"{self.key} has no range")
        return int(self.lo), int(self.hi)


def _defaults(cls: Any) -> dict[str, Any]:
    return {f.name: f.default for f in dataclasses.fields(cls)}


_SESSION = _defaults(SessionSettings)
_RECOVERY = _defaults(RecoverySpec)
_SPEC = _defaults(MeterSpec)
_METER = _defaults(MeterConfig)
_TOP = _defaults(ConnectorConfig)


def ms(seconds: float) -> int | float:
    """Seconds as the file's milliseconds (an int when whole: 3000, not 3000.0)."""
    value = seconds * 1000
    return int(value) if float(value).is_integer() else value


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _list(item: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(item)}


def _secret_source(key: str, meaning: str, what: str,
                   hexadecimal: bool = True) -> tuple[Field, Field, Field]:
    """A secret written into the file (masked by get_config), or named: an environment variable
    (``keyEnv``) or a file (``keyFile``, first line). The loader takes exactly one."""
    form = " in hex" if hexadecimal else ""
    return (
        Field(key, "string", f"{meaning}. Give one of `{key}`, `{key}Env`, `{key}File`",
              manual=True, secret=True),
        Field(f"{key}Env", "string", f"the **name of an environment variable** that holds "
              f"{what}{form} (preferred: the file then holds no secret)", manual=True),
        Field(f"{key}File", "string", f"the path of a file that holds {what}{form} (its first "
              "line; e.g. a Docker secret)", manual=True),
    )


# For the tables of other sections (push_fields.py).
schema_ref = _ref
secret_source = _secret_source

SECRET_SOURCES = ("password", "blockCipherKey", "authenticationKey")  # each: key, ...Env, ...File
STRATEGY = "reportStrategy"
STRATEGY_DOC = "object"

TOP_FIELDS: tuple[Field, ...] = (
    Field("name", "string", "written by the gateway", hidden=True, manual=True),
    Field("id", "string", "written by the gateway", hidden=True, manual=True),
    Field("configVersion", "string", "written by the gateway", hidden=True, manual=True,
          schema={"type": ["string", "null"]}),
    Field("logLevel", "string",
          "`TRACE`, `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL` or `NONE`; the log goes to "
          "`logs/<name>_connector.log`", default=_TOP["log_level"], choices=LOG_LEVELS),
    Field("enableRemoteLogging", "bool", "also send the connector's log to ThingsBoard",
          default=_TOP["enable_remote_logging"]),
    Field(STRATEGY, "object",
          "the connector's report strategy (see [Report strategy](#report-strategy))",
          doc_default="gateway's", schema=_ref("reportStrategy")),
    Field("gcFreezeAfterMs", "number",
          "this long after start, take the gateway's start-up objects out of Python's garbage "
          "collections (`gc.freeze()`, once per process); 0 leaves the collector alone. With many "
          "meters, full collections of those objects stopped every thread for ~0.3 s every few "
          "seconds, so polls started late",
          default=ms(_TOP["gc_freeze_after_s"]), lo=1000, hi=DAY_MS, zero_off=True, unit="number"),
    Field("stateFolder", "string", "where state that must survive a restart is kept "
          "(invocation counters): absolute, or relative to the gateway's config folder",
          default="", doc_default="`dlms` in the gateway's data folder"),
    Field("profileRowsPerSecond", "number", "the most profile rows handed to the gateway per "
          "second, all meters together: a backfill never starves live data or the gateway's "
          "queue (1..100000)", default=10_000, lo=1, hi=100_000),
    Field("profileReadsInFlight", "int", "profile requests that may run at once, on different "
          "meters (1..64)", default=4, lo=1, hi=64),
    Field("startupRate", "int", "meters that may start polling per second at start-up, each "
          "once the gateway has registered its device: a restart of 10,000 meters takes 100 s "
          "instead of 10,000 associations in one poll period ([Fleets](../README.md#fleets)) (1..10000)",
          default=100, lo=1, hi=10_000),
    Field("converter", "string",
          "class name of the uplink converter; a custom one (a subclass of "
          "`DlmsUplinkConverter`, say) is found in the gateway's `extensions/dlms/` folder the way "
          "the gateway finds every converter", default=_TOP["converter"]),
    Field("templates", "object", "named sets of meter fields that many meters share; a meter "
          "names one with `template` ([Templates](#templates))", manual=True, doc_default="none",
          schema={"type": "object", "additionalProperties": _ref("template")}),
    Field("shard", "object", "with several gateways on one dlms.json: `{\"index\": I, "
          "\"count\": N}`, this gateway polls shard I of N; `TB_DLMS_SHARD_INDEX` and "
          "`TB_DLMS_SHARD_COUNT` override it ([Several gateways](#several-gateways-shards))",
          manual=True, doc_default="all meters", schema={
              "type": "object", "additionalProperties": False, "required": ["index", "count"],
              "properties": {"index": {"type": "integer", "minimum": 0},
                             "count": {"type": "integer", "minimum": 1, "maximum": 1024}}}),
    Field("push", "object", "where pushing meters connect ([Pushing meters](#pushing-meters))",
          manual=True, doc_default="none", schema=_ref("push")),
    Field("meters", "list", "the meters, described below", required=True, manual=True,
          schema={"type": "array", "items": {"if": {"required": ["template"]},
                                             "then": _ref("templatedMeter"),
                                             "else": _ref("meter")}}),
)

CONNECT_TIMEOUT = Field("connectTimeout", "number", "how long a TCP connect may take (100..120000)",
                        default=ms(_SESSION["connect_timeout"]), lo=100, hi=120_000, unit="ms")

TCP_FIELDS: tuple[Field, ...] = (
    Field("type", "string", "", required=True, choices=("tcp",), doc_type='`"tcp"`', manual=True,
          schema={"const": "tcp"}),
    Field("host", "string", "IP address or host name", required=True),
    Field("port", "int", "TCP port (1..65535). The original Microstar used 3333; 4059 is the IANA "
          "port for DLMS", required=True, lo=1, hi=65535),
    Field("wrapper", "bool", "`true` uses the IEC 62056-47 wrapper instead of HDLC. "
          "`serverPhysicalAddress` and `serverAddressSize` do not apply then",
          default=_SESSION["wrapper"]),
    CONNECT_TIMEOUT,
)

SERIAL_FIELDS: tuple[Field, ...] = (
    Field("type", "string", "", required=True, choices=("serial",), doc_type='`"serial"`',
          manual=True, schema={"const": "serial"}),
    Field("port", "string", "`/dev/ttyUSB0`, `COM3`, or a pyserial URL such as "
          "`rfc2217://host:port` or `socket://host:port`", required=True),
    Field("baudrate", "int", "300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200",
          default=9600, choices=BAUDRATES, doc_type="int"),
    Field("bytesize", "int", "", default=8, choices=(7, 8)),
    Field("parity", "string", '`"N"`, `"E"` or `"O"`', default="N", choices=("N", "E", "O")),
    Field("stopbits", "number", "", default=1, choices=(1, 1.5, 2)),
    Field("modeE", "bool", "IEC 62056-21 mode E sign-on before HDLC (optical probes)",
          default=False),
    dataclasses.replace(CONNECT_TIMEOUT, meaning=""),
)

METER_FIELDS: tuple[Field, ...] = (
    Field("deviceName", "string", "the ThingsBoard device name; must be unique", required=True),
    Field("deviceType", "string", "the ThingsBoard device profile", default="default"),
    Field("template", "string", "the name of a [template](#templates) in `templates`: the "
          "meter takes its fields and gives its own where it differs", manual=True,
          doc_default="none"),
    Field("enabled", "bool", "`false` keeps the meter in the file but does not poll it or check it "
          "(the example's serial bus)", default=True),
    Field("connection", "object", "how to reach the meter: [TCP](#connection-tcp) or "
          "[serial](#connection-serial). A meter that only pushes has none", required=True,
          manual=True, doc_default="required unless `push`",
          schema={"oneOf": [_ref("tcp"), _ref("serial")]}),
    Field("push", "object", "the meter pushes notifications: how they are recognised and map "
          "to keys ([Pushing meters](#pushing-meters))", manual=True, doc_default="none",
          schema=_ref("pushMeter")),
    Field("clientAddress", "int", "client SAP: 16 = public client (no password); 1 and 32 are "
          "usual LLS clients. Range 0..127 (0..65535 with the wrapper)",
          default=_SESSION["client"], lo=0, hi=0xFFFF),
    Field("serverLogicalAddress", "int", "upper HDLC address (logical device; 1 = management). "
          "With the wrapper, the server wPort", default=_SESSION["server_logical"], lo=0,
          hi=0xFFFF),
    Field("serverPhysicalAddress", "int", "lower HDLC address (physical device), often the last "
          "digits of the serial number. Leave it out for 1-byte addressing", lo=0, hi=0x3FFF),
    Field("serverAddressSize", "int", "HDLC server address bytes. 1 = logical only (0..127); "
          "2 = 7 + 7 bits; 4 = 14 + 14 bits (0..16383 each)", choices=(1, 2, 4),
          doc_default="shortest"),
    Field("authentication", "string", '`"none"`, `"lls"` (low-level security: a password), '
          '`"hls-gmac"` (high-level security, mechanism 5: the keys below; see [Security]'
          '(#security-hls-gmac-and-ciphering)), or `"hls-sha256"`, `"hls-md5"`, `"hls-sha1"` '
          "(mechanisms 6, 3, 4: the keys and `password` as the HLS secret)",
          default=_SESSION["authentication"], choices=AUTHENTICATIONS, lower=True),
    *_secret_source("password", "the LLS password (or HLS secret), written into the file "
                    "(1..255 bytes)", "the password", hexadecimal=False),
    Field("security", "string", "with an HLS authentication, what protects every xDLMS APDU "
          '(security suite 0, AES-GCM-128): `"auth-enc"`, `"auth"` (authenticated only), `"enc"`'
          ' (encrypted only) or `"none"` (plain APDUs after the HLS exchange)',
          choices=("auth-enc", "auth", "enc", "none"), lower=True, doc_default="`auth-enc`"),
    Field("systemTitle", "string", "our (the client's) system title: 16 hex digits (8 octets, "
          "e.g. the manufacturer's 3 letters and a serial). Required with `hls-*`", manual=True),
    *_secret_source("blockCipherKey", "the global unicast encryption key (GUEK): 32 hex "
                    "digits", "the block cipher key"),
    *_secret_source("authenticationKey", "the global authentication key (GAK): 32 hex digits",
                    "the authentication key"),
    Field("dedicatedKey", "bool", "with an HLS authentication and a `security` other than "
          '`"none"`: propose a fresh dedicated key (16 random octets) in each association and '
          "cipher every request after the HLS exchange with it (ded-xxx APDUs); for meters that "
          "offer dedicated keys. It lives for one association and is never stored or logged",
          default=False),
    Field("frameCounterObis", "string", "the meter's frame counter object (class 1, attribute "
          "2): read with the public client when our invocation counter is unknown or refused",
          default=str(_SESSION["frame_counter"]), manual=True),
    Field("publicClientAddress", "int", "the client SAP that reads the frame counter without "
          "authentication", default=_SESSION["public_client"], lo=0, hi=0xFFFF),
    Field("pollPeriod", "number", "how often the registers are read (100 ms..1 day). Cycles are "
          "drift-free: a slow cycle does not shift the later ones", default=60_000, lo=100,
          hi=DAY_MS, unit="ms"),
    Field("timeout", "number", "how long to wait for each answer before retransmitting "
          "(100..600000)", default=ms(_SESSION["response_timeout"]), lo=100, hi=600_000,
          unit="ms"),
    Field("retries", "int", "retransmissions before the session counts as broken (0..10)",
          default=_SESSION["retries"], lo=0, hi=10),
    Field("operationTimeout", "number", "the longest any one read, SET or ACTION may take, "
          "however much the meter sends meanwhile (a meter that keeps talking or drips its answer "
          "cannot push it forward); 0: twenty `timeout`s, at least 60 s",
          default=ms(_SESSION["operation_timeout"]), lo=1000, hi=DAY_MS, zero_off=True,
          unit="ms"),
    Field("connectAttemptSpacingMs", "number", "minimum time between two connection attempts "
          "(0..1 h). Many meters refuse a new connection sooner: the Microstar needs 10 to 15 s",
          default=ms(_RECOVERY["min_connect_spacing_s"]), lo=0, hi=3_600_000, unit="ms"),
    Field("backoffInitialMs", "number", "first wait after a failed connection; it doubles (with "
          "jitter) after each failure", default=ms(_RECOVERY["backoff_initial_s"]), lo=100,
          hi=3_600_000, unit="ms"),
    Field("backoffMaxMs", "number", "the longest wait between attempts; must be at least "
          "`backoffInitialMs`", default=ms(_RECOVERY["backoff_max_s"]), lo=100, hi=DAY_MS,
          unit="ms"),
    Field("circuitBreakerFailures", "int", "consecutive failures that open the circuit breaker: "
          "attempts pause (1..1000)", default=_RECOVERY["breaker_threshold"], lo=1, hi=1000),
    Field("circuitBreakerOpenMs", "number", "how long the breaker stays open before one trial "
          "attempt", default=ms(_RECOVERY["breaker_open_s"]), lo=1000, hi=DAY_MS, unit="ms"),
    Field("watchdogMs", "number", "with no successful read for this long, the session counts as "
          "dead even if the socket looks alive. `0` = three poll periods, at least 30 s; "
          "otherwise it must be longer than `pollPeriod`", default=ms(_RECOVERY["watchdog_s"]),
          lo=1000, hi=DAY_MS, zero_off=True, unit="ms"),
    Field("healthPeriod", "number", "how often the [health telemetry](#health-telemetry) is "
          "published (1 s..1 day)", default=ms(_SPEC["health_period_s"]), lo=1000, hi=DAY_MS,
          unit="ms"),
    Field("clockCheckPeriod", "number", "how often the meter clock is read and compared with the "
          "gateway's (`0` = never; else 10 s..1 day)", default=ms(_METER["clock_check_period_s"]),
          lo=10_000, hi=DAY_MS, zero_off=True, unit="ms"),
    Field("clockDriftThresholdS", "number", "when `abs(clock_drift_s)` is above this, "
          "`clock_drift_alarm` becomes true", default=_METER["clock_drift_threshold_s"], lo=0.01,
          hi=86_400, unit="s"),
    Field("inactivityTimeout", "number", "the meter's inactivity timeout. A cheap keep-alive GET "
          "is sent before it runs out (`0` = the meter has none)",
          default=ms(_SESSION["inactivity_timeout"]), lo=1000, hi=DAY_MS, zero_off=True,
          unit="ms"),
    Field("maxInfoLength", "int", "proposed HDLC maximum information field length, both "
          "directions (32..2030)", default=_SESSION["max_info_rx"], lo=32, hi=2030),
    Field("windowSize", "int", "proposed HDLC window size, both directions (1..7)",
          default=_SESSION["window_rx"], lo=1, hi=7),
    Field("maxPduSize", "int", "our maximum receive PDU size announced in the AARQ (64..65535)",
          default=_SESSION["max_pdu_size"], lo=64, hi=0xFFFF),
    Field("maxListItems", "int", "for meters that limit GET-with-list: at most this many "
          "attributes per request", lo=1, hi=0xFFFF),
    Field("deviationSign", "int", "sign of the clock deviation: -1 follows the Blue Book, +1 is "
          "for meters that send the opposite sign", default=_SESSION["deviation_sign"],
          choices=(-1, 1)),
    Field(STRATEGY, "object", "the meter's report strategy, used by its keys that have none of "
          "their own", doc_default="connector's", manual=True, schema=_ref("reportStrategy")),
    Field("timeseries", "list", "[points](#points) read every `pollPeriod`, sent as telemetry "
          "with the time the meter answered", default=[], manual=True, schema=_list("point")),
    Field("attributes", "list", "[points](#points) read every `pollPeriod`, sent as client "
          "attributes", default=[], manual=True, schema=_list("point")),
    Field("staticAttributes", "list", "[points](#points) read **once after each association** "
          "(serial number, firmware version...), sent as client attributes", default=[],
          manual=True, schema=_list("point")),
    Field("attributeUpdates", "list", "shared attributes written to the meter "
          "([below](#attributeupdates))", default=[], manual=True,
          schema=_list("attributeUpdate")),
    Field("rpc", "list", "named RPCs ([below](#rpc))", default=[], manual=True,
          schema=_list("rpc")),
    Field("profiles", "list", "[profiles](#profiles) (load profile, billing values, event log) "
          "delivered row by row with the meter's own timestamps", default=[], manual=True,
          schema=_list("profile")),
    Field("timeZone", "string", "the meter's time zone (IANA name, e.g. `Europe/Madrid`), for "
          "profile times the meter stamps without a UTC deviation", manual=True,
          doc_default="the gateway's"),
)

_OBIS_MEANING = ("the OBIS code: `\"1-0:1.8.0\"`, `\"1-0:1.8.0.255\"`, `\"1-0:1.8.0*255\"`, "
                 "`\"1.0.1.8.0.255\"` or 12 hex digits. If F is left out, it is 255")
_OBIS = Field("obis", "string", _OBIS_MEANING, required=True, manual=True, schema=_ref("obis"))

POINT_FIELDS: tuple[Field, ...] = (
    Field("key", "string", "the ThingsBoard key; must be unique within its list", required=True),
    _OBIS,
    Field("classId", "int", "the COSEM interface class: 1 Data, 3 Register, 4 Extended register, "
          "8 Clock, 70 Disconnect control...", default=3, lo=0, hi=0xFFFF),
    Field("attribute", "int", "the attribute index (2 = value)", default=2, lo=1, hi=127),
    Field(STRATEGY, "object", "this key's report strategy", doc_default="meter's", manual=True,
          schema=_ref("reportStrategy")),
)

PROFILE_FIELDS: tuple[Field, ...] = (
    dataclasses.replace(_OBIS, meaning="the Profile generic object (class 7): `1-0:99.1.0.255` "
                        "load profile, `1-0:98.1.0.255` daily billing values, `0-0:99.98.0.255` "
                        "event log, or any other"),
    Field("pollPeriod", "number", "how often new rows are read (10 s..1 day)", default=900_000,
          lo=10_000, hi=DAY_MS, unit="ms"),
    Field("backfillDays", "number", "on the first read (no position saved yet), how far back "
          "to start (0..3660 days; 0 = only rows from now on)", default=7, lo=0, hi=3660),
    Field("maxRowsPerRead", "int", "rows asked for in one request, so a long backfill never "
          "holds the meter's line for long (1..10000)", default=96, lo=1, hi=10_000),
    Field("columns", "list", "how capture columns map to keys ([below](#profile-columns)); "
          "default: every column but the clock, keyed by its OBIS code", default=[], manual=True,
          schema=_list("profileColumn")),
)

PROFILE_COLUMN_FIELDS: tuple[Field, ...] = (
    dataclasses.replace(_OBIS, meaning="the captured object (as listed in the profile's "
                        "capture_objects)"),
    Field("attribute", "int", "its captured attribute, when the profile captures two of one "
          "object", lo=1, hi=127, doc_default="any"),
    Field("key", "string", "the ThingsBoard key of the column", manual=True,
          doc_default="the OBIS code"),
    Field("skip", "bool", "`true` leaves the column out", default=False),
)

ATTRIBUTE_UPDATE_FIELDS: tuple[Field, ...] = (
    Field("key", "string", "the shared attribute's name", required=True),
    dataclasses.replace(_OBIS, meaning="the COSEM object of the attribute to write"),
    Field("classId", "int", "its interface class (required for writes)", required=True, lo=0,
          hi=0xFFFF),
    Field("attribute", "int", "the attribute index (required for writes)", required=True, lo=1,
          hi=127),
    Field("type", "string", "the A-XDR type the meter expects (see [value types](#value-types))",
          required=True, manual=True, schema=_ref("axdrType")),
)

RPC_FIELDS: tuple[Field, ...] = (
    Field("method", "string", "the RPC name; it may not reuse a built-in name", required=True,
          schema={"type": "string", "minLength": 1, "not": {"enum": list(BUILTIN_RPCS)}}),
    Field("type", "string", '`"get"`, `"set"` or `"action"`', required=True,
          choices=("get", "set", "action"), lower=True),
    dataclasses.replace(_OBIS, meaning="the COSEM object"),
    Field("classId", "int", "its interface class", required=True, lo=0, hi=0xFFFF),
    Field("attribute", "int", "for `get` and `set`: the attribute index", lo=1, hi=127,
          manual=True, doc_default="required for get, set"),
    Field("methodIndex", "int", "for `action`: the method index", lo=1, hi=127, manual=True,
          doc_default="required for action"),
    Field("valueType", "string", "the A-XDR type of the value. Required for `set`, and whenever "
          "`value` is given", manual=True, schema=_ref("axdrType")),
    Field("value", "any", "a fixed value. Without it, the value comes from the RPC params "
          "(`params.value`, or the params themselves when they are a single value). An `action` "
          "with no value sends null-data", manual=True, schema={}),
)

STRATEGY_FIELDS: tuple[Field, ...] = (
    Field("type", "string", "when to report", required=True, choices=REPORT_TYPES, manual=True),
    Field("reportPeriod", "int", "for the `*_REPORT_PERIOD` types: the period (ms)", lo=1,
          hi=DAY_MS, manual=True),
    Field("aggregationFunction", "string", "as in the gateway",
          choices=("NONE", "SUM", "COUNT", "MIN", "MAX", "AVERAGE")),
    Field("ttl", "int", "as in the gateway", lo=1, hi=10 * 365 * 86400),
)

# README section -> table; the order of the README's generated blocks.
TABLES: dict[str, tuple[Field, ...]] = {
    "top": TOP_FIELDS, "meter": METER_FIELDS, "tcp": TCP_FIELDS, "serial": SERIAL_FIELDS,
    "point": POINT_FIELDS, "attributeUpdate": ATTRIBUTE_UPDATE_FIELDS, "rpc": RPC_FIELDS,
    "profile": PROFILE_FIELDS, "profileColumn": PROFILE_COLUMN_FIELDS,
}

AXDR_TYPE_NAMES = tuple(TYPE_NAMES)


def secret_keys() -> frozenset[str]:
    return frozenset(f.key for table in TABLES.values() for f in table if f.secret)


def keys(fields: tuple[Field, ...]) -> tuple[str, ...]:
    return tuple(f.key for f in fields)


def by_key(fields: tuple[Field, ...]) -> dict[str, Field]:
    return {f.key: f for f in fields}
