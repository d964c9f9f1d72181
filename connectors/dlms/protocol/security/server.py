"""The security state of one end of an association under suite 0 (client or server), sans-IO."""

from __future__ import annotations

from collections.abc import Callable

from .apdu import Deciphered, SecurityContext
from .control import CounterGuard, Policy, ReplayedInvocationCounter, SecurityControl
from .counter import InvocationCounter


class AssociationSecurity:
    """The security state of one end (a meter, or a client of one meter), shared by the
    associations it makes: ``system_title`` is ours, ``guard`` checks the peer's counters and
    ``counter`` hands out ours (an ``InvocationCounter``, possibly persisted by the caller).

    ``policy`` None: ciphered APDUs are accepted at any protection level but not required.
    ``challenge()`` draws StoC (the caller's randomness: this layer draws none). ``guard.last``
    is the client's last accepted invocation counter (the frame counter object shows it).
    repr() shows no key.
    """

    __slots__ = ("challenge", "context", "guard", "hls_refused", "counter", "policy",
                 "refused", "replays", "system_title")

    def __init__(self, context: SecurityContext, system_title: bytes, policy: Policy | None,
                 challenge: Callable[[], bytes], guard: CounterGuard | None = None,
                 counter: InvocationCounter | None = None) -> None:
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

    def __repr__(self) -> str:
        return (f"AssociationSecurity(system_title={self.system_title.hex()}, policy={self.policy}, "
                f"last_counter={self.guard.last}, replays={self.replays})")

    def open(self, raw: bytes, client_title: bytes | None) -> Deciphered:
        """Decipher a request and accept its counter (after its tag verified)."""
        opened = self.context.decrypt(raw, client_title, required=self.policy)
        try:
            self.guard.accept(opened.header)
        except ReplayedInvocationCounter:
            self.replays += 1
            raise
        return opened

    def take_counter(self) -> int:
        """Our next invocation counter, used once."""
        return self.counter.take()

    def seal(self, plain: bytes, general: bool) -> bytes:
        control = SecurityControl(self.policy or Policy.AUTHENTICATED_ENCRYPTION)
        counter = self.take_counter()
        return self.context.encrypt(plain, control, self.system_title, counter, general=general)
