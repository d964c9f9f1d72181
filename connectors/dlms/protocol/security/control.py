"""Security header of a protected xDLMS APDU: security control byte and invocation counter.

Green Book (DLMS UA 1000-2), "Security header": SH = SC || IC.

SC, one octet: bits 0-3 security suite id, bit 4 authentication applied, bit 5 encryption
applied, bit 6 key set (0 unicast, 1 broadcast), bit 7 compression. IC: 4 octets, big-endian.

Suites 0 and 1 protect APDUs the same way, with AES-GCM-128 (suite 1 only adds ECDSA/ECDH key
management, unused here); meters in service send suite id 1 on encryption-only pushes, so both
are accepted. Suite 2 (AES-GCM-256) and the reserved ids are refused with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..errors import DecodeError, LocalProtocolError, RemoteProtocolError

_AUTHENTICATED, _ENCRYPTED, _BROADCAST, _COMPRESSED = 0x10, 0x20, 0x40, 0x80
SUPPORTED_SUITES = (0, 1)
HEADER_LENGTH = 5  # SC + IC
MAX_INVOCATION_COUNTER = 0xFFFFFFFF


class UnsupportedSecurity(RemoteProtocolError):
    """The peer protected an APDU in a way this stack does not implement (suite, compression)."""


class AuthenticationTagMismatch(RemoteProtocolError):
    """The GCM tag did not verify: wrong key, system title or invocation counter, or tampering.

    The message never contains key material, plaintext or the tags themselves.
    """


class SecurityPolicyViolation(RemoteProtocolError):
    """The peer protected an APDU less than the association's security policy requires."""


class Policy(Enum):
    """Protection levels of an APDU (the security policy of a client/server association)."""

    AUTHENTICATION = _AUTHENTICATED
    ENCRYPTION = _ENCRYPTED
    AUTHENTICATED_ENCRYPTION = _AUTHENTICATED | _ENCRYPTED

    @property
    def label(self) -> str:
        return {"AUTHENTICATION": "auth", "ENCRYPTION": "enc"}.get(self.name, "auth-enc")

    def covers(self, required: Policy) -> bool:
        """True when this protection includes everything ``required`` asks for."""
        return self.value & required.value == required.value


def check_suite(suite: int, local: bool) -> None:
    """Refuse suites other than 0/1: LocalProtocolError for our settings, Remote for the peer's."""
    if suite in SUPPORTED_SUITES:
        return
    what = ("security suite 2 (AES-GCM-256) is not supported" if suite == 2
            else f"security suite {suite} is reserved")
    if local:
        raise LocalProtocolError(what)
    raise UnsupportedSecurity(f"peer used {what}")


@dataclass(frozen=True)
class SecurityControl:
    """The security control byte as fields."""

    policy: Policy = Policy.AUTHENTICATED_ENCRYPTION
    suite: int = 0
    broadcast: bool = False
    compressed: bool = False

    def __post_init__(self) -> None:
        if not 0 <= self.suite <= 15:
            raise LocalProtocolError(f"security suite id {self.suite} out of range 0..15")
        check_suite(self.suite, local=True)
        if self.compressed:
            raise LocalProtocolError("compression of protected APDUs is not supported")

    @property
    def authenticated(self) -> bool:
        return self.policy is not Policy.ENCRYPTION

    @property
    def encrypted(self) -> bool:
        return self.policy is not Policy.AUTHENTICATION

    @property
    def byte(self) -> int:
        return (self.policy.value | self.suite | (_BROADCAST if self.broadcast else 0)
                | (_COMPRESSED if self.compressed else 0))

    @classmethod
    def decode(cls, value: int) -> SecurityControl:
        """Decode a received SC byte; refuse what cannot be deciphered here."""
        known = _DECODED.get(value)
        if known is not None:  # every APDU has one: keep it cheap
            return known
        check_suite(value & 0x0F, local=False)
        if value & _COMPRESSED:
            raise UnsupportedSecurity("peer used compression of the protected APDU "
                                      "(security control 0x%02X)" % value)
        if not value & (_AUTHENTICATED | _ENCRYPTED):
            raise UnsupportedSecurity(
                "security control 0x%02X applies neither authentication nor encryption" % value)
        control = cls(Policy(value & 0x30), value & 0x0F, bool(value & _BROADCAST))
        _DECODED[value] = control
        return control


_DECODED: dict[int, SecurityControl] = {}  # at most the 2 x 3 x 2 valid SC values


@dataclass(frozen=True)
class SecurityHeader:
    control: SecurityControl
    invocation_counter: int

    def __post_init__(self) -> None:
        if not 0 <= self.invocation_counter <= MAX_INVOCATION_COUNTER:
            raise LocalProtocolError("invocation counter out of range 0..2^32-1")

    def encode(self) -> bytes:
        return bytes((self.control.byte,)) + self.invocation_counter.to_bytes(4, "big")

    @classmethod
    def decode(cls, data: bytes, offset: int = 0) -> SecurityHeader:
        if len(data) - offset < HEADER_LENGTH:
            raise DecodeError("truncated security header (SC + invocation counter)", offset)
        control = SecurityControl.decode(data[offset])
        return cls(control, int.from_bytes(data[offset + 1:offset + 5], "big"))


class ReplayedInvocationCounter(RemoteProtocolError):
    """The peer sent an invocation counter not above the last one accepted from it."""


# What a received APDU that fails its security checks raises: not a malformed answer to work
# around (with single GETs, say) but a session to start again.
SECURITY_FAILURES = (AuthenticationTagMismatch, ReplayedInvocationCounter,
                     SecurityPolicyViolation, UnsupportedSecurity)


class CounterGuard:
    """Replay protection for one peer and key: each accepted invocation counter must be higher
    than the last. Call ``accept`` only after the APDU's tag verified, so a forged APDU cannot
    move the counter; ``last`` is what a caller persists and restores."""

    __slots__ = ("last",)

    def __init__(self, last: int | None = None) -> None:
        self.last = last

    def accept(self, header: SecurityHeader) -> None:
        self.accept_counter(header.invocation_counter)

    def is_fresh(self, counter: int) -> bool:
        """Whether ``accept_counter(counter)`` would take it (nothing changes)."""
        last = self.last
        return last is None or counter > last

    def accept_counter(self, counter: int) -> None:
        if self.last is not None and counter <= self.last:
            raise ReplayedInvocationCounter(
                f"invocation counter {counter} not above the last accepted {self.last} (replay?)")
        self.last = counter
