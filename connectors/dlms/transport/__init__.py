"""Transports: blocking byte pipes (TCP, serial, optical probe with IEC 62056-21 mode E).

They move bytes and know nothing of DLMS: framing, retries and request matching live above them.
"""

from __future__ import annotations

from .base import Transport
from .mode_e import Identification, ModeESettings
from .serial_port import SerialTransport
from .tcp import TcpTransport

__all__ = ["Identification", "ModeESettings", "SerialTransport", "TcpTransport", "Transport"]
