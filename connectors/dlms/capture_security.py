"""Deciphering of security suite 0/1 APDUs in a capture, for ``tb-dlms decode``.

A capture is read in order, and this object remembers what it teaches: the client's system title
(AARQ calling-AP-title), the server's (AARE responding-AP-title), the wrapper ports of each side
and the dedicated key of a deciphered InitiateRequest. Each ciphered APDU is opened with its
sender's title (IV = sender title || invocation counter): requests with the client's, responses
and notifications with the server's; general-*-ciphering carries its own. ``--system-title`` is
the fallback for an APDU whose sender's title the capture does not give.

A ciphered APDU that cannot be opened (wrong key or title, no dedicated key, unsupported suite)
becomes an ``error`` in its JSON entry and is counted in ``failures``: the rest of the capture
is still explained. No key, and no unverified plaintext of an authenticated APDU, is ever output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .protocol.apdu import AARE, AARQ, RLRE, RLRQ, InitiateRequest
from .protocol.axdr import decode_length
from .protocol.errors import DecodeError, DlmsError
from .protocol.security import (
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    AuthenticationTagMismatch,
    GcmKey,
    KeyKind,
    SecurityContext,
    ciphered_tag,
    is_ciphered,
)

CLIENT, SERVER = "client", "server"
_AUTHENTICATED, _ENCRYPTED, _BROADCAST, _COMPRESSED = 0x10, 0x20, 0x40, 0x80
# Plain xDLMS tags with a service-specific ciphered form, and who sends them.
_SERVICES = {
    0x01: ("initiate-request", CLIENT), 0x08: ("initiate-response", SERVER),
    0x0E: ("confirmed-service-error", SERVER), 0xC0: ("get-request", CLIENT),
    0xC1: ("set-request", CLIENT), 0xC2: ("event-notification-request", SERVER),
    0xC3: ("action-request", CLIENT), 0xC4: ("get-response", SERVER),
    0xC5: ("set-response", SERVER), 0xC7: ("action-response", SERVER),
}
_CIPHERED = {ciphered_tag(plain, kind): (plain, kind) for plain in _SERVICES for kind in KeyKind}
# Senders of plain APDUs, for the wrapper ports and for APDUs nested in general-ciphering.
_PLAIN_SENDER = {0x60: CLIENT, 0x62: CLIENT, 0x61: SERVER, 0x63: SERVER, 0x0F: SERVER,
                 0xD8: SERVER, **{tag: who for tag, (_, who) in _SERVICES.items()}}
_NO_KEYS = ("ciphered: give --block-key and --auth-key (or TB_DLMS_BLOCK_KEY and "
            "TB_DLMS_AUTH_KEY) to decipher it")


@dataclass(frozen=True)
class CaptureKeys:
    """What the user gave: the global unicast keys and the fallback sender title. repr() hides
    the keys. ``auth_key`` None: only encryption-only APDUs can be opened."""

    block_key: bytes = dataclasses.field(repr=False)
    auth_key: bytes | None = dataclasses.field(default=None, repr=False)
    system_title: bytes | None = None


def sender_of_tag(tag: int) -> str | None:
    """Who sends an APDU with this tag, when the tag alone says it."""
    if tag in _CIPHERED:
        return _SERVICES[_CIPHERED[tag][0]][1]
    return _PLAIN_SENDER.get(tag)


def ciphered_name(tag: int) -> str:
    if tag == GENERAL_GLO_CIPHERING:
        return "general-glo-ciphering"
    if tag == GENERAL_DED_CIPHERING:
        return "general-ded-ciphering"
    plain, kind = _CIPHERED[tag]
    return f"{'glo' if kind is KeyKind.GLOBAL else 'ded'}-{_SERVICES[plain][0]}"


class CaptureState:
    """What one capture has taught so far; ``failures`` counts APDUs not deciphered."""

    def __init__(self, keys: CaptureKeys | None = None) -> None:
        self.keys = keys
        self.failures = 0
        self.titles: dict[str, tuple[bytes, str]] = {}  # side -> (title, where it came from)
        self.ports: dict[tuple[int, int], str] = {}  # wrapper (source, destination) -> sender
        self._context: SecurityContext | None = None
        if keys is not None:
            # Encryption-only APDUs never use the authentication key; the zeros stand in for an
            # absent one, and APDUs with a tag are refused before it could be used.
            self._context = SecurityContext(GcmKey(keys.block_key, keys.auth_key or bytes(16)))

    # ---- what plain APDUs teach ---------------------------------------------------------------
    def learn(self, apdu: Any, wrapper_ports: tuple[int, int] | None = None) -> None:
        if isinstance(apdu, AARQ):  # a new association: its own dedicated key, if any
            if self._context is not None:
                self._context = dataclasses.replace(self._context, dedicated_key=None)
            if apdu.calling_ap_title is not None:
                self.titles[CLIENT] = (apdu.calling_ap_title, "AARQ calling-AP-title")
        elif isinstance(apdu, AARE) and apdu.responding_ap_title is not None:
            self.titles[SERVER] = (apdu.responding_ap_title, "AARE responding-AP-title")
        side = _PLAIN_SENDER.get(_TAGS.get(type(apdu), -1))
        if wrapper_ports is not None and side is not None and wrapper_ports[0] != wrapper_ports[1]:
            source, destination = wrapper_ports
            self.ports[(source, destination)] = side
            self.ports[(destination, source)] = SERVER if side == CLIENT else CLIENT

    def side_of_ports(self, source: int, destination: int) -> str | None:
        """Who sends a wrapper PDU between these ports, as an AARQ/AARE between them taught
        (client and server may use the same port number: then nothing is learnt)."""
        return self.ports.get((source, destination))

    def user_information(self, apdu: Any, describe_plain: Callable[[bytes, str], Any],
                         ) -> Any | None:
        """The ciphered user-information of an AARQ/AARE/RLRQ/RLRE explained, else None."""
        info = getattr(apdu, "user_information", None)
        if not isinstance(info, bytes) or not is_ciphered(info):
            return None
        side = CLIENT if isinstance(apdu, (AARQ, RLRQ)) else SERVER
        return self.describe(info, side, describe_plain)

    # ---- one ciphered APDU ----------------------------------------------------------------------
    def describe(self, data: bytes, hint: str | None,
                 describe_plain: Callable[[bytes, str], Any]) -> dict[str, Any]:
        """Explain ciphered ``data`` sent by ``hint`` (client/server, when the frame says it);
        ``describe_plain(apdu, sender)`` explains the plaintext."""
        tag, title, content = _framing(data)
        general = tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
        sender = sender_of_tag(tag) or hint
        out: dict[str, Any] = {"type": ciphered_name(tag), "sender": sender,
                               "security": _header(content)}
        dedicated = tag == GENERAL_DED_CIPHERING or (
            not general and _CIPHERED[tag][1] is KeyKind.DEDICATED)
        out["key"] = ("dedicated" if dedicated else
                      "broadcast" if content[0] & _BROADCAST else "global")
        if general:
            out["apdu_system_title"] = title.hex() if title else None
        if self._context is None:
            out["note"] = _NO_KEYS
            return out
        used, source = self._title(title, sender)
        out["system_title"] = used.hex() if used else None
        out["system_title_from"] = source
        if used is None:
            return self._fail(out, f"the {sender or 'sender'}'s system title is not in the "
                              "capture (no AARQ/AARE): give --system-title")
        if content[0] & _AUTHENTICATED and self.keys is not None and self.keys.auth_key is None:
            return self._fail(out, "authenticated APDU: give --auth-key (or TB_DLMS_AUTH_KEY) "
                              "to verify its tag")
        try:
            opened = self._context.decrypt(data, used, required=None)
        except AuthenticationTagMismatch as exc:
            out["tag_verified"] = False
            return self._fail(out, str(exc))
        except DlmsError as exc:
            return self._fail(out, str(exc))
        out["tag_verified"] = True if opened.header.control.authenticated else None
        if not opened.header.control.authenticated:
            out["note"] = "encryption only: no tag, the plaintext is not authenticated"
        plain = opened.apdu
        self._remember_dedicated_key(plain)
        if out["sender"] is None:  # general ciphering: the plaintext's tag may tell
            out["sender"] = _PLAIN_SENDER.get(plain[0]) if plain else None
        try:
            out["plain_apdu"] = describe_plain(plain, out["sender"] or "")
        except DlmsError as exc:
            if plain[:1] != b"\x01":  # an InitiateRequest may hold the dedicated key: no hex
                out["plaintext"] = plain.hex()
            return self._fail(out, f"deciphered, but the plaintext does not decode: {exc}")
        return out

    def _title(self, carried: bytes | None, sender: str | None) -> tuple[bytes | None, str | None]:
        if carried:
            return carried, "APDU (general ciphering)"
        if sender in self.titles:
            return self.titles[sender]
        if self.keys is not None and self.keys.system_title is not None:
            return self.keys.system_title, "--system-title"
        return None, None

    def _remember_dedicated_key(self, plain: bytes) -> None:
        if self._context is None or self.keys is None or plain[:1] != b"\x01":
            return
        try:
            key = InitiateRequest.decode(plain).dedicated_key
        except DlmsError:
            return  # describe_plain reports it
        if key is not None and len(key) == 16:
            dedicated = GcmKey(key, self.keys.auth_key or bytes(16))
            self._context = dataclasses.replace(self._context, dedicated_key=dedicated)

    def _fail(self, out: dict[str, Any], error: str) -> dict[str, Any]:
        self.failures += 1
        out["error"] = error
        return out


_TAGS = {AARQ: 0x60, AARE: 0x61, RLRQ: 0x62, RLRE: 0x63}


def _framing(data: bytes) -> tuple[int, bytes | None, bytes]:
    """(tag, system title of general ciphering, SC || IC || content); DecodeError if malformed."""
    tag, offset, title = data[0], 1, None
    if tag in (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING):
        length, offset = decode_length(data, offset)
        if length not in (0, 8):
            raise DecodeError(f"{ciphered_name(tag)}: system title of {length} octets "
                              "(expected 8)", 1)
        if offset + length > len(data):
            raise DecodeError(f"{ciphered_name(tag)}: truncated system title", offset)
        title, offset = bytes(data[offset:offset + length]), offset + length
    length, start = decode_length(data, offset)
    if start + length != len(data):
        raise DecodeError(f"{ciphered_name(tag)}: content length {length} does not match the "
                          f"{len(data) - start} octets that follow", offset)
    if length < 5:
        raise DecodeError(f"{ciphered_name(tag)}: truncated security header "
                          "(SC + invocation counter)", start)
    return tag, title, bytes(data[start:])


def _header(content: bytes) -> dict[str, Any]:
    """The security header as fields, straight from the bytes: shown even when refused."""
    sc, suite = content[0], content[0] & 0x0F
    cipher = {0: "AES-GCM-128", 1: "AES-GCM-128", 2: "AES-GCM-256"}.get(suite, "reserved")
    return {
        "security_control": f"0x{sc:02X}", "suite": suite, "cipher": cipher,
        "authentication": bool(sc & _AUTHENTICATED), "encryption": bool(sc & _ENCRYPTED),
        "key_set": "broadcast" if sc & _BROADCAST else "unicast",
        "compression": bool(sc & _COMPRESSED),
        "invocation_counter": int.from_bytes(content[1:5], "big"),
    }
