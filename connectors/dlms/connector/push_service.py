"""The connector's push side: listener, receiver, counters and publication, wired together.

The listener's loop thread receives and opens (push_receiver.py); accepted notifications are
gathered for ``_COMMIT_S`` and handed, as one batch, to the connector's publisher thread, which
first saves the senders' invocation counters (push_counters.py: no notification is published
before the counter that admits it is on disk) and then publishes the batch in order.

A meter's notifications wait (the last ``_PARKED`` of them) until the connector has registered
its device (``release``): data for an unknown device makes the gateway register it on its data
path, concurrently with the registrations under way, and thingsboard-gateway 3.8 is not safe
against that ("dictionary changed size during iteration" in its device save, and the data lost:
seen with 5,000 meters pushing from the start).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..engine.push_listener import PushListener
from .push_config import PushMeter, PushSettings
from .push_counters import PushCounterFile
from .push_receiver import Delivery, PushReceiver

__all__ = ["PushService", "push_stats", "start_push"]

_COMMIT_S = 0.2  # gather this long: one counter file write per batch, not per notification
_REFUSAL_EVERY_S = 1.0
_PARKED = 16  # notifications kept per meter until its device is registered


class PushService:
    def __init__(self, settings: PushSettings, meters: Sequence[PushMeter], folder: Path, *,
                 publish: Callable[..., None],
                 send: Callable[[PushMeter, Delivery], None],
                 send_refusal: Callable[[PushMeter, dict[str, Any]], None],
                 log: logging.Logger) -> None:
        self._publish = publish  # the publisher's put(fn, *args): runs fn on its thread, in order
        self._send = send
        self._send_refusal = send_refusal
        self._log = log
        self.meters = {m.name: m for m in meters}
        self.counter_file = PushCounterFile(folder, log)
        self.receiver = PushReceiver(meters, self._accepted, self._refused,
                                     counters=self.counter_file.load(), log=log)
        self.listener = PushListener(list(settings.endpoints), self.receiver.on_apdu,
                                     self.receiver.on_problem, limits=settings.limits, log=log)
        self._pending: list[Delivery] = []
        self._counters_moved = False
        self._per_meter: dict[str, Counter[str]] = {}
        self._save_failed = False
        self._refusal_sent: dict[str, float] = {}
        self._releasing: set[str] = set()  # registered: their release is queued
        self._released: set[str] = set()  # registered and unparked: their data goes out
        self._parked: dict[str, deque[Delivery]] = {}  # publisher thread only
        self.parked_dropped = 0

    def start(self) -> bool:
        """Listen; False (logged, nothing raised) when a port cannot be bound."""
        try:
            self.listener.start()
        except OSError as exc:
            self._log.error("%s: pushed notifications will not be received", exc)
            return False
        loop = self.listener.loop
        loop.call_soon_threadsafe(lambda: loop.call_at(loop.clock() + _COMMIT_S, self._commit))
        self._log.info("push: listening on %s for %d meters",
                       ", ".join(e.label for e in self.listener.endpoints), len(self.meters))
        return True

    def stop(self) -> None:
        self.listener.stop()
        self._hand_over()  # the loop is stopped: what it gathered last still goes out

    # -- on the loop thread ---------------------------------------------------------------------
    def _accepted(self, delivery: Delivery) -> None:
        self._pending.append(delivery)
        self._per_meter.setdefault(delivery.meter.name, Counter())["accepted"] += 1
        if delivery.meter.system_title is not None:
            self._counters_moved = True

    def _refused(self, meter: PushMeter | None, kind: str, _message: str) -> None:
        if meter is None:
            return
        counts = self._per_meter.setdefault(meter.name, Counter())
        counts[kind] += 1
        # The device shows what goes wrong with its pushes (a replay, a wrong key), for a rule;
        # at most once a second each: a sender replaying in a loop cannot flood ThingsBoard.
        now = self.listener.loop.clock()
        if meter.name not in self._released or \
                now - self._refusal_sent.get(meter.name, -_REFUSAL_EVERY_S) < _REFUSAL_EVERY_S:
            return
        self._refusal_sent[meter.name] = now
        self._publish(self._send_refusal, meter, {
            "push_rejected": sum(v for k, v in counts.items() if k != "accepted"),
            "push_last_rejection": kind})

    def _commit(self, _when: float) -> None:
        self._hand_over()
        loop = self.listener.loop
        loop.call_at(loop.clock() + _COMMIT_S, self._commit)

    def _hand_over(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        counters = dict(self.receiver.opener.counters) if self._counters_moved else None
        self._counters_moved = False
        self._publish(self._write_and_send, (counters, batch))

    # -- on the publisher thread ----------------------------------------------------------------
    def _write_and_send(self, work: tuple[dict[bytes, int] | None, list[Delivery]]) -> None:
        counters, batch = work
        if counters is not None:
            try:
                self.counter_file.save(counters)
                self._save_failed = False
            except OSError as exc:
                if not self._save_failed:
                    self._log.error("push counters: cannot write %s (%s): a replay of these "
                                    "notifications would be accepted after a restart",
                                    self.counter_file.path, exc)
                self._save_failed = True
        for delivery in batch:
            name = delivery.meter.name
            if name in self._released:
                self._send(delivery.meter, delivery)
                continue
            parked = self._parked.get(name)
            if parked is None:
                parked = self._parked[name] = deque(maxlen=_PARKED)
            if len(parked) == _PARKED:
                self.parked_dropped += 1
            parked.append(delivery)

    # -- the connector's registrar (any thread) ---------------------------------------------------
    def release(self, name: str) -> None:
        """``name``'s device is registered (or ThingsBoard is away and data goes to the
        gateway's storage anyway): its notifications go out, those waiting first."""
        if name in self.meters and name not in self._releasing:
            self._releasing.add(name)
            self._publish(self._unpark, name)

    def _unpark(self, name: str) -> None:
        # On the publisher thread, in its order: a batch queued before this job was parked
        # behind the others, one queued after goes straight out; the order is kept.
        self._released.add(name)
        for delivery in self._parked.pop(name, ()):
            self._send(delivery.meter, delivery)

    # -- reports --------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        return {"listeners": [e.label for e in self.listener.endpoints],
                "accepted": self.receiver.accepted, "rejected": _copy(self.receiver.rejected),
                **{f"connection_{k}": v for k, v in self.listener.stats.items()},
                "counter_writes": self.counter_file.writes,
                "waiting_for_registration": len(self.meters) - len(self._released),
                "dropped_before_registration": self.parked_dropped}

    def meter_stats(self, name: str) -> dict[str, int]:
        return _copy(self._per_meter.get(name, {}))

    def device_rpc(self, name: str, method: str) -> dict[str, Any]:
        """RPCs of a meter that only pushes: ``health``; the rest need a connection."""
        if method == "health":
            return {"success": True, "push": self.meter_stats(name)}
        return {"success": False, "error": f"meter {name!r} only pushes (no connection in "
                                           f"dlms.json): RPC {method!r} cannot reach it"}


def _copy(counts: Mapping[str, int]) -> dict[str, int]:
    """A copy of counts the loop thread may be adding a key to (an RPC reads them)."""
    for _ in range(10):
        try:
            return dict(counts)
        except RuntimeError:  # "dictionary changed size during iteration": read again
            continue
    return {}


def push_stats(service: PushService | None) -> dict[str, Any]:
    """The connector RPC ``<type>_push``: what the listener received and refused."""
    if service is None:
        return {"success": False, "error": "no push section in dlms.json: nothing listens"}
    return {"success": True, **service.stats()}


def start_push(settings: PushSettings | None, meters: Sequence[PushMeter], folder: Path, *,
               publish: Callable[..., None], converter: Callable[[], Any],
               send: Callable[[Any], None], received: Callable[[], None],
               log: logging.Logger) -> PushService | None:
    """The connector's push side, listening; None without a ``push`` section. ``converter()``
    is the connector's current converter, ``send`` hands converted data to the gateway."""
    if settings is None:
        return None

    def send_push(meter: PushMeter, delivery: Delivery) -> None:
        conv = converter()
        if conv is not None:
            received()
            send(conv.pushed(meter, delivery.ts_ms, delivery.values, delivery.status))

    def send_status(meter: PushMeter, values: dict[str, Any]) -> None:
        conv = converter()
        if conv is not None:
            send(conv.status(meter, telemetry=values))

    service = PushService(settings, meters, folder, publish=publish, send=send_push,
                          send_refusal=send_status, log=log)
    service.start()
    return service
