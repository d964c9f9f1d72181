"""The security state of one end of an association under suite 0 (client or server), sans-IO."""

from __future__ import annotations

from collections.abc import Callable

from .apdu import Deciphered, KeyKind, SecurityContext, ciphered_head, service_specific
from .control import CounterGuard, Policy, ReplayedInvocationCounter, SecurityControl
from .counter import InvocationCounter
from .express import ExpressCipher
from .gcm import sealed_length

# The SC of what we send, per policy (None: authenticated encryption), built once.
_CONTROLS: dict[Policy | None, SecurityControl] = {p: SecurityControl(p) for p in Policy}
_CONTROLS[None] = _CONTROLS[Policy.AUTHENTICATED_ENCRYPTION]


class AssociationSecurity:
    """The security state of one end (a meter, or a client of one meter), shared by the
    associations it makes: ``system_title`` is ours, ``guard`` checks the peer's counters and
    ``counter`` hands out ours (an ``InvocationCounter``, possibly persisted by the caller).

    ``policy`` None: ciphered APDUs are accepted at any protection level but not required.
    ``challenge()`` draws StoC (the caller's randomness: this layer draws none). ``guard.last``
    is the client's last accepted invocation counter (the frame counter object shows it).
    repr() shows no key.

    Dedicated keys: a client with ``dedicated_keys`` (the caller's randomness, like
    ``challenge``) draws a fresh 16-octet key for each association and proposes it in the
    ciphered InitiateRequest; a server takes the one a client proposes unless
    ``refuse_dedicated`` (it then rejects such an AARQ). The key belongs to the association, not
    to this object: it is never kept here. ``dedicated`` counts the associations that had one.
    """

    __slots__ = ("challenge", "context", "counter", "dedicated", "dedicated_keys", "guard",
                 "hls_refused", "policy", "refuse_dedicated", "refused", "replays",
                 "system_title")

    def __init__(self, context: SecurityContext, system_title: bytes, policy: Policy | None,
                 challenge: Callable[[], bytes], guard: CounterGuard | None = None,
                 counter: InvocationCounter | None = None,
                 dedicated_keys: Callable[[], bytes] | None = None,
                 refuse_dedicated: bool = False) -> None:
        if len(system_title) != 8:
            raise ValueError(f"server system title of {len(system_title)} octets (expected 8)")
        self.context = context
        self.system_title = bytes(system_title)
        self.policy = policy
        self.challenge = challenge
        self.guard = guard if guard is not None else CounterGuard()
        self.counter = counter if counter is not None else InvocationCounter()
        self.replays = 0  # requests refused for an invocation counter not above the last
        self.refused = 0  # ciphered requests refused otherwise (tag, policy, no keys)
        self.hls_refused = 0  # associations dropped at pass 3 (wrong f(StoC))
        self.dedicated_keys = dedicated_keys
        self.refuse_dedicated = refuse_dedicated
        self.dedicated = 0  # associations made with a dedicated key

    def __repr__(self) -> str:
        return (f"AssociationSecurity(system_title={self.system_title.hex()}, policy={self.policy}, "
                f"last_counter={self.guard.last}, replays={self.replays})")

    def open(self, raw: bytes, client_title: bytes | None,
             keys: SecurityContext | None = None) -> Deciphered:
        """Decipher an APDU from the peer and accept its counter (after its tag verified);
        ``keys``: the association's (with its dedicated key), else ours."""
        context = self.context if keys is None else keys
        opened = context.decrypt(raw, client_title, required=self.policy)
        try:
            self.guard.accept(opened.header)
        except ReplayedInvocationCounter:
            self.replays += 1
            raise
        return opened

    def take_counter(self) -> int:
        """Our next invocation counter, used once."""
        return self.counter.take()

    def seal(self, plain: bytes, general: bool, keys: SecurityContext | None = None,
             kind: KeyKind = KeyKind.GLOBAL) -> bytes:
        """``plain`` ciphered with our title and the next invocation counter (taken here, once
        per APDU sent: never a cached result); ``kind`` DEDICATED: with the dedicated key of
        ``keys`` (the association's), as ded-xxx or general-ded-ciphering."""
        control = _CONTROLS[self.policy]
        counter = self.take_counter()
        context = self.context if keys is None else keys
        return context.encrypt(plain, control, self.system_title, counter, kind, general)

    def sealed_length(self, plain_length: int) -> int:
        """Octets of ``seal(plain, False)`` for a plain APDU of ``plain_length`` octets whose tag
        has a service-specific ciphered form."""
        content = sealed_length(plain_length, _CONTROLS[self.policy].policy)
        return len(ciphered_head(0, content)) + content

    def express(self, opened: Deciphered,
                keys: SecurityContext | None = None) -> ExpressCipher | None:
        """The express path's cipher step for answers protected as ``opened`` (an answer this end
        just opened: its tag, SC, length and the peer's system title); None when it came as
        general-*-ciphering (its own title travels in it) or below the policy."""
        kind = service_specific(opened.tag)
        control = opened.header.control
        if kind is None or (self.policy is not None and not control.policy.covers(self.policy)):
            return None
        key = (self.context if keys is None else keys).key_for(kind[1], control.broadcast)
        return ExpressCipher(key, self.guard, opened.system_title, opened.tag, control,
                             len(opened.apdu))
