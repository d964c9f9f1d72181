"""Alarm-worthy meter status as ThingsBoard telemetry keys, derived from the engine's events.

The original system kept its alarms in a local database nobody else could see. Here they are
plain telemetry keys of the meter's device, so a ThingsBoard device-profile alarm rule can raise
and clear them (config/README.md has the table and an example rule).

=====================  ======  ===============================================================
key                    type    meaning
=====================  ======  ===============================================================
``connection_state``   str     the engine's ``MeterState`` ("associated", "backoff", ...)
``connection_detail``  str     why, in words for an operator (last state change)
``unreachable``        bool    the meter stopped answering (watchdog or network unreachable)
``watchdog_expired``   bool    no successful read for the watchdog time while "connected"
``circuit_open``       bool    too many failed attempts: attempts paused (circuit breaker)
``auth_failed``        bool    the meter refused the credentials: needs a config change
``counter_rejected``   bool    the meter said "invocation counter error" even after our counter
                               was re-synchronised with its frame counter (HLS-GMAC)
``clock_drift_s``      float   meter clock minus gateway clock, seconds (periodic clock read)
``clock_drift_alarm``  bool    ``abs(clock_drift_s)`` above the meter's clockDriftThresholdS
=====================  ======  ===============================================================

The five booleans are sticky: once raised they stay true until the meter is associated again, so
an alarm does not flap with every retry of a dead meter (connecting, backoff, connecting...).
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any

from ..engine.health import MeterState

__all__ = ["ALARM_KEYS", "MeterStatus", "clock_drift_s"]

ALARM_KEYS = (
    "connection_state",
    "connection_detail",
    "unreachable",
    "watchdog_expired",
    "circuit_open",
    "auth_failed",
    "counter_rejected",
    "clock_drift_s",
    "clock_drift_alarm",
)
_FLAGS = ("unreachable", "watchdog_expired", "circuit_open", "auth_failed", "counter_rejected")


def clock_drift_s(meter_time: _dt.datetime, gateway_time: _dt.datetime) -> float:
    """Meter minus gateway in seconds; a meter time without offset is taken as gateway local."""
    if meter_time.tzinfo is None:
        meter_time = meter_time.astimezone()  # naive = local time of this machine
    if gateway_time.tzinfo is None:
        gateway_time = gateway_time.astimezone()
    return round((meter_time - gateway_time).total_seconds(), 3)


class MeterStatus:
    """The alarm keys of one meter. Updated from worker threads, read by the connector."""

    def __init__(self, drift_threshold_s: float) -> None:
        self.drift_threshold_s = drift_threshold_s
        self._lock = threading.Lock()
        self._values: dict[str, Any] = {
            "connection_state": MeterState.DISCONNECTED.value,
            "connection_detail": "",
            "unreachable": False,
            "watchdog_expired": False,
            "circuit_open": False,
            "auth_failed": False,
            "counter_rejected": False,
            "clock_drift_alarm": False,
        }
        # clock_drift_s is absent until the first clock read: no value beats a made-up 0.

    def _update(self, new: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            changed = {k: v for k, v in new.items() if self._values.get(k, object()) != v}
            self._values.update(changed)
        return changed

    def on_state(self, state: Any, detail: str) -> dict[str, Any]:
        """An engine state change; returns the keys whose value changed (to publish)."""
        value = getattr(state, "value", state)
        new: dict[str, Any] = {"connection_state": value, "connection_detail": detail or ""}
        if value == MeterState.ASSOCIATED.value:
            new.update(dict.fromkeys(_FLAGS, False))
        elif value == MeterState.UNREACHABLE.value:
            new["unreachable"] = True
            if (detail or "").startswith("watchdog"):
                new["watchdog_expired"] = True
        elif value == MeterState.CIRCUIT_OPEN.value:
            new["circuit_open"] = True
        elif value == MeterState.AUTH_FAILED.value:
            new["auth_failed"] = True
        elif value == MeterState.COUNTER_REJECTED.value:
            new["counter_rejected"] = True
        changed = self._update(new)
        # The detail alone changing (another retry, same state) is not worth a message.
        if set(changed) == {"connection_detail"}:
            return {}
        if changed:
            changed.setdefault("connection_state", value)
        return changed

    def on_clock(self, drift_s: float) -> dict[str, Any]:
        """A clock read: drift and its alarm (both always returned: drift is a time series)."""
        alarm = abs(drift_s) > self.drift_threshold_s
        self._update({"clock_drift_s": drift_s, "clock_drift_alarm": alarm})
        return {"clock_drift_s": drift_s, "clock_drift_alarm": alarm}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)
