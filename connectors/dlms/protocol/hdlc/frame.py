"""One HDLC frame of format type 3 (IEC 62056-46 clause 6.4), encoded and decoded.

Layout between the two 0x7E flags::

    format(2) destination(1|2|4) source(1|2|4) control(1) [HCS(2) information] FCS(2)

The format field is ``1010 S LLLLLLLLLLL``: type 3, the segmentation bit S and the 11-bit frame
length (every byte between the flags). HCS and FCS are CRC-16/X.25, least-significant byte first;
the HCS is only present when there is an information field. DLMS uses no byte stuffing: the length
field alone says where the frame ends.

The control field is decoded with one table look-up (all 256 values precomputed), never by trying
frame types one after another.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from ..crc import crc16_x25
from ..errors import DecodeError, LocalProtocolError
from .address import HdlcAddress, decode_address

__all__ = [
    "FLAG",
    "MAX_FRAME_LENGTH",
    "Frame",
    "FrameKind",
    "close_frame",
    "decode_frame",
    "encode_frame",
    "encode_header",
    "frame_check",
]

FLAG = 0x7E
_FLAG_BYTE = b"\x7e"
MAX_FRAME_LENGTH = 0x7FF  # 11-bit length field
_FORMAT_TYPE_3 = 0xA000
_SEGMENT_BIT = 0x0800
_U16BE = struct.Struct(">H")
_U16LE = struct.Struct("<H")


class FrameKind(enum.Enum):
    I = "I"  # noqa: E741 - the frame type is called I in IEC 62056-46
    RR = "RR"
    RNR = "RNR"
    SNRM = "SNRM"
    DISC = "DISC"
    UA = "UA"
    DM = "DM"
    FRMR = "FRMR"
    UI = "UI"


# Control byte with the P/F bit (0x10) cleared, for the frames that carry no N(S)/N(R).
_U_CONTROL = {
    FrameKind.SNRM: 0x83,
    FrameKind.DISC: 0x43,
    FrameKind.UA: 0x63,
    FrameKind.DM: 0x0F,
    FrameKind.FRMR: 0x87,
    FrameKind.UI: 0x03,
}
_S_CONTROL = {FrameKind.RR: 0x01, FrameKind.RNR: 0x05}

# Frames that never carry an information field.
_NO_INFO = frozenset((FrameKind.RR, FrameKind.RNR))


@dataclass(frozen=True, init=False)
class Frame:
    """An HDLC frame. ``ns``/``nr`` matter for I frames (both) and RR/RNR (``nr`` only)."""

    kind: FrameKind
    destination: HdlcAddress
    source: HdlcAddress
    poll_final: bool = True
    ns: int = 0
    nr: int = 0
    segmented: bool = False
    info: bytes = b""

    def __init__(
        self, kind: FrameKind, destination: HdlcAddress, source: HdlcAddress,
        poll_final: bool = True, ns: int = 0, nr: int = 0, segmented: bool = False,
        info: bytes = b"",
    ) -> None:
        # Two frames per poll cycle: one dict update instead of the frozen dataclass's eight
        # object.__setattr__ calls (1.1 -> ~0.4 us). Still frozen: __setattr__ raises.
        self.__dict__.update(
            kind=kind, destination=destination, source=source, poll_final=poll_final, ns=ns,
            nr=nr, segmented=segmented, info=info,
        )


def _control_byte(frame: Frame) -> int:
    pf = 0x10 if frame.poll_final else 0
    kind = frame.kind
    if kind is FrameKind.I:
        if not 0 <= frame.ns <= 7 or not 0 <= frame.nr <= 7:
            raise LocalProtocolError(f"HDLC N(S)={frame.ns} / N(R)={frame.nr} must be 0..7")
        return (frame.nr << 5) | pf | (frame.ns << 1)
    if kind in _S_CONTROL:
        if not 0 <= frame.nr <= 7:
            raise LocalProtocolError(f"HDLC N(R)={frame.nr} must be 0..7")
        return (frame.nr << 5) | pf | _S_CONTROL[kind]
    return _U_CONTROL[kind] | pf


def _build_control_table() -> dict[int, tuple[FrameKind, bool, int, int]]:
    """control byte -> (kind, poll/final, N(S), N(R)) for every value the DLMS profile uses."""
    table: dict[int, tuple[FrameKind, bool, int, int]] = {}
    for value in range(256):
        pf = bool(value & 0x10)
        if not value & 0x01:
            table[value] = (FrameKind.I, pf, (value >> 1) & 7, value >> 5)
        elif value & 0x0F in (0x01, 0x05):
            kind = FrameKind.RR if value & 0x0F == 0x01 else FrameKind.RNR
            table[value] = (kind, pf, 0, value >> 5)
    for kind, base in _U_CONTROL.items():
        table[base] = (kind, False, 0, 0)
        table[base | 0x10] = (kind, True, 0, 0)
    return table


_CONTROL_TABLE = _build_control_table()


def encode_header(
    destination: HdlcAddress, source: HdlcAddress, control: int, info_length: int,
    segmented: bool = False,
) -> bytes:
    """Everything a frame has before its information field: opening flag, format with the
    length of a frame carrying ``info_length`` bytes of information, addresses, control and (when
    there is information) the HCS. ``encode_frame`` builds every frame's header here, so a template
    taken from this function (the link's express answers) is the header the frame would have."""
    dst = destination.encode()
    src = source.encode()
    length = 2 + len(dst) + len(src) + 1 + 2 + (info_length + 2 if info_length else 0)
    if length > MAX_FRAME_LENGTH:
        raise LocalProtocolError(
            f"HDLC frame length {length} exceeds {MAX_FRAME_LENGTH}: segment the information field"
        )
    fmt = _FORMAT_TYPE_3 | length | (_SEGMENT_BIT if segmented else 0)
    header = b"".join((_U16BE.pack(fmt), dst, src, bytes((control,))))
    if info_length:
        return b"".join((_FLAG_BYTE, header, _U16LE.pack(crc16_x25(header))))
    return _FLAG_BYTE + header


def encode_frame(frame: Frame) -> bytes:
    """The frame on the wire, both flags included."""
    info = frame.info
    if info and frame.kind in _NO_INFO:
        raise LocalProtocolError(f"HDLC {frame.kind.name} frame cannot carry an information field")
    header = encode_header(
        frame.destination, frame.source, _control_byte(frame), len(info), frame.segmented
    )
    return close_frame(header, info)


def close_frame(header: bytes, info: bytes) -> bytes:
    """The frame of ``encode_header``'s ``header`` and its information field: FCS and closing
    flag appended (the last step of ``encode_frame``, for a header kept as a template)."""
    body = header + info
    return b"".join((body, _U16LE.pack(crc16_x25(body[1:])), _FLAG_BYTE))


def frame_check(frame: bytes) -> bool:
    """Whether ``frame`` (one whole frame, flags included) ends with its closing flag after a
    right FCS; its header is the caller's to compare (``encode_header``)."""
    return (
        len(frame) >= 9 and frame[-1] == FLAG
        and crc16_x25(frame[1:-3]) == frame[-3] | (frame[-2] << 8)
    )


def decode_frame(raw: bytes | bytearray | memoryview) -> Frame:
    """Decode exactly one frame, ``raw`` starting and ending with the 0x7E flag.

    Offsets in the DecodeError count from the opening flag.
    """
    raw = bytes(raw)
    n = len(raw)
    if n < 9:
        raise DecodeError(f"HDLC frame too short ({n} bytes)", 0)
    if raw[0] != FLAG:
        raise DecodeError("HDLC frame does not start with the 0x7E flag", 0)
    if raw[-1] != FLAG:
        raise DecodeError("HDLC frame does not end with the 0x7E flag", n - 1)
    fmt = _U16BE.unpack_from(raw, 1)[0]
    if fmt & 0xF000 != _FORMAT_TYPE_3:
        raise DecodeError(f"HDLC format type {fmt >> 12:#x} is not 0xA (type 3)", 1)
    length = fmt & MAX_FRAME_LENGTH
    if length != n - 2:
        raise DecodeError(f"HDLC length field {length} but {n - 2} bytes between flags", 1)
    destination, pos = decode_address(raw, 3)
    source, pos = decode_address(raw, pos)
    if pos + 3 > n - 1:
        raise DecodeError("HDLC frame too short for control field and FCS", pos)
    control = raw[pos]
    entry = _CONTROL_TABLE.get(control)
    if entry is None:
        raise DecodeError(f"HDLC control field {control:#04x} not supported", pos)
    kind, pf, ns, nr = entry
    pos += 1
    fcs_at = n - 3
    info = b""
    if fcs_at > pos:
        # An information field follows, behind its header check sequence (checked first: a bad
        # header is the more precise verdict, and the FCS covers the HCS anyway).
        if fcs_at - pos < 2:
            raise DecodeError("HDLC frame truncated in the HCS", pos)
        if _U16LE.unpack_from(raw, pos)[0] != crc16_x25(raw[1:pos]):
            raise DecodeError("HDLC HCS mismatch", pos)
        info = raw[pos + 2 : fcs_at]
    if _U16LE.unpack_from(raw, fcs_at)[0] != crc16_x25(raw[1:fcs_at]):
        raise DecodeError("HDLC FCS mismatch", fcs_at)
    if info and kind in _NO_INFO:
        raise DecodeError(f"HDLC {kind.name} frame with an information field", pos + 2)
    return Frame(kind, destination, source, pf, ns, nr, bool(fmt & _SEGMENT_BIT), info)
