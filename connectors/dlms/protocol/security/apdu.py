"""Ciphered xDLMS APDUs: service-specific glo-/ded- tags and general-glo/ded-ciphering.

Green Book, xDLMS APDU ASN.1 (tags cross-checked with gurux-dlms's Command enum):

    glo-xxx / ded-xxx     ::= [tag] OCTET STRING  -- SC || IC || protected content
    general-glo-ciphering ::= [219] SEQUENCE { system-title OCTET STRING,
                                               ciphered-content OCTET STRING }
    general-ded-ciphering ::= [220] likewise, with the dedicated key

Service-specific APDUs carry no system title: the receiver takes the sender's from the
association (the AARQ's calling-AP-title, the AARE's responding-AP-title). general-*-ciphering
carries it (an empty one means "the one known from the association"); data-notification and
every other APDU without a service-specific tag travel that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property

from ..axdr import decode_length, encode_length
from ..errors import DecodeError, LocalProtocolError, RemoteProtocolError
from .control import (
    Policy,
    SecurityControl,
    SecurityHeader,
    SecurityPolicyViolation,
    UnsupportedSecurity,
)
from .gcm import GcmKey, check_system_title

GENERAL_GLO_CIPHERING = 0xDB
GENERAL_DED_CIPHERING = 0xDC


class KeyKind(IntEnum):
    GLOBAL = 0
    DEDICATED = 1


# plain tag -> (glo tag, ded tag)
_SERVICE_SPECIFIC: dict[int, tuple[int, int]] = {
    0x01: (0x21, 0x41),  # initiate-request
    0x08: (0x28, 0x48),  # initiate-response
    0x0E: (0x2E, 0x4E),  # confirmed-service-error
    0xC0: (0xC8, 0xD0),  # get-request
    0xC1: (0xC9, 0xD1),  # set-request
    0xC2: (0xCA, 0xD2),  # event-notification-request
    0xC3: (0xCB, 0xD3),  # action-request
    0xC4: (0xCC, 0xD4),  # get-response
    0xC5: (0xCD, 0xD5),  # set-response
    0xC7: (0xCF, 0xD7),  # action-response
}
# ciphered tag -> (plain tag, key kind)
_PLAIN_OF: dict[int, tuple[int, KeyKind]] = {
    ciphered: (plain, kind)
    for plain, pair in _SERVICE_SPECIFIC.items() for kind, ciphered in zip(KeyKind, pair)
}
CIPHERED_TAGS = frozenset(_PLAIN_OF) | {GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING}


def is_ciphered(apdu: bytes) -> bool:
    return bool(apdu) and apdu[0] in CIPHERED_TAGS


def service_specific(tag: int) -> tuple[int, KeyKind] | None:
    """The plain APDU tag and key kind of a service-specific ciphered tag (glo-/ded-); None
    for general-*-ciphering and any other tag."""
    return _PLAIN_OF.get(tag)


def tag_key_kind(tag: int) -> KeyKind:
    """The key kind a ciphered tag names (general-ded-ciphering and ded-xxx: DEDICATED)."""
    if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        return KeyKind.DEDICATED if tag == GENERAL_DED_CIPHERING else KeyKind.GLOBAL
    return _PLAIN_OF[tag][1]


def ciphered_head(tag: int, content_length: int) -> bytes:
    """What a service-specific ciphered APDU with ``content_length`` octets of SC || IC ||
    protected content starts with: its tag and length, as ``CipheredApdu.encode`` writes them."""
    return bytes((tag,)) + encode_length(content_length)


def ciphered_tag(plain_tag: int, kind: KeyKind = KeyKind.GLOBAL) -> int:
    """The service-specific ciphered tag of a plain APDU tag (LocalProtocolError if none)."""
    try:
        return _SERVICE_SPECIFIC[plain_tag][kind]
    except KeyError:
        raise LocalProtocolError(
            f"APDU tag 0x{plain_tag:02X} has no service-specific ciphered form; "
            "use general-glo-ciphering") from None


@dataclass(frozen=True)
class CipheredApdu:
    """The framing of a ciphered APDU, before any key is applied.

    ``content`` is SC || IC || protected content; ``system_title`` is only carried by
    general-*-ciphering (b"" when that field is empty, None for service-specific tags).
    """

    tag: int
    content: bytes
    system_title: bytes | None = None

    @property
    def key_kind(self) -> KeyKind:
        return tag_key_kind(self.tag)

    @cached_property
    def header(self) -> SecurityHeader:
        return SecurityHeader.decode(self.content)

    def encode(self) -> bytes:
        if self.tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
            title = self.system_title or b""
            body = encode_length(len(title)) + title + encode_length(len(self.content))
            return bytes((self.tag,)) + body + self.content
        return ciphered_head(self.tag, len(self.content)) + self.content

    @classmethod
    def decode(cls, data: bytes) -> CipheredApdu:
        if not data:
            raise DecodeError("empty APDU", 0)
        tag = data[0]
        if tag not in CIPHERED_TAGS:
            raise DecodeError(f"not a ciphered APDU (tag 0x{tag:02X})", 0)
        offset, title = 1, None
        if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
            length, offset = decode_length(data, offset)
            if length not in (0, 8):
                raise DecodeError(f"system title of {length} octets (expected 8)", 1)
            title = bytes(data[offset:offset + length])
            if len(title) != length:
                raise DecodeError("truncated system title", offset)
            offset += length
        length, start = decode_length(data, offset)
        if start + length != len(data):
            raise DecodeError(
                f"ciphered content length {length} does not match the "
                f"{len(data) - start} octets received", offset)
        apdu = cls(tag, bytes(data[start:]), title)
        _ = apdu.header  # check SC/IC now: a clear error before any key use
        return apdu


@dataclass(frozen=True)
class Deciphered:
    """A ciphered APDU opened: the plain APDU and what protected it."""

    apdu: bytes
    header: SecurityHeader
    tag: int
    system_title: bytes


@dataclass(frozen=True)
class SecurityContext:
    """The keys of one association. repr() hides every key.

    ``global_key``: global unicast block cipher key + authentication key. ``dedicated_key``:
    the dedicated key of the association (sent ciphered in the AARQ), if any. ``broadcast_key``:
    the global broadcast key, if the meter uses it (SC bit 6).
    """

    global_key: GcmKey
    dedicated_key: GcmKey | None = None
    broadcast_key: GcmKey | None = None

    def key_for(self, kind: KeyKind, broadcast: bool) -> GcmKey:
        if kind is KeyKind.DEDICATED:
            if self.dedicated_key is None:
                raise UnsupportedSecurity("APDU ciphered with a dedicated key, and none is set")
            return self.dedicated_key
        if broadcast:
            if self.broadcast_key is None:
                raise UnsupportedSecurity(
                    "APDU ciphered with the broadcast key, and none is set")
            return self.broadcast_key
        return self.global_key

    def encrypt(self, plain_apdu: bytes, control: SecurityControl, system_title: bytes,
                invocation_counter: int, kind: KeyKind = KeyKind.GLOBAL,
                general: bool = False) -> bytes:
        """Cipher a plain APDU sent by ``system_title`` (ours): service-specific tag unless
        ``general`` (or the APDU has none), general-glo/ded-ciphering then, with the title."""
        if not plain_apdu:
            raise LocalProtocolError("cannot cipher an empty APDU")
        key = self.key_for(kind, control.broadcast)
        content = key.seal(control, system_title, invocation_counter, plain_apdu)
        pair = None if general else _SERVICE_SPECIFIC.get(plain_apdu[0])
        if pair is not None:  # (every request of a steady cycle: no CipheredApdu object)
            return ciphered_head(pair[kind], len(content)) + content
        tag = GENERAL_DED_CIPHERING if kind is KeyKind.DEDICATED else GENERAL_GLO_CIPHERING
        return CipheredApdu(tag, content, check_system_title(system_title)).encode()

    def decrypt(self, data: bytes, peer_system_title: bytes | None, *,
                required: Policy | None) -> Deciphered:
        """Open a ciphered APDU sent by the peer; its system title comes from the APDU when it
        carries one, else from ``peer_system_title`` (learnt from the AARQ/AARE).

        ``required``: the association's security policy (None: any protection). It has no
        default on purpose: the SC byte is only authenticated by the tag it may announce away,
        so without this check a man in the middle could downgrade authenticated encryption to
        encryption only.
        """
        ciphered = CipheredApdu.decode(data)
        policy = ciphered.header.control.policy
        if required is not None and not policy.covers(required):
            raise SecurityPolicyViolation(
                f"APDU protected with {policy.label}, the security policy requires "
                f"{required.label}")
        title = ciphered.system_title or peer_system_title
        if title is None:
            raise RemoteProtocolError(
                "ciphered APDU without a system title, and the peer's is not known "
                "(no AP-title in the AARQ/AARE)")
        header = ciphered.header
        key = self.key_for(ciphered.key_kind, header.control.broadcast)
        header, plain = key.open(title, ciphered.content, header)
        if ciphered.tag in _PLAIN_OF and plain[:1] != bytes((_PLAIN_OF[ciphered.tag][0],)):
            raise DecodeError(
                f"ciphered tag 0x{ciphered.tag:02X} does not hold the APDU it names "
                f"(deciphered tag 0x{plain[0] if plain else 0:02X}): wrong key or system title?", 0)
        return Deciphered(plain, header, ciphered.tag, title)
