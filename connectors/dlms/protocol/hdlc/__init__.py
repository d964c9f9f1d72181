"""HDLC frame format type 3 for DLMS (IEC 62056-46): frames, stream framer, link state machine."""

from __future__ import annotations

from .address import ALL_STATION_7, ALL_STATION_14, HdlcAddress, decode_address
from .events import (
    NEED_DATA,
    Connected,
    ConnectRequested,
    DataReceived,
    Disconnected,
    FrameRejected,
    LinkEvent,
    LinkState,
    NeedData,
    Role,
    UnexpectedFrame,
    UnnumberedDataReceived,
)
from .frame import FLAG, MAX_FRAME_LENGTH, Frame, FrameKind, decode_frame, encode_frame
from .framer import HdlcFramer, ScanResult, decode, scan
from .link import LLC_REQUEST, LLC_RESPONSE, HdlcConnection
from .params import (
    DEFAULT_MAX_INFO,
    DEFAULT_WINDOW,
    MAX_INFO_LENGTH,
    MAX_WINDOW,
    LinkParameters,
    decode_parameters,
    encode_parameters,
    negotiate,
)

__all__ = [
    "ALL_STATION_7",
    "ALL_STATION_14",
    "DEFAULT_MAX_INFO",
    "DEFAULT_WINDOW",
    "FLAG",
    "LLC_REQUEST",
    "LLC_RESPONSE",
    "MAX_FRAME_LENGTH",
    "MAX_INFO_LENGTH",
    "MAX_WINDOW",
    "NEED_DATA",
    "ConnectRequested",
    "Connected",
    "DataReceived",
    "Disconnected",
    "Frame",
    "FrameKind",
    "FrameRejected",
    "HdlcAddress",
    "HdlcConnection",
    "HdlcFramer",
    "LinkEvent",
    "LinkParameters",
    "LinkState",
    "NeedData",
    "Role",
    "ScanResult",
    "UnexpectedFrame",
    "UnnumberedDataReceived",
    "decode",
    "decode_address",
    "decode_frame",
    "decode_parameters",
    "encode_frame",
    "encode_parameters",
    "negotiate",
    "scan",
]
