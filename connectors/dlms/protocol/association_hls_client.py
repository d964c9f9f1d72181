"""Client role of HLS (mechanisms 3-6) and ciphered xDLMS (security suite 0), sans-IO.

The AARQ carries our system title and CtoS (its InitiateRequest ciphered as glo-initiate-request
under a security policy); the AARE brings the server's system title and StoC. We then queue
method 1 of the current association (0-0:40.0.0.255) with f(StoC) in data_to_send() (the
session sends it like a GET-next) and report ``Associated`` only once the meter's f(CtoS)
verifies. Every request is then ciphered with our system title and the next invocation counter
(``AssociationSecurity.invocation_counter``, counted up per APDU); answers are deciphered with the
server's title, their protection checked against the policy and their counter against replay.

Dedicated key (``AssociationSecurity.dedicated_keys``): each association draws a fresh key and
proposes it inside the ciphered InitiateRequest (never in plain: a security policy is required).
The AARQ, pass 3 and their answers stay under the global key (the association is not up until
the meter's f(CtoS) verifies, and a meter deciphers with the dedicated key only from then on:
Gurux's server does so); every request after it goes out as ded-xxx, and answers are opened
with whichever key their tag names. The InitiateRequest carrying it is encrypted and
authenticated whatever the policy (under authentication only it would travel readable). The key
lives in this object for one association only: forgotten at the RLRE, at ``reset()`` and at
the next AARQ.

Invocation counters under the dedicated key: the Green Book asks that an IV (sender's system
title || IC) never repeat under one key and that the receiver take only counters above the last
it accepted from that sender. A key new at each association makes any increasing sequence
unique under it; our counter belongs to our system title (the meter's frame counter
0-0:43.1.0 shows it), so the one ``InvocationCounter`` simply continues across glo- and ded-
APDUs: no value is ever spent twice under the global key, and a meter that checks ded- counters
against the frame counter (or against nothing) accepts them. Gurux does the same.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .apdu import (
    AARE,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    ApplicationContext,
    AuthMechanism,
    ConfirmedServiceError,
    ExceptionResponse,
    InitiateRequest,
    InitiateResponse,
    MethodDescriptor,
    ServiceErrorCode,
)
from .apdu.xdlms import Conformance
from .association_events import Associated, AssociationSettings, AssociationState
from .axdr import DataType, Typed
from .errors import (
    AuthenticationError,
    InvocationCounterRejected,
    LocalProtocolError,
    RemoteProtocolError,
)
from .obis import Obis
from .security import (
    Ciphering,
    Deciphered,
    ExpressCipher,
    HlsAuthenticationFailed,
    KeyKind,
    Policy,
    SecurityContext,
    SecurityControl,
    gmac_response,
    hash_response,
    hls_aarq,
    is_ciphered,
    open_aare,
    server_title_and_stoc,
    sha256_response,
    verify_gmac_response,
    verify_response,
)
from .security.server import AssociationSecurity

__all__ = ["HlsClient", "raise_if_counter_refused"]

_REPLY_TO_HLS = MethodDescriptor(15, Obis.parse("0-0:40.0.0"), 1)
_PLAIN_RESPONSES = frozenset((0xC4, 0xC5, 0xC7))  # get/set/action responses


def raise_if_counter_refused(apdu: Any) -> None:
    """An exception-response naming our invocation counter ends the session: every request
    after it would be refused the same way (the session re-synchronises once, then reports)."""
    if (isinstance(apdu, ExceptionResponse)
            and apdu.service_error is ServiceErrorCode.INVOCATION_COUNTER_ERROR):
        expected = ("" if not apdu.invocation_counter
                    else f" (it expects {apdu.invocation_counter})")
        raise InvocationCounterRejected(
            f"the meter refused our invocation counter{expected}")


class HlsClient:
    """Mixin of Association (client role): HLS passes 1-4 and the cipher step."""

    settings: AssociationSettings
    _state: AssociationState
    _events: list[Any]
    _outbox: list[bytes]
    _conformance: Conformance
    _peer_max_pdu: int

    def _hls_client_reset(self) -> None:
        self._server_title: bytes | None = None
        self._own_ctos = self._server_stoc = b""
        self._hls_invoke = 0
        self._opened: tuple[bytes, Deciphered] | None = None  # the latest answer deciphered
        self._forget_dedicated()

    def _forget_dedicated(self) -> None:
        # The association's keys (None: the global ones) and the kind its requests go out with.
        self._keys: SecurityContext | None = None
        self._send_kind = KeyKind.GLOBAL

    def _security(self) -> AssociationSecurity:
        sec = self.settings.security
        if sec is None:
            raise LocalProtocolError(
                f"{self.settings.authentication.value} needs keys and a client system title")
        return sec

    def _hls_associate(self, initiate: InitiateRequest) -> bytes:
        sec = self._security()
        self._hls_client_reset()
        self._own_ctos = sec.challenge()
        if sec.dedicated_keys is not None:
            initiate = self._propose_dedicated(sec, initiate)
        ciphering = None
        if sec.policy is not None:
            # Under authentication only the InitiateRequest travels readable: one carrying our
            # dedicated key is always encrypted too (auth-enc covers any policy a meter asks).
            policy = sec.policy if self._keys is None else Policy.AUTHENTICATED_ENCRYPTION
            ciphering = Ciphering(sec.context, SecurityControl(policy), sec.take_counter())
        aarq = hls_aarq(self.settings.authentication.mechanism, sec.system_title, self._own_ctos,
                        initiate, ciphering)
        return aarq.encode()

    def _propose_dedicated(self, sec: AssociationSecurity,
                           initiate: InitiateRequest) -> InitiateRequest:
        """``initiate`` with a fresh dedicated key, kept as this association's keys."""
        assert sec.dedicated_keys is not None
        if sec.policy is None:
            raise LocalProtocolError("a dedicated key travels in the ciphered InitiateRequest: "
                                     "it needs a security policy (auth, enc or auth-enc)")
        key = sec.dedicated_keys()
        if not isinstance(key, bytes) or len(key) != 16:
            raise LocalProtocolError("the dedicated key source must give 16 octets")
        self._keys = replace(sec.context, dedicated_key=sec.context.global_key.with_block_key(key))
        return replace(initiate, dedicated_key=key)

    # ---- pass 2: the AARE ----------------------------------------------------------------
    def _hls_on_aare(self, aare: AARE) -> None:
        sec = self._security()
        context = (ApplicationContext.LOGICAL_NAME if sec.policy is None
                   else ApplicationContext.LOGICAL_NAME_WITH_CIPHERING)
        if aare.application_context != context:
            raise RemoteProtocolError(
                f"AARE accepted with application context {aare.application_context.name}")
        self._server_title, self._server_stoc = server_title_and_stoc(aare)
        info = open_aare(aare, self._keys or sec.context, sec.policy, sec.guard)
        if isinstance(info, ConfirmedServiceError):
            raise RemoteProtocolError(f"association refused: {info}")
        if not isinstance(info, InitiateResponse):
            raise RemoteProtocolError("accepted AARE without an xDLMS InitiateResponse")
        self._conformance = Conformance(info.negotiated_conformance)
        self._peer_max_pdu = info.server_max_receive_pdu_size
        # Pass 3: f(StoC) to method 1 of the current association, sent by the session.
        s = self.settings
        self._hls_invoke = 1
        request = ActionRequestNormal(self._hls_invoke, _REPLY_TO_HLS,
                                      Typed(DataType.OCTET_STRING, self._f_stoc(sec)),
                                      s.high_priority, s.confirmed).encode()
        self._outbox.append(self._client_seal(request))
        self._state = AssociationState.AWAITING_HLS

    def _f_stoc(self, sec: AssociationSecurity) -> bytes:
        s = self.settings
        mechanism = s.authentication.mechanism
        assert self._server_title is not None
        if mechanism is AuthMechanism.HLS_GMAC:
            return gmac_response(sec.context.global_key, sec.system_title, sec.take_counter(),
                                 self._server_stoc)
        if mechanism is AuthMechanism.HLS_SHA256:
            return sha256_response(s.password, sec.system_title, self._server_title,
                                   self._server_stoc, self._own_ctos)
        return hash_response(mechanism, s.password, self._server_stoc)

    # ---- pass 4: the meter's f(CtoS) -----------------------------------------------------
    def _hls_on_reply(self, apdu: ActionResponseNormal) -> None:
        self._state = AssociationState.IDLE
        if apdu.invoke_id != self._hls_invoke:
            raise RemoteProtocolError(f"action response {apdu.invoke_id} does not answer f(StoC)")
        if apdu.result is not ActionResult.SUCCESS:
            raise AuthenticationError(
                f"HLS authentication refused by the meter ({apdu.result.label}): wrong keys, "
                "secret or system title?")
        answer = getattr(apdu.return_data, "value", apdu.return_data)
        if not isinstance(answer, (bytes, bytearray)):
            raise AuthenticationError("HLS: the meter's f(CtoS) is not an octet string")
        try:
            self._check_f_ctos(bytes(answer))
        except HlsAuthenticationFailed as exc:
            raise AuthenticationError(f"HLS: the meter failed our challenge: {exc}") from None
        if self._keys is not None:  # the association is up: its requests go out ded-
            self._send_kind = KeyKind.DEDICATED
        self._state = AssociationState.ASSOCIATED
        self._events.append(Associated(self._conformance, self._peer_max_pdu))

    def _hls_on_refusal(self, apdu: ExceptionResponse | ConfirmedServiceError) -> None:
        self._state = AssociationState.IDLE
        raise_if_counter_refused(apdu)
        raise AuthenticationError(f"HLS authentication refused by the meter: {apdu}")

    def _check_f_ctos(self, answer: bytes) -> None:
        s = self.settings
        sec = self._security()
        mechanism = s.authentication.mechanism
        title = self._server_title
        assert title is not None
        if mechanism is AuthMechanism.HLS_GMAC:
            verify_gmac_response(sec.context.global_key, title, self._own_ctos, answer)
        elif mechanism is AuthMechanism.HLS_SHA256:
            verify_response(sha256_response(s.password, title, sec.system_title,
                                            self._own_ctos, self._server_stoc), answer, mechanism)
        else:
            verify_response(hash_response(mechanism, s.password, self._own_ctos), answer,
                            mechanism)

    # ---- the cipher step -----------------------------------------------------------------
    def _client_seal(self, raw: bytes) -> bytes:
        sec = self.settings.security
        if sec is None or sec.policy is None:
            return raw
        return sec.seal(raw, False, self._keys, self._send_kind)

    def _client_open(self, raw: bytes) -> bytes:
        """A received APDU made plain (ciphered ones deciphered, counter checked)."""
        sec = self.settings.security
        if sec is None:
            return raw
        if raw[0] in _PLAIN_RESPONSES:
            if sec.policy is not None:
                raise RemoteProtocolError(
                    f"plain response under the security policy {sec.policy.label}")
            return raw
        if not is_ciphered(raw):
            return raw
        opened = sec.open(raw, self._server_title, self._keys)
        self._opened = (raw, opened)
        return opened.apdu

    # ---- express exchange (session/express.py): the cipher step as a template --------------
    def express_cipher(self, answer: bytes) -> tuple[bytes, ExpressCipher] | None:
        """For the express path: when ``answer`` is the latest ciphered APDU this association
        opened (with the server's system title, under its policy), its plain APDU and the
        ``ExpressCipher`` that opens later answers protected the same way; else None."""
        sec = self.settings.security
        opened = self._opened
        if sec is None or opened is None or opened[0] != answer:
            return None
        cipher = sec.express(opened[1], self._keys)
        return None if cipher is None else (opened[1].apdu, cipher)

    def express_request_length(self, plain_length: int) -> int:
        """Octets of a request of ``plain_length`` octets as ``_send`` puts it out (sealed under
        a security policy), for the express path's one-frame check."""
        sec = self.settings.security
        if sec is None or sec.policy is None:
            return plain_length
        return sec.sealed_length(plain_length)
