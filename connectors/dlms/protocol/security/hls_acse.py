"""The ACSE side of HLS and ciphering: AARQ/AARE fields, and the ciphered xDLMS initiate.

Green Book, "AARQ/AARE with ciphering": with a block cipher key, the xDLMS InitiateRequest in
the AARQ's user-information travels as glo-initiate-request (0x21) ciphered by the client, and the
InitiateResponse in the AARE as glo-initiate-response (0x28), or a glo-confirmed-service-error
(0x2E), ciphered by the server. The client sends its system title as calling-AP-title and CtoS as
calling-authentication-value; the server answers with responding-AP-title and StoC. The codec
in ``apdu/acse.py`` carries these fields and keeps ciphered user-information as raw bytes; the
functions here fill and open them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..apdu.acse import AARE, AARQ, ApplicationContext, AuthMechanism
from ..apdu.service import CONFIRMED_SERVICE_ERROR_TAG, ConfirmedServiceError
from ..apdu.xdlms import INITIATE_REQUEST_TAG, InitiateRequest, InitiateResponse
from ..errors import DecodeError, LocalProtocolError, RemoteProtocolError
from .apdu import SecurityContext, is_ciphered
from .control import CounterGuard, Policy, SecurityControl
from .gcm import check_system_title
from .hls import check_challenge

HLS_MECHANISMS = (AuthMechanism.HLS_MD5, AuthMechanism.HLS_SHA1, AuthMechanism.HLS_GMAC,
                  AuthMechanism.HLS_SHA256)


@dataclass(frozen=True)
class Ciphering:
    """What ciphers the initiate: the keys, the SC to use, and the sender's invocation counter."""

    context: SecurityContext
    control: SecurityControl
    invocation_counter: int


def hls_aarq(mechanism: AuthMechanism, client_title: bytes, ctos: bytes,
             initiate: InitiateRequest, ciphering: Ciphering | None = None) -> AARQ:
    """The AARQ of an HLS association (mechanisms 3 to 6), its InitiateRequest ciphered as
    glo-initiate-request when ``ciphering`` is given (LN referencing with ciphering then)."""
    if mechanism not in HLS_MECHANISMS:
        raise LocalProtocolError(f"{mechanism.name} is not an HLS mechanism (3 to 6)")
    check_system_title(client_title, "client system title")
    check_challenge(ctos, "CtoS")
    info: InitiateRequest | bytes = initiate
    context = ApplicationContext.LOGICAL_NAME
    if ciphering is not None:
        context = ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
        info = ciphering.context.encrypt(initiate.encode(), ciphering.control, client_title,
                                         ciphering.invocation_counter)
    elif initiate.dedicated_key is not None:
        raise LocalProtocolError("a dedicated key may only travel in a ciphered InitiateRequest")
    return AARQ(context, mechanism, ctos, info, client_title)


def open_aarq(aarq: AARQ, context: SecurityContext | None,
              required: Policy | None = None) -> InitiateRequest:
    """Server side: the AARQ's InitiateRequest, deciphered with the client's calling-AP-title."""
    info = aarq.user_information
    if isinstance(info, InitiateRequest):
        return info
    if not isinstance(info, bytes) or not is_ciphered(info):
        raise RemoteProtocolError("AARQ without an xDLMS InitiateRequest")
    if context is None:
        raise RemoteProtocolError("AARQ with a ciphered InitiateRequest, and no keys are set")
    title = _peer_title(aarq.calling_ap_title, "calling-AP-title (client system title)")
    plain = context.decrypt(info, title, required=required).apdu
    if plain[:1] != bytes((INITIATE_REQUEST_TAG,)):
        raise DecodeError("ciphered AARQ user-information is not an InitiateRequest", 0)
    return InitiateRequest.decode(plain)


def open_aare(aare: AARE, context: SecurityContext | None, required: Policy | None = None,
              guard: CounterGuard | None = None,
              ) -> InitiateResponse | ConfirmedServiceError | None:
    """Client side: the AARE's InitiateResponse (or service error), deciphered with the
    server's responding-AP-title; None when the AARE carries no user-information. ``guard``
    takes the server's invocation counter: the answers after it must count above it."""
    info = aare.user_information
    if info is None or isinstance(info, (InitiateResponse, ConfirmedServiceError)):
        return info
    if not is_ciphered(info):
        raise DecodeError(f"AARE user-information with unknown tag 0x{info[0] if info else 0:02X}")
    if context is None:
        raise RemoteProtocolError("AARE with a ciphered InitiateResponse, and no keys are set")
    title = _peer_title(aare.responding_ap_title, "responding-AP-title (server system title)")
    opened = context.decrypt(info, title, required=required)
    if guard is not None:
        guard.accept(opened.header)
    plain = opened.apdu
    if plain[:1] == bytes((CONFIRMED_SERVICE_ERROR_TAG,)):
        return ConfirmedServiceError.decode(plain)
    return InitiateResponse.decode(plain)


def server_title_and_stoc(aare: AARE) -> tuple[bytes, bytes]:
    """The server's system title and StoC from an HLS AARE, checked."""
    title = _peer_title(aare.responding_ap_title, "responding-AP-title (server system title)")
    if aare.responding_authentication_value is None:
        raise RemoteProtocolError("HLS AARE without responding-authentication-value (StoC)")
    return title, check_challenge(aare.responding_authentication_value, "StoC")


def _peer_title(title: bytes | None, what: str) -> bytes:
    # The peer's fault when missing or malformed: a remote error, before any key is used.
    if title is None:
        raise RemoteProtocolError(f"ciphered or HLS association without {what}")
    if len(title) != 8:
        raise RemoteProtocolError(f"{what} of {len(title)} octets (expected 8)")
    return title
