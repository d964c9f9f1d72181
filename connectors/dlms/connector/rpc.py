"""Device and connector RPCs, free of gateway imports: a request in, a reply dict out.

Device RPCs run on the meter's own engine worker (``engine.submit(meter, fn(session))``), between
poll cycles, so they never race a read on the line. ``device_rpc`` returns a Future that always
resolves to the reply (never raises): ``{"success": true, ...}`` or
``{"success": false, "error": "..."}``. The connector sends it with ``gateway.send_rpc_reply``.

Built-in device RPCs (``params`` in brackets):

- ``read`` {obis, classId=3, attribute=2}: one attribute; registers come scaled with unit.
- ``set`` {obis, classId, attribute, value, type}: SET with the A-XDR ``type`` named.
- ``action`` {obis, classId, method, value?, type?}: ACTION (no value: null-data).
- ``clock_read``: meter time, gateway time and drift (also published as ``clock_drift_s``).
- ``clock_sync``: SET the clock to the gateway's time now (local time with its UTC offset).
- ``disconnect`` / ``reconnect``: Disconnect control (class 70, 0-0:96.3.10.255) methods 1 / 2.
- ``relay_state``: output_state, control_state, control_mode of the disconnect control.
- ``reconnect_session``: drop the association and associate again.
- ``health``: the meter's health counters and alarm keys, without touching the meter.
- ``read_profile`` {obis, from, to?}: profile rows by time range (profile_rpc.py).
- ``scan``: the meter's object list, register scalers and profile captures as a dlms.json meter
  block (``block``), as ``tb-dlms scan`` prints it; secrets by their configured variable or file.
- ``push_setup_read`` / ``push_setup_write`` / ``push_now`` / ``push_setup_point``: a Push setup
  (class 40): its object list, destination and timing; push; point it at the gateway's listener
  (push_setup_rpc.py, whose ``PushSetupRpcs`` the ``push_setup`` argument passes).

Configured ``rpc`` entries of dlms.json answer by their ``method`` name.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from ..protocol.axdr import DataType, Typed, to_json
from ..protocol.cosem_datetime import CosemDateTime
from ..protocol.errors import ConfigError, DataAccessError, DlmsError
from ..protocol.obis import Obis
from ..session.reading import Reading, Ref
from .alarms import clock_drift_s
from .model import MeterConfig, RpcMethod
from .profile_rpc import ProfileRequestError, profile_job
from .push_setup_rpc import PushSetupRpcs
from .scan_block import scan_job
from .values import coerce_value, parse_type_name

__all__ = [
    "CLOCK_OBIS", "DISCONNECT_OBIS", "RpcDispatcher", "RpcError", "connector_rpc",
    "normalize_params",
]

CLOCK_OBIS = Obis(0, 0, 1, 0, 0, 255)
DISCONNECT_OBIS = Obis(0, 0, 96, 3, 10, 255)
_CONTROL_STATES = {0: "disconnected", 1: "connected", 2: "ready_for_reconnection"}
DEFAULT_TIMEOUT_S = 30.0


class RpcError(Exception):
    """A request that cannot be served (bad params, refused by the meter): the reply's error."""


def normalize_params(params: Any) -> Any:
    """ThingsBoard sends params as an object, a scalar, or JSON text of either."""
    if isinstance(params, str):
        text = params.strip()
        if text[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                return params
    return params


def _fail(message: str) -> dict[str, Any]:
    return {"success": False, "error": message}


def _done(reply: dict[str, Any]) -> Future[dict[str, Any]]:
    f: Future[dict[str, Any]] = Future()
    f.set_result(reply)
    return f


def _int_param(params: Mapping[str, Any], key: str, default: int | None, lo: int, hi: int) -> int:
    value = params.get(key, default)
    if value is None:
        raise RpcError(f"params.{key} is required")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RpcError(f"params.{key} must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _obis_param(params: Mapping[str, Any]) -> Obis:
    value = params.get("obis")
    if not isinstance(value, str):
        raise RpcError("params.obis is required (e.g. '1-0:1.8.0')")
    try:
        return Obis.parse(value)
    except DlmsError:
        raise RpcError(f"params.obis: {value!r} is not an OBIS code") from None


def _value_param(params: Any) -> Any:
    """The value of a SET/ACTION: params.value, or the params themselves when a scalar."""
    if isinstance(params, Mapping):
        if "value" not in params:
            raise RpcError("params.value is required")
        return params["value"]
    return params


def _reading_reply(ref: Ref, result: Any) -> dict[str, Any]:
    if isinstance(result, DataAccessError):
        raise RpcError(f"the meter refused {ref}: {result.name}")
    reply: dict[str, Any] = {"success": True, "obis": str(ref.obis), "classId": ref.class_id,
                             "attribute": ref.attribute}
    reply.update(result.to_json() if isinstance(result, Reading) else {"value": to_json(result)})
    if isinstance(result, Reading):
        reply["ts"] = result.read_at
    return reply


def _check_set(ref: Ref, result: Any) -> dict[str, Any]:
    if int(result) != 0:
        raise RpcError(f"the meter refused SET {ref}: {getattr(result, 'label', result)}")
    return {"success": True, "obis": str(ref.obis), "classId": ref.class_id,
            "attribute": ref.attribute}


def _check_action(what: str, outcome: Any) -> dict[str, Any]:
    result, data = outcome
    if int(result) != 0:
        raise RpcError(f"the meter refused {what}: {getattr(result, 'label', result)}")
    reply: dict[str, Any] = {"success": True}
    if data is not None:
        reply["data"] = to_json(data)
    return reply


def _meter_time(raw: Any, sign: int) -> _dt.datetime:
    if isinstance(raw, (bytes, bytearray)) and len(raw) == 12:
        raw = CosemDateTime.from_bytes(bytes(raw))
    if not isinstance(raw, CosemDateTime):
        raise RpcError(f"the clock sent {to_json(raw)!r}, not a date-time")
    return raw.to_datetime(deviation_sign=sign)


class RpcDispatcher:
    """Routes device RPCs to the engine and turns outcomes into replies.

    ``engine`` needs ``submit(name, fn, timeout_s) -> Future``, ``reconnect(name)``,
    ``health() -> {name: snapshot}``. ``on_clock(meter_name, drift_s)`` is called after every
    clock read (the connector publishes the drift); ``status(meter_name)`` gives the alarm keys.
    """

    def __init__(
        self,
        engine: Any,
        meters: Mapping[str, MeterConfig],
        *,
        on_clock: Callable[[str, float], None] | None = None,
        status: Callable[[str], Mapping[str, Any]] | None = None,
        now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now().astimezone(),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        push_setup: PushSetupRpcs | None = None,
    ) -> None:
        self.engine = engine
        self.meters = meters
        self._on_clock = on_clock
        self._status = status
        self._now = now
        self.timeout_s = timeout_s
        self._builtins: dict[str, Callable[[MeterConfig, Any], Any]] = {
            "read": self._read, "set": self._set, "action": self._action,
            "clock_read": self._clock_read, "clock_sync": self._clock_sync,
            "disconnect": self._relay(1, "disconnect"), "reconnect": self._relay(2, "reconnect"),
            "relay_state": self._relay_state, "read_profile": self._read_profile,
            "scan": self._scan,
        }
        self._builtins.update((push_setup or PushSetupRpcs()).builders())

    # -- entry point ----------------------------------------------------------------------------
    def device_rpc(self, device: str, method: str, params: Any = None) -> Future[dict[str, Any]]:
        meter = self.meters.get(device)
        if meter is None:
            return _done(_fail(f"unknown device {device!r}"))
        params = normalize_params(params)
        try:
            if method == "reconnect_session":
                self.engine.reconnect(device)
                return _done({"success": True, "message": f"{device}: reconnecting"})
            if method == "health":
                return _done(self.health(device))
            configured = meter.rpc_method(method)
            if configured is not None:
                job = self._configured(meter, configured, params)
            elif method in self._builtins:
                job = self._builtins[method](meter, params if params is not None else {})
            else:
                return _done(_fail(f"unknown method {method!r} for {device}"))
        except (RpcError, ConfigError) as exc:
            return _done(_fail(str(exc)))
        timeout = self.timeout_s
        if isinstance(params, Mapping) and isinstance(params.get("timeout"), (int, float)):
            timeout = max(1.0, min(float(params["timeout"]) / 1000.0, 600.0))  # ms, like TB
        return self._run(device, job, timeout)

    def _run(self, device: str, job: Callable[[Any], dict[str, Any]],
             timeout_s: float) -> Future[dict[str, Any]]:
        out: Future[dict[str, Any]] = Future()

        def finish(inner: Future[Any]) -> None:
            try:
                out.set_result(inner.result())
            except (RpcError, DlmsError) as exc:
                out.set_result(_fail(str(exc)))
            except Exception as exc:  # noqa: BLE001 - an RPC must always get an answer
                out.set_result(_fail(f"{type(exc).__name__}: {exc}"))

        def guarded(session: Any) -> dict[str, Any]:
            # A refusal is an answer, not a failure of the session: keep it out of the engine
            # (which would log it as a failed request); DlmsErrors still reach the engine.
            try:
                return job(session)
            except RpcError as exc:
                return _fail(str(exc))

        try:
            inner = self.engine.submit(device, guarded, timeout_s)
        except DlmsError as exc:
            return _done(_fail(str(exc)))
        inner.add_done_callback(finish)
        return out

    def health(self, device: str) -> dict[str, Any]:
        reply: dict[str, Any] = {"success": True}
        reply.update(self.engine.health().get(device, {}))
        if self._status is not None:
            reply.update(self._status(device))
        return reply

    # -- built-ins (each returns the job to run on the worker) ------------------------------------
    def _read(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        if not isinstance(params, Mapping):
            raise RpcError("params must be an object: {obis, classId?, attribute?}")
        ref = Ref(_int_param(params, "classId", 3, 0, 0xFFFF), _obis_param(params),
                  _int_param(params, "attribute", 2, 1, 127))
        return lambda session: _reading_reply(ref, session.get(ref))

    def _read_profile(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        try:
            job: Callable[[Any], dict[str, Any]] = profile_job(meter, params)
        except ProfileRequestError as exc:
            raise RpcError(str(exc)) from None
        return job

    def _scan(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        return scan_job(meter)

    def _set(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        if not isinstance(params, Mapping):
            raise RpcError("params must be an object: {obis, classId, attribute, value, type}")
        ref = Ref(_int_param(params, "classId", None, 0, 0xFFFF), _obis_param(params),
                  _int_param(params, "attribute", None, 1, 127))
        if "type" not in params:
            raise RpcError("params.type is required (the A-XDR type, e.g. 'long-unsigned')")
        typed = coerce_value(_value_param(params), parse_type_name(params["type"]), "params.value")
        return lambda session: _check_set(ref, session.set(ref, typed))

    def _action(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        if not isinstance(params, Mapping):
            raise RpcError("params must be an object: {obis, classId, method, value?, type?}")
        class_id = _int_param(params, "classId", None, 0, 0xFFFF)
        obis = _obis_param(params)
        index = _int_param(params, "method", None, 1, 127)
        typed = self._optional_value(params)
        what = f"ACTION {obis}/{class_id}/{index}"
        return lambda session: _check_action(what, session.action(class_id, obis, index, typed))

    @staticmethod
    def _optional_value(params: Mapping[str, Any]) -> Typed:
        if "type" in params:
            return coerce_value(params.get("value"), parse_type_name(params["type"]),
                                "params.value")
        if params.get("value") is not None:
            raise RpcError("params.type is required with params.value")
        return Typed(DataType.NULL_DATA, None)

    def _clock_ref(self) -> Ref:
        return Ref(8, CLOCK_OBIS, 2)

    def read_clock(self, meter: MeterConfig, session: Any) -> dict[str, Any]:
        """GET the clock and compare (runs on the worker; the periodic clock check uses it)."""
        ref = self._clock_ref()
        result = session.get(ref)
        gateway_time = self._now()
        if isinstance(result, DataAccessError):
            raise RpcError(f"the meter refused the clock read: {result.name}")
        sign = getattr(meter.spec.session, "deviation_sign", -1)
        meter_time = _meter_time(result.raw if isinstance(result, Reading) else result, sign)
        drift = clock_drift_s(meter_time, gateway_time)
        if self._on_clock is not None:
            self._on_clock(meter.name, drift)
        return {"success": True, "meter_time": meter_time.isoformat(),
                "gateway_time": gateway_time.isoformat(), "drift_s": drift,
                "threshold_s": meter.clock_drift_threshold_s,
                "alarm": abs(drift) > meter.clock_drift_threshold_s}

    def _clock_read(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        return lambda session: self.read_clock(meter, session)

    def _clock_sync(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        ref = self._clock_ref()
        sign = getattr(meter.spec.session, "deviation_sign", -1)

        def job(session: Any) -> dict[str, Any]:
            moment = self._now()
            stamp = CosemDateTime.from_datetime(moment, deviation_sign=sign)
            # The clock's time attribute is an octet-string(12) (Blue Book class 8).
            _check_set(ref, session.set(ref, Typed(DataType.OCTET_STRING, stamp.to_bytes())))
            after = self.read_clock(meter, session)
            return {"success": True, "set_to": moment.isoformat(), "meter_time":
                    after["meter_time"], "drift_s": after["drift_s"]}

        return job

    def _relay(self, method: int, name: str) -> Callable[[MeterConfig, Any],
                                                         Callable[[Any], dict[str, Any]]]:
        def build(meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
            what = f"{name} (ACTION {DISCONNECT_OBIS}/70/{method})"
            arg = Typed(DataType.INTEGER, 0)  # Blue Book: data ::= integer(0)
            return lambda session: _check_action(
                what, session.action(70, DISCONNECT_OBIS, method, arg))
        return build

    def _relay_state(self, meter: MeterConfig, params: Any) -> Callable[[Any], dict[str, Any]]:
        refs = [Ref(70, DISCONNECT_OBIS, a) for a in (2, 3, 4)]

        def job(session: Any) -> dict[str, Any]:
            results = session.read(refs)
            reply: dict[str, Any] = {"success": True}
            for name, result in zip(("output_state", "control_state", "control_mode"), results):
                if isinstance(result, DataAccessError):
                    reply[name] = None
                    reply.setdefault("errors", {})[name] = result.name
                    continue
                raw = result.raw if isinstance(result, Reading) else result
                reply[name] = to_json(raw)
                if name == "control_state":
                    reply["control_state_name"] = _CONTROL_STATES.get(raw, f"unknown ({raw})")
            if all(reply[k] is None for k in ("output_state", "control_state", "control_mode")):
                raise RpcError(f"the meter refused the disconnect control: {reply['errors']}")
            return reply

        return job

    # -- configured -------------------------------------------------------------------------------
    def _configured(self, meter: MeterConfig, rpc: RpcMethod,
                    params: Any) -> Callable[[Any], dict[str, Any]]:
        if rpc.kind == "get":
            ref = Ref(rpc.class_id, rpc.obis, rpc.index)
            return lambda session: _reading_reply(ref, session.get(ref))
        if rpc.has_value:
            raw_value = rpc.value
        elif rpc.kind == "action" and (params is None or params == {}):
            raw_value = None
        else:
            raw_value = _value_param(params)
        value_type = rpc.value_type or DataType.NULL_DATA
        typed = coerce_value(raw_value, value_type, f"rpc {rpc.method!r} value")
        if rpc.kind == "set":
            ref = Ref(rpc.class_id, rpc.obis, rpc.index)
            return lambda session: _check_set(ref, session.set(ref, typed))
        what = f"{rpc.method} (ACTION {rpc.obis}/{rpc.class_id}/{rpc.index})"
        return lambda session: _check_action(
            what, session.action(rpc.class_id, rpc.obis, rpc.index, typed))


def connector_rpc(method: str, params: Any, *, statistics: Mapping[str, Any],
                  engine: Any, meters: Mapping[str, MeterConfig],
                  status: Callable[[str], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """``<type>_<method>`` RPCs on the gateway device: ``statistics`` and ``meters``."""
    name = method.split("_", 1)[1] if "_" in method else method
    if name == "statistics":
        health = engine.health() if engine is not None else {}
        totals = {k: sum(int(h.get(k, 0)) for h in health.values())
                  for k in ("total_reads", "successful_reads", "failed_reads", "registers_read",
                            "reconnects", "total_cycles", "cycles_on_time", "cycles_missed")}
        cycles = totals["total_cycles"]
        on_time = round(100.0 * totals["cycles_on_time"] / cycles, 2) if cycles else 100.0
        return {"success": True, **dict(statistics), "meters": len(meters), **totals,
                "on_time_rate": on_time}
    if name == "meters":
        states = engine.states() if engine is not None else {}
        out = []
        for meter_name, meter in meters.items():
            entry: dict[str, Any] = {"deviceName": meter_name,
                                     "deviceType": meter.spec.device_type}
            entry.update(states.get(meter_name, {}))
            if status is not None:
                entry.update({k: v for k, v in status(meter_name).items()
                              if k != "connection_detail"})
            out.append(entry)
        return {"success": True, "meters": out}
    return _fail(f"unknown connector method {method!r} (known: statistics, meters)")

