"""HDLC link parameters: the information field of SNRM and UA (IEC 62056-46 / Green Book 8.4.5.3).

Layout: format identifier 0x81, group identifier 0x80, group length, then TLV parameters::

    0x05 maximum information field length, transmit
    0x06 maximum information field length, receive
    0x07 window size, transmit
    0x08 window size, receive

Each side states its values from its own point of view: in the client's SNRM "transmit" is what the
client sends, in the server's UA "transmit" is what the server sends. Absent parameters take the
defaults (128 bytes, window 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DecodeError, LocalProtocolError

__all__ = [
    "DEFAULT_MAX_INFO",
    "DEFAULT_WINDOW",
    "MAX_INFO_LENGTH",
    "MAX_WINDOW",
    "LinkParameters",
    "decode_parameters",
    "encode_parameters",
    "negotiate",
]

DEFAULT_MAX_INFO = 128
DEFAULT_WINDOW = 1
# The 11-bit frame length leaves room for 2030 information bytes with the longest addresses
# (the DLMS limit); sequence numbers modulo 8 allow at most 7 unacknowledged frames.
MAX_INFO_LENGTH = 2030
MAX_WINDOW = 7

_FORMAT_ID = 0x81
_GROUP_ID = 0x80
_MAX_INFO_TX, _MAX_INFO_RX, _WINDOW_TX, _WINDOW_RX = 0x05, 0x06, 0x07, 0x08


@dataclass(frozen=True)
class LinkParameters:
    """Max information field lengths and window sizes, from the point of view of one side."""

    max_info_tx: int = DEFAULT_MAX_INFO
    max_info_rx: int = DEFAULT_MAX_INFO
    window_tx: int = DEFAULT_WINDOW
    window_rx: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        for name in ("max_info_tx", "max_info_rx"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_INFO_LENGTH:
                raise LocalProtocolError(f"HDLC {name}={value!r} out of range 1..{MAX_INFO_LENGTH}")
        for name in ("window_tx", "window_rx"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_WINDOW:
                raise LocalProtocolError(f"HDLC {name}={value!r} out of range 1..{MAX_WINDOW}")

    def swapped(self) -> LinkParameters:
        """The same agreement seen from the peer: its transmit is our receive."""
        return LinkParameters(self.max_info_rx, self.max_info_tx, self.window_rx, self.window_tx)


def _tlv(parameter: int, value: int, size: int) -> bytes:
    return bytes((parameter, size)) + value.to_bytes(size, "big")


def encode_parameters(p: LinkParameters) -> bytes:
    """The SNRM/UA information field carrying all four parameters.

    Lengths take 1 or 2 bytes as needed; windows take 4 bytes, as in the Green Book example and
    what deployed meters and clients (Gurux among them) send and expect.
    """
    group = b"".join(
        (
            _tlv(_MAX_INFO_TX, p.max_info_tx, 1 if p.max_info_tx <= 0xFF else 2),
            _tlv(_MAX_INFO_RX, p.max_info_rx, 1 if p.max_info_rx <= 0xFF else 2),
            _tlv(_WINDOW_TX, p.window_tx, 4),
            _tlv(_WINDOW_RX, p.window_rx, 4),
        )
    )
    return bytes((_FORMAT_ID, _GROUP_ID, len(group))) + group


def decode_parameters(info: bytes) -> LinkParameters:
    """Parse an SNRM/UA information field; empty means all defaults.

    Offers beyond what the frame format can carry (length > 2030, window > 7) are read as "as
    much as fits", since a peer able to take more can take that much. Zero values, unknown
    layouts and truncation are DecodeErrors.
    """
    if not info:
        return LinkParameters()
    if len(info) < 3:
        raise DecodeError("HDLC parameter field truncated", 0)
    if info[0] != _FORMAT_ID:
        raise DecodeError(f"HDLC parameter format identifier {info[0]:#04x}, expected 0x81", 0)
    if info[1] != _GROUP_ID:
        raise DecodeError(f"HDLC parameter group identifier {info[1]:#04x}, expected 0x80", 1)
    end = 3 + info[2]
    if end != len(info):
        raise DecodeError(f"HDLC parameter group length {info[2]} but {len(info) - 3} bytes", 2)
    values = {
        _MAX_INFO_TX: DEFAULT_MAX_INFO,
        _MAX_INFO_RX: DEFAULT_MAX_INFO,
        _WINDOW_TX: DEFAULT_WINDOW,
        _WINDOW_RX: DEFAULT_WINDOW,
    }
    pos = 3
    while pos < end:
        if pos + 2 > end:
            raise DecodeError("HDLC parameter truncated", pos)
        parameter, size = info[pos], info[pos + 1]
        if not 1 <= size <= 4 or pos + 2 + size > end:
            raise DecodeError(f"HDLC parameter {parameter:#04x} has bad length {size}", pos + 1)
        value = int.from_bytes(info[pos + 2 : pos + 2 + size], "big")
        if parameter in values:  # others (e.g. vendor-specific) are skipped
            if value == 0:
                raise DecodeError(f"HDLC parameter {parameter:#04x} is zero", pos + 2)
            values[parameter] = value
        pos += 2 + size
    return LinkParameters(
        min(values[_MAX_INFO_TX], MAX_INFO_LENGTH),
        min(values[_MAX_INFO_RX], MAX_INFO_LENGTH),
        min(values[_WINDOW_TX], MAX_WINDOW),
        min(values[_WINDOW_RX], MAX_WINDOW),
    )


def negotiate(proposed_by_client: LinkParameters, server_limits: LinkParameters) -> LinkParameters:
    """The agreement a server puts in its UA, from the server's point of view.

    ``proposed_by_client`` is the SNRM content (client's view), ``server_limits`` what the server
    can do (server's view). Each direction gets the smaller of what the sender may send and what
    the receiver can take. The client reads the UA with ``.swapped()`` to get its own view.
    """
    c, s = proposed_by_client, server_limits
    return LinkParameters(
        max_info_tx=min(s.max_info_tx, c.max_info_rx),
        max_info_rx=min(s.max_info_rx, c.max_info_tx),
        window_tx=min(s.window_tx, c.window_rx),
        window_rx=min(s.window_rx, c.window_tx),
    )
