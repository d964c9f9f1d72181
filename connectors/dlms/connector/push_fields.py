"""The dlms.json fields of pushing meters: the top-level ``push`` listener section, a meter's
``push`` section and its ``objects`` (the Push setup's object list, in order). Tables only: the
loader (push_config.py) reads them, config_docs.py writes them into config/README.md."""

from __future__ import annotations

from .config_fields import DAY_MS, Field
from .config_fields import schema_ref as _ref
from .config_fields import secret_source as _secret_source

__all__ = ["PUSH_FIELDS", "PUSH_LISTENER_FIELDS", "PUSH_METER_FIELDS", "PUSH_OBJECT_FIELDS",
           "PUSH_SECURITY"]

PUSH_SECURITY = ("none", "auth", "enc", "auth-enc")

PUSH_FIELDS: tuple[Field, ...] = (
    Field("listeners", "list", "where pushing meters connect ([below](#push-listeners))",
          required=True, manual=True,
          schema={"type": "array", "minItems": 1, "items": _ref("pushListener")}),
    Field("address", "string", "`host:port` where meters reach this gateway's listener: what the "
          "`push_setup_point` RPC writes into a meter's Push setup", manual=True,
          doc_default="the first TCP listener's, unless it listens on all addresses"),
    Field("idleTimeout", "number", "a connection that sends nothing this long is closed "
          "(1 s..1 day)", default=300_000, lo=1000, hi=DAY_MS, unit="ms"),
    Field("messageTimeout", "number", "a notification begun must be complete within this time, "
          "or its connection is closed: a sender trickling octets holds nothing (100 ms..10 min)",
          default=30_000, lo=100, hi=600_000, unit="ms"),
    Field("maxConnections", "int", "TCP connections open at once, all listeners together; "
          "more are closed at once (1..100000)", default=20_000, lo=1, hi=100_000),
    Field("maxConnectionsPerAddress", "int", "TCP connections from one IP address at once; more "
          "are closed at once, so one host cannot take every slot (0: no limit; meters behind "
          "one NAT share an address) (0..100000)", default=0, lo=0, hi=100_000),
    Field("maxApduSize", "int", "the longest notification taken, in octets (64..65535); with "
          "`maxConnections` it bounds the memory senders can hold (20,000 x 16 KiB: 320 MiB at "
          "most)", default=16_384, lo=64, hi=0xFFFF),
)

PUSH_LISTENER_FIELDS: tuple[Field, ...] = (
    Field("type", "string", "`tcp` or `serial`", default="tcp", choices=("tcp", "serial"),
          lower=True),
    Field("framing", "string", "`wrapper` (IEC 62056-47) or `hdlc` (UI frames)",
          default="wrapper", choices=("wrapper", "hdlc"), lower=True),
    Field("host", "string", "tcp: the address to listen on", default="0.0.0.0"),
    Field("port", "any", "tcp: the port (1..65535, often 4059); serial: the device "
          "(`/dev/ttyUSB1`) or a pyserial URL", required=True, manual=True,
          schema={"type": ["integer", "string"]}),
    Field("baudrate", "int", "serial: the speed", default=9600, lo=300, hi=115_200),
)

PUSH_METER_FIELDS: tuple[Field, ...] = (
    Field("objects", "list", "the body of the notification, in the order of the meter's Push "
          "setup object list ([below](#push-objects))", required=True, manual=True,
          schema={"type": "array", "minItems": 1, "items": _ref("pushObject")}),
    Field("setups", "object", "the meter's other pushes, by the logical name of their Push setup "
          "(`{\"0-4:25.9.0.255\": [objects...]}`, an alarm push say): a notification whose first "
          "element is that logical name is read with that list ([below](#push-objects))",
          manual=True, doc_default="none",
          schema={"type": "object", "additionalProperties": {
              "type": "array", "minItems": 1, "items": _ref("pushObject")}}),
    Field("systemTitle", "string", "the meter's system title (16 hex digits): a ciphered "
          "notification is recognised, and its keys found, by it", manual=True),
    Field("address", "int", "the meter's wrapper wPort or HDLC address (its physical address "
          "when it has one): recognises a plain notification", lo=0, hi=0xFFFF),
    Field("identity", "string", "the value of the object marked `identity` in the body (a "
          "serial number, say): recognises a plain notification", manual=True),
    Field("security", "string", "the least protection accepted: `none` (plain notifications "
          "too), `auth`, `enc` or `auth-enc`", manual=True,
          doc_default="`auth-enc` with keys, else `none`", choices=PUSH_SECURITY, lower=True),
    *_secret_source("blockCipherKey", "the global unicast key of the meter's pushes",
                    "the 16-octet key"),
    *_secret_source("authenticationKey", "its authentication key (not needed for `enc`)",
                    "the 16-octet key"),
)

PUSH_OBJECT_FIELDS: tuple[Field, ...] = (
    Field("obis", "string", "the captured object's logical name", required=True, manual=True,
          schema=_ref("obis")),
    Field("classId", "int", "its interface class", default=1, lo=0, hi=0xFFFF),
    Field("attribute", "int", "its captured attribute (0: the whole object)", default=2, lo=0,
          hi=127),
    Field("dataIndex", "int", "the element captured when the attribute is an array (0: all)",
          default=0, lo=0, hi=0xFFFF),
    Field("key", "string", "the ThingsBoard key; without it the element is not published",
          manual=True, doc_default="none"),
    Field("type", "string", "`timeseries` or `attribute`", default="timeseries",
          choices=("timeseries", "attribute"), lower=True),
    Field("scaler", "int", "the value is multiplied by 10^scaler (the register's scaler: a "
          "push carries the raw value)", default=0, lo=-128, hi=127),
    Field("identity", "bool", "this element identifies the meter (see the meter's `identity`)",
          default=False),
    Field("timestamp", "bool", "this element is a date-time that stamps the values when the "
          "notification has no date-time of its own", default=False),
    Field("reportStrategy", "object", "this key's report strategy", doc_default="meter's",
          manual=True, schema=_ref("reportStrategy")),
)
