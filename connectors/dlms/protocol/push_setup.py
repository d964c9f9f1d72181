"""Push setup (Blue Book, IEC 62056-6-2, class 40, version 0): what a meter pushes, where, how.

    push_object_list (2)             array of structure {class_id long-unsigned,
                                       logical_name octet-string(6), attribute_index integer,
                                       data_index long-unsigned}
    send_destination_and_method (3)  structure {transport_service enum, destination octet-string,
                                       message enum}
    communication_window (4)         array of structure {start_time octet-string(12),
                                       end_time octet-string(12)} (COSEM date-times, wildcards allowed)
    randomisation_start_interval (5) long-unsigned, seconds
    number_of_retries (6)            unsigned
    repetition_delay (7)             long-unsigned, seconds
    push (method 1)                  data ::= integer(0)

Versions 1 and 2 add attributes 8.. (not read here) and fields after the four of an object list
entry (a restriction, columns): those are ignored when decoding; version 2 turns
repetition_delay into structure {min, exponent, max} (``RepetitionDelay``). Encoders write the
version 0 shapes.

Decoders take values as ``decode_data`` gives them (structures as tuples, arrays as lists), or
``Typed`` (typed decoding), and raise ``DecodeError`` naming the field on any other shape.
Encoders return ``Typed`` values for a SET and raise ``LocalProtocolError`` on values out of
range. ``entry_from_json`` / ``to_json`` are the shapes of the RPCs and of dlms.json:
``{"classId": 3, "obis": "1-0:1.8.0.255", "attribute": 2, "dataIndex": 0}``, a destination
as text (hex when not printable ASCII), transport and message by name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from .axdr import DataType, Typed, to_json
from .cosem_datetime import CosemDateTime
from .errors import DecodeError, DlmsError, LocalProtocolError
from .obis import Obis
from .profile import CaptureColumn

__all__ = [
    "ATTRIBUTES", "CLASS_ID", "DEFAULT_OBIS", "MESSAGES", "PUSH_METHOD", "TRANSPORTS",
    "PushListEntry", "RepetitionDelay", "SendDestination", "Window", "entry_from_json",
    "decode_communication_window", "decode_number_of_retries", "decode_push_object_list",
    "decode_randomisation_start_interval", "decode_repetition_delay",
    "decode_send_destination", "encode_communication_window", "encode_number_of_retries",
    "encode_push_object_list", "encode_randomisation_start_interval", "encode_repetition_delay",
    "encode_send_destination", "message_code", "message_name", "parse_host_port",
    "transport_code", "transport_name", "window_to_json",
]

CLASS_ID = 40
DEFAULT_OBIS = Obis(0, 0, 25, 9, 0, 255)  # the first push setup object (Blue Book OBIS list)
PUSH_METHOD = 1
ATTRIBUTES = {2: "push_object_list", 3: "send_destination_and_method",
              4: "communication_window", 5: "randomisation_start_interval",
              6: "number_of_retries", 7: "repetition_delay"}
# transport_service: 200..255 are manufacturer specific; message: 128..255 likewise.
TRANSPORTS = {0: "tcp", 1: "udp", 2: "ftp", 3: "smtp", 4: "sms", 5: "hdlc", 6: "m-bus",
              7: "zigbee", 8: "dlms-gateway"}
MESSAGES = {0: "a-xdr", 1: "xml"}
# RFC 1123 host names (IPv4 addresses are some); used with fullmatch: "$" would let a "\n" in.
_OBJECT_KEYS = frozenset(("classId", "obis", "attribute", "dataIndex"))
# What a dlms.json push object says besides the entry itself (how its value is published).
_CONFIG_ONLY_KEYS = frozenset(("key", "type", "scaler", "identity", "timestamp", "reportStrategy"))
_HOSTNAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


# ---- values ----------------------------------------------------------------------------------
# An entry of push_object_list is a capture_object_definition, as a profile's capture objects.
PushListEntry = CaptureColumn


def entry_from_json(value: Any, where: str = "object") -> CaptureColumn:
    """An entry from ``{"obis", "classId"=1, "attribute"=2, "dataIndex"=0}`` (the defaults of a
    dlms.json push object, whose other keys are taken and ignored, so a meter's configured list
    can be written as it stands); LocalProtocolError names ``where`` and the key."""
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{where}: expected an object {{obis, classId?, "
                                 f"attribute?, dataIndex?}}, got {value!r:.60}")
    unknown = sorted(set(value) - _OBJECT_KEYS - _CONFIG_ONLY_KEYS)
    if unknown:
        raise LocalProtocolError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
    if "obis" not in value:
        raise LocalProtocolError(f"{where}.obis is required")
    try:
        obis = Obis.parse(value["obis"])
    except DlmsError as exc:
        raise LocalProtocolError(f"{where}.obis: {exc}") from None
    return CaptureColumn(_json_int(value.get("classId", 1), 0, 0xFFFF, f"{where}.classId"), obis,
                         _json_int(value.get("attribute", 2), 0, 127, f"{where}.attribute"),
                         _json_int(value.get("dataIndex", 0), 0, 0xFFFF, f"{where}.dataIndex"))


@dataclass(frozen=True)
class SendDestination:
    """send_destination_and_method: transport service, destination octets, message type."""

    transport: int
    destination: bytes
    message: int

    def __post_init__(self) -> None:
        _check_range(self.transport, 0, 255, "transport")
        _check_range(self.message, 0, 255, "message")
        if not isinstance(self.destination, bytes):
            raise LocalProtocolError(f"destination must be octets, got {self.destination!r:.60}")

    def typed(self) -> Typed:
        return Typed(DataType.STRUCTURE, [Typed(DataType.ENUM, self.transport),
                                          Typed(DataType.OCTET_STRING, self.destination),
                                          Typed(DataType.ENUM, self.message)])

    def to_json(self) -> dict[str, Any]:
        return {"destination": to_json(self.destination),
                "transport": transport_name(self.transport),
                "message": message_name(self.message)}


@dataclass(frozen=True)
class RepetitionDelay:
    """repetition_delay of a version 2 push setup: min * (exponent ** retry), at most max."""

    min: int
    exponent: int
    max: int

    def to_json(self) -> dict[str, int]:
        return {"min": self.min, "exponent": self.exponent, "max": self.max}


Window = tuple[CosemDateTime, CosemDateTime]


def transport_name(code: int) -> str | int:
    """The transport's name; a code without one (manufacturer specific) as the number."""
    return TRANSPORTS.get(code, code)


def message_name(code: int) -> str | int:
    return MESSAGES.get(code, code)


def transport_code(value: Any, where: str = "transport") -> int:
    """A transport by name ("tcp", ...) or number 0..255."""
    return _code(value, TRANSPORTS, where)


def message_code(value: Any, where: str = "message") -> int:
    """A message type by name ("a-xdr", "xml") or number 0..255."""
    return _code(value, MESSAGES, where)


def parse_host_port(text: Any, where: str = "destination") -> tuple[str, int]:
    """``host:port`` (an IPv6 address in brackets: ``[::1]:4059``) -> (host, port)."""
    if not isinstance(text, str) or ":" not in text or not text.isascii() \
            or not text.strip().isprintable():
        raise LocalProtocolError(f"{where}: expected 'host:port', got {text!r:.60}")
    host, _, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise LocalProtocolError(f"{where}: {host!r} is not an IPv6 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise LocalProtocolError(f"{where}: {host!r:.60} is not a host name or address "
                                 "(an IPv6 address goes in brackets)")
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise LocalProtocolError(f"{where}: port {port_text!r:.20} is not in 1..65535")
    return host, int(port_text)


def window_to_json(window: Window, deviation_sign: int = -1) -> dict[str, str]:
    start, end = window
    return {"start": start.isoformat(deviation_sign=deviation_sign),
            "end": end.isoformat(deviation_sign=deviation_sign)}


# ---- decoders --------------------------------------------------------------------------------
def decode_push_object_list(value: Any) -> tuple[PushListEntry, ...]:
    """Attribute 2; entries with more than four fields (versions 1, 2) keep their first four."""
    entries = _seq(value, "push_object_list")
    out = []
    for i, entry in enumerate(entries):
        where = f"push_object_list[{i}]"
        fields = _seq(entry, where, 4)
        name = _plain(fields[1])
        if not isinstance(name, bytes) or len(name) != 6:
            raise DecodeError(f"{where}.logical_name: expected 6 octets, got {_show(name)}")
        out.append(PushListEntry(_int(fields[0], 0, 0xFFFF, f"{where}.class_id"),
                              Obis.from_bytes(name),
                              _int(fields[2], -128, 127, f"{where}.attribute_index"),
                              _int(fields[3], 0, 0xFFFF, f"{where}.data_index")))
    return tuple(out)


def decode_send_destination(value: Any) -> SendDestination:
    """Attribute 3 (a visible-string destination, as some meters send, is taken as its octets)."""
    fields = _seq(value, "send_destination_and_method", 3)
    destination = _plain(fields[1])
    if isinstance(destination, str):
        destination = destination.encode("latin-1", "replace")
    if not isinstance(destination, bytes):
        raise DecodeError("send_destination_and_method.destination: expected an octet-string, "
                          f"got {_show(destination)}")
    return SendDestination(
        _int(fields[0], 0, 255, "send_destination_and_method.transport_service"),
        destination, _int(fields[2], 0, 255, "send_destination_and_method.message"))


def decode_communication_window(value: Any) -> tuple[Window, ...]:
    """Attribute 4: (start, end) pairs of COSEM date-times."""
    out = []
    for i, entry in enumerate(_seq(value, "communication_window")):
        where = f"communication_window[{i}]"
        fields = _seq(entry, where, 2)
        out.append((_datetime(fields[0], f"{where}.start"), _datetime(fields[1], f"{where}.end")))
    return tuple(out)


def decode_randomisation_start_interval(value: Any) -> int:
    return _int(value, 0, 0xFFFF, "randomisation_start_interval")


def decode_number_of_retries(value: Any) -> int:
    return _int(value, 0, 0xFF, "number_of_retries")


def decode_repetition_delay(value: Any) -> int | RepetitionDelay:
    """Attribute 7: seconds (versions 0, 1) or the version 2 structure."""
    value = _plain(value)
    if isinstance(value, (list, tuple)):
        fields = _seq(value, "repetition_delay", 3)
        return RepetitionDelay(*(_int(fields[i], 0, 0xFFFF, f"repetition_delay.{name}")
                                 for i, name in enumerate(("min", "exponent", "max"))))
    return _int(value, 0, 0xFFFF, "repetition_delay")


# ---- encoders (Typed values for a SET) ---------------------------------------------------------
def encode_push_object_list(objects: Sequence[PushListEntry]) -> Typed:
    return Typed(DataType.ARRAY, [o.typed() for o in objects])


def encode_send_destination(destination: SendDestination) -> Typed:
    return destination.typed()


def encode_communication_window(windows: Sequence[Window]) -> Typed:
    return Typed(DataType.ARRAY, [
        Typed(DataType.STRUCTURE, [Typed(DataType.OCTET_STRING, start.to_bytes()),
                                   Typed(DataType.OCTET_STRING, end.to_bytes())])
        for start, end in windows])


def encode_randomisation_start_interval(seconds: int) -> Typed:
    return Typed(DataType.LONG_UNSIGNED, _check_range(seconds, 0, 0xFFFF,
                                                      "randomisation_start_interval"))


def encode_number_of_retries(count: int) -> Typed:
    return Typed(DataType.UNSIGNED, _check_range(count, 0, 0xFF, "number_of_retries"))


def encode_repetition_delay(delay: Union[int, RepetitionDelay]) -> Typed:
    if isinstance(delay, RepetitionDelay):
        return Typed(DataType.STRUCTURE, [
            Typed(DataType.LONG_UNSIGNED, _check_range(v, 0, 0xFFFF, f"repetition_delay.{k}"))
            for k, v in delay.to_json().items()])
    return Typed(DataType.LONG_UNSIGNED, _check_range(delay, 0, 0xFFFF, "repetition_delay"))


# ---- helpers ---------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Typed) else value


def _show(value: Any) -> str:
    kind = "null" if value is None else type(value).__name__
    return f"{kind} {value!r:.40}"


def _seq(value: Any, where: str, size: int | None = None) -> Sequence[Any]:
    value = _plain(value)
    if not isinstance(value, (list, tuple)):
        raise DecodeError(f"{where}: expected a structure or array, got {_show(value)}")
    if size is not None and len(value) < size:
        raise DecodeError(f"{where}: {len(value)} elements, expected {size}")
    return value


def _int(value: Any, lo: int, hi: int, where: str) -> int:
    value = _plain(value)
    if type(value) is not int or not lo <= value <= hi:
        raise DecodeError(f"{where}: expected an integer in {lo}..{hi}, got {_show(value)}")
    return value


def _datetime(value: Any, where: str) -> CosemDateTime:
    value = _plain(value)
    if isinstance(value, CosemDateTime):
        return value
    if isinstance(value, bytes) and len(value) == 12:
        try:
            return CosemDateTime.from_bytes(value)
        except DecodeError as exc:
            raise DecodeError(f"{where}: {exc}") from None
    raise DecodeError(f"{where}: expected a date-time (12 octets), got {_show(value)}")


def _check_range(value: Any, lo: int, hi: int, what: str) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise LocalProtocolError(f"{what} must be an integer in {lo}..{hi}, got {value!r:.40}")
    return value


def _json_int(value: Any, lo: int, hi: int, where: str) -> int:
    """An integer as JSON gives it: int, integral float, or digits as text."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if type(value) is not int or not lo <= value <= hi:
        raise LocalProtocolError(f"{where} must be an integer in {lo}..{hi}, got {value!r:.40}")
    return value


def _code(value: Any, names: Mapping[int, str], where: str) -> int:
    if isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit()):
        key = value.strip().lower().replace("_", "-")
        for code, name in names.items():
            if name == key:
                return code
        raise LocalProtocolError(f"{where}: unknown {value!r:.40} (known: "
                                 f"{', '.join(names.values())}, or a number 0..255)")
    return _json_int(value, 0, 255, where)
