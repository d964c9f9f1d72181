"""A small ThingsBoard stand-in: the server side of the gateway MQTT API, on a real broker.

ThingsBoard is itself the gateway's broker; here a plain broker carries the traffic and this
client plays ThingsBoard's part:

* answers the gateway's own RPC ``getSessionLimits`` (the gateway sends no device data before),
  and its attribute requests (``v1/devices/me/attributes/request/+`` and
  ``v1/gateway/attributes/request``) from the shared attributes it was given;
* records ``v1/gateway/{connect,disconnect,telemetry,attributes,rpc,...}`` and the gateway's own
  ``v1/devices/me/{telemetry,attributes}`` with arrival times;
* pushes shared attribute updates and device RPCs (``v1/gateway/attributes``, ``v1/gateway/rpc``)
  and gateway-level RPCs (``v1/devices/me/rpc/request/<id>``), and waits for the replies.

The gateway uses the same topics both ways (``v1/gateway/attributes``, ``v1/gateway/rpc``), so this
client subscribes with MQTT 5 *no local*: it never hears what it published itself. The gateway
does hear its own uplinks echoed by the broker (ThingsBoard would not echo them): connectors must
ignore RPC content without ``method``.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

__all__ = ["SESSION_LIMITS", "Message", "ThingsBoardStandIn"]

_log = logging.getLogger(__name__)

SESSION_LIMITS = {
    "maxPayloadSize": 65536,
    "maxInflightMessages": 100,
    "rateLimits": {},
    "gatewayRateLimits": {},
}

_SUBSCRIPTIONS = (
    "v1/gateway/#",
    "v1/devices/me/rpc/request/+",
    "v1/devices/me/rpc/response/+",
    "v1/devices/me/telemetry",
    "v1/devices/me/attributes",
    "v1/devices/me/attributes/request/+",
)
_RPC_REQUEST = "v1/devices/me/rpc/request/"
_RPC_RESPONSE = "v1/devices/me/rpc/response/"
_ATTR_REQUEST = "v1/devices/me/attributes/request/"


@dataclass(frozen=True)
class Message:
    """One message received from the gateway. ``payload`` is decoded JSON (or the text)."""

    ts: float  # time.time() at arrival
    topic: str
    payload: Any


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


class ThingsBoardStandIn:
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str = "tb-standin",
        session_limits: dict[str, Any] | None = None,
        shared_attributes: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.host = host
        self.port = port
        self.session_limits = dict(SESSION_LIMITS if session_limits is None else session_limits)
        # device name -> shared attributes ThingsBoard would hold; "" is the gateway device.
        self.shared: dict[str, dict[str, Any]] = {
            k: dict(v) for k, v in (shared_attributes or {}).items()
        }
        self.session_limit_requests = 0
        self._messages: list[Message] = []
        self._cond = threading.Condition()
        self._listeners: list[Callable[[Message], None]] = []
        self._pending: dict[tuple[str, str], Any] = {}  # (device or "", id) -> reply
        self._ids = itertools.count(100001)  # far from the gateway's own request ids (1, 2, ...)
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    # --- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 5.0) -> ThingsBoardStandIn:
        self._client.connect(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            self.stop()
            raise TimeoutError(f"stand-in could not subscribe on {self.host}:{self.port}")
        return self

    def stop(self) -> None:
        try:
            self._client.disconnect()
        finally:
            self._client.loop_stop()

    def __enter__(self) -> ThingsBoardStandIn:  # noqa: PYI034 - no typing_extensions on 3.9
        self.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def add_listener(self, listener: Callable[[Message], None]) -> None:
        """Call ``listener(message)`` (on the MQTT thread) for every message recorded."""
        self._listeners.append(listener)

    # --- MQTT callbacks --------------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        from paho.mqtt.subscribeoptions import SubscribeOptions

        opts = SubscribeOptions(qos=1, noLocal=True)
        client.subscribe([(topic, opts) for topic in _SUBSCRIPTIONS])
        self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        message = Message(time.time(), msg.topic, _decode(msg.payload))
        topic, payload = message.topic, message.payload
        if topic.startswith(_RPC_REQUEST):
            self._answer_gateway_rpc(topic[len(_RPC_REQUEST) :], payload)
        elif topic.startswith(_ATTR_REQUEST):
            keys = self._keys(payload, "sharedKeys")
            shared = self._pick(self.shared.get("", {}), keys)
            self._publish(
                "v1/devices/me/attributes/response/" + topic[len(_ATTR_REQUEST) :],
                {"shared": shared} if shared else {},
            )
        elif topic == "v1/gateway/attributes/request" and isinstance(payload, dict):
            self._answer_device_attributes(payload)
        with self._cond:
            if topic.startswith(_RPC_RESPONSE):
                self._pending[("", topic[len(_RPC_RESPONSE) :])] = payload
            elif (
                topic == "v1/gateway/rpc"
                and isinstance(payload, dict)
                and "method" not in payload.get("data", {})
            ):
                # The gateway's reply to a device RPC: {"device", "id", "data"}.
                self._pending[(str(payload.get("device")), str(payload.get("id")))] = payload.get(
                    "data"
                )
            self._messages.append(message)
            self._cond.notify_all()
        for listener in self._listeners:
            try:
                listener(message)
            except Exception:  # noqa: BLE001 - a view must not break the recorder
                _log.exception("stand-in listener failed")

    def _answer_gateway_rpc(self, req_id: str, payload: Any) -> None:
        if isinstance(payload, dict) and payload.get("method") == "getSessionLimits":
            self.session_limit_requests += 1
            self._publish(_RPC_RESPONSE + req_id, self.session_limits)

    def _answer_device_attributes(self, payload: dict[str, Any]) -> None:
        device = str(payload.get("device"))
        keys = self._keys(payload, "keys") or ([payload["key"]] if "key" in payload else [])
        values = self._pick(self.shared.get(device, {}), keys)
        reply: dict[str, Any] = {"id": payload.get("id"), "device": device}
        if len(keys) == 1 and "key" in payload:
            reply["value"] = values.get(keys[0])
        else:
            reply["values"] = values
        self._publish("v1/gateway/attributes/response", reply)

    @staticmethod
    def _keys(payload: Any, name: str) -> list[str]:
        if not isinstance(payload, dict):
            return []
        keys = payload.get(name) or []
        return keys.split(",") if isinstance(keys, str) else list(keys)

    @staticmethod
    def _pick(values: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
        return {k: values[k] for k in keys if k in values}

    def _publish(self, topic: str, payload: Any) -> None:
        self._client.publish(topic, json.dumps(payload), qos=1)

    # --- what the gateway sent -------------------------------------------------------------

    def messages(self, topic: str | None = None) -> list[Message]:
        """Recorded messages, all or those of one topic (``v1/gateway/telemetry`` ...)."""
        with self._cond:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def connected_devices(self) -> list[str]:
        """Devices announced with ``v1/gateway/connect``, in order, once each."""
        names: dict[str, None] = {}
        for m in self.messages("v1/gateway/connect"):
            if isinstance(m.payload, dict) and "device" in m.payload:
                names[str(m.payload["device"])] = None
        return list(names)

    def telemetry(self, device: str | None = None) -> list[tuple[str, int, dict[str, Any]]]:
        """``(device, ts_ms, values)`` of every point of ``v1/gateway/telemetry``, in order."""
        points = []
        for m in self.messages("v1/gateway/telemetry"):
            if not isinstance(m.payload, dict):
                continue
            for name, entries in m.payload.items():
                if device is not None and name != device:
                    continue
                for entry in entries if isinstance(entries, list) else [entries]:
                    if isinstance(entry, dict) and "values" in entry:
                        points.append((name, int(entry.get("ts", m.ts * 1000)), entry["values"]))
                    elif isinstance(entry, dict):
                        points.append((name, int(m.ts * 1000), entry))
        return points

    def latest(self, device: str) -> dict[str, Any]:
        """The last value of every telemetry key of ``device``."""
        merged: dict[str, Any] = {}
        for _, _, values in self.telemetry(device):
            merged.update(values)
        return merged

    def attributes(self, device: str) -> dict[str, Any]:
        """Client attributes the gateway published for ``device`` (merged, last wins)."""
        merged: dict[str, Any] = {}
        for m in self.messages("v1/gateway/attributes"):
            if isinstance(m.payload, dict) and isinstance(m.payload.get(device), dict):
                merged.update(m.payload[device])
        return merged

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every message and every 0.2 s);
        return its value, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            with self._cond:
                self._cond.wait(min(left, 0.2))

    def wait_for_telemetry(
        self, device: str, keys: Iterable[str] = (), timeout: float = 15.0
    ) -> dict[str, Any]:
        """Wait until ``device`` has sent every key of ``keys`` (any telemetry if empty)."""
        wanted = list(keys)

        def ready() -> dict[str, Any] | None:
            latest = self.latest(device)
            return latest if latest and all(k in latest for k in wanted) else None

        return dict(self.wait_for(ready, timeout))

    # --- what ThingsBoard sends ------------------------------------------------------------

    def set_shared_attributes(self, device: str, data: dict[str, Any]) -> None:
        """Store shared attributes of ``device`` and push the update as ThingsBoard does."""
        self.shared.setdefault(device, {}).update(data)
        self._publish("v1/gateway/attributes", {"device": device, "data": data})

    def device_rpc(
        self, device: str, method: str, params: Any = None, timeout: float = 10.0
    ) -> Any:
        """Two-way RPC to a device behind the gateway; returns the reply's ``data``."""
        req_id = next(self._ids)
        self._publish(
            "v1/gateway/rpc",
            {"device": device, "data": {"id": req_id, "method": method, "params": params or {}}},
        )
        return self._wait_reply((device, str(req_id)), timeout)

    def gateway_rpc(self, method: str, params: Any = None, timeout: float = 10.0) -> Any:
        """RPC to the gateway device itself (``<type>_<method>`` reaches a connector)."""
        req_id = str(next(self._ids))
        self._publish(_RPC_REQUEST + req_id, {"method": method, "params": params or {}})
        return self._wait_reply(("", req_id), timeout)

    def _wait_reply(self, key: tuple[str, str], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while key not in self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no RPC reply for {key} within {timeout} s")
                self._cond.wait(left)
            return self._pending.pop(key)
