"""Settings, states and events of the application association (see ``association.py``).

Events are frozen dataclasses, as in h11: the state machine hands them out of ``next_event()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Union

from .apdu.acse import (
    AcseServiceProviderDiagnostic,
    AcseServiceUserDiagnostic,
    AuthMechanism,
)
from .apdu.common import (
    ActionResult,
    AttributeDescriptor,
    MethodDescriptor,
    SelectiveAccess,
)
from .apdu.service import ConfirmedServiceError, ExceptionResponse
from .apdu.xdlms import DEFAULT_CLIENT_CONFORMANCE, Conformance
from .errors import LocalProtocolError

if TYPE_CHECKING:
    from .security.server import AssociationSecurity

# One Role and one NEED_DATA sentinel for both state machines (HDLC link and association), so
# the session layer tests ``is NEED_DATA`` and passes the same Role to both.
from .hdlc.events import NEED_DATA, Role

__all__ = [  # NEED_DATA and Role are re-exported from the HDLC layer
    "NEED_DATA",
    "ActionCompleted",
    "ActionRequested",
    "Associated",
    "AssociationRequested",
    "AssociationSettings",
    "AssociationState",
    "Authentication",
    "GetRequested",
    "GetResult",
    "ReleaseRequested",
    "Released",
    "RequestRefused",
    "Role",
    "ServiceFailure",
    "SetRequested",
    "SetResult",
    "StaleResponse",
]


class AssociationState(Enum):
    IDLE = "idle"  # no association: initial, after release, rejection or reset()
    AWAITING_AARE = "awaiting-aare"  # client: AARQ sent
    ASSOCIATED = "associated"
    AWAITING_HLS = "awaiting-hls"  # server: HLS AARE sent, the client's f(StoC) not yet checked
    AWAITING_RLRE = "awaiting-rlre"  # client: RLRQ sent


class Authentication(str, Enum):
    """Config vocabulary ("none", "lls", "hls-gmac", ...) for the ACSE mechanism.

    The HLS ones are served by the server role only (the client side comes with the session)."""

    NONE = "none"
    LLS = "lls"
    HLS_MD5 = "hls-md5"
    HLS_SHA1 = "hls-sha1"
    HLS_GMAC = "hls-gmac"
    HLS_SHA256 = "hls-sha256"

    @property
    def mechanism(self) -> AuthMechanism:
        return _MECHANISMS[self]

    @property
    def hls(self) -> bool:
        return self.mechanism >= AuthMechanism.HLS_MD5


_MECHANISMS = {
    Authentication.NONE: AuthMechanism.NONE, Authentication.LLS: AuthMechanism.LLS,
    Authentication.HLS_MD5: AuthMechanism.HLS_MD5, Authentication.HLS_SHA1: AuthMechanism.HLS_SHA1,
    Authentication.HLS_GMAC: AuthMechanism.HLS_GMAC,
    Authentication.HLS_SHA256: AuthMechanism.HLS_SHA256,
}


@dataclass(frozen=True)
class AssociationSettings:
    """What one side of the association proposes (client) or accepts (server).

    ``password`` is the LLS secret: any length (the AARQ lengths are computed). ``conformance`` is
    the client's proposal or the server's supported set (the server grants the intersection).
    ``max_pdu_size`` is our max receive PDU size. ``typed_values``: client results as
    ``axdr.Typed`` instead of natives. ``max_reassembly_size`` bounds a block transfer."""

    authentication: Authentication = Authentication.NONE
    password: bytes = field(default=b"", repr=False)  # a secret: never in reprs or logs
    conformance: Conformance = DEFAULT_CLIENT_CONFORMANCE
    max_pdu_size: int = 0xFFFF
    dlms_version: int = 6
    high_priority: bool = True
    confirmed: bool = True
    typed_values: bool = False
    max_reassembly_size: int = 1 << 20
    calling_ap_title: bytes | None = None
    # Server: keys, system title, policy and counters of HLS-GMAC / ciphering (mutable, shared
    # by the associations of one meter: the client's invocation counter must keep growing).
    security: AssociationSecurity | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            auth = Authentication(self.authentication)
        except ValueError:
            raise LocalProtocolError(
                f"authentication must be one of {[a.value for a in Authentication]}, "
                f"not {self.authentication!r}") from None
        object.__setattr__(self, "authentication", auth)
        if isinstance(self.password, str):
            object.__setattr__(self, "password", self.password.encode("utf-8"))
        if auth is Authentication.LLS and not self.password:
            raise LocalProtocolError("LLS authentication needs a password")
        if auth is Authentication.HLS_GMAC and self.security is None:
            raise LocalProtocolError("HLS-GMAC needs keys and a system title (security)")
        if auth.hls and auth is not Authentication.HLS_GMAC and not self.password:
            raise LocalProtocolError(f"{auth.value} authentication needs a secret (password)")
        if not 12 <= self.max_pdu_size <= 0xFFFF:
            raise LocalProtocolError(f"max_pdu_size out of range 12..65535: {self.max_pdu_size}")
        object.__setattr__(self, "conformance", Conformance(self.conformance))


ServiceErrorApdu = Union[ExceptionResponse, ConfirmedServiceError]
Diagnostic = Union[AcseServiceUserDiagnostic, AcseServiceProviderDiagnostic]


# ---- client events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Associated:
    conformance: Conformance
    server_max_pdu_size: int


@dataclass(frozen=True)
class GetResult:
    """One result per requested attribute: a value, or a DataAccessResult."""

    invoke_id: int
    results: tuple[Any, ...]


@dataclass(frozen=True)
class SetResult:
    invoke_id: int
    results: tuple[Any, ...]  # DataAccessResult per attribute


@dataclass(frozen=True)
class ActionCompleted:
    invoke_id: int
    result: ActionResult
    return_data: Any = None  # None, a value, or a DataAccessResult


@dataclass(frozen=True)
class Released:
    reason: int | None = None


@dataclass(frozen=True)
class ServiceFailure:
    """The server answered the outstanding request (or, with invoke_id None, no request) with
    an exception-response or a confirmed-service-error."""

    invoke_id: int | None
    error: ServiceErrorApdu


@dataclass(frozen=True)
class StaleResponse:
    """A response that does not answer the outstanding request (late answer to an abandoned
    request, or a duplicate): dropped, never taken as the answer to a newer request."""

    invoke_id: int
    apdu: Any


# ---- server events ----------------------------------------------------------------------------
@dataclass(frozen=True)
class AssociationRequested:
    accepted: bool
    mechanism: AuthMechanism
    diagnostic: Diagnostic
    proposed_conformance: Conformance
    negotiated_conformance: Conformance
    client_max_pdu_size: int
    calling_ap_title: bytes | None = None
    service_error: ConfirmedServiceError | None = None


@dataclass(frozen=True)
class GetRequested:
    invoke_id: int
    items: tuple[tuple[AttributeDescriptor, SelectiveAccess | None], ...]
    with_list: bool = False


@dataclass(frozen=True)
class SetRequested:
    """items: (descriptor, access or None, value as axdr.Typed) per attribute."""

    invoke_id: int
    items: tuple[tuple[AttributeDescriptor, SelectiveAccess | None, Any], ...]
    with_list: bool = False


@dataclass(frozen=True)
class ActionRequested:
    invoke_id: int
    descriptor: MethodDescriptor
    parameters: Any = None  # axdr.Typed, or None when absent


@dataclass(frozen=True)
class ReleaseRequested:
    reason: int | None = None


@dataclass(frozen=True)
class RequestRefused:
    """The server refused a request by itself (not associated, service not negotiated, response
    too long without block transfer, unknown block): the answer is already in data_to_send()."""

    reason: str
    response: Any  # the APDU queued in answer
