"""ACSE and xDLMS APDUs for logical-name referencing, and ``decode_apdu``.

One module per family: ``acse`` (BER: AARQ/AARE/RLRQ/RLRE), ``xdlms`` (A-XDR InitiateRequest /
InitiateResponse, Conformance), ``get``, ``set``, ``action``, ``service`` (ExceptionResponse,
ConfirmedServiceError), ``common`` (descriptors, results, selective access). Every APDU object
has ``encode() -> bytes``; ``decode_apdu`` dispatches on the tag (and the choice byte).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Union

from ..errors import DecodeError
from .acse import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceProviderDiagnostic,
    AcseServiceUserDiagnostic,
    ApplicationContext,
    AssociationResult,
    AuthMechanism,
    ReleaseRequestReason,
    ReleaseResponseReason,
)
from .action import ActionRequestNormal, ActionResponseNormal
from .common import (
    ActionResult,
    AttributeDescriptor,
    DataAccessResult,
    MethodDescriptor,
    SelectiveAccess,
)
from .get import (
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
)
from .service import (
    ConfirmedService,
    ConfirmedServiceError,
    ErrorClass,
    ExceptionResponse,
    InitiateError,
    ServiceErrorCode,
    StateError,
)
from .set import (
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
)
from .xdlms import Conformance, InitiateRequest, InitiateResponse

Apdu = Union[
    AARQ, AARE, RLRQ, RLRE, InitiateRequest, InitiateResponse, GetRequestNormal, GetRequestNext,
    GetRequestWithList, GetResponseNormal, GetResponseWithDataBlock, GetResponseWithList,
    SetRequestNormal, SetRequestWithList, SetResponseNormal, SetResponseWithList,
    ActionRequestNormal, ActionResponseNormal, ExceptionResponse, ConfirmedServiceError,
]


def _table() -> dict[int, Callable[[bytes, bool], Any]]:
    from .action import decode_action_request, decode_action_response
    from .get import decode_get_request, decode_get_response
    from .set import decode_set_request, decode_set_response

    return {
        0x60: lambda d, t: AARQ.decode(d),
        0x61: lambda d, t: AARE.decode(d),
        0x62: lambda d, t: RLRQ.decode(d),
        0x63: lambda d, t: RLRE.decode(d),
        0x01: lambda d, t: InitiateRequest.decode(d),
        0x08: lambda d, t: InitiateResponse.decode(d),
        0x0E: lambda d, t: ConfirmedServiceError.decode(d),
        0xD8: lambda d, t: ExceptionResponse.decode(d),
        0xC0: lambda d, t: decode_get_request(d),
        0xC1: decode_set_request,
        0xC3: decode_action_request,
        0xC4: decode_get_response,
        0xC5: decode_set_response,
        0xC7: decode_action_response,
    }


_DECODERS = _table()
# Tags this decoder does not take, named for the error (ciphered ones: protocol/security opens
# them first; Green Book tag table, service-specific global and dedicated ciphering).
_NAMES = {0x21: "glo-initiate-request", 0x28: "glo-initiate-response",
          0xC8: "glo-get-request", 0xC9: "glo-set-request", 0xCB: "glo-action-request",
          0xCC: "glo-get-response", 0xCD: "glo-set-response", 0xCF: "glo-action-response",
          0xD0: "ded-get-request", 0xD1: "ded-set-request", 0xD3: "ded-action-request",
          0xD4: "ded-get-response", 0xD5: "ded-set-response", 0xD7: "ded-action-response",
          0xDB: "general-glo-ciphering", 0xDC: "general-ded-ciphering",
          0xE0: "general-block-transfer", 0x0F: "data-notification",
          0xC2: "event-notification-request"}


def decode_apdu(data: bytes, *, typed: bool = False) -> Apdu:
    """Decode one complete APDU. ``typed=True`` returns COSEM values as ``axdr.Typed`` (what a
    server or a CLI needs to re-encode them exactly); otherwise values are natives.

    Raises DecodeError (with the offset) for anything truncated, unknown or malformed."""
    if not data:
        raise DecodeError("empty APDU", 0)
    decoder = _DECODERS.get(data[0])
    if decoder is None:
        name = _NAMES.get(data[0])
        what = f"{name} is not decoded here (ciphered APDUs are opened by the security layer " \
               "first; LN services only)" if name else "unknown APDU tag"
        raise DecodeError(f"{what} 0x{data[0]:02X}", 0)
    try:
        apdu: Apdu = decoder(data, typed)
        return apdu
    except (IndexError, KeyError, ValueError, TypeError, OverflowError, struct.error) as exc:
        # Last resort: every path is bounds-checked, but a peer must never crash the caller.
        raise DecodeError(f"malformed APDU 0x{data[0]:02X}: {exc}", None) from exc


__all__ = [
    "AARE",
    "AARQ",
    "RLRE",
    "RLRQ",
    "AcseServiceProviderDiagnostic",
    "AcseServiceUserDiagnostic",
    "ActionRequestNormal",
    "ActionResponseNormal",
    "ActionResult",
    "Apdu",
    "ApplicationContext",
    "AssociationResult",
    "AttributeDescriptor",
    "AuthMechanism",
    "ConfirmedService",
    "ConfirmedServiceError",
    "Conformance",
    "DataAccessResult",
    "ErrorClass",
    "ExceptionResponse",
    "GetRequestNext",
    "GetRequestNormal",
    "GetRequestWithList",
    "GetResponseNormal",
    "GetResponseWithDataBlock",
    "GetResponseWithList",
    "InitiateError",
    "InitiateRequest",
    "InitiateResponse",
    "MethodDescriptor",
    "ReleaseRequestReason",
    "ReleaseResponseReason",
    "SelectiveAccess",
    "ServiceErrorCode",
    "SetRequestNormal",
    "SetRequestWithList",
    "SetResponseNormal",
    "SetResponseWithList",
    "StateError",
    "decode_apdu",
]
