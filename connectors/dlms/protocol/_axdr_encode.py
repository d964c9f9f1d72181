"""A-XDR encoding and JSON rendering; the public names are re-exported by axdr.py.

Typed values encode as given, range-checked (LocalProtocolError names the type and the value).
Natives are inferred only where unambiguous: None, bool, bytes (octet-string), str (visible-string
if ASCII else utf8-string), float (float64), tuple (structure), list (array), BitString,
CosemDateTime/Date/Time, DONT_CARE. A bare int is ambiguous and refused: wrap it in Typed.
Import it through ``tb_dlms.protocol.axdr``.
"""

from __future__ import annotations

import datetime as _dt
import struct
from typing import Any, Callable, Dict

from ._axdr_types import DONT_CARE, BitString, DontCareType, Typed, encode_length, type_name
from .cosem_datetime import CosemDate, CosemDateTime, CosemTime
from .errors import LocalProtocolError
from .obis import Obis

# ---- encoding -----------------------------------------------------------------------------------
_ENCODE_DEPTH = 64  # guards against cyclic lists; far beyond any real COSEM value
Encoder = Callable[[bytearray, Any, int], None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_encoder(tag: int, fmt: str) -> Encoder:
    st = struct.Struct(fmt)
    pack = st.pack
    bits = st.size * 8
    signed = fmt[1].islower()  # struct: lower case = signed
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    head = bytes((tag,))
    name = type_name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not _is_int(v) or not lo <= v <= hi:
            raise LocalProtocolError(f"{name} needs an int in {lo}..{hi}, got {v!r}")
        out += head
        out += pack(v)

    return enc


def _float_encoder(tag: int, fmt: str) -> Encoder:
    pack = struct.Struct(fmt).pack
    head = bytes((tag,))
    name = type_name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise LocalProtocolError(f"{name} needs a float, got {v!r}")
        try:
            data = pack(v)
        except (OverflowError, struct.error):
            raise LocalProtocolError(f"{name} cannot hold {v!r}") from None
        out += head
        out += data

    return enc


def _put_octets(out: bytearray, tag: int, data: bytes) -> None:
    out.append(tag)
    out += encode_length(len(data))
    out += data


def _e_null(out: bytearray, v: Any, depth: int) -> None:
    if v is not None:
        raise LocalProtocolError(f"null-data takes None, got {v!r}")
    out.append(0)


def _e_dont_care(out: bytearray, v: Any, depth: int) -> None:
    if v is not None and v is not DONT_CARE:
        raise LocalProtocolError(f"dont-care takes DONT_CARE, got {v!r}")
    out.append(255)


def _e_bool(out: bytearray, v: Any, depth: int) -> None:
    if not isinstance(v, bool):
        raise LocalProtocolError(f"boolean needs a bool, got {v!r}")
    out += b"\x03\x01" if v else b"\x03\x00"


def _e_octets(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, (bytes, bytearray, memoryview)):
        data = bytes(v)
    elif isinstance(v, (CosemDateTime, CosemDate, CosemTime, Obis)):
        data = v.to_bytes()  # clock and schedules carry date-time as octet-string(12)
    else:
        raise LocalProtocolError(f"octet-string needs bytes, got {v!r}")
    _put_octets(out, 9, data)


def _e_visible(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, (bytes, bytearray)):
        data = bytes(v)
    elif isinstance(v, str):
        try:
            data = v.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"visible-string cannot hold {v!r}: use utf8-string") from None
    else:
        raise LocalProtocolError(f"visible-string needs a str, got {v!r}")
    _put_octets(out, 10, data)


def _e_utf8(out: bytearray, v: Any, depth: int) -> None:
    if not isinstance(v, str):
        raise LocalProtocolError(f"utf8-string needs a str, got {v!r}")
    _put_octets(out, 12, v.encode("utf-8"))


def _e_str(out: bytearray, v: str, depth: int) -> None:
    if v.isascii():
        _put_octets(out, 10, v.encode("ascii"))
    else:
        _put_octets(out, 12, v.encode("utf-8"))


def _e_bits(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, str):
        v = BitString(v)
    if not isinstance(v, BitString):
        raise LocalProtocolError(f"bit-string needs a BitString, got {v!r}")
    out.append(4)
    out += encode_length(len(v.bits))
    out += v.to_bytes()


def _container(tag: int) -> Encoder:
    name = type_name(tag)

    def enc(out: bytearray, v: Any, depth: int) -> None:
        if not isinstance(v, (list, tuple)):
            raise LocalProtocolError(f"{name} needs a list or tuple, got {v!r}")
        if depth >= _ENCODE_DEPTH:
            raise LocalProtocolError(f"{name} nested deeper than {_ENCODE_DEPTH} levels")
        out.append(tag)
        out += encode_length(len(v))
        for item in v:
            _encode(out, item, depth + 1)

    return enc


def _e_datetime(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.datetime):
        v = CosemDateTime.from_datetime(v)  # Blue Book deviation sign
    if not isinstance(v, CosemDateTime):
        raise LocalProtocolError(f"date-time needs a CosemDateTime, got {v!r}")
    out.append(25)
    out += v.to_bytes()


def _e_date(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.date):
        v = CosemDate.from_date(v)
    if not isinstance(v, CosemDate):
        raise LocalProtocolError(f"date needs a CosemDate, got {v!r}")
    out.append(26)
    out += v.to_bytes()


def _e_time(out: bytearray, v: Any, depth: int) -> None:
    if isinstance(v, _dt.time):
        v = CosemTime.from_time(v)
    if not isinstance(v, CosemTime):
        raise LocalProtocolError(f"time needs a CosemTime, got {v!r}")
    out.append(27)
    out += v.to_bytes()


# Tag 19 (compact-array) is added by axdr.py: that codec builds on this module.
ENCODERS: Dict[int, Encoder] = {
    0: _e_null, 1: _container(1), 2: _container(2), 3: _e_bool, 4: _e_bits,
    5: _int_encoder(5, ">i"), 6: _int_encoder(6, ">I"), 9: _e_octets, 10: _e_visible,
    12: _e_utf8, 13: _int_encoder(13, ">B"), 15: _int_encoder(15, ">b"),
    16: _int_encoder(16, ">h"), 17: _int_encoder(17, ">B"), 18: _int_encoder(18, ">H"),
    20: _int_encoder(20, ">q"), 21: _int_encoder(21, ">Q"),
    22: _int_encoder(22, ">B"), 23: _float_encoder(23, ">f"), 24: _float_encoder(24, ">d"),
    25: _e_datetime, 26: _e_date, 27: _e_time, 255: _e_dont_care,
}


def _e_typed(out: bytearray, v: Typed, depth: int) -> None:
    enc = ENCODERS.get(v.type)
    if enc is None:
        raise LocalProtocolError(f"unknown A-XDR type {v.type!r}")
    enc(out, v.value, depth)


def _e_ambiguous(out: bytearray, v: Any, depth: int) -> None:
    raise LocalProtocolError(
        f"ambiguous A-XDR type for int {v!r}: wrap it, e.g. Typed(DataType.LONG_UNSIGNED, {v!r})"
    )


_NATIVE: Dict[type, Encoder] = {
    type(None): _e_null, bool: _e_bool, int: _e_ambiguous, float: ENCODERS[24],
    bytes: _e_octets, bytearray: _e_octets, memoryview: _e_octets, str: _e_str,
    tuple: ENCODERS[2], list: ENCODERS[1], BitString: _e_bits, CosemDateTime: ENCODERS[25],
    CosemDate: ENCODERS[26], CosemTime: ENCODERS[27], DontCareType: _e_dont_care, Typed: _e_typed,
}


def _encode(out: bytearray, value: Any, depth: int) -> None:
    enc = _NATIVE.get(type(value))
    if enc is None:  # subclasses (IntEnum, namedtuple...) take their base's rule
        for base, candidate in _NATIVE.items():
            if base is not type(None) and isinstance(value, base):
                enc = candidate
                break
        else:
            raise LocalProtocolError(f"cannot encode {type(value).__name__} {value!r} as A-XDR")
    enc(out, value, depth)


def encode_into(out: bytearray, value: Any) -> None:
    """Append the A-XDR encoding of ``value`` to ``out`` (see the module doc for the rules)."""
    _encode(out, value, 0)


def encode_data(value: Any) -> bytes:
    """A-XDR bytes of ``value``: a Typed, or a native whose type is unambiguous (not a bare int)."""
    out = bytearray()
    _encode(out, value, 0)
    return bytes(out)


# ---- JSON ---------------------------------------------------------------------------------------
def to_json(value: Any) -> Any:
    """A JSON-ready rendering of a decoded value (see the project docs for the rules)."""
    if value is None or type(value) in (int, float, bool, str):
        return value
    if isinstance(value, Typed):
        return to_json(value.value)
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        # Serial numbers and meter ids often come as octet-strings of printable ASCII.
        if data.isascii() and data.decode("ascii").isprintable():
            return data.decode("ascii")
        return data.hex()
    if isinstance(value, BitString):
        return value.bits
    if isinstance(value, (CosemDateTime, CosemDate, CosemTime)):
        return value.isoformat()
    if value is DONT_CARE:
        return None
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)  # IntEnum, ClockStatus...
    if isinstance(value, float):
        return float(value)
    return str(value)
