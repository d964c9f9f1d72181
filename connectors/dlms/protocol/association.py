"""The DLMS/COSEM application association, sans-IO, client and server roles (h11 style).

``receive_data(apdu)`` takes one complete APDU (the HDLC or wrapper layer reassembles them);
``next_event()`` returns the next event or NEED_DATA; ``data_to_send()`` returns one APDU the
machine answers by itself (GET-next during a block transfer; AARE, RLRE and refusals on the
server side), or b"" when there is none: call it until it returns b"".

Client: ``associate()`` -> AARQ; ``get``/``get_with_list``/``set``/``set_with_list``/``action``
return (invoke id, APDU); ``release()`` -> RLRQ. One request at a time. Invoke ids rotate 1..15,
0, 1... A response is matched to the outstanding request by invoke id *and* service; anything else
(a late answer after ``abandon()``, a duplicate) comes out as a ``StaleResponse`` event and is
dropped. ``reset()`` forgets everything (link lost).

Server: see ``association_server.py``.

All transitions on received APDUs are in ``_CLIENT_TABLE`` / ``_SERVER_TABLE``: (state, APDU
type) -> handler. A pair not in the table is a RemoteProtocolError.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Optional, Union

from .apdu import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceUserDiagnostic,
    ActionRequestNormal,
    ActionResponseNormal,
    ApplicationContext,
    AssociationResult,
    AttributeDescriptor,
    ConfirmedServiceError,
    DataAccessResult,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    SelectiveAccess,
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
    decode_apdu,
)
from .apdu.get import PreparedGetWithList, decode_block_payload, with_list_response_head
from .apdu.xdlms import Conformance
from .association_events import (
    NEED_DATA,
    ActionCompleted,
    ActionRequested,
    Associated,
    AssociationRequested,
    AssociationSettings,
    AssociationState,
    Authentication,
    GetRequested,
    GetResult,
    Released,
    ReleaseRequested,
    RequestRefused,
    Role,
    ServiceFailure,
    SetRequested,
    SetResult,
    StaleResponse,
)
from .association_hls_client import HlsClient, raise_if_counter_refused
from .association_server import SERVER_TABLE, ServerRole
from .errors import (
    AssociationError,
    AuthenticationError,
    LocalProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "NEED_DATA",
    "ActionCompleted",
    "ActionRequested",
    "Associated",
    "Association",
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

_AUTH_DIAGNOSTICS = {
    AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE,
    AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED,
    AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED,
    AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED,
}
_RESPONSE_KIND = {
    GetResponseNormal: "get", GetResponseWithList: "get", GetResponseWithDataBlock: "get",
    SetResponseNormal: "set", SetResponseWithList: "set", ActionResponseNormal: "action",
}
# Conformance bits as plain ints: IntFlag's & (and int & IntFlag, via __rand__) is Python code.
_C_GET, _C_SET, _C_ACTION = int(Conformance.GET), int(Conformance.SET), int(Conformance.ACTION)
_C_MULTIPLE_REFERENCES = int(Conformance.MULTIPLE_REFERENCES)
_C_SELECTIVE_ACCESS = int(Conformance.SELECTIVE_ACCESS)
# Enum members checked on every request, under module names: a member looked up on its Enum class
# goes through the metaclass (~700 instructions in CPython 3.11, four times a poll cycle here).
_CLIENT, _ASSOCIATED = Role.CLIENT, AssociationState.ASSOCIATED
# Runtime alias: "X | Y" needs Python 3.10.
GetItemArg = Union[AttributeDescriptor, tuple[AttributeDescriptor, Optional[SelectiveAccess]]]


# One head per (invoke id and flags, count) for the whole process, shared by every meter's
# association: a per-association cache cost ~2.5 KB a meter for the same few bytes.
_with_list_head = lru_cache(maxsize=4096)(with_list_response_head)


@dataclass
class _Pending:
    """The client's outstanding request."""

    kind: str  # "get" | "set" | "action"
    invoke_id: int
    count: int = 1
    with_list: bool = False
    next_block: int = 1
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


class Association(ServerRole, HlsClient):
    def __init__(self, role: Role, settings: AssociationSettings | None = None) -> None:
        self.role = Role(role)
        self.settings = settings or AssociationSettings()
        self._table = _CLIENT_TABLE if self.role is Role.CLIENT else SERVER_TABLE
        self.reset()

    def reset(self) -> None:
        """Back to IDLE, forgetting any request, block transfer and queued data (link lost)."""
        self._state = AssociationState.IDLE
        # Lists, not deques: they hold a few items at most, and an empty deque costs 700 bytes
        # (three per meter, 10,000 meters).
        self._inbox: list[bytes] = []
        self._events: list[Any] = []
        self._outbox: list[bytes] = []
        self._conformance = Conformance.NONE
        self._peer_max_pdu = 0
        self._pending: _Pending | None = None
        self._next_invoke = 1
        self._server_reset()
        self._hls_client_reset()

    # The negotiated conformance, mirrored as a plain int for the per-request service checks.
    @property
    def _conformance(self) -> Conformance:
        return self._conformance_flag

    @_conformance.setter
    def _conformance(self, value: Conformance) -> None:
        self._conformance_flag = value
        self._granted_bits = int(value)

    # ---- shared surface --------------------------------------------------------------------
    @property
    def state(self) -> AssociationState:
        return self._state

    @property
    def negotiated_conformance(self) -> Conformance:
        return self._conformance

    @property
    def server_max_pdu_size(self) -> int:
        """Client: the server's max receive PDU size (0 before association)."""
        return self._peer_max_pdu

    @property
    def outstanding_invoke_id(self) -> int | None:
        return None if self._pending is None else self._pending.invoke_id

    def receive_data(self, apdu: bytes) -> None:
        """Hand over one complete APDU; it is decoded by next_event()."""
        if not apdu:
            raise LocalProtocolError("receive_data() takes one complete, non-empty APDU")
        self._inbox.append(bytes(apdu))

    def next_event(self) -> Any:
        while not self._events:
            if not self._inbox:
                return NEED_DATA
            raw = self._inbox.pop(0)
            if self.role is Role.SERVER:
                before = len(self._outbox)
                opened = self._server_open(raw)  # deciphered, or None when refused
                if opened is None:
                    continue
                raw = opened
            elif self.settings.security is not None:
                raw = self._client_open(raw)
            apdu = decode_apdu(raw, typed=self.role is Role.SERVER or self.settings.typed_values)
            handler = self._table.get((self._state, type(apdu)))
            if handler is None:
                raise RemoteProtocolError(
                    f"unexpected {type(apdu).__name__} in state {self._state.value} "
                    f"({self.role.value})")
            handler(self, apdu)
            if self.role is Role.SERVER:
                self._server_seal_outbox(before)
        return self._events.pop(0)

    def data_to_send(self) -> bytes:
        """One automatic APDU (GET-next, AARE, RLRE, refusal), or b"" when there is none."""
        return self._outbox.pop(0) if self._outbox else b""

    def _require(self, role: Role, *states: AssociationState) -> None:
        if self.role is not role:
            raise LocalProtocolError(f"only a {role.value} association can do that")
        if self._state not in states:
            raise LocalProtocolError(f"not allowed in state {self._state.value}")

    # ---- client requests -------------------------------------------------------------------
    def associate(self) -> bytes:
        self._require(Role.CLIENT, AssociationState.IDLE)
        s = self.settings
        if s.authentication.hls:
            aarq_bytes = self._hls_associate(
                InitiateRequest(s.conformance, s.max_pdu_size, s.dlms_version))
            self._state = AssociationState.AWAITING_AARE
            return aarq_bytes
        aarq = AARQ(
            ApplicationContext.LOGICAL_NAME, s.authentication.mechanism,
            s.password if s.authentication is Authentication.LLS else None,
            InitiateRequest(s.conformance, s.max_pdu_size, s.dlms_version),
            s.calling_ap_title)
        self._state = AssociationState.AWAITING_AARE
        return aarq.encode()

    def get(self, descriptor: AttributeDescriptor,
            access: SelectiveAccess | None = None) -> tuple[int, bytes]:
        self._check_service(_C_GET, "get")
        if access is not None:
            self._check_service(_C_SELECTIVE_ACCESS, "selective access")
        iid = self._take_invoke_id()
        s = self.settings
        raw = GetRequestNormal(iid, descriptor, access, s.high_priority, s.confirmed).encode()
        return self._send(_Pending("get", iid), raw)

    def get_with_list(
        self, items: Sequence[GetItemArg] | PreparedGetWithList
    ) -> tuple[int, bytes]:
        """items: descriptors, or (descriptor, access or None) pairs; or a
        ``PreparedGetWithList`` (the same request every cycle: encoded once per invoke id)."""
        self._check_service(_C_GET, "get")
        self._check_service(_C_MULTIPLE_REFERENCES, "get-with-list")
        if type(items) is PreparedGetWithList:
            if items.selective:
                self._check_service(_C_SELECTIVE_ACCESS, "selective access")
            iid = self._take_invoke_id()
            s = self.settings
            raw = items.encode(iid, s.high_priority, s.confirmed)
            return self._send(_Pending("get", iid, items.count, True), raw)
        pairs = tuple(i if isinstance(i, tuple) else (i, None) for i in items)
        if not pairs:
            raise LocalProtocolError("get_with_list() needs at least one attribute")
        if any(access is not None for _, access in pairs):
            self._check_service(_C_SELECTIVE_ACCESS, "selective access")
        iid = self._take_invoke_id()
        s = self.settings
        raw = GetRequestWithList(iid, pairs, s.high_priority, s.confirmed).encode()
        return self._send(_Pending("get", iid, len(pairs), True), raw)

    def set(self, descriptor: AttributeDescriptor, value: Any,
            access: SelectiveAccess | None = None) -> tuple[int, bytes]:
        self._check_service(_C_SET, "set")
        iid = self._take_invoke_id()
        s = self.settings
        raw = SetRequestNormal(iid, descriptor, value, access, s.high_priority,
                               s.confirmed).encode()
        return self._send(_Pending("set", iid), raw)

    def set_with_list(self, items: Sequence[tuple[AttributeDescriptor, Any]]) -> tuple[int, bytes]:
        """items: (descriptor, value) pairs."""
        self._check_service(_C_SET, "set")
        self._check_service(_C_MULTIPLE_REFERENCES, "set-with-list")
        if not items:
            raise LocalProtocolError("set_with_list() needs at least one attribute")
        iid = self._take_invoke_id()
        s = self.settings
        triples = tuple((d, None, v) for d, v in items)
        raw = SetRequestWithList(iid, triples, s.high_priority, s.confirmed).encode()
        return self._send(_Pending("set", iid, len(triples), True), raw)

    def action(self, descriptor: MethodDescriptor, parameters: Any = None) -> tuple[int, bytes]:
        self._check_service(_C_ACTION, "action")
        iid = self._take_invoke_id()
        s = self.settings
        raw = ActionRequestNormal(iid, descriptor, parameters, s.high_priority,
                                  s.confirmed).encode()
        return self._send(_Pending("action", iid), raw)

    def release(self) -> bytes:
        """RLRQ; an outstanding request is abandoned (its late answer becomes stale)."""
        self._require(Role.CLIENT, AssociationState.ASSOCIATED)
        self._pending = None
        self._state = AssociationState.AWAITING_RLRE
        return RLRQ().encode()

    def abandon(self) -> int | None:
        """Give up on the outstanding request (timeout); returns its invoke id. A late answer
        then comes out as StaleResponse instead of answering the next request."""
        iid = self.outstanding_invoke_id
        self._pending = None
        self._outbox.clear()  # a queued GET-next belongs to the abandoned transfer
        return iid

    # ---- express exchange (session/express.py): the answer as a template --------------------
    def expected_with_list(self, flags: int) -> bytes | None:
        """What the answer to the outstanding GET-with-list starts with when it is a
        GetResponseWithList with all its items (service, invoke id with the priority and service
        class bits ``flags`` the server answers with, item count), as ``GetResponseWithList``
        encodes it; None when no such request is outstanding."""
        p = self._pending
        if p is None or not p.with_list or p.kind != "get" or p.chunks:
            return None
        return _with_list_head(p.invoke_id | flags, p.count)

    def express_answered(self) -> None:
        """The outstanding GET was answered with ``expected_with_list``'s head, its items checked
        by the caller: nothing is pending any more, as after the decoded GetResult."""
        self._pending = None

    def _check_service(self, bit: int, what: str) -> None:
        self._require(_CLIENT, _ASSOCIATED)
        if self._pending is not None:
            raise LocalProtocolError(
                f"request {self._pending.invoke_id} is still outstanding: wait for its answer "
                "or abandon() it")
        if not self._granted_bits & bit:
            raise LocalProtocolError(f"the server did not grant {what} "
                                     f"(negotiated: {', '.join(self._conformance.labels)})")

    def _take_invoke_id(self) -> int:
        iid = self._next_invoke
        self._next_invoke = (iid + 1) & 0x0F
        return iid

    def _send(self, pending: _Pending, raw: bytes) -> tuple[int, bytes]:
        raw = self._client_seal(raw)
        if len(raw) > self._peer_max_pdu:
            raise LocalProtocolError(
                f"request of {len(raw)} bytes exceeds the server's max PDU size "
                f"{self._peer_max_pdu}")
        self._pending = pending
        return pending.invoke_id, raw

    # ---- client handlers (see _CLIENT_TABLE) -------------------------------------------------
    def _on_aare(self, aare: AARE) -> None:
        self._state = AssociationState.IDLE
        info = aare.user_information
        if aare.result == AssociationResult.ACCEPTED and self.settings.authentication.hls:
            self._hls_on_aare(aare)
            return
        if aare.result == AssociationResult.ACCEPTED:
            if not isinstance(info, InitiateResponse):
                raise RemoteProtocolError("accepted AARE without an xDLMS InitiateResponse")
            if aare.application_context != ApplicationContext.LOGICAL_NAME:
                raise RemoteProtocolError(
                    f"AARE accepted with application context {aare.application_context.name}")
            self._conformance = Conformance(info.negotiated_conformance)
            self._peer_max_pdu = info.server_max_receive_pdu_size
            self._state = AssociationState.ASSOCIATED
            self._events.append(Associated(self._conformance, self._peer_max_pdu))
            return
        reason = aare.diagnostic.label.replace("-", " ")
        detail = f" ({aare.result.label}, {aare.diagnostic_label}"
        detail += f"; {info})" if isinstance(info, ConfirmedServiceError) else ")"
        error = AuthenticationError if aare.diagnostic in _AUTH_DIAGNOSTICS else AssociationError
        raise error(f"association rejected: {reason}{detail}", int(aare.result),
                    int(aare.diagnostic))

    def _on_hls_answer(self, apdu: ActionResponseNormal) -> None:
        self._hls_on_reply(apdu)  # pass 4 of HLS: see association_hls_client

    def _on_hls_refusal(self, apdu: ExceptionResponse | ConfirmedServiceError) -> None:
        self._hls_on_refusal(apdu)

    def _on_rlre(self, rlre: RLRE) -> None:
        self._state = AssociationState.IDLE
        self._conformance = Conformance.NONE
        self._forget_dedicated()  # the dedicated key lived for this association only
        self._events.append(Released(rlre.reason))

    def _on_service_error(self, apdu: ExceptionResponse | ConfirmedServiceError) -> None:
        if self._state is AssociationState.AWAITING_AARE:
            self._state = AssociationState.IDLE
            raise AssociationError(f"association refused: {apdu}")
        if self.settings.security is not None:
            raise_if_counter_refused(apdu)
        iid = self.outstanding_invoke_id
        self._pending = None
        self._outbox.clear()
        self._events.append(ServiceFailure(iid, apdu))

    def _on_response(self, apdu: Any) -> None:
        p = self._pending
        if p is None or apdu.invoke_id != p.invoke_id:
            self._events.append(StaleResponse(apdu.invoke_id, apdu))
            return
        if _RESPONSE_KIND[type(apdu)] != p.kind:
            self._pending = None
            raise RemoteProtocolError(
                f"{type(apdu).__name__} does not answer the outstanding {p.kind} request")
        kind = type(apdu)
        if kind is GetResponseWithDataBlock:
            return self._on_block(p, apdu)
        if kind in (GetResponseWithList, SetResponseWithList):
            results = apdu.results
        elif kind is ActionResponseNormal:
            self._pending = None
            self._events.append(ActionCompleted(p.invoke_id, apdu.result, apdu.return_data))
            return
        else:
            results = (apdu.result,)
        self._finish(p, results, kind in (GetResponseWithList, SetResponseWithList))

    def _finish(self, p: _Pending, results: tuple[Any, ...], with_list: bool) -> None:
        self._pending = None
        if with_list != p.with_list or len(results) != p.count:
            raise RemoteProtocolError(
                f"{len(results)} result(s) for a request of {p.count} attribute(s)")
        event = GetResult if p.kind == "get" else SetResult
        self._events.append(event(p.invoke_id, results))

    def _on_block(self, p: _Pending, block: GetResponseWithDataBlock) -> None:
        if block.block_number != p.next_block:
            self._pending = None
            self._outbox.clear()
            raise RemoteProtocolError(
                f"data block {block.block_number} received, {p.next_block} expected")
        if isinstance(block.raw_data, DataAccessResult):  # the server aborted the long get
            self._finish(p, (block.raw_data,) * p.count, p.with_list)
            return
        p.chunks.append(block.raw_data)
        p.size += len(block.raw_data)
        if p.size > self.settings.max_reassembly_size:
            self._pending = None
            raise RemoteProtocolError(
                f"block transfer exceeds {self.settings.max_reassembly_size} bytes")
        if not block.last_block:
            p.next_block += 1
            s = self.settings
            self._outbox.append(self._client_seal(GetRequestNext(
                p.invoke_id, block.block_number, s.high_priority, s.confirmed).encode()))
            return
        self._pending = None
        results = decode_block_payload(b"".join(p.chunks), p.with_list,
                                       self.settings.typed_values)
        self._finish(p, results, p.with_list)

_Handler = Callable[[Association, Any], None]
_A, _W, _R = (AssociationState.ASSOCIATED, AssociationState.AWAITING_AARE,
              AssociationState.AWAITING_RLRE)
_H = AssociationState.AWAITING_HLS
_CLIENT_TABLE: dict[tuple[AssociationState, type], _Handler] = {
    (_W, AARE): Association._on_aare,
    (_W, ExceptionResponse): Association._on_service_error,
    (_W, ConfirmedServiceError): Association._on_service_error,
    (_A, ExceptionResponse): Association._on_service_error,
    (_A, ConfirmedServiceError): Association._on_service_error,
    (_R, RLRE): Association._on_rlre,
    (_H, ActionResponseNormal): Association._on_hls_answer,
    (_H, ExceptionResponse): Association._on_hls_refusal,
    (_H, ConfirmedServiceError): Association._on_hls_refusal,
    **{(state, kind): Association._on_response
       for state in (_A, _R) for kind in _RESPONSE_KIND},
}
