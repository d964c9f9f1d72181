"""CRC-16/X.25 (HDLC HCS/FCS): the fast crc_hqx-based version against a plain bitwise reference."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.crc import BITREV_TABLE, crc16_x25, crc16_x25_bytes


def reference_crc16_x25(data: bytes) -> int:
    """Textbook bit-by-bit CRC-16/X.25: reflected poly 0x8408 (= 0x1021), init/xorout 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def test_check_value():
    # The catalogue check value of CRC-16/X.25 (a.k.a. CRC-16/IBM-SDLC) over "123456789".
    assert crc16_x25(b"123456789") == 0x906E
    assert reference_crc16_x25(b"123456789") == 0x906E


def test_empty_input():
    assert crc16_x25(b"") == reference_crc16_x25(b"") == 0x0000


def test_bitrev_table():
    assert BITREV_TABLE[0x01] == 0x80
    assert BITREV_TABLE[0xA0] == 0x05
    assert all(BITREV_TABLE[BITREV_TABLE[i]] == i for i in range(256))


# Seed document architecture-v2.es.md, "Protocolos y Comunicaciones" (Microstar meter captures):
# header bytes after the flag, and the HCS/FCS that followed them on the wire (LSB first).
SEED_CHECKS = [
    ("A0 07 03 03 93", "8C 11"),  # SNRM, FCS
    ("A0 07 03 03 53", "80 D7"),  # DISC, FCS
    ("A0 1E 03 03 73", "40 CC"),  # UA, HCS
    ("A0 44 03 03 10", "65 94"),  # AARQ I frame, HCS
    ("A0 37 03 03 30", "EF CA"),  # AARE I frame, HCS
    ("A0 19 03 03 12", "EE E9"),  # GET request I frame, HCS
    ("A0 16 03 03 52", "13 19"),  # GET response I frame, HCS
]


@pytest.mark.parametrize("header,check", SEED_CHECKS)
def test_seed_frame_checks(header, check):
    data = bytes.fromhex(header)
    assert crc16_x25_bytes(data) == bytes.fromhex(check)
    assert crc16_x25(data) == reference_crc16_x25(data)


def test_accepts_bytearray_and_memoryview():
    data = b"\x7e\xa0\x07\x03\x03"
    assert crc16_x25(bytearray(data)) == crc16_x25(memoryview(data)) == crc16_x25(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_matches_bitwise_reference(data):
    assert crc16_x25(data) == reference_crc16_x25(data)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=100))
def test_residue_detects_single_bit_errors(data):
    # Appending the CRC LSB first gives the constant X.25 residue (0xF0B8 before the final
    # xorout, 0x0F47 after it); any flipped bit breaks it.
    framed = data + crc16_x25_bytes(data)
    assert reference_crc16_x25(framed) == 0x0F47
    corrupted = bytearray(framed)
    corrupted[len(data) // 2] ^= 0x04
    assert crc16_x25(bytes(corrupted)) != 0x0F47
