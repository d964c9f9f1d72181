"""IEC 62056-21 mode E sign-on: the pure message part on bytes, the driver against a fake meter.

Message shapes follow IEC 62056-21 (request "/?!CRLF", identification "/XXXZ\\W ident CRLF",
acknowledgement ACK V Z Y CRLF; baud characters 0..6 = 300..19200); the identification
"/ABC6\\2METER123" and its ACK "\\x06" "2" "6" "2" CRLF are the project brief's vector.
"""

from __future__ import annotations

import time
from typing import List, Optional, Tuple

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import (
    DecodeError,
    DlmsError,
    LocalProtocolError,
    NoAnswer,
    RemoteProtocolError,
    TransportError,
)
from tb_dlms.transport.mode_e import (
    BAUD_RATES,
    Identification,
    ModeESettings,
    baud_char_for,
    baudrate_for_char,
    build_ack,
    build_request,
    choose_baud_char,
    parse_identification,
    sign_on,
    with_even_parity,
)
from tb_dlms.transport.serial_port import SerialTransport

IDENT = b"/ABC6\\2METER123\r\n"
FAST = {"identification_timeout": 1.0, "ack_delay": 0.01, "switch_delay": 0.01}

# ---------------------------------------------------------------- messages


def test_request_without_and_with_address():
    assert build_request() == b"/?!\r\n"
    assert build_request("12345678") == b"/?12345678!\r\n"


@pytest.mark.parametrize("address", ["a/b", "x!", "?", "é", "\r", "1" * 33])
def test_bad_device_address_is_local_error(address):
    with pytest.raises(LocalProtocolError, match="device address"):
        build_request(address)


def test_ack_asks_for_hdlc_binary_at_the_offered_speed():
    assert build_ack("6") == b"\x06262\r\n"
    assert build_ack("5") == b"\x06252\r\n"
    assert build_ack("0", "0", "0") == b"\x06000\r\n"  # mode C data readout shape, for contrast


@pytest.mark.parametrize("bad", [("9", "2", "2"), ("6", "22", "2"), ("6", "2", "x")])
def test_ack_rejects_bad_fields(bad):
    with pytest.raises(DlmsError):
        build_ack(*bad)


@pytest.mark.parametrize(
    "char, rate",
    [("0", 300), ("1", 600), ("2", 1200), ("3", 2400), ("4", 4800), ("5", 9600), ("6", 19200)],
)
def test_baud_characters_map_both_ways(char, rate):
    assert baudrate_for_char(char) == rate
    assert baud_char_for(rate) == char
    assert BAUD_RATES[char] == rate


@pytest.mark.parametrize("char, message", [("7", "bad baud"), ("E", "mode B"), ("", "bad baud")])
def test_unknown_baud_character_is_remote_error(char, message):
    with pytest.raises(RemoteProtocolError, match=message):
        baudrate_for_char(char)


def test_unknown_baud_rate_is_local_error():
    with pytest.raises(LocalProtocolError, match="115200 is not one of 300, 600"):
        baud_char_for(115200)


# ---------------------------------------------------------------- identification parsing


def test_parse_clean_identification():
    consumed, ident = parse_identification(IDENT)
    assert consumed == len(IDENT)
    assert ident == Identification("ABC", "6", "2", "METER123", IDENT)
    assert ident.baudrate == 19200
    assert ident.supports_hdlc
    assert not ident.fast_reaction


@pytest.mark.parametrize(
    "noise",
    [
        b"\x00\xff\x13garbage",  # line noise while the probe settles
        b"/?!\r\n",  # the optical head echoes our request
        b"/?12345678!\r\n",  # ... also with an address
        b"/?!",  # ... or part of it
        b"x/\x13",  # a stray "/" in the noise
    ],
)
def test_parse_skips_noise_and_echo_before_the_identification(noise):
    consumed, ident = parse_identification(noise + IDENT + b"\x7e")
    assert ident is not None and ident.ident == "METER123"
    assert consumed == len(noise) + len(IDENT)  # the byte after CR LF is left for the caller


def test_parse_clears_the_parity_bit():
    # Read at 8 data bits, a 7E1 character can arrive with its parity bit as bit 7.
    noisy = bytes(b | 0x80 if i % 2 else b for i, b in enumerate(IDENT))
    consumed, ident = parse_identification(noisy)
    assert consumed == len(IDENT) and ident is not None
    assert ident.raw == IDENT


def test_parse_without_capabilities_and_with_several():
    _, plain = parse_identification(b"/XYZ5METER\r\n")
    assert plain is not None and plain.capabilities == "" and not plain.supports_hdlc
    _, many = parse_identification(b"/XYz5\\@\\2METER\r\n")
    assert many is not None and many.capabilities == "@2" and many.supports_hdlc
    assert many.fast_reaction  # lower-case third letter: 20 ms reaction time


def test_parse_incomplete_waits_for_more():
    assert parse_identification(b"") == (0, None)
    assert parse_identification(b"noise") == (5, None)  # no "/" yet: all of it can go
    assert parse_identification(b"ab/") == (2, None)
    assert parse_identification(b"/ABC6\\2METER123") == (0, None)  # missing CR LF: wait
    assert parse_identification(b"/ABC6\\2METER123\r") == (0, None)


def test_parse_fed_byte_by_byte_yields_once_at_the_last_byte():
    stream = b"\x00/?!\r\n" + IDENT
    pending = b""
    found: List[Tuple[int, Identification]] = []
    for i in range(len(stream)):
        pending += stream[i : i + 1]
        consumed, ident = parse_identification(pending)
        if ident is not None:
            found.append((i, ident))
        pending = pending[consumed:]
    assert [(i, ident.ident) for i, ident in found] == [(len(stream) - 1, "METER123")]


@pytest.mark.parametrize(
    "line, message",
    [
        (b"/ABC9\\2METER\r\n", "bad baud rate character '9'"),
        (b"/ABCE\\2METER\r\n", "mode B baud rate character 'E'"),
        (b"/A1C6\\2METER\r\n", "manufacturer 'A1C'"),
        (b"/AB\r\n", "too short"),
        (b"/ABC6\\2MET\x01ER\r\n", "control character"),
        (b"/ABC6\\2METER\rX", "CR not followed by LF"),
        (b"/ABC6\\2" + b"M" * 80, "not terminated by CR LF"),
    ],
)
def test_parse_garbled_identification_raises_decode_error(line, message):
    with pytest.raises(DecodeError, match=message):
        parse_identification(line)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_parse_arbitrary_bytes_only_raises_dlms_errors(data):
    try:
        consumed, ident = parse_identification(data)
    except DlmsError:
        return
    assert 0 <= consumed <= len(data)
    if ident is not None:
        assert ident.baud_char in BAUD_RATES and len(ident.manufacturer) == 3


@pytest.mark.parametrize("cap, expected", [(None, "6"), (19200, "6"), (9600, "5"), (300, "0")])
def test_choose_baud_char_caps_the_offer(cap, expected):
    _, ident = parse_identification(IDENT)
    assert ident is not None
    assert choose_baud_char(ident, cap) == expected


def test_settings_are_validated():
    with pytest.raises(LocalProtocolError, match="device address"):
        ModeESettings(address="a!b")
    with pytest.raises(LocalProtocolError, match="baud rate 1000"):
        ModeESettings(max_baudrate=1000)
    with pytest.raises(LocalProtocolError, match="ack_delay"):
        ModeESettings(ack_delay=-1)


# ---------------------------------------------------------------- driver on a scripted port


class ScriptedPort:
    """Records the line settings at each write; answers from a script. No I/O.

    Like pyserial, a line setting is stored first and then applied; ``refuse`` names what the
    "driver" refuses ("bits": 7 data bits, "parity": any parity), as some adapters and ptys do.
    """

    _LINE = ("baudrate", "bytesize", "parity", "stopbits")

    def __init__(self, answer: bytes, refuse: Tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.baudrate, self.bytesize, self.parity, self.stopbits = 9600, 8, "N", 1
        self.timeout: Optional[float] = None
        self._answer = answer
        self.writes: List[Tuple[bytes, Tuple[int, int, str, float]]] = []
        self.resets = 0

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in self._LINE and hasattr(self, "stopbits"):
            if ("bits" in self.refuse and self.bytesize != 8) or (
                "parity" in self.refuse and self.parity != "N"
            ):
                raise ValueError(f"Invalid argument: {self.bytesize}{self.parity}")

    def write(self, data: bytes) -> int:
        self.writes.append((data, (self.baudrate, self.bytesize, self.parity, self.stopbits)))
        return len(data)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self.resets += 1

    @property
    def in_waiting(self) -> int:
        return len(self._answer) if self.writes else 0

    def read(self, size: int = 1) -> bytes:
        out, self._answer = self._answer[:size], self._answer[size:]
        return out


def test_sign_on_line_settings_step_by_step():
    port = ScriptedPort(b"/?!\r\n" + IDENT)
    ident = sign_on(port, ModeESettings(**FAST))
    assert ident.ident == "METER123"
    assert port.writes == [
        (b"/?!\r\n", (300, 7, "E", 1)),  # request at 300 baud 7E1
        (b"\x06262\r\n", (300, 7, "E", 1)),  # ACK still at 300 baud
    ]
    assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (19200, 8, "N", 1)
    assert port.resets == 2  # before the request, and the echo of the ACK after the switch


def test_even_parity_table():
    # '/' 0x2F has 5 one-bits -> parity bit set; '?' 0x3F has 6 -> clear; ACK 0x06 has 2 -> clear.
    assert with_even_parity(b"/?\x06") == b"\xaf?\x06"
    assert all(bin(b).count("1") % 2 == 0 for b in with_even_parity(bytes(range(256))))


@pytest.mark.parametrize("refuse", [("bits",), ("parity",), ("bits", "parity")])
def test_sign_on_falls_back_to_software_parity_when_7e1_is_refused(refuse):
    port = ScriptedPort(with_even_parity(IDENT), refuse=refuse)
    ident = sign_on(port, ModeESettings(**FAST))
    assert ident.ident == "METER123"
    # Same bits on the wire as 7E1: 8N1 frames whose bit 7 is the even parity bit.
    assert port.writes == [
        (with_even_parity(b"/?!\r\n"), (300, 8, "N", 1)),
        (with_even_parity(b"\x06262\r\n"), (300, 8, "N", 1)),
    ]
    assert (port.baudrate, port.bytesize, port.parity, port.stopbits) == (19200, 8, "N", 1)


def test_sign_on_without_fallback_lets_the_refusal_through():
    port = ScriptedPort(IDENT, refuse=("bits",))
    with pytest.raises(ValueError, match="Invalid argument"):
        sign_on(port, ModeESettings(software_parity=False, **FAST))
    assert port.writes == []


# ---------------------------------------------------------------- driver against a fake meter on a pty


def read_7e1(port: serial.Serial, size: int, budget: float = 1.0) -> bytes:
    """Read 7E1 characters from a pty at 8N1 (this machine's ptys refuse 7E1): check each parity bit."""
    data = b""
    deadline = time.monotonic() + budget
    while len(data) < size and time.monotonic() < deadline:
        data += port.read(size - len(data))
    assert with_even_parity(data) == data, f"not 7E1 on the wire: {data!r}"
    return data.translate(bytes(i & 0x7F for i in range(256)))


def read_line(port: serial.Serial, budget: float = 1.0) -> bytes:
    data = b""
    deadline = time.monotonic() + budget
    while not data.endswith(b"\r\n") and time.monotonic() < deadline:
        data += read_7e1(port, 1, budget)
    return data


class FakeOpticalMeter:
    """The far end of the pty: a meter behind an optical head, speaking mode E then binary."""

    def __init__(self, path: str, ident: bytes = IDENT, echo: bool = False,
                 expect_request: bytes = b"/?!\r\n", expect_ack: bytes = b"\x06262\r\n") -> None:
        self.port = serial.Serial(path, 300, timeout=0.1)
        self.ident = ident
        self.echo = echo
        self.expect_request = expect_request
        self.expect_ack = expect_ack
        self.ack_gap: Optional[float] = None

    def run(self) -> None:
        request = read_line(self.port)
        assert request == self.expect_request, request
        if self.echo:
            self.port.write(with_even_parity(request))
        self.port.write(with_even_parity(self.ident))
        self.port.flush()
        sent = time.monotonic()
        ack = read_7e1(self.port, len(self.expect_ack))
        self.ack_gap = time.monotonic() - sent
        assert ack == self.expect_ack, ack
        self.port.baudrate = baudrate_for_char(chr(self.expect_ack[2]))
        binary = b""
        deadline = time.monotonic() + 1.0
        while len(binary) < 256 and time.monotonic() < deadline:
            binary += self.port.read(256 - len(binary))
        self.port.write(binary[::-1])  # answer in binary: proves the switch is complete
        self.port.flush()


@pytest.fixture
def meter_end(pty_pair):
    meters: List[FakeOpticalMeter] = []

    def make(**kwargs) -> FakeOpticalMeter:
        meter = FakeOpticalMeter(pty_pair.b, **kwargs)
        meters.append(meter)
        return meter

    yield make
    for meter in meters:
        meter.port.close()


def binary_exchange(transport: SerialTransport) -> bytes:
    payload = bytes(range(256))
    transport.write(payload)
    data = b""
    deadline = time.monotonic() + 1.0
    while len(data) < 256 and time.monotonic() < deadline:
        data += transport.read(0.2)
    return data


@pytest.mark.parametrize("echo", [False, True], ids=["plain head", "echoing head"])
def test_mode_e_sign_on_then_binary(pty_pair, meter_end, run_peer, echo):
    meter = meter_end(echo=echo)
    peer = run_peer(meter.run)
    transport = SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=ModeESettings(**FAST))
    try:
        transport.open()
        assert transport.identification is not None
        assert transport.identification.manufacturer == "ABC"
        assert transport.identification.ident == "METER123"
        assert transport.description == f"serial {pty_pair.a} mode E 19200 8N1"
        ser = transport._serial
        assert (ser.baudrate, ser.bytesize, ser.parity, ser.stopbits) == (19200, 8, "N", 1)
        assert binary_exchange(transport) == bytes(range(256))[::-1]
    finally:
        transport.close()
    peer.join()


def test_mode_e_with_address_and_capped_speed(pty_pair, meter_end, run_peer):
    meter = meter_end(expect_request=b"/?12345678!\r\n", expect_ack=b"\x06252\r\n")
    peer = run_peer(meter.run)
    options = ModeESettings(address="12345678", max_baudrate=9600, **FAST)
    with SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=options) as transport:
        assert transport._serial.baudrate == 9600
        assert transport.description.endswith("mode E 9600 8N1")
        assert binary_exchange(transport) == bytes(range(256))[::-1]
    peer.join()


def test_mode_e_waits_before_the_ack(pty_pair, meter_end, run_peer):
    meter = meter_end()
    peer = run_peer(meter.run)
    options = ModeESettings(identification_timeout=1.0, ack_delay=0.2, switch_delay=0.0)
    with SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=options) as transport:
        binary_exchange(transport)
    peer.join()
    assert meter.ack_gap is not None and meter.ack_gap >= 0.19  # IEC 62056-21: at least 200 ms


def test_mode_e_silent_meter_times_out_naming_the_port(pty_pair):
    options = ModeESettings(identification_timeout=0.3)
    transport = SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=options)
    start = time.monotonic()
    with pytest.raises(NoAnswer, match=f"serial {pty_pair.a} mode E: no identification within 0.3 s"):
        transport.open()
    assert time.monotonic() - start < 1.0
    assert not transport.is_open
    reopen = SerialTransport(pty_pair.a)  # the failed sign-on released the port (and its lock)
    reopen.open()
    reopen.close()


def test_mode_e_garbled_identification(pty_pair, run_peer):
    meter = serial.Serial(pty_pair.b, 300, timeout=0.1)

    def garble() -> None:
        assert read_line(meter) == b"/?!\r\n"
        meter.write(with_even_parity(b"/AB?6\\2METER123\r\n"))

    try:
        peer = run_peer(garble)
        transport = SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=ModeESettings(**FAST))
        with pytest.raises(RemoteProtocolError, match="garbled identification: .*manufacturer"):
            transport.open()
        assert not transport.is_open
        peer.join()
    finally:
        meter.close()


def test_mode_e_meter_without_hdlc_is_refused_unless_allowed(pty_pair, meter_end, run_peer):
    plain = b"/XYZ6METER123\r\n"
    meter = serial.Serial(pty_pair.b, 300, timeout=0.1)

    def answer_once() -> None:
        assert read_line(meter) == b"/?!\r\n"
        meter.write(with_even_parity(plain))

    try:
        peer = run_peer(answer_once)
        transport = SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=ModeESettings(**FAST))
        with pytest.raises(RemoteProtocolError, match="does not offer mode E"):
            transport.open()
        peer.join()
    finally:
        meter.close()
    lax = meter_end(ident=plain)
    peer = run_peer(lax.run)
    options = ModeESettings(require_hdlc=False, **FAST)
    with SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=options) as transport:
        assert transport.identification is not None
        assert not transport.identification.supports_hdlc
        assert binary_exchange(transport) == bytes(range(256))[::-1]
    peer.join()


def test_mode_e_port_errors_surface_as_transport_errors(pty_pair):
    # software_parity=False: where the port refuses 7E1 (this machine's ptys do) the driver's raw
    # termios.error must come out as a TransportError naming the port; elsewhere the silent peer
    # makes it a timeout, also a TransportError.
    options = ModeESettings(identification_timeout=0.2, software_parity=False)
    transport = SerialTransport(pty_pair.a, mode_e=True, mode_e_settings=options)
    with pytest.raises(TransportError, match=f"serial {pty_pair.a} mode E"):
        transport.open()
    assert not transport.is_open
