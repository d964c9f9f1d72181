"""IEC 62056-21 mode E sign-on: how an optical probe gets a meter from 300 baud to binary HDLC.

    HHU -> meter   "/?" [address] "!" CR LF                 at 300 baud 7E1
    meter -> HHU   "/" XXX Z ["\\" W]... ident CR LF         XXX maker, Z baud char, "\\2" = HDLC
    HHU -> meter   ACK "2" Z "2" CR LF                      protocol "2" = HDLC, mode "2" = binary
    both switch to the baud of Z and 8N1; HDLC starts.

The message part (build the request and the ACK, parse the identification) is pure and tested on
bytes; ``sign_on`` drives it over a pyserial port. Nothing here knows HDLC beyond the ACK's "2".
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Tuple

from ..protocol.errors import (
    DecodeError,
    LocalProtocolError,
    NoAnswer,
    RemoteProtocolError,
)

__all__ = [
    "BAUD_RATES",
    "Identification",
    "ModeESettings",
    "baud_char_for",
    "baudrate_for_char",
    "build_ack",
    "build_request",
    "parse_identification",
    "sign_on",
    "with_even_parity",
]

# Mode C/E baud rate characters (IEC 62056-21 §6.3.14); letters A..I are mode B's, not ours.
BAUD_RATES = {"0": 300, "1": 600, "2": 1200, "3": 2400, "4": 4800, "5": 9600, "6": 19200}
_CHAR_FOR_BAUD = {rate: char for char, rate in BAUD_RATES.items()}
_MODE_B_CHARS = "ABCDEFGHI"

ACK = b"\x06"
_SIGN_ON_BAUD = 300
# "/" + 3 maker + Z + a few "\W" pairs + 16 ident chars + CR LF, with room for lax meters.
_MAX_LINE = 64
# Optical heads at 7 data bits may hand over the parity bit as bit 7: clear it before parsing.
_STRIP_BIT7 = bytes(i & 0x7F for i in range(256))
# 7E1 and 8N1 are both 10 bits on the wire: 8N1 with bit 7 = even parity of bits 0..6 *is* 7E1.
_EVEN_PARITY = bytes((i & 0x7F) | ((bin(i & 0x7F).count("1") & 1) << 7) for i in range(256))
_ADDRESS_FORBIDDEN = set("/?!")

log = logging.getLogger(__name__)


def with_even_parity(data: bytes) -> bytes:
    """7-bit characters as an 8N1 port must send them to be 7E1 on the wire."""
    return data.translate(_EVEN_PARITY)


def baudrate_for_char(char: str) -> int:
    """Baud rate of a mode C/E baud character '0'..'6'."""
    try:
        return BAUD_RATES[char]
    except KeyError:
        if char and char in _MODE_B_CHARS:
            raise RemoteProtocolError(f"baud character {char!r} is mode B, not mode C/E") from None
        raise RemoteProtocolError(f"bad baud rate character {char!r}") from None


def baud_char_for(baudrate: int) -> str:
    """Baud character for one of the mode C/E rates (300..19200)."""
    try:
        return _CHAR_FOR_BAUD[baudrate]
    except KeyError:
        rates = ", ".join(str(r) for r in sorted(_CHAR_FOR_BAUD))
        raise LocalProtocolError(f"baud rate {baudrate} is not one of {rates}") from None


def build_request(address: str = "") -> bytes:
    """The request message ``/?[address]!CR LF``; the address selects one meter on a shared bus."""
    if len(address) > 32:
        raise LocalProtocolError(f"device address longer than 32 characters: {address!r}")
    if not all(" " <= c <= "~" and c not in _ADDRESS_FORBIDDEN for c in address):
        raise LocalProtocolError(f"device address has characters not allowed: {address!r}")
    return b"/?" + address.encode("ascii") + b"!\r\n"


def build_ack(baud_char: str, protocol_control: str = "2", mode_control: str = "2") -> bytes:
    """The acknowledgement ``ACK V Z Y CR LF``; the defaults ask for HDLC in binary mode."""
    baudrate_for_char(baud_char)  # validates
    for name, value in (("protocol control", protocol_control), ("mode control", mode_control)):
        if len(value) != 1 or not value.isdigit():
            raise LocalProtocolError(f"{name} must be one digit, not {value!r}")
    return ACK + (protocol_control + baud_char + mode_control).encode("ascii") + b"\r\n"


@dataclass(frozen=True)
class Identification:
    """The meter's identification message, decoded."""

    manufacturer: str  # three letters, e.g. "LGZ"
    baud_char: str  # '0'..'6'
    capabilities: str  # the W of each "\W" escape, e.g. "2"
    ident: str  # the free identification text
    raw: bytes  # the whole line, "/" through CR LF (parity bit cleared), for logs

    @property
    def baudrate(self) -> int:
        return BAUD_RATES[self.baud_char]

    @property
    def supports_hdlc(self) -> bool:
        """"\\2" announces mode E: HDLC after the ACK."""
        return "2" in self.capabilities

    @property
    def fast_reaction(self) -> bool:
        """A lower-case third maker letter means the meter answers after 20 ms, not 200 ms."""
        return self.manufacturer[2:3].islower()


def parse_identification(buffer: bytes) -> Tuple[int, Optional[Identification]]:
    """Find the identification message in received bytes.

    Returns ``(consumed, identification)``; with ``None`` the caller drops ``consumed`` bytes and
    waits for more. Bytes before the message (line noise, the probe's echo of our request) are
    skipped; a message that starts but is malformed raises ``DecodeError`` with its offset.
    """
    data = buffer.translate(_STRIP_BIT7)
    pos = 0
    while True:
        start = data.find(b"/", pos)
        if start < 0:
            return len(data), None
        end = data.find(b"\r\n", start)
        body_end = end if end >= 0 else len(data)
        # Only the last "/" before CR LF can open the message: earlier ones are noise or echo.
        start = data.rfind(b"/", start, body_end)
        if start + 1 >= len(data):
            return start, None
        if data[start + 1] == 0x3F:  # "/?": our own request echoed by the optical head
            pos = start + 2
            continue
        cr = data.find(b"\r", start, body_end + 1)
        if 0 <= cr < len(data) - 1 and data[cr + 1] != 0x0A:
            raise DecodeError("identification: CR not followed by LF", cr)
        if end < 0:
            if len(data) - start > _MAX_LINE:
                raise DecodeError("identification not terminated by CR LF", start)
            return start, None
        return end + 2, _decode_line(data[start : end + 2], start)


def _decode_line(line: bytes, offset: int) -> Identification:
    body = line[1:-2]
    if len(body) < 4:
        raise DecodeError(f"identification too short: {line!r}", offset)
    maker = body[:3].decode("ascii")
    if not maker.isalpha():
        raise DecodeError(f"identification: manufacturer {maker!r} is not three letters", offset + 1)
    baud_char = chr(body[3])
    if baud_char not in BAUD_RATES:
        kind = "a mode B" if baud_char in _MODE_B_CHARS else "a bad"
        raise DecodeError(f"identification: {kind} baud rate character {baud_char!r}", offset + 4)
    rest = body[4:]
    caps = []
    while rest[:1] == b"\\":
        if len(rest) < 2:
            raise DecodeError("identification: '\\' without a capability character", offset)
        caps.append(chr(rest[1]))
        rest = rest[2:]
    if any(b < 0x20 or b == 0x7F for b in rest):
        raise DecodeError(f"identification: control character in {line!r}", offset)
    return Identification(maker, baud_char, "".join(caps), rest.decode("ascii"), line)


@dataclass(frozen=True)
class ModeESettings:
    """Mode E options; times are seconds.

    Defaults follow IEC 62056-21: the meter answers within 1.5 s (21 chars at 300 baud take 0.7 s
    more); the HHU waits at least 200 ms before the ACK; the meter switches speed once the ACK is
    in.
    """

    address: str = ""
    identification_timeout: float = 2.5
    ack_delay: float = 0.2
    switch_delay: float = 0.3
    max_baudrate: Optional[int] = None  # cap what the probe or cable can carry
    require_hdlc: bool = True  # refuse meters whose identification lacks "\2"
    # 7E1 made in software over 8N1 (same bits on the wire), for adapters and ptys that refuse
    # 7E1: None = try 7E1 and fall back when the driver refuses it, True = always, False = never.
    software_parity: Optional[bool] = None

    def __post_init__(self) -> None:
        build_request(self.address)  # validates the address early, at configuration time
        if self.max_baudrate is not None:
            baud_char_for(self.max_baudrate)
        for name in ("identification_timeout", "ack_delay", "switch_delay"):
            if getattr(self, name) < 0:
                raise LocalProtocolError(f"mode E {name} must not be negative")


class SerialLike(Protocol):
    """The slice of pyserial's ``Serial`` that the sign-on needs."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: float
    timeout: Optional[float]

    def write(self, data: bytes) -> Optional[int]: ...

    def read(self, size: int = 1) -> bytes: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    @property
    def in_waiting(self) -> int: ...


def choose_baud_char(ident: Identification, max_baudrate: Optional[int]) -> str:
    """The meter's offer, lowered to ``max_baudrate`` when the probe cannot go that fast."""
    if max_baudrate is None or ident.baudrate <= max_baudrate:
        return ident.baud_char
    return baud_char_for(max_baudrate)


def sign_on(
    port: SerialLike, settings: Optional[ModeESettings] = None, label: str = "mode E"
) -> Identification:
    """Run the mode E sign-on on an open port; leaves it at the agreed baud rate, 8N1.

    Raises ``NoAnswer`` when no complete identification arrives, ``RemoteProtocolError`` on a
    garbled one or when the meter does not offer HDLC (and ``require_hdlc``); messages start with
    ``label`` (the transport passes its description). pyserial's own exceptions pass through: the
    transport maps them.
    """
    settings = settings or ModeESettings()
    encode = _enter_sign_on_framing(port, settings.software_parity, label)
    port.timeout = 0.05  # poll slice: short enough to honour the step deadline
    port.reset_input_buffer()
    port.write(encode(build_request(settings.address)))
    port.flush()
    try:
        ident = _read_identification(port, settings.identification_timeout)
    except DecodeError as exc:
        raise RemoteProtocolError(f"{label}: garbled identification: {exc}") from exc
    except NoAnswer as exc:
        raise NoAnswer(f"{label}: {exc}") from exc
    received_at = time.monotonic()
    if settings.require_hdlc and not ident.supports_hdlc:
        raise RemoteProtocolError(
            f"{label}: meter {ident.manufacturer} {ident.ident!r} does not offer mode E"
            f" (no \\2 in {ident.raw!r})"
        )
    baud_char = choose_baud_char(ident, settings.max_baudrate)
    wait = settings.ack_delay - (time.monotonic() - received_at)
    if wait > 0:
        time.sleep(wait)
    port.write(encode(build_ack(baud_char)))
    port.flush()  # tcdrain: at 300 baud the 6 ACK bytes take 200 ms to leave
    if settings.switch_delay > 0:
        time.sleep(settings.switch_delay)
    port.baudrate, port.bytesize, port.parity, port.stopbits = BAUD_RATES[baud_char], 8, "N", 1
    port.reset_input_buffer()  # the head's echo of the ACK, read at the wrong speed, is noise
    return ident


def _as_is(data: bytes) -> bytes:
    return data


def _enter_sign_on_framing(
    port: SerialLike, software_parity: Optional[bool], label: str
) -> Callable[[bytes], bytes]:
    """Put the port at 300 baud 7E1 (real or made in software); return the encoder for writes."""
    port.baudrate = _SIGN_ON_BAUD
    if not software_parity:
        try:
            port.bytesize, port.parity, port.stopbits = 7, "E", 1
            return _as_is
        except Exception as exc:  # drivers refuse with termios.error, OSError or ValueError
            if software_parity is False:
                raise
            log.warning("%s: port refuses 7E1 (%s); making the parity in software", label, exc)
            # pyserial stores a value before applying it, so a refused 7E1 can leave a mix (8E1)
            # that is refused too: set parity and size blindly, then the last step must apply.
            for name, value in (("parity", "N"), ("bytesize", 8)):
                try:
                    setattr(port, name, value)
                except Exception:  # the mix of old and new settings may be refused; see below
                    pass
    port.bytesize, port.parity, port.stopbits = 8, "N", 1
    return with_even_parity


def _read_identification(port: SerialLike, budget: float) -> Identification:
    deadline = time.monotonic() + budget
    pending = b""
    while True:
        chunk = port.read(max(1, port.in_waiting))
        if chunk:
            pending += chunk
            consumed, ident = parse_identification(pending)
            if ident is not None:
                return ident
            pending = pending[consumed:]
        if time.monotonic() >= deadline:
            raise NoAnswer(
                f"no identification within {budget:g} s (got {pending!r})"
            )
