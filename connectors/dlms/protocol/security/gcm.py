"""AES-GCM-128 protection of xDLMS APDUs (security suites 0 and 1), through `cryptography`.

Green Book, "Security suite 0": IV = system title (8 octets) || invocation counter (4 octets);
the tag is 12 octets. What is authenticated (AAD) depends on the protection level:

| level | AAD | sent after SC || IC |
|---|---|---|
| authentication only | SC || AK || plaintext | plaintext || T |
| encryption only | none, and no tag | ciphertext |
| authenticated encryption | SC || AK | ciphertext || T |

The system title in the IV is always the sender's: the client's on requests, the server's on
responses. No cipher is written here: every operation is one or two calls of `cryptography`'s
AESGCM. Opening uses GCM's own structure: its ciphertext is the plaintext XOR the AES-CTR
keystream (NIST SP 800-38D, GCTR from IV || 00000002), so sealing the ciphertext gives the
plaintext back; the tag is then recomputed from that plaintext and compared in constant time
before anything is returned. (AESGCM.decrypt wants a 16-octet tag; DLMS sends 12.)
"""

from __future__ import annotations

import hmac

from ..errors import DecodeError, LocalProtocolError
from .control import (
    HEADER_LENGTH,
    MAX_INVOCATION_COUNTER,
    AuthenticationTagMismatch,
    Policy,
    SecurityControl,
    SecurityHeader,
)

TAG_LENGTH = 12
SYSTEM_TITLE_LENGTH = 8
KEY_LENGTH = 16


def check_system_title(title: bytes, what: str = "system title") -> bytes:
    if len(title) != SYSTEM_TITLE_LENGTH:
        raise LocalProtocolError(f"{what} must be {SYSTEM_TITLE_LENGTH} octets, got {len(title)}")
    return bytes(title)


def sealed_length(plain_length: int, policy: Policy) -> int:
    """Octets of SC || IC || protected content that ``GcmKey.seal`` makes of ``plain_length``
    octets at ``policy`` (the tag is left out with encryption only)."""
    tag = 0 if policy is Policy.ENCRYPTION else TAG_LENGTH
    return HEADER_LENGTH + plain_length + tag


def _check_key(key: bytes, what: str) -> bytes:
    # The message names the key and its length, never its value.
    if len(key) != KEY_LENGTH:
        raise LocalProtocolError(f"{what} must be {KEY_LENGTH} octets (AES-128), got {len(key)}")
    return bytes(key)


class GcmKey:
    """One block cipher key (global unicast, broadcast or dedicated) with the authentication key.

    repr() shows no key material, so a GcmKey can sit in an object that gets logged.
    """

    __slots__ = ("_auth_key", "_aead")

    def __init__(self, block_key: bytes, authentication_key: bytes) -> None:
        block_key = _check_key(block_key, "block cipher key")
        self._auth_key = _check_key(authentication_key, "authentication key")
        # Imported on the first key: loading OpenSSL's bindings costs ~9 MB of RSS, which a
        # gateway whose meters are all unciphered should not pay.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(block_key)

    def __repr__(self) -> str:
        return "GcmKey(<keys hidden>)"

    def with_block_key(self, block_key: bytes) -> GcmKey:
        """Another block cipher key under the same authentication key: a dedicated key (the
        Green Book keeps one AK for every key of the client), without the AK leaving here."""
        return GcmKey(block_key, self._auth_key)

    def seal(self, control: SecurityControl, system_title: bytes, invocation_counter: int,
             plaintext: bytes) -> bytes:
        """SC || IC || protected content, for the sender ``system_title``."""
        if not 0 <= invocation_counter <= MAX_INVOCATION_COUNTER:
            raise LocalProtocolError("invocation counter out of range 0..2^32-1")
        ic = invocation_counter.to_bytes(4, "big")  # (as SecurityHeader.encode, without one)
        iv = check_system_title(system_title) + ic
        sc = bytes((control.byte,))
        header = sc + ic
        aead = self._aead
        policy = control.policy
        if policy is Policy.AUTHENTICATED_ENCRYPTION:
            sealed = aead.encrypt(iv, plaintext, sc + self._auth_key)
            return header + sealed[:-16 + TAG_LENGTH]
        if policy is Policy.AUTHENTICATION:
            tag = aead.encrypt(iv, b"", sc + self._auth_key + plaintext)[:TAG_LENGTH]
            return header + plaintext + tag
        return header + aead.encrypt(iv, plaintext, None)[:-16]

    def open(self, system_title: bytes, content: bytes,
             header: SecurityHeader | None = None) -> tuple[SecurityHeader, bytes]:
        """Check and remove the protection of SC || IC || content sent by ``system_title``
        (``header``: the content's security header, when already decoded)."""
        if header is None:
            header = SecurityHeader.decode(content)
        iv = check_system_title(system_title) + content[1:HEADER_LENGTH]
        plain = self.unseal(header.control.policy, iv, content[:1], content[HEADER_LENGTH:])
        return header, plain

    def unseal(self, policy: Policy, iv: bytes, sc: bytes, body: bytes) -> bytes:
        """The plaintext of ``body`` (what follows SC || IC) protected at ``policy`` with ``iv``
        (sender's system title || IC) and the SC byte ``sc``; AuthenticationTagMismatch when its
        tag does not verify. ``open`` without the header: the express path has checked it."""
        if policy is Policy.ENCRYPTION:
            return self._keystream(iv, body)
        if len(body) < TAG_LENGTH:
            raise DecodeError("protected APDU shorter than its 12-octet authentication tag",
                              HEADER_LENGTH)
        body, tag = body[:-TAG_LENGTH], body[-TAG_LENGTH:]
        aead = self._aead
        if policy is Policy.AUTHENTICATION:
            expected = aead.encrypt(iv, b"", sc + self._auth_key + body)[:TAG_LENGTH]
        else:
            # Recover the plaintext with the keystream, then recompute the ciphertext's tag from
            # it: the same GCM computation as the sender's, and nothing is released unchecked.
            plaintext = self._keystream(iv, body)
            expected = aead.encrypt(iv, plaintext, sc + self._auth_key)[-16:-16 + TAG_LENGTH]
            body = plaintext
        if not hmac.compare_digest(expected, tag):
            raise AuthenticationTagMismatch(_MISMATCH)
        return bytes(body)

    def gmac(self, control_byte: int, system_title: bytes, invocation_counter: int,
             data: bytes) -> bytes:
        """The 12-octet GMAC tag over SC || AK || data (HLS-GMAC, authentication-only)."""
        iv = check_system_title(system_title) + invocation_counter.to_bytes(4, "big")
        aad = bytes((control_byte,)) + self._auth_key + data
        aead = self._aead
        return aead.encrypt(iv, b"", aad)[:TAG_LENGTH]

    def _keystream(self, iv: bytes, data: bytes) -> bytes:
        # GCM's GCTR is an XOR with the AES-CTR keystream from IV || 00000002 (SP 800-38D), so
        # sealing the ciphertext without AAD gives the plaintext back (its tag is dropped). One
        # AESGCM call costs ~2 µs, a fresh Cipher/CTR context ~15 µs.
        return self._aead.encrypt(iv, data, None)[:-16]


_MISMATCH = ("authentication tag mismatch: wrong block cipher or authentication key, wrong "
             "system title or invocation counter, or the APDU was altered")
