"""CRC-16/X.25, the HCS and FCS of HDLC frame format type 3 (IEC 62056-46, ISO/IEC 13239).

Parameters: polynomial 0x1021 reflected, init 0xFFFF, xorout 0xFFFF; check("123456789") = 0x906E.
On the wire the CRC goes least-significant byte first.

Speed: ``binascii.crc_hqx`` is the same polynomial in C but not reflected. Reflecting every input
byte (one ``bytes.translate``) and then the 16-bit result turns it into the reflected CRC, so no
Python loop runs per byte.
"""

from __future__ import annotations

import binascii
import struct

__all__ = ["BITREV_TABLE", "crc16_x25", "crc16_x25_bytes"]


def _reverse8(value: int) -> int:
    return int(f"{value:08b}"[::-1], 2)


# Byte -> same byte with its bit order reversed; used with bytes.translate.
BITREV_TABLE = bytes(_reverse8(i) for i in range(256))

_REV = BITREV_TABLE
_LE16 = struct.Struct("<H")


def crc16_x25(data: bytes) -> int:
    """CRC-16/X.25 of ``data`` as an int (send it with :func:`crc16_x25_bytes`, LSB first)."""
    crc = binascii.crc_hqx(bytes(data).translate(_REV), 0xFFFF)
    # reflect16(crc) done with two table look-ups instead of a bit loop
    return ((_REV[crc & 0xFF] << 8) | _REV[crc >> 8]) ^ 0xFFFF


def crc16_x25_bytes(data: bytes) -> bytes:
    """The two CRC bytes as they appear on the wire (least-significant byte first)."""
    return _LE16.pack(crc16_x25(data))
