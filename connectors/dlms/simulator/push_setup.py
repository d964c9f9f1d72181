"""What a simulated meter pushes: its Push setup objects (class 40, version 0), its alarm register
and the state behind them (no sockets: simulator/pusher.py sends what these say).

Two Push setups, like an IDIS meter:

- 0-0:25.9.0.255, the regular push (every ``push_period_s``, or on method 1): its own logical
  name, the device id 0-0:96.1.0.255, the clock 0-0:1.0.0.255, then the model's class 3
  registers (attribute 2, raw values: the scalers are the registers' attribute 3).
- 0-4:25.9.0.255, the alarm push (on an alarm, a disconnector transition, or method 1): its own
  logical name, the device id, alarm register 1 0-0:97.98.0.255 and the disconnector control
  event code 0-0:96.11.2.255 (the IDIS event code of the last disconnector transition).

Attributes: 1 logical_name, 2 push_object_list (array of {class_id, logical_name,
attribute_index, data_index}), 3 send_destination_and_method ({transport_service enum 0 = TCP,
destination "HOST:PORT", message enum 0 = A-XDR APDU}), 4 communication_window (empty: any
time), 5 randomisation_start_interval, 6 number_of_retries, 7 repetition_delay; 2, 3, 5, 6 and
7 writable, a value of another shape answers type-unmatched. Method 1 push(integer) pushes now.

Alarm register 1 (class 1, double-long-unsigned): the bits of protocol/alarm_register.py, set by
``raise_alarm(name)`` (a disconnector transition is an event, not an alarm: it only pushes);
a write of the register (0) clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from ..protocol.alarm_register import ALARM_BITS
from ..protocol.apdu.common import ActionResult, DataAccessResult
from ..protocol.axdr import DataType, Typed
from ..protocol.errors import DlmsError, LocalProtocolError
from ..protocol.obis import Obis
from ..protocol.push_setup import PushListEntry as PushEntry
from ..protocol.push_setup import decode_push_object_list, encode_push_object_list
from .meter_models import registers_of
from .object_table import AttrDef, ObjectDef, dlu, enum, ln_attr, u8

if TYPE_CHECKING:
    from .object_table import ObjectHost

__all__ = [
    "ALARM_PUSH_OBIS",
    "ALARM_REGISTER_OBIS",
    "PUSH_OBIS",
    "PushEntry",
    "PushSetup",
    "PushState",
    "check_push_options",
    "default_object_list",
    "parse_destination",
    "push_objects",
]

PUSH_OBIS = Obis.parse("0-0:25.9.0")
ALARM_PUSH_OBIS = Obis.parse("0-4:25.9.0")
ALARM_REGISTER_OBIS = Obis.parse("0-0:97.98.0")
_SERIAL = Obis.parse("0-0:96.1.0")
_CLOCK = Obis.parse("0-0:1.0.0")
DISCONNECTOR_EVENT_OBIS = Obis.parse("0-0:96.11.2")
_BIT_OF_NAME = {name: bit for bit, name in ALARM_BITS.items()}
# Disconnector trigger (and the state it led to) -> the disconnector log's event code.
_EVENT_OF_TRIGGER = {
    "remote_disconnect": 62, "remote_reconnect": 63, "manual_disconnect": 60,
    "manual_reconnect": 61, "local_disconnect": 64, "local_reconnect": 66,
}
_READY_FOR_RECONNECTION = 2


def default_object_list(model: str) -> tuple[PushEntry, ...]:
    """The regular push's objects of meter model ``model`` (poly, mono, ct)."""
    return (PushEntry(40, PUSH_OBIS, 1), PushEntry(1, _SERIAL, 2), PushEntry(8, _CLOCK, 2),
            *(PushEntry(3, r.spec.obis, 2) for r in registers_of(model)))


ALARM_OBJECT_LIST = (PushEntry(40, ALARM_PUSH_OBIS, 1), PushEntry(1, _SERIAL, 2),
                     PushEntry(1, ALARM_REGISTER_OBIS, 2), PushEntry(1, DISCONNECTOR_EVENT_OBIS, 2))
_DEFAULTS = {model: default_object_list(model) for model in ("poly", "mono", "ct")}


def parse_destination(text: bytes | str) -> tuple[str, int] | None:
    """("host", port) of "HOST:PORT" ("[v6]:PORT" too); None when empty or not that shape."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return None
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= 0xFFFF:
        return None
    return host, int(port)


def check_push_options(options: Any) -> None:
    """MeterOptions' push fields, refused with the field's name."""
    if options.push_to and parse_destination(options.push_to) is None:
        raise LocalProtocolError(f"push_to must be HOST:PORT, got {options.push_to!r}")
    if not options.push_period_s >= 0:
        raise LocalProtocolError(f"push_period_s must be >= 0, got {options.push_period_s}")
    if options.push_security not in ("", "auth", "enc", "auth-enc"):
        raise LocalProtocolError(f"push_security must be '', 'auth', 'enc' or 'auth-enc', "
                                 f"got {options.push_security!r}")
    if options.push_suite_id not in (0, 1):
        raise LocalProtocolError(f"push_suite_id must be 0 or 1, got {options.push_suite_id}")
    if options.push_replay_every < 0:
        raise LocalProtocolError(f"push_replay_every must be >= 0, "
                                 f"got {options.push_replay_every}")
    if options.push_buffer_bytes < 1024:
        raise LocalProtocolError(f"push_buffer_bytes must be >= 1024, "
                                 f"got {options.push_buffer_bytes}")


class PushSetup(NamedTuple):
    """One Push setup's writable state (immutable: a write replaces it, so the meters of a
    fleet share their defaults until a client changes one)."""

    object_list: tuple[PushEntry, ...]
    destination: bytes
    transport: int = 0  # TCP
    message: int = 0  # A-XDR encoded xDLMS APDU
    randomisation: int = 0
    retries: int = 0
    delay: int = 0


_INDEX = {PUSH_OBIS.to_bytes(): 0, ALARM_PUSH_OBIS.to_bytes(): 1}
_SHARED: dict[tuple[str, str], tuple[PushSetup, PushSetup]] = {}


class PushState:
    """A meter's two Push setups, its alarm register and the pusher's doorbell: ``listener``
    (set by the pusher) is called with a Push setup's raw OBIS when it must push now."""

    __slots__ = ("alarm", "disconnector_event", "listener", "setups")

    def __init__(self, model: str, push_to: str) -> None:
        key = (model, push_to)
        setups = _SHARED.get(key)
        if setups is None:
            dest = push_to.encode("ascii")
            setups = _SHARED[key] = (PushSetup(_DEFAULTS[model], dest),
                                     PushSetup(ALARM_OBJECT_LIST, dest))
        self.setups = setups
        self.alarm = 0
        self.disconnector_event = 0  # IDIS code of the last disconnector transition (0: none)
        self.listener: Callable[[bytes], None] | None = None

    def setup(self, obis: bytes) -> PushSetup:
        return self.setups[_INDEX[obis]]

    def change(self, obis: bytes, **fields: Any) -> None:
        """What a write does: Push setup ``obis`` with ``fields`` replaced."""
        setups = list(self.setups)
        k = _INDEX[obis]
        setups[k] = setups[k]._replace(**fields)
        self.setups = (setups[0], setups[1])

    def request(self, obis: bytes) -> bool:
        """Ask the pusher to push ``obis``'s notification now; False when nobody can."""
        listener = self.listener
        if listener is None or not self.setup(obis).destination:
            return False
        listener(obis)
        return True

    def on_disconnector(self, trigger: str, state: int) -> None:
        """A disconnector transition happened: its event code is kept and the alarm pushed."""
        code = _EVENT_OF_TRIGGER[trigger]
        if trigger == "remote_reconnect" and state == _READY_FOR_RECONNECTION:
            code = 59
        self.disconnector_event = code
        self.request(ALARM_PUSH_OBIS.to_bytes())

    def raise_alarm(self, name: str) -> None:
        """Set alarm ``name``'s bit (protocol/alarm_register.ALARM_BITS) and push the alarm."""
        bit = _BIT_OF_NAME.get(name)
        if bit is None:
            raise LocalProtocolError(f"unknown alarm {name!r}; known: {', '.join(_BIT_OF_NAME)}")
        self.alarm |= 1 << bit
        self.request(ALARM_PUSH_OBIS.to_bytes())


def push_body(host: ObjectHost, setup: PushSetup) -> Typed:
    """The notification body: a structure of the object list's values as a GET gives them
    (null-data where the meter would answer an error)."""
    values = []
    for entry in setup.object_list:
        value = host.get(entry.class_id, entry.obis, entry.attribute)
        values.append(value if isinstance(value, Typed) else Typed(DataType.NULL_DATA, None))
    return Typed(DataType.STRUCTURE, tuple(values))


# -- the object table's handlers -----------------------------------------------------------------
def _list_typed(setup: PushSetup) -> Typed:
    return encode_push_object_list(setup.object_list)


def _int_in(v: Any, low: int, high: int) -> bool:
    return type(v) is int and low <= v <= high


def _set_list(m: ObjectHost, raw: bytes, v: Any) -> DataAccessResult:
    # A version 0 meter: entries of exactly four fields (the decoder would take longer ones).
    if not isinstance(v, list) or any(not isinstance(e, (tuple, list)) or len(e) != 4 for e in v):
        return DataAccessResult.TYPE_UNMATCHED
    try:
        entries = decode_push_object_list(v)
    except DlmsError:
        return DataAccessResult.TYPE_UNMATCHED
    m.push.change(raw, object_list=entries)
    return DataAccessResult.SUCCESS


def _set_destination(m: ObjectHost, raw: bytes, v: Any) -> DataAccessResult:
    if not isinstance(v, (tuple, list)) or len(v) != 3:
        return DataAccessResult.TYPE_UNMATCHED
    transport, dest, message = v
    if not (_int_in(transport, 0, 255) and isinstance(dest, (bytes, bytearray))
            and _int_in(message, 0, 255)):
        return DataAccessResult.TYPE_UNMATCHED
    if transport != 0 or message != 0 or (dest and parse_destination(bytes(dest)) is None):
        return DataAccessResult.OTHER_REASON  # only TCP, A-XDR APDUs, "HOST:PORT" or nothing
    m.push.change(raw, transport=transport, destination=bytes(dest), message=message)
    return DataAccessResult.SUCCESS


def _setter(raw: bytes, field: str, high: int) -> Callable[[ObjectHost, Any], DataAccessResult]:
    def write(m: ObjectHost, v: Any) -> DataAccessResult:
        if not _int_in(v, 0, high):
            return DataAccessResult.TYPE_UNMATCHED
        m.push.change(raw, **{field: v})
        return DataAccessResult.SUCCESS
    return write


def _push_now(m: ObjectHost, raw: bytes, parameters: Any) -> tuple[ActionResult, None]:
    if not (parameters is None or type(parameters) is int):
        return ActionResult.TYPE_UNMATCHED, None
    if not m.push.request(raw):
        return ActionResult.TEMPORARY_FAILURE, None  # no destination, or no pusher running
    return ActionResult.SUCCESS, None


def _push_setup_def(obis: Obis) -> ObjectDef:
    raw = obis.to_bytes()
    return ObjectDef(40, 0, obis, (
        ln_attr(obis),
        AttrDef(2, lambda m, a: _list_typed(m.push.setup(raw)),
                lambda m, v: _set_list(m, raw, v)),
        AttrDef(3, lambda m, a: Typed(DataType.STRUCTURE, (
            enum(m.push.setup(raw).transport),
            Typed(DataType.OCTET_STRING, m.push.setup(raw).destination),
            enum(m.push.setup(raw).message))),
            lambda m, v: _set_destination(m, raw, v)),
        AttrDef(4, lambda m, a: Typed(DataType.ARRAY, [])),
        AttrDef(5, lambda m, a: Typed(DataType.LONG_UNSIGNED, m.push.setup(raw).randomisation),
                _setter(raw, "randomisation", 0xFFFF)),
        AttrDef(6, lambda m, a: u8(m.push.setup(raw).retries), _setter(raw, "retries", 0xFF)),
        AttrDef(7, lambda m, a: Typed(DataType.LONG_UNSIGNED, m.push.setup(raw).delay),
                _setter(raw, "delay", 0xFFFF)),
    ), ((1, lambda m, p: _push_now(m, raw, p)),))


def _set_alarm(m: ObjectHost, v: Any) -> DataAccessResult:
    if not _int_in(v, 0, 0xFFFFFFFF):
        return DataAccessResult.TYPE_UNMATCHED
    m.push.alarm = v
    return DataAccessResult.SUCCESS


_ALARM_REGISTER = ObjectDef(1, 0, ALARM_REGISTER_OBIS, (
    ln_attr(ALARM_REGISTER_OBIS), AttrDef(2, lambda m, a: dlu(m.push.alarm), _set_alarm)), ())
_DISCONNECTOR_EVENT = ObjectDef(1, 0, DISCONNECTOR_EVENT_OBIS, (
    ln_attr(DISCONNECTOR_EVENT_OBIS),
    AttrDef(2, lambda m, a: u8(m.push.disconnector_event), None)), ())


def push_objects() -> tuple[ObjectDef, ...]:
    """The objects every model adds: both Push setups, alarm register 1 and the disconnector
    control event code."""
    return (_push_setup_def(PUSH_OBIS), _push_setup_def(ALARM_PUSH_OBIS), _ALARM_REGISTER,
            _DISCONNECTOR_EVENT)
