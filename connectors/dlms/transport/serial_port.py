"""Serial transport over pyserial: RS-232/RS-485 adapters, optical probes, and pyserial URLs.

``serial.serial_for_url`` takes both device names (/dev/ttyUSB0, COM3) and URLs (socket://host:port,
rfc2217://host:port, loop://), so one class serves a local port and a remote terminal server.
Several meters on one bus share one transport; who talks when is the engine's job, not ours.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional
from urllib.parse import urlsplit

import serial  # type: ignore[import-untyped]
import serial.rs485  # type: ignore[import-untyped]

from ..protocol.errors import DlmsError, LocalProtocolError, TransportError
from .base import Transport
from .mode_e import Identification, ModeESettings, sign_on

__all__ = ["SerialTransport"]

log = logging.getLogger(__name__)

try:  # tcsetattr failures reach us as termios.error, which is not an OSError
    import termios

    _PORT_ERRORS: tuple[type[Exception], ...] = (
        serial.SerialException,
        OSError,
        ValueError,
        termios.error,
    )
except ImportError:  # pragma: no cover - Windows
    _PORT_ERRORS = (serial.SerialException, OSError, ValueError)

_PARITIES = ("N", "E", "O", "M", "S")
_BYTESIZES = (5, 6, 7, 8)
_STOPBITS = (1, 1.5, 2)
# One read() returns at most this much even while a peer keeps streaming (bounds the drain loop).
_MAX_READ = 65536


def _public_name(port: str) -> str:
    """The port for logs: a URL loses any user:password@ part."""
    if "://" not in port:
        return port
    parts = urlsplit(port)
    if "@" not in parts.netloc:
        return port
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc="***@" + host).geturl()


class SerialTransport(Transport):
    """One serial port (or pyserial URL).

    With ``mode_e=True`` the port opens at 300 baud 7E1, runs the IEC 62056-21 mode E sign-on
    (see ``mode_e``) and continues at the baud rate the meter offered (capped by
    ``mode_e_settings.max_baudrate``) in 8N1; ``baudrate`` is then unused. ``inter_byte_timeout``
    makes ``read`` wait until the line has been quiet that long after the first byte, so a whole
    burst comes back in one call. ``rs485`` turns on the kernel's RS-485 mode (RTS drives the
    transceiver), where the driver supports it.
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 9600,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: float = 1,
        *,
        mode_e: bool = False,
        mode_e_settings: Optional[ModeESettings] = None,
        rs485: bool = False,
        inter_byte_timeout: Optional[float] = None,
        exclusive: bool = True,
        write_timeout: float = 5.0,
    ) -> None:
        super().__init__()
        if not isinstance(port, str) or not port.strip():
            raise LocalProtocolError(f"serial port must be a non-empty string, not {port!r}")
        self.port = port.strip()
        name = f"serial {_public_name(self.port)}"
        if isinstance(baudrate, bool) or not isinstance(baudrate, int) or baudrate <= 0:
            raise LocalProtocolError(f"{name}: baud rate must be a positive integer, not {baudrate!r}")
        if bytesize not in _BYTESIZES or isinstance(bytesize, bool):
            raise LocalProtocolError(f"{name}: byte size {bytesize!r} is not one of 5, 6, 7, 8")
        parity_char = parity.upper() if isinstance(parity, str) else parity
        if parity_char not in _PARITIES:
            raise LocalProtocolError(
                f"{name}: parity {parity!r} is not one of N, E, O, M, S (none, even, odd, mark, space)"
            )
        if stopbits not in _STOPBITS or isinstance(stopbits, bool):
            raise LocalProtocolError(f"{name}: stop bits {stopbits!r} is not one of 1, 1.5, 2")
        if mode_e and (bytesize, parity_char, stopbits) != (8, "N", 1):
            raise LocalProtocolError(f"{name}: mode E continues in 8N1; other framing is not allowed")
        if inter_byte_timeout is not None and inter_byte_timeout < 0:
            raise LocalProtocolError(f"{name}: inter-byte timeout must not be negative")
        self.baudrate = baudrate
        self.bytesize = bytesize
        self.parity: str = parity_char
        self.stopbits = stopbits
        self.mode_e = mode_e
        self.mode_e_settings = mode_e_settings or ModeESettings()
        self.rs485 = rs485
        self.inter_byte_timeout = inter_byte_timeout
        self.exclusive = exclusive
        self.write_timeout = write_timeout
        self.identification: Optional[Identification] = None  # set by a mode E sign-on
        self._agreed_baudrate: Optional[int] = None  # the speed mode E settled on
        self._name = name
        self._serial: Optional[Any] = None  # serial.SerialBase; pyserial ships no type hints
        self._timeout: Optional[float] = None  # last value given to pyserial (a change = tcsetattr)
        # Held during each port call, so a close() from another thread cannot pull the fd from
        # under a select() in pyserial (it would then read from fd None).
        self._io_lock = threading.Lock()

    @property
    def description(self) -> str:
        framing = f"{self.bytesize}{self.parity}{self.stopbits:g}"
        if not self.mode_e:
            return f"{self._name} {self.baudrate} {framing}"
        if self._agreed_baudrate is None:
            return f"{self._name} mode E"
        return f"{self._name} mode E {self._agreed_baudrate} {framing}"

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        if self._serial is not None:
            return
        self.identification = self._agreed_baudrate = None
        try:
            ser = serial.serial_for_url(self.port, do_not_open=True)
            if self.mode_e:  # sign_on() sets 7E1 itself, with a fallback should the driver refuse
                ser.baudrate, ser.bytesize, ser.parity, ser.stopbits = 300, 8, "N", 1
            else:
                ser.baudrate, ser.bytesize = self.baudrate, self.bytesize
                ser.parity, ser.stopbits = self.parity, self.stopbits
            ser.timeout = self._timeout = 0.0
            ser.write_timeout = self.write_timeout
            if self.exclusive:
                ser.exclusive = True  # flock on POSIX: a second poller on the port fails loudly
            if self.rs485:
                ser.rs485_mode = serial.rs485.RS485Settings()
            ser.open()
        except _PORT_ERRORS as exc:
            raise self._error("open failed", exc) from exc
        if self.mode_e:
            try:
                self.identification = sign_on(ser, self.mode_e_settings, label=self.description)
                self._timeout = ser.timeout
                self._agreed_baudrate = ser.baudrate
            except DlmsError:
                _quiet_close(ser)
                raise
            except _PORT_ERRORS as exc:
                _quiet_close(ser)
                raise self._error("mode E sign-on failed", exc) from exc
            log.info("%s: signed on, identification %r", self.description, self.identification.raw)
        self._serial = ser
        log.debug("%s: open", self.description)

    def close(self) -> None:
        ser, self._serial = self._serial, None
        if ser is None:
            return
        for name in ("cancel_read", "cancel_write"):
            cancel = getattr(ser, name, None)
            if cancel is not None:
                try:
                    cancel()  # wakes a worker blocked in read()/write() on another thread (POSIX)
                except Exception:  # close() must never raise
                    pass
        with self._io_lock:
            _quiet_close(ser)
        log.debug("%s: closed", self.description)

    def _live(self) -> Any:
        ser = self._serial
        if ser is None:
            raise self._error("not open")
        return ser

    def _broken(self, what: str, cause: Optional[BaseException] = None) -> TransportError:
        closed_here = self._serial is None
        self.close()
        return self._error("closed" if closed_here else what, cause)

    def write(self, data: bytes) -> None:
        ser = self._live()
        try:
            with self._io_lock:
                ser.write(data)
        except serial.SerialTimeoutException as exc:
            raise self._broken(f"write timed out after {self.write_timeout:g} s") from exc
        except _PORT_ERRORS as exc:
            raise self._broken("write failed", exc) from exc
        self.bytes_sent += len(data)

    def read(self, timeout: float) -> bytes:
        ser = self._live()
        wanted = timeout if timeout > 0 else 0.0
        try:
            with self._io_lock:
                if wanted != self._timeout:  # pyserial reconfigures the tty on every change
                    ser.timeout = self._timeout = wanted
                data: bytes = ser.read(1)
                if data:
                    data += self._drain(ser)
        except _PORT_ERRORS as exc:
            raise self._broken("read failed", exc) from exc
        if not data and self._serial is None:
            raise self._error("closed")  # close() from another thread aborted the wait
        self.bytes_received += len(data)
        return data

    def _drain(self, ser: Any) -> bytes:
        chunks = []
        size = 1
        quiet = self.inter_byte_timeout
        while size < _MAX_READ:
            waiting = ser.in_waiting
            if not waiting:
                if not quiet:
                    break
                time.sleep(quiet)  # the line must stay quiet this long to end the burst
                waiting = ser.in_waiting
                if not waiting:
                    break
            chunk = ser.read(waiting)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)

    def discard_input(self) -> int:
        ser = self._live()
        dropped = 0
        try:
            with self._io_lock:
                while dropped < _MAX_READ:
                    waiting = ser.in_waiting
                    if not waiting:
                        break
                    chunk = ser.read(waiting)
                    if not chunk:
                        break
                    dropped += len(chunk)
        except _PORT_ERRORS as exc:
            raise self._broken("read failed", exc) from exc
        self.bytes_received += dropped
        return dropped


def _quiet_close(ser: Any) -> None:
    try:
        ser.close()
    except Exception:  # a failing close must not hide the first error
        pass
