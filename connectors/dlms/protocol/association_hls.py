"""Server role of HLS (mechanisms 3-6) and ciphered xDLMS (security suite 0), sans-IO.

Green Book, four-pass authentication: the AARQ carries the client's system title
(calling-AP-title) and CtoS; the server accepts with diagnostic authentication-required, its
system title and StoC, and waits in AWAITING_HLS. The client then calls method 1
(reply_to_HLS_authentication) of the current association (0-0:40.0.0.255) with f(StoC); the
server checks it and answers f(CtoS), or refuses and drops the association.

Ciphering: a ciphered request (glo-xxx or general-glo-ciphering) is opened with the client's
system title, its protection checked against the policy, its invocation counter against the
meter's ``CounterGuard`` (a counter not above the last accepted one is refused and counted); the
answers are ciphered the same way, with the server's title and its own growing counter.

Dedicated key: a key in the (ciphered) InitiateRequest of the AARQ becomes the association's
(``_keys``) until the RLRQ or the next AARQ; a request ciphered with it (ded-xxx or
general-ded-ciphering) is answered the same way, one under the global key likewise. The client's
counters are checked by the one guard of its system title whichever key they came under.
"""

from __future__ import annotations

from typing import Any

from .apdu import (
    AARQ,
    ActionRequestNormal,
    ActionResponseNormal,
    ActionResult,
    AuthMechanism,
    ExceptionResponse,
    ServiceErrorCode,
    StateError,
)
from .association_events import AssociationSettings, AssociationState, RequestRefused
from .axdr import DataType, Typed
from .errors import DlmsError, RemoteProtocolError
from .security import (
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    HlsAuthenticationFailed,
    KeyKind,
    ReplayedInvocationCounter,
    SecurityContext,
    gmac_response,
    hash_response,
    is_ciphered,
    sha256_response,
    verify_gmac_response,
    verify_response,
)
from .security.apdu import tag_key_kind
from .security.hls import check_challenge
from .security.server import AssociationSecurity

__all__ = ["HlsServer", "AssociationSecurity", "Protection"]

# How a request came (general-*-ciphering?, key kind): its answer goes out the same way.
Protection = tuple[bool, KeyKind]
_GENERAL = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)

ASSOCIATION_LN = bytes((0, 0, 40, 0, 0, 255))
REPLY_TO_HLS = 1  # method of the association LN object


class HlsServer:
    """Mixin of ServerRole: the HLS pass 3/4 and the cipher step of requests and answers."""

    settings: AssociationSettings
    _state: AssociationState
    _events: list[Any]
    _outbox: list[bytes]

    def _hls_reset(self) -> None:
        self._client_title: bytes | None = None
        self._ctos = self._stoc = b""
        self._cipher: Protection | None = None  # the request in hand (None: plain)
        self._keys: SecurityContext | None = None  # the association's, with its dedicated key

    # ---- AARQ (called from ServerRole._on_aarq) -------------------------------------------
    def _hls_check_aarq(self, aarq: AARQ) -> bool:
        """Keep the client's title and CtoS, draw StoC; False if the AARQ lacks them."""
        self._client_title = aarq.calling_ap_title
        mechanism = aarq.mechanism
        if mechanism < AuthMechanism.HLS_MD5:
            return True
        sec = self.settings.security
        needs_title = mechanism in (AuthMechanism.HLS_GMAC, AuthMechanism.HLS_SHA256)
        if needs_title and (sec is None or aarq.calling_ap_title is None
                            or len(aarq.calling_ap_title) != 8):
            return False
        try:
            self._ctos = check_challenge(aarq.calling_authentication_value or b"", "CtoS")
        except RemoteProtocolError:
            return False
        self._stoc = sec.challenge() if sec is not None else b""
        return len(self._stoc) >= 8

    def _take_dedicated(self, key: bytes | None) -> bool:
        """The AARQ's dedicated key (None: none) as this association's; False when it must be
        refused (the meter refuses dedicated keys, or not 16 octets)."""
        sec = self.settings.security
        self._keys = None
        if key is None:
            return True
        if sec is None or sec.refuse_dedicated or len(key) != 16:
            return False
        self._keys = SecurityContext(sec.context.global_key,
                                     sec.context.global_key.with_block_key(key),
                                     sec.context.broadcast_key)
        return True

    def _hls_open_initiate(self, info: bytes) -> bytes:
        """The AARQ's glo-initiate-request deciphered (DlmsError when it does not open)."""
        sec = self.settings.security
        if sec is None:
            raise RemoteProtocolError("ciphered InitiateRequest, and no keys are set")
        return sec.open(info, self._client_title).apdu

    # ---- requests: the cipher step -------------------------------------------------------
    def _server_open(self, raw: bytes) -> bytes | None:
        """The plain APDU of a received one; None (refusal queued) when it must not pass."""
        self._cipher = None
        sec = self.settings.security
        if not is_ciphered(raw):
            if (sec is not None and sec.policy is not None and raw[:1] != b"\x60"
                    and raw[:1] != b"\x62" and self._state is not AssociationState.IDLE):
                sec.refused += 1  # AARQ and RLRQ travel plain; services must be ciphered
                self._refuse_cipher("plain request under a security policy",
                                    ServiceErrorCode.DECIPHERING_ERROR)
                return None
            return raw
        if sec is None:
            self._refuse_cipher("ciphered request, and no keys are set",
                                ServiceErrorCode.DECIPHERING_ERROR)
            return None
        try:
            opened = sec.open(raw, self._client_title, self._keys)
        except ReplayedInvocationCounter as exc:
            expected = min((sec.guard.last or 0) + 1, 0xFFFFFFFF)  # the IC we expect
            self._refuse_cipher(str(exc), ServiceErrorCode.INVOCATION_COUNTER_ERROR, expected)
            return None
        except DlmsError as exc:
            sec.refused += 1
            self._refuse_cipher(f"ciphered request refused: {exc}",
                                ServiceErrorCode.DECIPHERING_ERROR)
            return None
        self._cipher = (opened.tag in _GENERAL, tag_key_kind(opened.tag))
        return opened.apdu

    def _refuse_cipher(self, reason: str, code: ServiceErrorCode,
                       counter: int | None = None) -> None:
        response = ExceptionResponse(StateError.SERVICE_NOT_ALLOWED, code, counter)
        self._outbox.append(response.encode())
        self._events.append(RequestRefused(reason, response))

    def _protect(self, raw: bytes, cipher: Protection | None) -> bytes:
        sec = self.settings.security
        if cipher is None or sec is None:
            return raw
        return sec.seal(raw, cipher[0], self._keys, cipher[1])

    def _server_seal_outbox(self, before: int) -> None:
        """Cipher what the request just handled queued (refusals, blocks, the HLS answer)."""
        if self._cipher is None:
            return
        box = self._outbox
        for i in range(before, len(box)):
            box[i] = self._protect(box[i], self._cipher)

    # ---- pass 3/4: reply_to_HLS_authentication -------------------------------------------
    def _hls_reply(self, apdu: ActionRequestNormal) -> None:
        d = apdu.descriptor
        if (d.class_id, d.wire[2:8], d.method) != (15, ASSOCIATION_LN, REPLY_TO_HLS):
            self._hls_fail(apdu, "request before HLS authentication completed")
            return
        reply = getattr(apdu.parameters, "value", apdu.parameters)
        try:
            if not isinstance(reply, bytes):
                raise HlsAuthenticationFailed("f(StoC) is not an octet string")
            answer = self._hls_answer(reply)
        except DlmsError as exc:
            self._hls_fail(apdu, f"HLS authentication failed: {exc}")
            return
        self._state = AssociationState.ASSOCIATED
        self._outbox.append(ActionResponseNormal(
            apdu.invoke_id, ActionResult.SUCCESS, Typed(DataType.OCTET_STRING, answer),
            apdu.high_priority, apdu.confirmed).encode())

    def _hls_answer(self, reply: bytes) -> bytes:
        """Check the client's f(StoC), return our f(CtoS)."""
        s = self.settings
        mechanism = s.authentication.mechanism
        if mechanism is AuthMechanism.HLS_GMAC:
            sec = s.security
            assert sec is not None and self._client_title is not None  # checked at the AARQ
            key = sec.context.global_key
            verify_gmac_response(key, self._client_title, self._stoc, reply)
            return gmac_response(key, sec.system_title, sec.take_counter(), self._ctos)
        if mechanism is AuthMechanism.HLS_SHA256:
            sec = s.security
            assert sec is not None and self._client_title is not None
            own, peer = sec.system_title, self._client_title
            verify_response(sha256_response(s.password, peer, own, self._stoc, self._ctos),
                            reply, mechanism)
            return sha256_response(s.password, own, peer, self._ctos, self._stoc)
        verify_response(hash_response(mechanism, s.password, self._stoc), reply, mechanism)
        return hash_response(mechanism, s.password, self._ctos)

    def _hls_fail(self, apdu: ActionRequestNormal, reason: str) -> None:
        # A wrong f(StoC) ends the association: the client must start again with an AARQ.
        self._state = AssociationState.IDLE
        if self.settings.security is not None:
            self.settings.security.hls_refused += 1
        response = ActionResponseNormal(apdu.invoke_id, ActionResult.READ_WRITE_DENIED, None,
                                        apdu.high_priority, apdu.confirmed)
        self._outbox.append(response.encode())
        self._events.append(RequestRefused(reason, response))
