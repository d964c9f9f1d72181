"""OBIS codes: every accepted notation, the canonical renderings and the refusals."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import DecodeError, DlmsError, LocalProtocolError
from tb_dlms.protocol.obis import Obis

VOLTAGE_L1 = Obis(1, 1, 32, 7, 0, 255)  # IEC 62056-6-1: 1-x:32.7.0 instantaneous voltage L1


@pytest.mark.parametrize(
    "text",
    [
        "1-1:32.7.0",
        "1-1:32.7.0*255",
        "1-1:32.7.0.255",
        "1-1:32.7.0&255",
        "1.1.32.7.0.255",
        "1.1.32.7.0",
        "  1-1:32.7.0  ",
        "0101200700FF",
        "0101200700ff",
        b"\x01\x01\x20\x07\x00\xff",
        bytearray(b"\x01\x01\x20\x07\x00\xff"),
    ],
)
def test_parse_notations(text: object) -> None:
    assert Obis.parse(text) == VOLTAGE_L1  # type: ignore[arg-type]


def test_parse_keeps_explicit_f_and_other_codes() -> None:
    # 0-0:96.1.0*255: device ID 1 (manufacturing number), Blue Book / IEC 62056-6-1
    assert Obis.parse("0-0:96.1.0*255") == Obis(0, 0, 96, 1, 0, 255)
    assert Obis.parse("1-0:1.8.0*101").f == 101
    assert Obis.parse("1.0.99.1.0.0") == Obis(1, 0, 99, 1, 0, 0)
    obis = Obis.parse("1-0:1.8.0")
    assert Obis.parse(obis) is obis


def test_renderings_and_bytes() -> None:
    assert str(VOLTAGE_L1) == "1-1:32.7.0.255"
    assert VOLTAGE_L1.dotted() == "1.1.32.7.0.255"
    assert VOLTAGE_L1.to_bytes() == bytes.fromhex("0101200700ff")
    assert VOLTAGE_L1.to_bytes() is VOLTAGE_L1.to_bytes()  # cached, not rebuilt per request
    assert Obis.from_bytes(bytes.fromhex("0000010000ff")) == Obis(0, 0, 1, 0, 0, 255)  # clock


def test_hashable_and_frozen() -> None:
    d = {Obis.parse("1-1:32.7.0"): "u1"}
    assert d[Obis.parse("1.1.32.7.0.255")] == "u1"
    assert Obis.from_bytes(VOLTAGE_L1.to_bytes()) == VOLTAGE_L1
    assert hash(Obis.from_bytes(VOLTAGE_L1.to_bytes())) == hash(VOLTAGE_L1)
    with pytest.raises(AttributeError):
        VOLTAGE_L1.a = 2  # type: ignore[misc]
    assert sorted([Obis(1, 0, 2, 8, 0), Obis(1, 0, 1, 8, 0)])[0] == Obis(1, 0, 1, 8, 0)


@pytest.mark.parametrize(
    "bad",
    [
        "1-1:32.7.256",       # group out of range
        "1-1:32.7.0*256",
        "256.1.32.7.0.255",
        "1-1:32.7",           # too few groups
        "1.1.32.7",
        "1.1.32.7.0.255.1",   # too many
        "1-1:32.7.0.255.0",
        "1-1:32.7.x",         # junk
        "voltage",
        "",
        "0101200700F",        # 11 hex digits
        "0101200700FFAA",
        "1-1:-32.7.0",
        b"\x01\x02",
    ],
)
def test_parse_rejects_with_the_bad_text(bad: object) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Obis.parse(bad)  # type: ignore[arg-type]
    if isinstance(bad, str) and bad:
        assert repr(bad) in str(info.value)


def test_parse_rejects_other_types_and_constructor_checks_range() -> None:
    with pytest.raises(LocalProtocolError):
        Obis.parse(1080)  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError):
        Obis(1, 0, 1, 8, 0, 300)
    with pytest.raises(LocalProtocolError):
        Obis(1, 0, 1, 8, -1)


@pytest.mark.parametrize("size", [0, 5, 7])
def test_from_bytes_needs_six(size: int) -> None:
    with pytest.raises(DecodeError):
        Obis.from_bytes(bytes(size))


groups = st.integers(0, 255)


@settings(max_examples=200, deadline=None)
@given(groups, groups, groups, groups, groups, groups)
def test_round_trip_all_notations(a: int, b: int, c: int, d: int, e: int, f: int) -> None:
    obis = Obis(a, b, c, d, e, f)
    for text in (str(obis), obis.dotted(), obis.to_bytes().hex(), f"{a}-{b}:{c}.{d}.{e}*{f}"):
        assert Obis.parse(text) == obis
    assert Obis.parse(obis.to_bytes()) == obis


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20))
def test_random_text_only_dlms_errors(text: str) -> None:
    try:
        Obis.parse(text)
    except DlmsError:
        pass
