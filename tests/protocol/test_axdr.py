"""A-XDR Data: vectors, typed round trips for every type, truncation, depth, fuzz, encode rules."""

from __future__ import annotations

import enum
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.axdr import (
    DONT_CARE,
    BitString,
    DataType,
    Typed,
    decode_data,
    decode_length,
    encode_data,
    encode_into,
    encode_length,
    to_json,
)
from tb_dlms.protocol.cosem_datetime import CosemDate, CosemDateTime, CosemTime
from tb_dlms.protocol.errors import DecodeError, DlmsError, LocalProtocolError
from tb_dlms.protocol.obis import Obis

T = DataType

# ---- vectors ---------------------------------------------------------------------------------
# Hand-assembled from the Blue Book A-XDR rules (tag, then content; lengths BER-style); the same
# bytes come out of Gurux (tests/interop/test_gurux_axdr.py checks that independently).
VECTORS: list[tuple[str, Any, Any]] = [
    ("00", Typed(T.NULL_DATA, None), None),
    ("0301", Typed(T.BOOLEAN, True), True),
    ("0300", Typed(T.BOOLEAN, False), False),
    ("1200e6", Typed(T.LONG_UNSIGNED, 230), 230),                 # 230 V as long-unsigned
    ("0612345678", Typed(T.DOUBLE_LONG_UNSIGNED, 0x12345678), 0x12345678),
    ("05fffffffe", Typed(T.DOUBLE_LONG, -2), -2),
    ("10fffe", Typed(T.LONG, -2), -2),
    ("0fff", Typed(T.INTEGER, -1), -1),
    ("11ff", Typed(T.UNSIGNED, 255), 255),
    ("1603", Typed(T.ENUM, 3), 3),
    ("0d12", Typed(T.BCD, 0x12), 0x12),                            # bcd: the raw byte
    ("14ffffffffffffffff", Typed(T.LONG64, -1), -1),
    ("150000000000000100", Typed(T.LONG64_UNSIGNED, 256), 256),
    ("173f800000", Typed(T.FLOAT32, 1.0), 1.0),                    # IEEE 754 single 1.0
    ("18400c000000000000", Typed(T.FLOAT64, 3.5), 3.5),
    ("09060100010800ff", Typed(T.OCTET_STRING, bytes.fromhex("0100010800ff")),
     bytes.fromhex("0100010800ff")),                               # OBIS 1-0:1.8.0.255
    ("0a03414243", Typed(T.VISIBLE_STRING, "ABC"), "ABC"),
    ("0c02c3a9", Typed(T.UTF8_STRING, "é"), "é"),
    ("040aaac0", Typed(T.BIT_STRING, BitString("1010101011")), BitString("1010101011")),
    ("0400", Typed(T.BIT_STRING, BitString("")), BitString("")),
    ("02020fff161b", Typed(T.STRUCTURE, (Typed(T.INTEGER, -1), Typed(T.ENUM, 27))),
     (-1, 27)),                                                    # scaler_unit {-1, W}
    ("010211011102", Typed(T.ARRAY, [Typed(T.UNSIGNED, 1), Typed(T.UNSIGNED, 2)]), [1, 2]),
    ("0100", Typed(T.ARRAY, []), []),
    ("1907e8030f050a141e0cffc400",
     Typed(T.DATE_TIME, CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 12, -60, 0)),
     CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 12, -60, 0)),
    ("1a07e8030f05", Typed(T.DATE, CosemDate(2024, 3, 15, 5)), CosemDate(2024, 3, 15, 5)),
    ("1b0a141eff", Typed(T.TIME, CosemTime(10, 20, 30, None)), CosemTime(10, 20, 30, None)),
    ("ff", Typed(T.DONT_CARE, DONT_CARE), DONT_CARE),
]


@pytest.mark.parametrize("hexdata, typed, native", VECTORS, ids=[v[0][:16] for v in VECTORS])
def test_vectors(hexdata: str, typed: Typed, native: Any) -> None:
    data = bytes.fromhex(hexdata)
    assert encode_data(typed) == data
    assert decode_data(data, typed=True) == (typed, len(data))
    value, end = decode_data(data)
    assert end == len(data)
    assert value == native and type(value) is type(native)


def test_boolean_any_nonzero_is_true() -> None:
    assert decode_data(b"\x03\xff")[0] is True


def test_offset_and_memoryview() -> None:
    data = bytes.fromhex("aa" "1200e6" "0a03414243")
    assert decode_data(data, 1) == (230, 4)
    assert decode_data(memoryview(data), 4) == ("ABC", 9)
    value = decode_data(memoryview(bytes.fromhex("09060100010800ff")))[0]
    assert type(value) is bytes
    with pytest.raises(DecodeError):
        decode_data(data, -3)  # never read from the end


def test_long_lengths() -> None:
    blob = bytes(range(256)) * 2
    data = encode_data(blob)
    assert data[:4] == bytes.fromhex("09820200")
    assert decode_data(data) == (blob, len(data))
    assert encode_data(b"x" * 128)[:3] == bytes.fromhex("098180")
    assert decode_data(bytes.fromhex("0982000141"))[0] == b"A"  # non-minimal length accepted


@pytest.mark.parametrize(
    "n, hexdata",
    [(0, "00"), (0x7F, "7f"), (0x80, "8180"), (0xFF, "81ff"), (0x100, "820100"),
     (0xFFFF, "82ffff"), (0x10000, "83010000"), (0xFFFFFFFF, "84ffffffff")],
)
def test_length_codec(n: int, hexdata: str) -> None:
    assert encode_length(n) == bytes.fromhex(hexdata)
    assert decode_length(b"\x00" + bytes.fromhex(hexdata), 1) == (n, 1 + len(hexdata) // 2)


def test_length_codec_rejects() -> None:
    for bad in ("80", "85" + "00" * 5, "82ff", ""):
        with pytest.raises(DecodeError):
            decode_length(bytes.fromhex(bad), 0)
    for n in (-1, 2**32):
        with pytest.raises(LocalProtocolError):
            encode_length(n)


# ---- strategies ----------------------------------------------------------------------------------
INT_RANGES = {
    T.INTEGER: (-128, 127), T.LONG: (-(2**15), 2**15 - 1), T.DOUBLE_LONG: (-(2**31), 2**31 - 1),
    T.LONG64: (-(2**63), 2**63 - 1), T.UNSIGNED: (0, 255), T.LONG_UNSIGNED: (0, 2**16 - 1),
    T.DOUBLE_LONG_UNSIGNED: (0, 2**32 - 1), T.LONG64_UNSIGNED: (0, 2**64 - 1), T.ENUM: (0, 255),
    T.BCD: (0, 255),
}


def _opt(s: st.SearchStrategy[int]) -> st.SearchStrategy[int | None]:
    return st.one_of(st.none(), s)


date_times = st.builds(
    CosemDateTime, _opt(st.integers(0, 0xFFFE)), _opt(st.integers(1, 12)),
    _opt(st.integers(1, 31)), _opt(st.integers(1, 7)), _opt(st.integers(0, 23)),
    _opt(st.integers(0, 59)), _opt(st.integers(0, 59)), _opt(st.integers(0, 99)),
    _opt(st.integers(-720, 720)), _opt(st.integers(0, 0xFE)),
)
scalars = st.one_of(
    *[st.integers(lo, hi).map(lambda v, t=t: Typed(t, v)) for t, (lo, hi) in INT_RANGES.items()],
    st.booleans().map(lambda v: Typed(T.BOOLEAN, v)),
    st.just(Typed(T.NULL_DATA, None)),
    st.just(Typed(T.DONT_CARE, DONT_CARE)),
    st.floats(width=32, allow_nan=False).map(lambda v: Typed(T.FLOAT32, v)),
    st.floats(allow_nan=False).map(lambda v: Typed(T.FLOAT64, v)),
    st.binary(max_size=300).map(lambda v: Typed(T.OCTET_STRING, v)),
    st.text(st.characters(max_codepoint=255), max_size=40).map(
        lambda v: Typed(T.VISIBLE_STRING, v)),
    st.text(max_size=40).map(lambda v: Typed(T.UTF8_STRING, v)),
    st.text("01", max_size=40).map(lambda v: Typed(T.BIT_STRING, BitString(v))),
    date_times.map(lambda v: Typed(T.DATE_TIME, v)),
    date_times.map(lambda v: Typed(T.DATE, v.date)),
    date_times.map(lambda v: Typed(T.TIME, v.time)),
)
typed_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=6).map(lambda v: Typed(T.ARRAY, v)),
        st.lists(children, max_size=6).map(lambda v: Typed(T.STRUCTURE, tuple(v))),
    ),
    max_leaves=20,
)


def native(v: Typed) -> Any:
    """What untyped decoding must give for a Typed value."""
    if v.type == T.ARRAY:
        return [native(x) for x in v.value]
    if v.type == T.STRUCTURE:
        return tuple(native(x) for x in v.value)
    return v.value


@settings(max_examples=200, deadline=None)
@given(typed_values)
def test_typed_round_trip_identity(value: Typed) -> None:
    data = encode_data(value)
    decoded, end = decode_data(data, typed=True)
    assert end == len(data)
    assert decoded == value
    assert encode_data(decoded) == data
    plain, end2 = decode_data(data)
    assert end2 == len(data) and plain == native(value)
    out = bytearray(b"\x99")
    encode_into(out, value)
    assert bytes(out) == b"\x99" + data


@settings(max_examples=100, deadline=None)
@given(typed_values)
def test_truncation_at_every_offset_is_a_decode_error(value: Typed) -> None:
    data = encode_data(value)
    for cut in range(len(data)):
        with pytest.raises(DecodeError):
            decode_data(data[:cut])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_length_round_trip(n: int) -> None:
    data = encode_length(n)
    assert decode_length(data, 0) == (n, len(data))


# ---- malformed input -----------------------------------------------------------------------------
def test_depth_limit() -> None:
    nested = bytes.fromhex("0101") * 16 + b"\x00"
    assert decode_data(nested)[1] == len(nested)
    deeper = bytes.fromhex("0101") * 17 + b"\x00"
    with pytest.raises(DecodeError, match="depth") as info:
        decode_data(deeper)
    assert info.value.offset == 33
    assert decode_data(deeper, max_depth=17)[1] == len(deeper)
    with pytest.raises(DecodeError):
        decode_data(bytes.fromhex("020100"), max_depth=0)
    very_deep = bytes.fromhex("0201") * 5000 + b"\x00"  # no RecursionError either
    with pytest.raises(DecodeError):
        decode_data(very_deep)


@pytest.mark.parametrize("tag", [7, 8, 11, 14, 28, 100, 254])
def test_unknown_tag(tag: int) -> None:
    with pytest.raises(DecodeError, match=f"tag {tag}") as info:
        decode_data(bytes.fromhex("0202" "1100") + bytes([tag, 0, 0]))
    assert info.value.offset == 4


@pytest.mark.parametrize(
    "hexdata, offset",
    [
        ("0984ffffffff00", 1),       # octet-string of 4 GiB
        ("0182ffff00", 1),           # array of 65535 elements in 1 byte
        ("0281ff00", 1),
        ("0a0541", 1),
        ("0c0241", 1),
        ("0c02c328", 1),             # invalid UTF-8
        ("0480ff", 1),               # indefinite length is not A-XDR
        ("0418ffff", 1),             # 24 bits in 2 bytes
        ("19" + "07e80d0f050a141e0cffc400", 1),  # date-time with month 13
        ("", 0),
    ],
)
def test_malformed(hexdata: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_data(bytes.fromhex(hexdata))
    assert info.value.offset == offset


def _decode_fuzz(data: bytes) -> None:
    start = time.perf_counter()
    try:
        decode_data(data)
        decode_data(data, typed=True)
    except DlmsError:
        pass
    assert time.perf_counter() - start < 1.0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_fuzz(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([1, 2, 19]), st.binary(max_size=80))
def test_fuzz_container_headers(tag: int, rest: bytes) -> None:
    _decode_fuzz(bytes([tag]) + rest)


@settings(max_examples=200, deadline=None)
@given(typed_values, st.data())
def test_fuzz_mutated_valid_encodings(value: Typed, data: st.DataObject) -> None:
    raw = bytearray(encode_data(value))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    _decode_fuzz(bytes(raw))


# ---- encoding rules ------------------------------------------------------------------------------
def test_native_inference() -> None:
    assert encode_data(None) == b"\x00"
    assert encode_data(True) == b"\x03\x01"
    assert encode_data(b"\x01\x02") == bytes.fromhex("09020102")
    assert encode_data(bytearray(b"\x01")) == bytes.fromhex("090101")
    assert encode_data("AB") == bytes.fromhex("0a024142")
    assert encode_data("é") == bytes.fromhex("0c02c3a9")
    assert encode_data(1.5) == bytes.fromhex("183ff8000000000000")
    assert encode_data((None, False)) == bytes.fromhex("0202000300")
    assert encode_data([None]) == bytes.fromhex("010100")
    assert encode_data(BitString("1")) == bytes.fromhex("040180")
    assert encode_data(DONT_CARE) == b"\xff"
    assert encode_data(CosemDate(2024, 1, 1, 1))[0] == 26
    assert encode_data(CosemTime(1, 2, 3, 4)) == bytes.fromhex("1b01020304")


def test_bare_int_is_ambiguous() -> None:
    with pytest.raises(LocalProtocolError, match="Typed"):
        encode_data(5)

    class Mode(enum.IntEnum):
        ON = 1

    with pytest.raises(LocalProtocolError, match="Typed"):
        encode_data((Mode.ON,))
    assert encode_data(Typed(T.ENUM, Mode.ON)) == b"\x16\x01"


@pytest.mark.parametrize(
    "value, words",
    [
        (Typed(T.UNSIGNED, 256), ["unsigned", "256"]),
        (Typed(T.INTEGER, -129), ["integer", "-129"]),
        (Typed(T.LONG_UNSIGNED, -1), ["long-unsigned", "-1"]),
        (Typed(T.DOUBLE_LONG, 2**31), ["double-long", str(2**31)]),
        (Typed(T.LONG64_UNSIGNED, 2**64), ["long64-unsigned"]),
        (Typed(T.LONG, "7"), ["long", "'7'"]),
        (Typed(T.ENUM, True), ["enum", "True"]),
        (Typed(T.FLOAT32, 1e40), ["float32", "1e+40"]),
        (Typed(T.FLOAT64, "x"), ["float64"]),
        (Typed(T.BOOLEAN, 1), ["boolean"]),
        (Typed(T.OCTET_STRING, "text"), ["octet-string", "text"]),
        (Typed(T.VISIBLE_STRING, "€"), ["visible-string", "€"]),
        (Typed(T.UTF8_STRING, b"x"), ["utf8-string"]),
        (Typed(T.ARRAY, 5), ["array"]),
        (Typed(T.DATE_TIME, "now"), ["date-time", "now"]),
        (Typed(T.NULL_DATA, 0), ["null-data"]),
        (Typed(T.BIT_STRING, "102"), ["bit-string"]),
        (object(), ["object"]),
        ({1: 2}, ["dict"]),
    ],
)
def test_encode_refusals_name_type_and_value(value: Any, words: list[str]) -> None:
    with pytest.raises(LocalProtocolError) as info:
        encode_data(value)
    for word in words:
        assert word in str(info.value)


def test_cyclic_value_is_refused() -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(LocalProtocolError, match="deeper"):
        encode_data(loop)


def test_typed_conveniences() -> None:
    # The clock attribute is an octet-string(12) holding a date-time; OBIS codes go as octets.
    dtv = CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 0, -60, 0)
    assert encode_data(Typed(T.OCTET_STRING, dtv)) == b"\x09\x0c" + dtv.to_bytes()
    assert encode_data(Typed(T.OCTET_STRING, Obis(1, 0, 1, 8, 0))) == bytes.fromhex(
        "09060100010800ff")
    assert encode_data(Typed(T.VISIBLE_STRING, b"AB")) == bytes.fromhex("0a024142")
    assert encode_data(Typed(T.BIT_STRING, "11")) == bytes.fromhex("0402c0")
    assert encode_data(Typed(T.DONT_CARE, None)) == b"\xff"
    assert encode_data(Typed(T.STRUCTURE, [True])) == bytes.fromhex("02010301")


def test_bitstring() -> None:
    assert BitString("1").to_bytes() == b"\x80"
    assert BitString("000000001").to_bytes() == b"\x00\x80"
    assert BitString.from_bytes(b"\xa5\xff", 12) == BitString("101001011111")
    assert len(BitString("101")) == 3 and str(BitString("101")) == "101"
    with pytest.raises(LocalProtocolError):
        BitString("12")


# ---- compact-array ---------------------------------------------------------------------------
# Per the Blue Book: 0x13, contents-description (TypeDescription), array-contents as an
# octet-string of the elements packed without tags.
COMPACT_U16 = bytes.fromhex("13" "12" "06" "0001" "0002" "0003")
COMPACT_STRUCT = bytes.fromhex(
    "13" "02" "02" "12" "09"         # description: structure { long-unsigned, octet-string }
    "08" "0001" "02" "4142"          # contents (8 bytes): {1, "AB"}
    "0002" "00"                      #                     {2, ""}
)
COMPACT_NESTED = bytes.fromhex(
    "13" "02" "02" "11" "01" "0002" "0f"  # structure { unsigned, array[2] of integer }
    "06" "01" "ff" "02" "02" "03" "04"      # {1, [-1, 2]}, {2, [3, 4]}
)


def test_compact_array_vectors() -> None:
    assert decode_data(COMPACT_U16) == ([1, 2, 3], len(COMPACT_U16))
    assert decode_data(COMPACT_STRUCT)[0] == [(1, b"AB"), (2, b"")]
    assert decode_data(COMPACT_NESTED)[0] == [(1, [-1, 2]), (2, [3, 4])]
    typed, _ = decode_data(COMPACT_NESTED, typed=True)
    assert typed.type == T.COMPACT_ARRAY
    assert typed.value[0] == Typed(T.STRUCTURE, (
        Typed(T.UNSIGNED, 1), Typed(T.ARRAY, [Typed(T.INTEGER, -1), Typed(T.INTEGER, 2)])))
    for data in (COMPACT_U16, COMPACT_STRUCT, COMPACT_NESTED):
        assert encode_data(decode_data(data, typed=True)[0]) == data
    assert to_json(decode_data(COMPACT_STRUCT)[0]) == [[1, "AB"], [2, ""]]


@pytest.mark.parametrize(
    "hexdata",
    [
        "130003" "000000",          # null-data elements: count unknowable
        "130101000000" "00",        # array of nulls in the description
        "131301" "00",              # compact-array inside a description
        "130702" "0000",            # unknown tag in the description
        "1312030001",               # contents 3 bytes, long-unsigned needs 2 per element
        "13020211",                 # truncated description
        "1312",
        "131204",
    ],
)
def test_compact_array_malformed(hexdata: str) -> None:
    with pytest.raises(DecodeError):
        decode_data(bytes.fromhex(hexdata))


def test_compact_array_encode_refusals() -> None:
    for value in ([], [Typed(T.NULL_DATA, None)], [Typed(T.UNSIGNED, 1), "x"],
                  [(Typed(T.UNSIGNED, 1),), (Typed(T.UNSIGNED, 1), Typed(T.UNSIGNED, 2))],
                  [Typed(T.COMPACT_ARRAY, [True])], [Typed(T.ARRAY, [])]):
        with pytest.raises(LocalProtocolError):
            encode_data(Typed(T.COMPACT_ARRAY, value))


# ---- JSON ---------------------------------------------------------------------------------------
def test_to_json() -> None:
    dtv = CosemDateTime(2024, 3, 15, 5, 10, 20, 30, 0, -60, 0)
    value = (
        1, -2.5, True, None, "txt", b"LGZ12345", b"\x00\x01\xff", BitString("0101"), dtv,
        CosemDateTime(2024, 3, 15, None, 10, 20, 30, None, None, None), [DONT_CARE],
        Typed(T.UNSIGNED, 7), CosemDate(2024, 3, 15), CosemTime(1, 2, 3, 50), b"",
    )
    assert to_json(value) == [
        1, -2.5, True, None, "txt", "LGZ12345", "0001ff", "0101",
        "2024-03-15T10:20:30+01:00", "2024-03-15T10:20:30", [None], 7, "2024-03-15",
        "01:02:03.500", "",
    ]
    assert math.isnan(to_json(float("nan")))
