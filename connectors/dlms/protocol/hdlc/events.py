"""Roles, states and events of the HDLC link (:mod:`.link`), h11 style: frozen values."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Union

from .frame import Frame
from .params import LinkParameters

__all__ = [
    "NEED_DATA",
    "ConnectRequested",
    "Connected",
    "DataReceived",
    "Disconnected",
    "FrameRejected",
    "LinkEvent",
    "LinkState",
    "NeedData",
    "Role",
    "UnexpectedFrame",
    "UnnumberedDataReceived",
]


class Role(enum.Enum):
    CLIENT = "client"  # HDLC primary station: polls, sends SNRM/DISC
    SERVER = "server"  # HDLC secondary station: the meter, answers when polled


class LinkState(enum.Enum):
    DISCONNECTED = "disconnected"  # NDM: only SNRM (and UI) are accepted
    CONNECTING = "connecting"  # client: SNRM sent, waiting for UA
    CONNECTED = "connected"  # NRM: I/RR frames flow
    DISCONNECTING = "disconnecting"  # client: DISC sent, waiting for UA/DM
    CLOSED = "closed"  # the byte stream ended (EOF): terminal


class NeedData:
    """Type of the ``NEED_DATA`` sentinel: no event until more bytes are received."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


@dataclass(frozen=True)
class Connected:
    """Client: the server accepted the SNRM. ``parameters`` are from our (client) point of view."""

    parameters: LinkParameters


@dataclass(frozen=True)
class ConnectRequested:
    """Server: an SNRM arrived and was answered with UA. ``parameters`` are the negotiated ones
    from the server's point of view (what went into the UA)."""

    parameters: LinkParameters


@dataclass(frozen=True)
class DataReceived:
    """A complete APDU: segments reassembled, LLC header stripped."""

    apdu: bytes


@dataclass(frozen=True)
class UnnumberedDataReceived:
    """Information of a UI frame (e.g. a push / data-notification); LLC stripped when present."""

    apdu: bytes


@dataclass(frozen=True)
class Disconnected:
    reason: str


@dataclass(frozen=True)
class FrameRejected:
    """The peer sent FRMR: it refused one of our frames; the link should be re-established."""

    frame: Frame


@dataclass(frozen=True)
class UnexpectedFrame:
    """A well-formed frame that does not fit the state (wrong N(S)/N(R), UA out of the blue...).

    It changed nothing; the session may log it.
    """

    frame: Frame
    reason: str


# typing.Union, not "|": this alias is evaluated at run time and must work on Python 3.9.
LinkEvent = Union[  # noqa: UP007
    Connected,
    ConnectRequested,
    DataReceived,
    UnnumberedDataReceived,
    Disconnected,
    FrameRejected,
    UnexpectedFrame,
]
