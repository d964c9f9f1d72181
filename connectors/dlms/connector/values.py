"""JSON values from ThingsBoard (shared attributes, RPC params) -> typed A-XDR values for a SET.

dlms.json names the A-XDR type of every written value ("long-unsigned", "octet-string", ...)
because a JSON number does not say whether the meter expects 1, 2, 4 or 8 bytes, signed or not,
and a wrong guess is refused by the meter (type-unmatched) or, worse, accepted with another
meaning. Conversion is strict: no silent clamping, no rounding of 1.5 into an integer.

Rules (documented in config/README.md):

- integers (integer, long, double-long, long64, their unsigned forms, enum, bcd): a JSON integer,
  an integral float (ThingsBoard sends 5.0 for 5) or a decimal string ("5"); range-checked.
- float32 / float64: a number or a numeric string.
- boolean: true/false, 0/1, or the strings "true"/"false"/"1"/"0".
- octet-string: a string is sent as its UTF-8 bytes, unless it starts with "0x" (hex digits
  follow, spaces and colons allowed); a list of 0..255 integers is sent as those bytes.
- visible-string / utf8-string: a string. bit-string: a string of '0' and '1'.
- date-time: an ISO-8601 string (with a UTC offset it carries the deviation; without, the
  deviation is "not specified"), "now" (the gateway's local time with its UTC offset), or epoch
  milliseconds (sent as UTC). date: "YYYY-MM-DD". time: "HH:MM:SS".
- null-data: anything (sent as null-data; the usual parameter of a method without one).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any, Callable

from ..protocol.axdr import BitString, DataType, Typed
from ..protocol.cosem_datetime import CosemDate, CosemDateTime, CosemTime
from ..protocol.errors import ConfigError, LocalProtocolError
from .field_readers import show

__all__ = ["TYPE_NAMES", "coerce_value", "parse_type_name", "type_name"]

# The scalar A-XDR types a JSON value can be converted to, by their Blue Book names.
TYPE_NAMES: dict[str, DataType] = {
    "null-data": DataType.NULL_DATA,
    "boolean": DataType.BOOLEAN,
    "bit-string": DataType.BIT_STRING,
    "double-long": DataType.DOUBLE_LONG,
    "double-long-unsigned": DataType.DOUBLE_LONG_UNSIGNED,
    "octet-string": DataType.OCTET_STRING,
    "visible-string": DataType.VISIBLE_STRING,
    "utf8-string": DataType.UTF8_STRING,
    "bcd": DataType.BCD,
    "integer": DataType.INTEGER,
    "long": DataType.LONG,
    "unsigned": DataType.UNSIGNED,
    "long-unsigned": DataType.LONG_UNSIGNED,
    "long64": DataType.LONG64,
    "long64-unsigned": DataType.LONG64_UNSIGNED,
    "enum": DataType.ENUM,
    "float32": DataType.FLOAT32,
    "float64": DataType.FLOAT64,
    "date-time": DataType.DATE_TIME,
    "date": DataType.DATE,
    "time": DataType.TIME,
}
_NAMES = {v: k for k, v in TYPE_NAMES.items()}

_INT_RANGES: dict[DataType, tuple[int, int]] = {
    DataType.INTEGER: (-(1 << 7), (1 << 7) - 1),
    DataType.LONG: (-(1 << 15), (1 << 15) - 1),
    DataType.DOUBLE_LONG: (-(1 << 31), (1 << 31) - 1),
    DataType.LONG64: (-(1 << 63), (1 << 63) - 1),
    DataType.UNSIGNED: (0, 0xFF),
    DataType.ENUM: (0, 0xFF),
    DataType.BCD: (0, 0xFF),
    DataType.LONG_UNSIGNED: (0, 0xFFFF),
    DataType.DOUBLE_LONG_UNSIGNED: (0, 0xFFFFFFFF),
    DataType.LONG64_UNSIGNED: (0, (1 << 64) - 1),
}


def parse_type_name(name: Any) -> DataType:
    """The DataType of a dlms.json type name; ConfigError lists the accepted names."""
    if isinstance(name, str):
        t = TYPE_NAMES.get(name.strip().lower())
        if t is not None:
            return t
    raise ConfigError(f"{show(name)} is not an A-XDR type (one of: {', '.join(TYPE_NAMES)})")


def type_name(t: DataType) -> str:
    return _NAMES.get(t, t.name.lower().replace("_", "-"))


def _bad(t: DataType, value: Any, why: str = "") -> ConfigError:
    return ConfigError(f"cannot send {show(value)} as {type_name(t)}{': ' + why if why else ''}")


def _to_int(t: DataType, value: Any) -> int:
    if isinstance(value, bool):
        raise _bad(t, value, "a boolean is not a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise _bad(t, value, "not a whole number")
        n = int(value)
    elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        n = int(value)
    else:
        raise _bad(t, value, "expected an integer")
    lo, hi = _INT_RANGES[t]
    if not lo <= n <= hi:
        raise _bad(t, value, f"out of range {lo}..{hi}")
    return n


def _to_float(t: DataType, value: Any) -> float:
    if isinstance(value, bool):
        raise _bad(t, value, "a boolean is not a number")
    try:
        f = float(value) if isinstance(value, (int, float, str)) else math.nan
    except (ValueError, OverflowError):  # float(10**309) overflows
        f = math.nan
    if not math.isfinite(f):
        raise _bad(t, value, "expected a finite number")
    return f


_TRUE = {"true": True, "1": True, "false": False, "0": False}


def _to_bool(t: DataType, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE:
        return _TRUE[value.strip().lower()]
    raise _bad(t, value, "expected true/false")


def _to_octets(t: DataType, value: Any) -> bytes:
    if isinstance(value, str):
        if value[:2].lower() == "0x":
            digits = re.sub(r"[\s:]", "", value[2:])
            try:
                return bytes.fromhex(digits)
            except ValueError:
                raise _bad(t, value, "not hex digits after '0x'") from None
        return value.encode("utf-8")
    if isinstance(value, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in value
    ):
        return bytes(value)
    raise _bad(t, value, "expected a string or a list of bytes")


def _to_str(t: DataType, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(t, value, "expected a string")
    return value


def _to_bits(t: DataType, value: Any) -> BitString:
    try:
        return BitString(value)
    except LocalProtocolError:
        raise _bad(t, value, "expected a string of '0' and '1'") from None


def _to_datetime(t: DataType, value: Any) -> CosemDateTime:
    if isinstance(value, str) and value.strip().lower() == "now":
        return CosemDateTime.from_datetime(_dt.datetime.now().astimezone())
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            moment = _dt.datetime.fromtimestamp(value / 1000.0, _dt.timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise _bad(t, value, "epoch milliseconds out of range") from None
        return CosemDateTime.from_datetime(moment)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):  # fromisoformat takes no 'Z' before Python 3.11
            text = text[:-1] + "+00:00"
        try:
            return CosemDateTime.from_datetime(_dt.datetime.fromisoformat(text))
        except (ValueError, LocalProtocolError) as exc:
            raise _bad(t, value, str(exc)) from None
    raise _bad(t, value, "expected an ISO-8601 string, 'now' or epoch milliseconds")


def _to_date(t: DataType, value: Any) -> CosemDate:
    try:
        return CosemDate.from_date(_dt.date.fromisoformat(_to_str(t, value).strip()))
    except ValueError as exc:
        raise _bad(t, value, str(exc)) from None


def _to_time(t: DataType, value: Any) -> CosemTime:
    try:
        return CosemTime.from_time(_dt.time.fromisoformat(_to_str(t, value).strip()))
    except ValueError as exc:
        raise _bad(t, value, str(exc)) from None


_COERCE: dict[DataType, Callable[[DataType, Any], Any]] = {
    DataType.NULL_DATA: lambda t, v: None,
    DataType.BOOLEAN: _to_bool,
    DataType.BIT_STRING: _to_bits,
    DataType.OCTET_STRING: _to_octets,
    DataType.VISIBLE_STRING: _to_str,
    DataType.UTF8_STRING: _to_str,
    DataType.FLOAT32: _to_float,
    DataType.FLOAT64: _to_float,
    DataType.DATE_TIME: _to_datetime,
    DataType.DATE: _to_date,
    DataType.TIME: _to_time,
}
_COERCE.update({t: _to_int for t in _INT_RANGES})


def coerce_value(value: Any, data_type: DataType, what: str | None = None) -> Typed:
    """``value`` (from JSON) as ``Typed(data_type, ...)``; ConfigError says why not.

    ``what`` (e.g. "attribute 'relay'") prefixes the message so the log names the source.
    """
    conv = _COERCE.get(data_type)
    try:
        if conv is None:
            raise ConfigError(f"values of type {type_name(data_type)} cannot be written from JSON")
        return Typed(data_type, conv(data_type, value))
    except ConfigError as exc:
        if what:
            raise ConfigError(f"{what}: {exc}") from None
        raise
