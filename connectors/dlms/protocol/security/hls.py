"""High-level security (HLS) authentication functions: mechanisms 3, 4, 5 and 6.

Green Book, "HLS authentication mechanisms". After the AARQ (CtoS, the client's challenge) and
the AARE (StoC, the server's), each side proves it knows the secret by sending f(challenge of
the other side) in reply_to_HLS_authentication (Association LN method 1):

- 3 HLS-MD5: client f(StoC) = MD5(StoC || secret); server f(CtoS) = MD5(CtoS || secret).
- 4 HLS-SHA1: the same with SHA-1.
- 5 HLS-GMAC: f(StoC) = SC || IC || GMAC(SC || AK || StoC), IV = client system title || IC;
  f(CtoS) the same with CtoS, the server's system title and the server's IC.
- 6 HLS-SHA256: f(StoC) = SHA-256(secret || ST-C || ST-S || StoC || CtoS);
  f(CtoS) = SHA-256(secret || ST-S || ST-C || CtoS || StoC).

SC for mechanism 5 is authentication-only with the suite id (0x10 for suite 0). Challenges are
random bytes from the caller (sans-IO: nothing here draws random numbers).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from ..apdu.acse import AuthMechanism
from ..errors import LocalProtocolError, RemoteProtocolError
from .control import Policy, SecurityControl, SecurityHeader, check_suite
from .gcm import TAG_LENGTH, GcmKey, check_system_title

CHALLENGE_MIN, CHALLENGE_MAX = 8, 64


class HlsAuthenticationFailed(RemoteProtocolError):
    """The peer's f(challenge) does not match what its secret should give."""


def check_challenge(challenge: bytes, whose: str = "challenge") -> bytes:
    """Green Book: a challenge is 8 to 64 octets."""
    if not CHALLENGE_MIN <= len(challenge) <= CHALLENGE_MAX:
        raise RemoteProtocolError(
            f"{whose} of {len(challenge)} octets (HLS needs {CHALLENGE_MIN}..{CHALLENGE_MAX})")
    return bytes(challenge)


_DIGESTS: dict[AuthMechanism, Callable[[bytes], bytes]] = {
    AuthMechanism.HLS_MD5: lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
    AuthMechanism.HLS_SHA1: lambda data: hashlib.sha1(data, usedforsecurity=False).digest(),
}


def hash_response(mechanism: AuthMechanism, secret: bytes, challenge: bytes) -> bytes:
    """f(challenge) of mechanisms 3 and 4: H(challenge || secret)."""
    if mechanism not in _DIGESTS:
        raise LocalProtocolError(f"{mechanism.name} is not a challenge || secret hash mechanism")
    return _DIGESTS[mechanism](check_challenge(challenge) + secret)


def sha256_response(secret: bytes, own_title: bytes, peer_title: bytes, peer_challenge: bytes,
                    own_challenge: bytes) -> bytes:
    """f(peer's challenge) of mechanism 6, from the sender's point of view.

    Client: own = client (ST-C, CtoS), peer = server (ST-S, StoC), giving
    SHA-256(secret || ST-C || ST-S || StoC || CtoS); the server's call mirrors it.
    """
    return hashlib.sha256(
        secret + check_system_title(own_title, "own system title")
        + check_system_title(peer_title, "peer system title")
        + check_challenge(peer_challenge) + check_challenge(own_challenge)).digest()


def gmac_response(key: GcmKey, own_title: bytes, invocation_counter: int, peer_challenge: bytes,
                  suite: int = 0) -> bytes:
    """f(peer's challenge) of mechanism 5: SC || IC || GMAC(SC || AK || challenge)."""
    header = SecurityHeader(SecurityControl(Policy.AUTHENTICATION, suite), invocation_counter)
    tag = key.gmac(header.control.byte, own_title, invocation_counter,
                   check_challenge(peer_challenge))
    return header.encode() + tag


def verify_gmac_response(key: GcmKey, peer_title: bytes, own_challenge: bytes,
                         response: bytes) -> int:
    """Check the peer's f(our challenge) of mechanism 5; return the invocation counter it used.

    The IC is returned so the caller can check it against replay (it must grow).
    """
    if len(response) != 5 + TAG_LENGTH:
        raise HlsAuthenticationFailed(
            f"HLS-GMAC response of {len(response)} octets (expected {5 + TAG_LENGTH})")
    control = response[0]
    check_suite(control & 0x0F, local=False)
    if control & 0xF0 != Policy.AUTHENTICATION.value:
        raise HlsAuthenticationFailed(
            f"HLS-GMAC response with security control 0x{control:02X} (expected 0x1n)")
    counter = int.from_bytes(response[1:5], "big")
    expected = key.gmac(control, peer_title, counter, check_challenge(own_challenge))
    if not hmac.compare_digest(expected, response[5:]):
        raise HlsAuthenticationFailed(
            "HLS-GMAC: the peer's reply to our challenge does not verify (wrong keys or "
            "system title)")
    return counter


def verify_response(expected: bytes, response: bytes, mechanism: AuthMechanism) -> None:
    """Constant-time check of a hash response (mechanisms 3, 4, 6)."""
    if not hmac.compare_digest(expected, response):
        raise HlsAuthenticationFailed(
            f"{mechanism.name}: the peer's reply to our challenge does not match the secret")
