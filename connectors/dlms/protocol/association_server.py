"""Server role of ``Association`` (what the meter simulator runs).

On an AARQ the server checks the application context (LN without ciphering), the mechanism and
the LLS password against its settings, negotiates the conformance (intersection) and the PDU
size, queues the AARE in data_to_send() and emits ``AssociationRequested``. Requests then come
out as ``GetRequested`` / ``SetRequested`` / ``ActionRequested``; the application answers with
``respond_get`` / ``respond_set`` / ``respond_action`` (bytes to send). A GET response longer than
the client's max receive PDU size is split into data blocks: the first is returned, the others
are served from data_to_send() as the client's GET-next requests arrive.

Refusals the server makes by itself (request before association, service not negotiated, GET-next
without a transfer) are queued in data_to_send() and reported as ``RequestRefused``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .apdu import (
    AARE,
    AARQ,
    RLRE,
    RLRQ,
    AcseServiceUserDiagnostic,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    ApplicationContext,
    AssociationResult,
    AuthMechanism,
    ConfirmedService,
    ConfirmedServiceError,
    DataAccessResult,
    ErrorClass,
    ExceptionResponse,
    GetRequestNext,
    GetRequestNormal,
    GetRequestWithList,
    GetResponseNormal,
    GetResponseWithDataBlock,
    GetResponseWithList,
    InitiateError,
    InitiateRequest,
    InitiateResponse,
    ServiceErrorCode,
    SetRequestNormal,
    SetRequestWithList,
    SetResponseNormal,
    SetResponseWithList,
    StateError,
)
from .apdu.get import block_overhead, encode_results_for_blocks
from .apdu.xdlms import Conformance
from .association_events import (
    ActionRequested,
    AssociationRequested,
    AssociationSettings,
    AssociationState,
    Authentication,
    GetRequested,
    ReleaseRequested,
    RequestRefused,
    Role,
    SetRequested,
)
from .association_hls import HlsServer, Protection
from .errors import DlmsError, LocalProtocolError
from .security import is_ciphered

# Blue Book: the smallest max receive PDU size an xDLMS InitiateRequest may propose.
_MIN_PDU = 12


@dataclass
class _Request:
    kind: str
    invoke_id: int
    count: int
    with_list: bool
    high_priority: bool
    confirmed: bool
    cipher: Protection | None = None  # how the request came ciphered (None: plain)


@dataclass
class _Blocks:
    invoke_id: int
    high_priority: bool
    confirmed: bool
    chunks: list[bytes]
    sent: int  # number of the last block sent


class ServerRole(HlsServer):
    # Set up by Association.reset(); declared for the type checker.
    role: Role
    settings: AssociationSettings
    _state: AssociationState
    _events: list[Any]
    _outbox: list[bytes]
    _conformance: Conformance
    _peer_max_pdu: int

    def _server_reset(self) -> None:
        self._request: _Request | None = None
        self._blocks: _Blocks | None = None
        self._hls_reset()

    @property
    def client_max_pdu_size(self) -> int:
        """Server: the client's max receive PDU size (responses never exceed it)."""
        return self._peer_max_pdu

    # ---- application answers --------------------------------------------------------------
    def respond_get(self, invoke_id: int, results: Sequence[Any]) -> bytes:
        """results: one value (Typed or unambiguous native) or DataAccessResult per item."""
        req = self._take_request("get", invoke_id, len(results))
        hp, conf, results = req.high_priority, req.confirmed, tuple(results)
        if req.with_list:
            raw = GetResponseWithList(invoke_id, results, hp, conf).encode()
        else:
            raw = GetResponseNormal(invoke_id, results[0], hp, conf).encode()
        limit = self._peer_max_pdu
        if len(raw) <= limit:
            return self._protect(raw, req.cipher)
        if not self._conformance & Conformance.BLOCK_TRANSFER_WITH_GET_OR_READ:
            return ExceptionResponse(StateError.SERVICE_NOT_ALLOWED,
                                     ServiceErrorCode.PDU_TOO_LONG).encode()
        payload = encode_results_for_blocks(results, req.with_list)
        size = limit - block_overhead(limit)
        chunks = [payload[i:i + size] for i in range(0, len(payload), size)]
        if len(chunks) > 1:
            self._blocks = _Blocks(invoke_id, hp, conf, chunks, 1)
        return self._protect(GetResponseWithDataBlock(invoke_id, len(chunks) == 1, 1, chunks[0],
                                                      hp, conf).encode(), req.cipher)

    def respond_set(self, invoke_id: int,
                    results: DataAccessResult | Sequence[DataAccessResult]) -> bytes:
        if isinstance(results, DataAccessResult):
            results = (results,)
        req = self._take_request("set", invoke_id, len(results))
        if req.with_list:
            raw = SetResponseWithList(invoke_id, tuple(results), req.high_priority,
                                      req.confirmed).encode()
        else:
            raw = SetResponseNormal(invoke_id, results[0], req.high_priority,
                                    req.confirmed).encode()
        return self._protect(raw, req.cipher)

    def respond_action(self, invoke_id: int, result: ActionResult,
                       return_data: Any = None) -> bytes:
        req = self._take_request("action", invoke_id, 1)
        return self._protect(ActionResponseNormal(invoke_id, result, return_data,
                                                  req.high_priority, req.confirmed).encode(),
                             req.cipher)

    def _take_request(self, kind: str, invoke_id: int, count: int) -> _Request:
        if self.role is not Role.SERVER:
            raise LocalProtocolError("only a server association can respond")
        req = self._request
        if req is None or req.kind != kind or req.invoke_id != invoke_id:
            raise LocalProtocolError(f"no {kind} request {invoke_id} is waiting for an answer")
        if count != req.count:
            raise LocalProtocolError(f"{count} result(s) for a request of {req.count} item(s)")
        self._request = None
        return req

    # ---- received APDUs (see SERVER_TABLE) ------------------------------------------------
    def _on_aarq(self, aarq: AARQ) -> None:
        s = self.settings
        self._state = AssociationState.IDLE
        self._request = self._blocks = None
        self._conformance = Conformance.NONE
        expected = s.authentication.mechanism
        sec = s.security
        context = (ApplicationContext.LOGICAL_NAME_WITH_CIPHERING
                   if sec is not None and sec.policy is not None else ApplicationContext.LOGICAL_NAME)
        init = aarq.user_information
        ciphered = isinstance(init, bytes) and is_ciphered(init)
        hls_ok = self._hls_check_aarq(aarq)
        self._keys = None  # a new AARQ: any earlier dedicated key is gone
        if isinstance(init, bytes) and ciphered and hls_ok and aarq.application_context == context:
            try:  # glo-initiate-request: deciphered with the calling-AP-title
                init = InitiateRequest.decode(self._hls_open_initiate(init))
            except DlmsError:
                init = None
        # A dedicated key only ever travels ciphered (Green Book), and only to a meter taking one.
        dedicated_ok = (not isinstance(init, InitiateRequest) or init.dedicated_key is None
                        or (ciphered and self._take_dedicated(init.dedicated_key)))
        proposed = init.proposed_conformance if isinstance(init, InitiateRequest) else Conformance.NONE
        client_pdu = init.client_max_receive_pdu_size if isinstance(init, InitiateRequest) else 0
        # Lenient reading: 0 is taken as "no limit" (some clients send it).
        client_pdu = client_pdu or 0xFFFF
        negotiated = Conformance(proposed & s.conformance)
        diag = AcseServiceUserDiagnostic.NULL
        error: ConfirmedServiceError | None = None
        if aarq.application_context != context:
            diag = AcseServiceUserDiagnostic.APPLICATION_CONTEXT_NAME_NOT_SUPPORTED
        elif aarq.mechanism != expected:
            diag = (AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_REQUIRED
                    if aarq.mechanism == AuthMechanism.NONE
                    else AcseServiceUserDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED)
        elif s.authentication is Authentication.LLS and not hmac.compare_digest(
                aarq.calling_authentication_value or b"", s.password):
            diag = AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
        elif not hls_ok:
            diag = AcseServiceUserDiagnostic.AUTHENTICATION_FAILURE
        elif context is ApplicationContext.LOGICAL_NAME_WITH_CIPHERING and not ciphered:
            diag = AcseServiceUserDiagnostic.NO_REASON_GIVEN  # the Green Book wants it ciphered
        elif not isinstance(init, InitiateRequest) or not dedicated_ok:
            diag = AcseServiceUserDiagnostic.NO_REASON_GIVEN
        else:
            reason = None
            if init.dlms_version < 6:
                reason = InitiateError.DLMS_VERSION_TOO_LOW
            elif not negotiated:
                reason = InitiateError.INCOMPATIBLE_CONFORMANCE
            elif client_pdu < _MIN_PDU:
                reason = InitiateError.PDU_SIZE_TOO_SHORT
            if reason is not None:
                diag = AcseServiceUserDiagnostic.NO_REASON_GIVEN
                error = ConfirmedServiceError(ConfirmedService.INITIATE_ERROR, ErrorClass.INITIATE,
                                              reason)
        accepted = diag == AcseServiceUserDiagnostic.NULL and error is None
        if not accepted:
            self._keys = None
        elif self._keys is not None and sec is not None:
            sec.dedicated += 1
        if accepted and s.authentication.hls:
            assert sec is not None  # _hls_check_aarq refuses HLS without it
            plain = InitiateResponse(negotiated, s.max_pdu_size, 6)
            response = sec.seal(plain.encode(), False) if ciphered else plain
            aare = AARE(AssociationResult.ACCEPTED,
                        AcseServiceUserDiagnostic.AUTHENTICATION_REQUIRED, expected, self._stoc,
                        response, context, sec.system_title)
            self._state = AssociationState.AWAITING_HLS
            self._conformance = negotiated
            self._peer_max_pdu = min(client_pdu, s.max_pdu_size)
        elif accepted:
            aare = AARE(AssociationResult.ACCEPTED, diag, user_information=InitiateResponse(
                negotiated, s.max_pdu_size, 6))
            self._state = AssociationState.ASSOCIATED
            self._conformance = negotiated
            # Our answers fit the client's buffer and our own: a meter with a small PDU sends
            # small blocks whatever the client would accept.
            self._peer_max_pdu = min(client_pdu, s.max_pdu_size)
        else:
            aare = AARE(AssociationResult.REJECTED_PERMANENT, diag, user_information=error)
        self._outbox.append(aare.encode())
        self._events.append(AssociationRequested(
            accepted, aarq.mechanism, diag, proposed, negotiated if accepted else Conformance.NONE,
            client_pdu, aarq.calling_ap_title, error))

    def _on_rlrq(self, rlrq: RLRQ) -> None:
        self._state = AssociationState.IDLE
        self._keys = None  # the dedicated key lived for this association only
        self._request = self._blocks = None
        self._conformance = Conformance.NONE
        self._outbox.append(RLRE().encode())
        self._events.append(ReleaseRequested(rlrq.reason))

    def _refuse(self, reason: str, response: Any) -> None:
        self._outbox.append(response.encode())
        self._events.append(RequestRefused(reason, response))

    def _on_unassociated(self, apdu: Any) -> None:
        self._refuse("request before association", ExceptionResponse(
            StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.OPERATION_NOT_POSSIBLE))

    def _granted(self, *needed: tuple[Conformance, str]) -> bool:
        for bit, what in needed:
            if not self._conformance & bit:
                self._refuse(f"{what} not negotiated", ExceptionResponse(
                    StateError.SERVICE_NOT_ALLOWED, ServiceErrorCode.SERVICE_NOT_SUPPORTED))
                return False
        return True

    def _accept(self, kind: str, apdu: Any, count: int, with_list: bool, event: Any) -> None:
        self._blocks = None  # a new request ends any long get (the client moved on)
        self._request = _Request(kind, apdu.invoke_id, count, with_list, apdu.high_priority,
                                 apdu.confirmed, self._cipher)
        self._events.append(event)

    def _on_get(self, apdu: GetRequestNormal | GetRequestWithList) -> None:
        with_list = isinstance(apdu, GetRequestWithList)
        items = (apdu.items if isinstance(apdu, GetRequestWithList)
                 else ((apdu.descriptor, apdu.access),))
        needed = [(Conformance.GET, "get")]
        if with_list:
            needed.append((Conformance.MULTIPLE_REFERENCES, "multiple-references"))
        if any(access is not None for _, access in items):
            needed.append((Conformance.SELECTIVE_ACCESS, "selective-access"))
        if self._granted(*needed):
            self._accept("get", apdu, len(items), with_list,
                         GetRequested(apdu.invoke_id, tuple(items), with_list))

    def _on_get_next(self, apdu: GetRequestNext) -> None:
        b = self._blocks
        if b is None or apdu.invoke_id != b.invoke_id or apdu.block_number != b.sent:
            self._blocks = None
            dar = (DataAccessResult.NO_LONG_GET_IN_PROGRESS if b is None
                   else DataAccessResult.DATA_BLOCK_NUMBER_INVALID)
            self._refuse(f"get-next: {dar.label}", GetResponseWithDataBlock(
                apdu.invoke_id, True, apdu.block_number + 1, dar, apdu.high_priority,
                apdu.confirmed))
            return
        b.sent += 1
        last = b.sent == len(b.chunks)
        if last:
            self._blocks = None
        self._outbox.append(GetResponseWithDataBlock(
            b.invoke_id, last, b.sent, b.chunks[b.sent - 1], b.high_priority, b.confirmed).encode())

    def _on_set(self, apdu: SetRequestNormal | SetRequestWithList) -> None:
        with_list = isinstance(apdu, SetRequestWithList)
        items = (apdu.items if isinstance(apdu, SetRequestWithList)
                 else ((apdu.descriptor, apdu.access, apdu.value),))
        needed = [(Conformance.SET, "set")]
        if with_list:
            needed.append((Conformance.MULTIPLE_REFERENCES, "multiple-references"))
        if self._granted(*needed):
            self._accept("set", apdu, len(items), with_list,
                         SetRequested(apdu.invoke_id, tuple(items), with_list))

    def _on_hls_reply(self, apdu: ActionRequestNormal) -> None:
        self._hls_reply(apdu)  # pass 3 of HLS: see association_hls

    def _on_action(self, apdu: ActionRequestNormal) -> None:
        if self._granted((Conformance.ACTION, "action")):
            self._accept("action", apdu, 1, False,
                         ActionRequested(apdu.invoke_id, apdu.descriptor, apdu.parameters))


_Handler = Callable[[Any, Any], None]
_I, _A = AssociationState.IDLE, AssociationState.ASSOCIATED
_H = AssociationState.AWAITING_HLS
_REQUESTS: dict[type, _Handler] = {
    GetRequestNormal: ServerRole._on_get, GetRequestWithList: ServerRole._on_get,
    GetRequestNext: ServerRole._on_get_next, SetRequestNormal: ServerRole._on_set,
    SetRequestWithList: ServerRole._on_set, ActionRequestNormal: ServerRole._on_action,
}
SERVER_TABLE: dict[tuple[AssociationState, type], _Handler] = {
    (_I, AARQ): ServerRole._on_aarq,
    (_A, AARQ): ServerRole._on_aarq,  # a new AARQ replaces the association
    (_I, RLRQ): ServerRole._on_rlrq,
    (_A, RLRQ): ServerRole._on_rlrq,
    (_H, AARQ): ServerRole._on_aarq,
    (_H, RLRQ): ServerRole._on_rlrq,
    (_H, ActionRequestNormal): ServerRole._on_hls_reply,
    **{(_H, kind): ServerRole._on_unassociated for kind in _REQUESTS
       if kind is not ActionRequestNormal},
    **{(_A, kind): handler for kind, handler in _REQUESTS.items()},
    **{(_I, kind): ServerRole._on_unassociated for kind in _REQUESTS},
}
