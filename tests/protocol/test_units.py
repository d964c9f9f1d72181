"""Unit table (Blue Book, IEC 62056-6-2) and exact scaler application."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.axdr import DataType, Typed, decode_data
from tb_dlms.protocol.errors import DecodeError, LocalProtocolError
from tb_dlms.protocol.units import UNIT_SYMBOLS, ScalerUnit, apply_scaler, unit_symbol


@pytest.mark.parametrize(
    "code, symbol",
    [
        # Blue Book unit enumeration. The legacy system had Wh/W/A/V/Hz wrong: these pin them.
        (27, "W"), (28, "VA"), (29, "var"), (30, "Wh"), (31, "VAh"), (32, "varh"),
        (33, "A"), (35, "V"), (44, "Hz"),
        (1, "a"), (2, "mo"), (3, "wk"), (4, "d"), (5, "h"), (6, "min."), (7, "s"),
        (8, "°"), (9, "°C"), (13, "m³"), (19, "l"), (20, "kg"), (23, "Pa"), (24, "bar"),
        (25, "J"), (38, "Ω"), (45, "1/(Wh)"), (52, "K"), (56, "%"), (57, "Ah"),
        (62, "Mol %"), (70, "dBm"), (71, "dBµV"), (72, "dB"), (254, "other"), (255, "count"),
    ],
)
def test_blue_book_symbols(code: int, symbol: str) -> None:
    assert UNIT_SYMBOLS[code] == symbol
    assert unit_symbol(code) == symbol


def test_unassigned_codes_render_generically() -> None:
    for code in (0, 58, 59, 68, 69, 100, 200):
        assert code not in UNIT_SYMBOLS
        assert unit_symbol(code) == f"unit({code})"


def test_table_covers_the_contiguous_ranges() -> None:
    for code in [*range(1, 58), *range(60, 68), *range(70, 73), *range(128, 175)]:
        assert code in UNIT_SYMBOLS, code


@pytest.mark.parametrize(
    "raw, scaler, expected",
    [
        (2301, -1, 230.1),      # a voltage register: 2301 * 10^-1 V
        (49987, -3, 49.987),    # frequency
        (12345678, -3, 12345.678),
        (7, -2, 0.07),
        (1, -1, 0.1),
        (3, -1, 0.3),
        (-15, -1, -1.5),
        (5, 0, 5),
        (5, 3, 5000),
        (0, -2, 0.0),
    ],
)
def test_apply_scaler_exact(raw: int, scaler: int, expected: float) -> None:
    result = apply_scaler(raw, scaler)
    assert result == expected
    assert type(result) is type(expected)
    assert repr(result) == repr(expected)  # 230.1, not 230.09999999999999


def test_apply_scaler_float_raw() -> None:
    assert apply_scaler(230.1, 0) == 230.1
    assert apply_scaler(2.301, 2) == 230.1        # naive 2.301 * 100 is 230.10000000000002
    assert apply_scaler(0.3, -1) == 0.03
    assert apply_scaler(float("inf"), -2) == float("inf")
    with pytest.raises(LocalProtocolError):
        apply_scaler(True, 1)
    with pytest.raises(LocalProtocolError):
        apply_scaler("12", 1)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.integers(-(2**63), 2**64 - 1), st.integers(-20, 20))
def test_int_scaling_matches_decimal(raw: int, scaler: int) -> None:
    exact = Decimal(raw).scaleb(scaler)
    result = apply_scaler(raw, scaler)
    if scaler >= 0:
        assert result == int(exact)
    else:
        assert result == float(exact)  # the nearest float to the exact decimal


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, width=32), st.integers(-9, 9))
def test_float_scaling_matches_decimal(raw: float, scaler: int) -> None:
    assert apply_scaler(raw, scaler) == float(Decimal(repr(raw)).scaleb(scaler))


def test_scaler_unit_from_decoded_structure() -> None:
    # Register attribute 3 as a meter sends it: structure { integer -1, enum 35 (V) }
    data = bytes.fromhex("02020fff1623")
    su = ScalerUnit.from_data(decode_data(data)[0])
    assert su == ScalerUnit(-1, 35)
    assert su.symbol == "V"
    assert su.apply(2301) == 230.1
    assert ScalerUnit.from_data(decode_data(data, typed=True)[0]) == su
    assert ScalerUnit.from_data(
        Typed(DataType.STRUCTURE, (Typed(DataType.INTEGER, 0), Typed(DataType.ENUM, 30)))
    ).symbol == "Wh"


@pytest.mark.parametrize(
    "bad", [None, (1,), (1, 2, 3), ("x", 30), (-1, 256), (200, 30), (True, 30), b"\x00\x1e"]
)
def test_scaler_unit_rejects(bad: object) -> None:
    with pytest.raises(DecodeError):
        ScalerUnit.from_data(bad)
