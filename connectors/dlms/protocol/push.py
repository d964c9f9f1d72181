"""Pushed data-notifications opened: plain, or ciphered under security suite 0 by their sender.

Sans-IO: one APDU in (the wrapper or HDLC framing already taken off by whoever received it), a
``DataNotification`` out, or a ``PushRejected`` saying why and naming the sender when it is
known. The listener around it (sockets, serial lines, the gateway) is not here.

- data-notification (Green Book): long-invoke-id-and-priority, an optional date-time (an octet
  string, 0x00 when absent) and the body (one Data: often the Push setup's object list values).
- general-glo-ciphering / general-ded-ciphering: the sender's system title travels in the APDU;
  its keys are looked up by it. (A dedicated key is agreed in an association: a push has none,
  so general-ded-ciphering opens only for a caller that gives the dedicated key.)
  AES-GCM-128 whatever the suite id says: meters in service send
  suite id 1 in the security control byte for what is suite 0 (see security/control.py).
- The sender's invocation counter must grow: a counter at or below the last one accepted from
  that title is a replay and refused (nothing in a replay is new; an attacker can resend a
  captured alarm at will). ``counters`` are the last accepted values, for the caller to persist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .axdr import Typed, decode_data, encode_data
from .cosem_datetime import CosemDateTime
from .errors import DecodeError, DlmsError, LocalProtocolError
from .event_notification import EVENT_NOTIFICATION, decode_event_notification
from .security.apdu import (
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    CipheredApdu,
    SecurityContext,
)
from .security.control import Policy, SecurityControl, SecurityPolicyViolation

__all__ = ["DATA_NOTIFICATION", "DataNotification", "PushOpener", "PushRejected",
           "cipher_notification", "decode_data_notification", "encode_data_notification"]

DATA_NOTIFICATION = 0x0F
_GENERAL = (GENERAL_GLO_CIPHERING, GENERAL_DED_CIPHERING)
_PLAIN_TAGS = (DATA_NOTIFICATION, EVENT_NOTIFICATION)
_PLAIN_TAG_BYTES = tuple(bytes((tag,)) for tag in _PLAIN_TAGS)


@dataclass(frozen=True)
class DataNotification:
    long_invoke_id: int  # bits 0-23 of long-invoke-id-and-priority
    high_priority: bool  # bit 31
    confirmed: bool  # bit 30: the sender expects no answer either way from a gateway
    date_time: CosemDateTime | None  # None: the sender put none (the receive time stands in)
    body: Any  # natives as decode_data gives them: a structure is a tuple, an array a list
    system_title: bytes | None = None  # the sender's, for a ciphered notification
    invocation_counter: int | None = None
    protection: str = "none"  # "none", "auth", "enc" or "auth-enc"
    # An event-notification: the (class id, logical name, attribute) whose value is ``body``.
    attribute: tuple[int, bytes, int] | None = None


class PushRejected(DlmsError):
    """A notification not taken. ``kind``: malformed, not-a-notification, unknown-sender,
    bad-tag (wrong key, or altered on the way), replay, policy. Never carries key material."""

    def __init__(self, kind: str, message: str, system_title: bytes | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.system_title = system_title


def decode_data_notification(apdu: bytes) -> DataNotification:
    """A plain data-notification APDU (tag 0x0F). DecodeError when it is not one."""
    if not apdu or apdu[0] != DATA_NOTIFICATION:
        raise DecodeError(f"not a data-notification (tag 0x{apdu[0] if apdu else 0:02X})", 0)
    if len(apdu) < 7:
        raise DecodeError("truncated data-notification", len(apdu))
    pos, stamp = 6, None
    if apdu[5]:
        if apdu[5] != 12 or len(apdu) < 18:
            raise DecodeError(f"data-notification date-time of {apdu[5]} octets (expected 12)", 5)
        stamp, pos = CosemDateTime.from_bytes(apdu[6:18]), 18
    body, end = decode_data(apdu, pos)
    if end != len(apdu):
        raise DecodeError(f"{len(apdu) - end} octets after the data-notification body", end)
    ident = int.from_bytes(apdu[1:5], "big")
    return DataNotification(ident & 0xFFFFFF, bool(ident & 0x80000000),
                            bool(ident & 0x40000000), stamp, body)


class PushOpener:
    """Opens the notifications of known senders. ``keys``: system title -> the sender's
    SecurityContext; ``required``: the protection a ciphered notification must have at least
    (None: any); ``plain``: whether plain notifications are taken at all."""

    def __init__(self, keys: Mapping[bytes, SecurityContext], *, required: Policy | None = None,
                 plain: bool = True, counters: Mapping[bytes, int] | None = None,
                 policies: Mapping[bytes, Policy] | None = None,
                 default: SecurityContext | None = None) -> None:
        self._keys = dict(keys)
        self._default = default  # the keys of a title not in ``keys`` (a listening tool's)
        self._required = required
        self._policies = dict(policies or {})  # per sender; a title not here gets ``required``
        self._plain = plain
        self.counters: dict[bytes, int] = dict(counters or {})

    def open(self, apdu: bytes) -> DataNotification:
        if not apdu:
            raise PushRejected("malformed", "empty APDU")
        if apdu[0] in _PLAIN_TAGS:
            if not self._plain:
                raise PushRejected("policy", "plain notification refused: ciphering required")
            return self._decode(apdu, None)
        if apdu[0] not in _GENERAL:
            raise PushRejected("not-a-notification", f"APDU tag 0x{apdu[0]:02X} is not a "
                               "data- or event-notification nor general-glo/ded-ciphering")
        try:
            ciphered = CipheredApdu.decode(apdu)
        except DlmsError as exc:
            raise PushRejected("malformed", f"ciphered notification: {exc}") from None
        title = ciphered.system_title or None
        if title is None:
            raise PushRejected("malformed", "ciphered notification without a system title")
        context = self._keys.get(title, self._default)
        if context is None:
            raise PushRejected("unknown-sender", f"no keys for system title {title.hex().upper()}",
                               title)
        if ciphered.tag == GENERAL_DED_CIPHERING and context.dedicated_key is None:
            raise PushRejected("policy", f"notification from {title.hex().upper()} ciphered "
                               "with a dedicated key: no association agreed one", title)
        counter = ciphered.header.invocation_counter
        last = self.counters.get(title)
        if last is not None and counter <= last:
            raise PushRejected("replay", f"invocation counter {counter} from "
                               f"{title.hex().upper()} is not above {last}, the last accepted",
                               title)
        try:
            opened = context.decrypt(apdu, None,
                                     required=self._policies.get(title, self._required))
        except DlmsError as exc:
            kind = "policy" if isinstance(exc, SecurityPolicyViolation) else "bad-tag"
            raise PushRejected(kind, f"notification from {title.hex().upper()} not opened: "
                               f"{exc}", title) from None
        note = self._decode(opened.apdu, title)
        self.counters[title] = counter  # only now: a forged copy must not move it
        return DataNotification(note.long_invoke_id, note.high_priority, note.confirmed,
                                note.date_time, note.body, title, counter,
                                opened.header.control.policy.label, note.attribute)

    @staticmethod
    def _decode(apdu: bytes, title: bytes | None) -> DataNotification:
        try:
            if apdu[:1] == bytes((EVENT_NOTIFICATION,)):
                stamp, attribute, value = decode_event_notification(apdu)
                return DataNotification(0, False, False, stamp, value, attribute=attribute)
            return decode_data_notification(apdu)
        except DlmsError as exc:
            raise PushRejected("malformed" if apdu[:1] in _PLAIN_TAG_BYTES
                               else "not-a-notification", str(exc), title) from None


# -- the sending side (a meter, or the simulator standing in for one) -----------------------------
_POLICY_OF_LABEL = {p.label: p for p in Policy}


def encode_data_notification(body: Typed, *, long_invoke_id: int = 0,
                             date_time: CosemDateTime | None = None, high_priority: bool = False,
                             confirmed: bool = False) -> bytes:
    """A plain data-notification APDU: what ``decode_data_notification`` reads back (the same
    layout Gurux sends: the date-time an octet string of 12 behind its length, 0x00 if none)."""
    if not 0 <= long_invoke_id <= 0xFFFFFF:
        raise LocalProtocolError(f"long invoke id {long_invoke_id} out of range 0..16777215")
    ident = long_invoke_id | (0x80000000 if high_priority else 0) | (
        0x40000000 if confirmed else 0)
    stamp = b"\x00" if date_time is None else b"\x0c" + date_time.to_bytes()
    return bytes((DATA_NOTIFICATION,)) + ident.to_bytes(4, "big") + stamp + encode_data(body)


def cipher_notification(apdu: bytes, context: SecurityContext, policy_label: str,
                        system_title: bytes, invocation_counter: int, suite_id: int = 0) -> bytes:
    """``apdu`` (a data-notification) under general-glo-ciphering with the sender's global
    keys: ``policy_label`` "auth", "enc" or "auth-enc"; ``suite_id`` 0 or 1 goes into the
    security control byte (AES-GCM-128 either way, as field meters send it)."""
    policy = _POLICY_OF_LABEL.get(policy_label)
    if policy is None:
        raise LocalProtocolError(f"push security must be 'auth', 'enc' or 'auth-enc', "
                                 f"got {policy_label!r}")
    if not 0 <= invocation_counter <= 0xFFFFFFFF:
        raise LocalProtocolError(f"invocation counter {invocation_counter} out of range")
    control = SecurityControl(policy, suite_id)
    return context.encrypt(apdu, control, system_title, invocation_counter, general=True)
