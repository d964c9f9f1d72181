"""Pushed APDUs to meter values: which meter sent it, is it genuine and new, what it says.

Runs on the push listener's loop thread, one APDU at a time, free of the gateway: a
``Delivery`` per notification accepted goes to ``deliver``; a refusal is counted by kind
(per meter when the sender is known) and logged once per sender and kind, never with key
material. Kinds: those of ``PushRejected`` (malformed, not-a-notification, unknown-sender,
bad-tag, replay, policy) and "unmapped" (a body that does not fit the meter's objects).

Who sent it: a ciphered notification by the system title it carries; a plain one by the value
of the meter's identity object in the body, else by the wrapper/HDLC source address.

When: the notification's own date-time; else the object marked ``timestamp`` in the body;
else the time it was received. A date-time without deviation is the meter's local time
(``timeZone``, default the gateway's).
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..protocol.alarm_register import alarm_flags, alarm_set
from ..protocol.cosem_datetime import CosemDateTime, utc_of
from ..protocol.errors import DlmsError
from ..protocol.event_codes import event_name
from ..protocol.obis import Obis
from ..protocol.push import DataNotification, PushOpener, PushRejected
from ..protocol.push_stream import PushedApdu
from ..session.reading import render_value
from .profile_reader import local_zone
from .push_config import PushMeter, PushObject

__all__ = ["Delivery", "PushReceiver"]

_EVENT_CODE = (0, 0, 96, 11)  # 0-0:96.11.x.255, the event code objects
_LOGGED_SENDERS = 1000  # senders whose first refusal of each kind is logged; then only counted


@dataclass
class Delivery:
    """One notification accepted: values to publish at ``ts_ms``."""

    meter: PushMeter
    ts_ms: int
    values: list[tuple[PushObject, Any]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)  # alarm flags, event names
    stamped_by: str = "notification"  # "notification", "body" or "received"


class PushReceiver:
    def __init__(self, meters: Sequence[PushMeter], deliver: Callable[[Delivery], Any],
                 refused: Callable[[PushMeter | None, str, str], Any], *,
                 counters: dict[bytes, int] | None = None,
                 log: logging.Logger | None = None) -> None:
        self._deliver = deliver
        self._refused = refused
        self._log = log or logging.getLogger("tb_dlms.push")
        self.by_title = {m.system_title: m for m in meters if m.system_title is not None}
        self.by_address = {m.address: m for m in meters
                           if m.address is not None and m.identity is None}
        self.by_identity: dict[int, dict[str, PushMeter]] = {}
        for m in meters:
            index = m.identity_index
            if index is not None and m.identity is not None:
                self.by_identity.setdefault(index, {})[m.identity] = m
        self.opener = PushOpener(
            {t: m.keys for t, m in self.by_title.items() if m.keys is not None},
            counters=counters,
            policies={t: m.required for t, m in self.by_title.items() if m.required is not None})
        self.accepted = 0
        self.rejected: Counter[str] = Counter()
        self._logged: set[tuple[str, str]] = set()
        self._log_full = False

    # -- the listener's callbacks ------------------------------------------------------------
    def on_apdu(self, peer: str, pushed: PushedApdu, received_at: float) -> None:
        try:
            note = self.opener.open(pushed.apdu)
        except PushRejected as exc:
            meter = self.by_title.get(exc.system_title) if exc.system_title else None
            self._refuse(meter, exc.kind, f"push from {peer}: {exc}",
                         exc.system_title.hex().upper() if exc.system_title else peer)
            return
        meter = self._sender(note, pushed.source)
        if meter is None:
            self._refuse(None, "unknown-sender", f"push from {peer} (source address "
                         f"{pushed.source}): no meter has that identity or address",
                         f"{peer.rsplit(':', 1)[0]}/{pushed.source}")
            return
        if meter.required is not None and note.protection == "none":
            self._refuse(meter, "policy", f"{meter.name}: plain push from {peer} refused: the "
                         f"meter's push.security is {meter.required.label}", meter.name)
            return
        try:
            delivery = self._map(meter, note, received_at)
        except DlmsError as exc:
            self._refuse(meter, "unmapped", f"{meter.name}: push from {peer}: {exc}", meter.name)
            return
        self.accepted += 1
        self._deliver(delivery)

    def on_problem(self, peer: str, message: str) -> None:
        self._refuse(None, "stream", f"push from {peer}: {message}", peer.rsplit(":", 1)[0])

    # -- who, what, when ---------------------------------------------------------------------
    def _sender(self, note: DataNotification, source: int) -> PushMeter | None:
        if note.system_title is not None:
            return self.by_title.get(note.system_title)
        body = note.body
        if self.by_identity and isinstance(body, (list, tuple)):
            for index, table in self.by_identity.items():
                if index < len(body):
                    meter = table.get(_text(body[index]))
                    if meter is not None:
                        return meter
        return self.by_address.get(source)

    def _map(self, meter: PushMeter, note: DataNotification, received_at: float) -> Delivery:
        if note.attribute is not None:  # an event-notification: one attribute's value
            class_id, obis, attribute = note.attribute
            match = next((o for o in meter.all_objects
                          if o.class_id == class_id and o.obis.to_bytes() == obis
                          and o.attribute == attribute), None)
            if match is None:
                raise DlmsError(f"event-notification of class {class_id} "
                                f"{Obis.from_bytes(obis)} attribute {attribute} is not in push.objects")
            pairs = [(match, note.body)]
        else:
            body = note.body
            objects = meter.objects_for(body)
            # A push body is a structure of the object list's values, even of one value; an
            # array (a list) is one value unless the objects say it holds several.
            elements = list(body) if isinstance(body, tuple) or (
                isinstance(body, list) and len(objects) > 1) else [body]
            if len(elements) != len(objects):
                raise DlmsError(f"the notification holds {len(elements)} values, push.objects "
                                f"lists {len(objects)} (the Push setup's object list changed?)")
            pairs = list(zip(objects, elements))
        delivery = Delivery(meter, 0)
        stamp: Any = note.date_time
        for obj, raw in pairs:
            if obj.timestamp and stamp is None:
                stamp = raw
                delivery.stamped_by = "body"
            which = alarm_set(obj.obis.to_bytes()) if isinstance(raw, int) else 0
            if which == 1:
                delivery.status.update({f"alarm_{k}": v for k, v in alarm_flags(raw).items()})
                delivery.status["alarm_active"] = bool(raw)
            elif which == 2:
                delivery.status["alarm_2_bits"] = raw
                delivery.status["alarm_2_active"] = bool(raw)
            if obj.obis.to_bytes()[:4] == bytes(_EVENT_CODE) and isinstance(raw, int):
                delivery.status["event_name"] = event_name(raw)
            if obj.key is not None:
                delivery.values.append((obj, _value(obj, raw)))
        moment = _moment(stamp, meter.time_zone) if stamp is not None else None
        if moment is None:
            delivery.stamped_by = "received"
            delivery.ts_ms = int(received_at * 1000)
        else:
            delivery.ts_ms = moment
        return delivery

    def _refuse(self, meter: PushMeter | None, kind: str, message: str, sender: str) -> None:
        self.rejected[kind] += 1
        if (kind, sender) not in self._logged:  # once per sender and kind: a replaying or
            # flooding sender cannot flood the log; nor, inventing titles, addresses or ports,
            # grow this set: past the bound, new senders are only counted.
            if len(self._logged) < _LOGGED_SENDERS:
                self._logged.add((kind, sender))
                self._log.warning("%s (%s; further ones from this sender are only counted)",
                                  message, kind)
            elif not self._log_full:
                self._log_full = True
                self._log.warning("push: refusals from more than %d senders: further new "
                                  "senders are only counted (connector RPC dlms_push)",
                                  _LOGGED_SENDERS)
        self._refused(meter, kind, message)


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError:
            return bytes(value).hex().upper()
    return str(value)


def _value(obj: PushObject, raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)):
        return raw * 10 ** obj.scaler if obj.scaler else raw
    if isinstance(raw, (bytes, bytearray)) and obj.class_id in (1, 3, 4) and obj.attribute == 2:
        text = _printable(bytes(raw))
        if text is not None:  # serial numbers, device ids: as the meter shows them
            return text
    return render_value(obj.class_id, obj.attribute, raw)


def _printable(raw: bytes) -> str | None:
    if raw and len(raw) != 12 and all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return None


def _moment(stamp: Any, zone: _dt.tzinfo | None) -> int | None:
    """Epoch ms of a COSEM date-time (typed or 12 octets); None when it has wildcards."""
    try:
        if isinstance(stamp, (bytes, bytearray)) and len(stamp) == 12:
            stamp = CosemDateTime.from_bytes(bytes(stamp))
        if not isinstance(stamp, CosemDateTime):
            return None
        return int(utc_of(stamp, zone or local_zone()).timestamp() * 1000)
    except DlmsError:
        return None
