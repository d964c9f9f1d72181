"""Push setup (class 40) device RPCs: read and write where a meter pushes and what, push now, and
point the meter at the gateway's own push listener.

- ``push_setup_read`` {obis?}: attributes 2-7 in one read (GET-with-list when the meter takes it).
  The object list and the destination must come; a refused window, interval, retry count or
  delay reads null, with the meter's answer under ``errors``.
- ``push_setup_write`` {obis?, objects?, destination?, transport?, message?,
  randomisationStartInterval?, numberOfRetries?, repetitionDelay?}: every param checked before
  the meter is asked anything; then one SET per attribute given, in attribute order, stopping at
  the first refusal. destination, transport and message share attribute 3: a part not given is
  read from the meter and kept. A destination is ``host:port`` unless ``transport`` names a
  transport other than tcp or udp.
- ``push_now`` {obis?}: ACTION push (method 1, integer 0).
- ``push_setup_point`` {obis?, destination? | host?, port?}: attribute 3 := tcp, a-xdr, the
  listener's ``host:port`` (``listener_destination``, overridden part by part by host and port).

``obis`` defaults to 0-0:25.9.0.255. Bad params raise ConfigError (the dispatcher answers it
without touching the meter); a meter's refusal or a malformed answer is a failed reply naming
the meter, the object and the attribute.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..protocol.axdr import DataType, Typed
from ..protocol.errors import ConfigError, DataAccessError, DecodeError, DlmsError
from ..protocol.obis import Obis
from ..protocol.push_setup import (
    ATTRIBUTES,
    CLASS_ID,
    DEFAULT_OBIS,
    PUSH_METHOD,
    PushListEntry,
    RepetitionDelay,
    SendDestination,
    decode_communication_window,
    decode_number_of_retries,
    decode_push_object_list,
    decode_randomisation_start_interval,
    decode_repetition_delay,
    decode_send_destination,
    encode_number_of_retries,
    encode_push_object_list,
    encode_randomisation_start_interval,
    encode_repetition_delay,
    entry_from_json,
    message_code,
    parse_host_port,
    transport_code,
    window_to_json,
)
from ..session.reading import Reading, Ref

__all__ = ["MAX_OBJECTS", "PUSH_SETUP_RPCS", "PushSetupRpcs"]

PUSH_SETUP_RPCS = ("push_setup_read", "push_setup_write", "push_now", "push_setup_point")
MAX_OBJECTS = 256  # entries one write may set: more is surely a mistake
_IP_TRANSPORTS = (0, 1)  # tcp, udp: their destination is host:port
_TCP, _A_XDR = 0, 0
_SCALARS: dict[int, tuple[str, Callable[[Any], Any]]] = {
    5: ("randomisationStartInterval", decode_randomisation_start_interval),
    6: ("numberOfRetries", decode_number_of_retries),
    7: ("repetitionDelay", decode_repetition_delay)}
_WRITE_KEYS = frozenset(("objects", "destination", "transport", "message",
                         "randomisationStartInterval", "numberOfRetries", "repetitionDelay"))

Job = Callable[[Any], dict[str, Any]]
_T = TypeVar("_T")


class PushSetupRpcs:
    """The push setup RPCs; ``listener_destination`` (``host:port``) is the gateway's push
    listener, where ``push_setup_point`` points a meter (None: the RPC needs the address)."""

    def __init__(self, listener_destination: str | None = None) -> None:
        if listener_destination is not None:
            where = "push listener destination"
            _checked(where, parse_host_port, listener_destination, where)
        self.listener_destination = listener_destination

    def builders(self) -> dict[str, Callable[[Any, Any], Job]]:
        """RPC name -> ``build(meter, params)`` returning the job, as the dispatcher takes them."""
        return {"push_setup_read": self.read, "push_setup_write": self.write,
                "push_now": self.push_now, "push_setup_point": self.point}

    # -- the RPCs --------------------------------------------------------------------------------
    def read(self, meter: Any, params: Any) -> Job:
        p = _params(params, {"obis"}, "{obis?}")
        obis = _obis(p)
        refs = [Ref(CLASS_ID, obis, a) for a in ATTRIBUTES]

        def job(session: Any) -> dict[str, Any]:
            results = dict(zip(ATTRIBUTES, session.read(refs)))
            return _read_reply(meter, obis, results)

        return job

    def write(self, meter: Any, params: Any) -> Job:
        p = _params(params, set(_WRITE_KEYS) | {"obis"}, "{obis?, objects?, destination?, ...}")
        obis = _obis(p)
        if not _WRITE_KEYS & set(p):
            raise ConfigError("params: nothing to write (give objects, destination, transport, "
                              "message, randomisationStartInterval, numberOfRetries or "
                              "repetitionDelay)")
        sets: list[tuple[str, int, Typed]] = []
        if "objects" in p:
            sets.append(("objects", 2, encode_push_object_list(_objects(p["objects"]))))
        parts = _destination_parts(p)
        for key, attribute, encode in (
                ("randomisationStartInterval", 5, encode_randomisation_start_interval),
                ("numberOfRetries", 6, encode_number_of_retries)):
            if key in p:
                sets.append((key, attribute, _checked(f"params.{key}", encode,
                                                      _int(p[key], f"params.{key}"))))
        if "repetitionDelay" in p:
            sets.append(("repetitionDelay", 7, _repetition_delay(p["repetitionDelay"])))

        def job(session: Any) -> dict[str, Any]:
            written: dict[str, Any] = {}
            todo = list(sets)
            if parts is not None:
                target = _complete(meter, obis, session, *parts)
                if isinstance(target, str):
                    return {"success": False, "error": target}
                todo.insert(1 if "objects" in p else 0, ("destination", 3, target.typed()))
                written = target.to_json()
            return _apply(meter, obis, session, todo, written)

        return job

    def push_now(self, meter: Any, params: Any) -> Job:
        obis = _obis(_params(params, {"obis"}, "{obis?}"))

        def job(session: Any) -> dict[str, Any]:
            result, _data = session.action(CLASS_ID, obis, PUSH_METHOD, Typed(DataType.INTEGER, 0))
            if int(result) != 0:
                return {"success": False, "error": f"{meter.name}: push setup {obis} refused "
                        f"method {PUSH_METHOD} (push): {_label(result)}"}
            return {"success": True, "obis": str(obis)}

        return job

    def point(self, meter: Any, params: Any) -> Job:
        p = _params(params, {"obis", "destination", "host", "port"},
                    "{obis?, destination? | host?, port?}")
        obis = _obis(p)
        if "destination" in p:
            if "host" in p or "port" in p:
                raise ConfigError("params: give destination or host/port, not both")
            text = p["destination"]
            _meter_can_reach(text, "params.destination")
        else:
            host, port = (None, None) if self.listener_destination is None else \
                parse_host_port(self.listener_destination)
            host = p.get("host", host)
            port = _int(p["port"], "params.port") if "port" in p else port
            if host is None or port is None:
                raise ConfigError("no push listener address is configured: give "
                                  "params.destination ('host:port') or params.host and "
                                  "params.port")
            text = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
            _meter_can_reach(text, "params.host/port")
        target = SendDestination(_TCP, str(text).strip().encode("ascii"), _A_XDR)
        return lambda session: _apply(meter, obis, session, [("destination", 3, target.typed())],
                                      target.to_json())


# ---- the jobs' parts (run on the meter's worker) --------------------------------------------
def _read_reply(meter: Any, obis: Obis, results: Mapping[int, Any]) -> dict[str, Any]:
    reply: dict[str, Any] = {"success": True, "obis": str(obis)}
    refused, errors = [], {}
    sign = getattr(meter.spec.session, "deviation_sign", -1)
    for attribute, result in results.items():
        if isinstance(result, DataAccessError):
            if attribute in (2, 3):  # what the object is for: without them, no answer
                refused.append(f"attribute {attribute} ({ATTRIBUTES[attribute]}): {result.name}")
            else:
                key = _SCALARS[attribute][0] if attribute in _SCALARS else "communicationWindow"
                reply[key] = None
                errors[key] = result.name
            continue
        raw = result.raw if isinstance(result, Reading) else result
        try:
            if attribute == 2:
                reply["objects"] = [o.to_json() for o in decode_push_object_list(raw)]
            elif attribute == 3:
                reply.update(decode_send_destination(raw).to_json())
            elif attribute == 4:
                reply["communicationWindow"] = [window_to_json(w, sign)
                                                for w in decode_communication_window(raw)]
            else:
                key, decode = _SCALARS[attribute]
                value = decode(raw)
                reply[key] = value.to_json() if isinstance(value, RepetitionDelay) else value
        except DecodeError as exc:
            return _failed(meter, obis, attribute, f"malformed answer: {exc}")
    if refused:
        return {"success": False, "error": f"{meter.name}: push setup {obis} refused "
                f"{'; '.join(refused)}"}
    if errors:
        reply["errors"] = errors
    return reply


def _complete(meter: Any, obis: Obis, session: Any, transport: int | None,
              destination: bytes | None, message: int | None) -> SendDestination | str:
    """The attribute 3 to write: the parts given, the others as the meter holds them (or the
    failure's error text)."""
    if transport is None or destination is None or message is None:
        result = session.get(Ref(CLASS_ID, obis, 3))
        if isinstance(result, DataAccessError):
            return _why(meter, obis, 3, f"reading it to keep the parts not given: {result.name}")
        try:
            current = decode_send_destination(result.raw if isinstance(result, Reading)
                                              else result)
        except DecodeError as exc:
            return _why(meter, obis, 3, f"malformed answer: {exc}")
        if transport is None and destination is not None and \
                current.transport not in _IP_TRANSPORTS:
            return (f"{meter.name}: push setup {obis} pushes over transport "
                    f"{current.to_json()['transport']!r}: give params.transport with a "
                    "destination that is not host:port")
        transport = current.transport if transport is None else transport
        destination = current.destination if destination is None else destination
        message = current.message if message is None else message
    return SendDestination(transport, destination, message)


def _apply(meter: Any, obis: Obis, session: Any, sets: list[tuple[str, int, Typed]],
           written: dict[str, Any]) -> dict[str, Any]:
    """SET each in turn; stop at the first refusal (the rest reads ``not-attempted``)."""
    results = {key: "not-attempted" for key, _a, _v in sets}
    for key, attribute, value in sets:
        result = session.set(Ref(CLASS_ID, obis, attribute), value)
        results[key] = _label(result)
        if int(result) != 0:
            reply = _failed(meter, obis, attribute, f"SET refused: {_label(result)}")
            return {**reply, "obis": str(obis), "results": results}
    return {"success": True, "obis": str(obis), **written, "results": results}


def _failed(meter: Any, obis: Obis, attribute: int, why: str) -> dict[str, Any]:
    return {"success": False, "error": _why(meter, obis, attribute, why)}


def _why(meter: Any, obis: Obis, attribute: int, why: str) -> str:
    return f"{meter.name}: push setup {obis} attribute {attribute} ({ATTRIBUTES[attribute]}): {why}"


def _label(result: Any) -> str:
    return str(getattr(result, "label", result))


# ---- params (checked before the meter is asked anything) ------------------------------------
def _params(params: Any, allowed: set[str], shape: str) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"params must be an object: {shape}")
    unknown = sorted(set(params) - allowed - {"timeout"})
    if unknown:
        raise ConfigError(f"params: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(sorted(allowed))})")
    return params


def _obis(params: Mapping[str, Any]) -> Obis:
    if "obis" not in params:
        return DEFAULT_OBIS
    return _checked("params.obis", Obis.parse, params["obis"])


def _objects(value: Any) -> tuple[PushListEntry, ...]:
    if not isinstance(value, list):
        raise ConfigError("params.objects must be an array of {classId, obis, attribute, "
                          "dataIndex?}")
    if len(value) > MAX_OBJECTS:
        raise ConfigError(f"params.objects: {len(value)} entries, at most {MAX_OBJECTS}")
    return tuple(_checked(f"params.objects[{i}]", entry_from_json, item,
                          f"params.objects[{i}]")
                 for i, item in enumerate(value))


def _destination_parts(p: Mapping[str, Any]) -> tuple[int | None, bytes | None,
                                                      int | None] | None:
    if not {"destination", "transport", "message"} & set(p):
        return None
    transport = message = None
    if "transport" in p:
        transport = _checked("params.transport", transport_code, p["transport"],
                             "params.transport")
    if "message" in p:
        message = _checked("params.message", message_code, p["message"], "params.message")
    if "destination" not in p:
        return transport, None, message
    text = p["destination"]
    where = "params.destination"
    if transport is None or transport in _IP_TRANSPORTS:
        _meter_can_reach(text, where)
    if not isinstance(text, str) or not text.strip() or not text.isascii() \
            or not text.isprintable() or len(text) > 255:
        raise ConfigError(f"{where}: expected printable ASCII text of 1..255 characters, got "
                          f"{text!r:.60}")
    return transport, text.strip().encode("ascii"), message


def _meter_can_reach(text: Any, where: str) -> None:
    """A ``host:port`` a meter can push to: 0.0.0.0 or :: is where a listener binds, not an
    address to give a meter (the listener's bind address passed as its destination, say)."""
    host, _port = _checked(where, parse_host_port, text, where)
    try:
        unspecified = ipaddress.ip_address(host).is_unspecified
    except ValueError:  # a host name
        return
    if unspecified:
        raise ConfigError(f"{where}: {host} is a listening address, not one a meter can push "
                          "to: give the gateway's address")


def _repetition_delay(value: Any) -> Typed:
    if isinstance(value, Mapping):
        if set(value) != {"min", "exponent", "max"}:
            raise ConfigError("params.repetitionDelay: seconds, or {min, exponent, max} "
                              "(a version 2 push setup)")
        delay: int | RepetitionDelay = RepetitionDelay(
            *(_int(value[k], f"params.repetitionDelay.{k}") for k in ("min", "exponent", "max")))
    else:
        delay = _int(value, "params.repetitionDelay")
    return _checked("params.repetitionDelay", encode_repetition_delay, delay)


def _int(value: Any, where: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value)
    if type(value) is not int:
        raise ConfigError(f"{where} must be an integer, got {value!r:.40}")
    return value


def _checked(where: str, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` with a DlmsError turned into a ConfigError naming ``where``."""
    try:
        return fn(*args)
    except DlmsError as exc:
        text = str(exc)
        raise ConfigError(text if text.startswith(where) else f"{where}: {text}") from None
