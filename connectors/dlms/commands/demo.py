"""``tb-dlms demo``: simulated meters read by the connector inside the REAL ThingsBoard IoT Gateway.

What runs, all on loopback, all stopped on Ctrl-C (or after ``--seconds``):

1. ``--meters`` simulated DLMS meters (in this process, one thread, free ports);
2. a private mosquitto broker (``tb_dlms.sandbox.broker``);
3. a ThingsBoard stand-in on it (``tb_dlms.sandbox.tb_standin``): answers the gateway's session
   handshake and shows every ``v1/gateway/telemetry`` message as one console line per device;
4. the real gateway (``python -m thingsboard_gateway.tb_gateway``) with a generated ``dlms.json``
   pointing at the meters, and the connector installed by ``tb-dlms install`` into the private
   extensions folder of a temporary view of the gateway package (nothing is left behind).

Shutdown order: gateway (SIGINT: it closes the connector and sends its disconnects), stand-in,
broker, meters. Exit 0 when telemetry arrived, 1 when none did, 2 when something is missing.

The console: values with their units (the simulated meter's register units; telemetry carries
none), lines of at most 100 columns (long ones continue indented), in the order of the readings'
time stamps: lines are held ``_HOLD_MS`` so that messages the gateway sends in another order, or
several devices in one message, come out sorted.
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import itertools
import queue
import signal
import socket
import sys
import textwrap
import time
from typing import Any, TextIO

# Health and status keys (tb_dlms.engine.health.SNAPSHOT_KEYS, tb_dlms.connector.alarms.ALARM_KEYS)
# go to a line's health part; these are shown, in this order (the rest is published, not printed).
_HEALTH_SHOWN = (
    "connection_state",
    "success_rate",
    "avg_read_time_ms",
    "total_reads",
    "failed_reads",
    "reconnects",
    "clock_drift_s",
)
_HEALTH_UNITS = {"success_rate": "%", "avg_read_time_ms": "ms", "clock_drift_s": "s"}
WIDTH = 100  # console columns
_HOLD_MS = 2000  # how long a line waits for earlier readings that may still arrive
_ALARM_FLAGS = (
    "unreachable",
    "watchdog_expired",
    "circuit_open",
    "auth_failed",
    "clock_drift_alarm",
)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo",
        help="simulated meters read by the connector in the real gateway, shown live",
        description="Start simulated meters, a local mosquitto, a ThingsBoard stand-in and the "
        "real ThingsBoard IoT Gateway with this connector; print telemetry as it arrives. "
        "Ctrl-C stops everything. Needs mosquitto and the gateway extra.",
    )
    p.add_argument("--meters", type=_positive, default=3, help="simulated meters (default 3)")
    p.add_argument(
        "--push-meters", type=int, choices=range(0, 101), default=1, metavar="N",
        help="simulated meters that push instead (ciphered, every 5 s) to the connector's push "
        "listener (default 1; 0: none)",
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--period-ms",
        type=_positive,
        default=2000,
        help="poll period of every meter in ms (default 2000)",
    )
    p.add_argument(
        "--keep",
        action="store_true",
        help="keep the gateway's work dir (config, logs) and print its path",
    )
    p.add_argument(
        "--gateway-log",
        action="store_true",
        help="also print the gateway's own log lines (warnings and errors)",
    )
    p.set_defaults(func=run)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _add_push_meters(config: dict[str, Any], count: int, port: int, first_index: int) -> None:
    """``count`` pushing meters (``Push-N``) and the listener they push to, into ``config``."""
    from ..sandbox.push_meters import simulator_push_config

    pushed = simulator_push_config(count, port, first_index=first_index)
    for m in pushed["meters"]:
        m["deviceName"] = f"Push-{int(m['deviceName'].split('-')[1]) - first_index}"
    config.update(push=pushed["push"], templates=pushed["templates"])
    config["meters"] += pushed["meters"]


def _push_simulator(count: int, port: int, first_index: int) -> Any:
    from ..simulator.model import MeterOptions
    from ..simulator.server import SimulatorServer

    options = MeterOptions(push_to=f"127.0.0.1:{port}", push_period_s=5.0,
                           push_security="auth-enc")
    return SimulatorServer(count, 0, wrapper=True, first_index=first_index,
                           options=options).run_in_thread()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def simulator_units() -> dict[str, str]:
    """Telemetry key -> unit symbol of the simulated meter's registers."""
    from ..protocol.units import unit_symbol
    from ..simulator.values import REGISTERS

    return {r.key: unit_symbol(r.unit) for r in REGISTERS}


def _wrap(first: str, tokens: list[str], width: int = WIDTH) -> list[str]:
    """``first`` then the tokens, packed into lines of at most ``width`` columns; continuation
    lines are indented under the first token (a token is never split)."""
    indent = " " * min(len(first) + 1, 24)
    lines, line = [], first
    for token in tokens:
        if len(line) + 1 + len(token) <= width or line.strip() == "":
            line = f"{line} {token}" if line.strip() else line + token
        else:
            lines.append(line)
            line = indent + token
    lines.append(line)
    return lines


def _health_keys() -> frozenset[str]:
    keys = set(_HEALTH_SHOWN) | set(_ALARM_FLAGS) | {"connection_detail"}
    try:
        from ..engine.health import SNAPSHOT_KEYS

        keys.update(SNAPSHOT_KEYS)
        from ..connector.alarms import ALARM_KEYS

        keys.update(ALARM_KEYS)
    except ImportError:
        pass
    return frozenset(keys)


def _with_unit(key: str, value: Any, units: dict[str, str]) -> str:
    unit = units.get(key)
    sep = "" if unit == "%" else " "
    return f"{key}={_fmt(value)}{sep}{unit}" if unit else f"{key}={_fmt(value)}"


def format_telemetry(
    device: str, ts_ms: int, values: dict[str, Any], health_keys: frozenset[str],
    units: dict[str, str] | None = None,
) -> str:
    """Console text of one telemetry entry: ``time device key=value unit ... | health k=v ...``,
    in lines of at most ``WIDTH`` columns (joined by newlines)."""
    units = {**_HEALTH_UNITS, **(units or {})}
    stamp = datetime.datetime.fromtimestamp(ts_ms / 1000.0).strftime("%H:%M:%S.%f")[:-3]
    tokens = [_with_unit(k, v, units) for k, v in values.items() if k not in health_keys]
    health = [_with_unit(k, values[k], units) for k in _HEALTH_SHOWN if k in values]
    health += [f"ALARM {k}" for k in _ALARM_FLAGS if values.get(k) is True]
    if values.get("connection_detail") and values.get("connection_state") != "associated":
        detail = str(values["connection_detail"])
        health.append(f"({detail[: WIDTH - 30]})")
    if health:
        tokens += ["| health", *health]
    return "\n".join(_wrap(f"{stamp} {device:<10}", tokens))


def describe(
    message: Any, health_keys: frozenset[str], units: dict[str, str] | None = None
) -> list[tuple[int, str]]:
    """``(time stamp in ms, console text)`` for one message the stand-in recorded (may be
    none): a telemetry entry has its reading's time, anything else the message's arrival."""
    topic, payload = message.topic, message.payload
    if not isinstance(payload, dict):
        return []
    if topic == "v1/gateway/telemetry":
        lines = []
        for device, entries in payload.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                if isinstance(entry, dict):
                    values = entry.get("values", entry)
                    ts = int(entry.get("ts", message.ts * 1000))
                    lines.append((ts, format_telemetry(device, ts, values, health_keys, units)))
        return lines
    arrived = int(message.ts * 1000)
    stamp = datetime.datetime.fromtimestamp(message.ts).strftime("%H:%M:%S.%f")[:-3]
    if topic == "v1/gateway/attributes":
        return [
            (arrived, "\n".join(_wrap(f"{stamp} {device:<10} attributes",
                                      [f"{k}={_fmt(v)}" for k, v in values.items()])))
            for device, values in payload.items()
            if isinstance(values, dict)
        ]
    if topic in ("v1/gateway/connect", "v1/gateway/disconnect"):
        return [(arrived, f"{stamp} {payload.get('device', '?'):<10} "
                          f"{topic.rsplit('/', 1)[1]}ed")]
    return []


def _missing() -> list[str]:
    import importlib.util

    from ..sandbox.broker import find_mosquitto

    problems = []
    if importlib.util.find_spec("thingsboard_gateway") is None:
        problems.append("thingsboard-gateway is not installed (pip install '.[gateway]')")
    if importlib.util.find_spec("paho") is None:
        problems.append("paho-mqtt is not installed (it comes with thingsboard-gateway)")
    if find_mosquitto() is None:
        problems.append("mosquitto is not installed (apt-get install mosquitto)")
    return problems


def _connector_ready() -> str | None:
    """None when the connector imports, else why not."""
    try:
        from ..connector import dlms_connector  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    problems = _missing()
    if problems:
        for problem in problems:
            print(f"tb-dlms demo: {problem}", file=sys.stderr)
        return 2
    return _Demo(args, out).run()


class _Demo:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.lines: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        self.pending: list[tuple[int, int, str]] = []  # (ts ms, arrival order, text): a heap
        self._order = itertools.count()
        self.health_keys = _health_keys()
        self.units = simulator_units()
        self.points = 0
        self.stop_requested = False

    def say(self, text: str) -> None:
        """Print ``text``, every line cut into lines of at most WIDTH columns."""
        out = []
        for line in text.split("\n"):
            if len(line) <= WIDTH:
                out.append(line)
            else:
                out += textwrap.wrap(line, WIDTH, subsequent_indent=" " * 10,
                                     break_on_hyphens=False) or [""]
        self.out.write("\n".join(out) + "\n")
        self.out.flush()

    def on_message(self, message: Any) -> None:  # stand-in's MQTT thread: queue, print later
        if message.topic == "v1/gateway/telemetry":
            self.points += 1
        for line in describe(message, self.health_keys, self.units):
            self.lines.put(line)

    def _take(self, timeout: float) -> None:
        """Move queued lines into the time-ordered heap (waiting up to ``timeout`` for one)."""
        try:
            item = self.lines.get(timeout=timeout) if timeout > 0 else self.lines.get_nowait()
            while True:
                heapq.heappush(self.pending, (item[0], next(self._order), item[1]))
                item = self.lines.get_nowait()
        except queue.Empty:
            pass

    def release(self, flush: bool = False) -> None:
        """Print, in time order, the lines older than the hold time (all with ``flush``)."""
        self._take(0)
        horizon = time.time() * 1000.0 - _HOLD_MS
        while self.pending and (flush or self.pending[0][0] <= horizon):
            self.say(heapq.heappop(self.pending)[2])

    def run(self) -> int:
        from ..commands.install import connector_entry
        from ..sandbox.broker import Broker
        from ..sandbox.gateway import GatewayProcess
        from ..sandbox.meters import simulator_dlms_config
        from ..sandbox.tb_standin import ThingsBoardStandIn
        from ..simulator.server import SimulatorServer

        args = self.args
        previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        sim = broker = standin = gateway = pushing = None
        try:
            sim = SimulatorServer(args.meters, 0).run_in_thread()
            self.say(
                f"meters    {args.meters} simulated DLMS meter(s) on 127.0.0.1 ports "
                f"{', '.join(map(str, sim.ports))}"
            )
            broker = Broker().start()
            self.say(f"broker    mosquitto on {broker.host}:{broker.port}")
            standin = ThingsBoardStandIn(broker.host, broker.port)
            standin.add_listener(self.on_message)
            standin.start()
            self.say(
                "stand-in  ThingsBoard stand-in subscribed (answers getSessionLimits, records v1/gateway/*)"
            )
            config = simulator_dlms_config(sim.ports, period_ms=args.period_ms)
            push_port = _free_port() if args.push_meters else 0
            if push_port:
                _add_push_meters(config, args.push_meters, push_port, first_index=args.meters)
            gateway = GatewayProcess(
                broker.host,
                broker.port,
                [connector_entry("dlms")],
                {"dlms.json": config},
                keep=args.keep,
            )
            for item in gateway.install_connector("dlms"):
                self.say(f"install   {item.status} {item.path}")
            why = _connector_ready()
            if why:
                self.say(
                    f"note      the connector does not import yet ({why}): the gateway "
                    "will run without it"
                )
            gateway.start()
            self.say(
                f"gateway   thingsboard-gateway pid {gateway.pid}, config "
                f"{gateway.config_dir}, logs {gateway.logs_dir}"
            )
            if push_port:
                pushing = _push_simulator(args.push_meters, push_port, first_index=args.meters)
                self.say(f"pushing   {args.push_meters} simulated meter(s) push ciphered "
                         f"notifications to the connector's listener 127.0.0.1:{push_port}")
            self.say(
                "          "
                + (f"running for {args.seconds:g} s" if args.seconds else "Ctrl-C to stop")
            )
            return self._loop(gateway, standin)
        except KeyboardInterrupt:
            return 0 if self.points else 1
        except (OSError, RuntimeError, TimeoutError) as exc:  # BrokerError, GatewayError too
            self.say(f"tb-dlms demo: {exc}")
            return 2
        finally:
            if pushing is not None:
                pushing.stop()
            self._shutdown(sim, broker, standin, gateway)
            signal.signal(signal.SIGTERM, previous)

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.stop_requested = True

    def _loop(self, gateway: Any, standin: Any) -> int:
        args = self.args
        start = time.monotonic()
        end = start + args.seconds if args.seconds else None
        warned = False
        log_seen = 0
        while not self.stop_requested:
            if end is not None and time.monotonic() >= end:
                break
            self._take(0.2)
            self.release()
            if not gateway.running:
                self.release(flush=True)
                self.say("tb-dlms demo: the gateway exited:\n" + gateway.output()[-3000:])
                return 1
            if args.gateway_log:
                log_seen = self._show_gateway_log(gateway, log_seen)
            if not warned and self.points == 0 and time.monotonic() - start > 30:
                warned = True
                self.say(
                    "tb-dlms demo: no telemetry after 30 s; gateway output tail:\n"
                    + gateway.output()[-2000:]
                )
        self.release(flush=True)  # what arrived before the stop
        return 0 if self.points else 1

    def _show_gateway_log(self, gateway: Any, seen: int) -> int:
        text = gateway.output()
        for line in text[seen:].splitlines():
            if "|WARNING|" in line or "|ERROR|" in line or "|EXCEPTION|" in line:
                self.say("gateway   " + line)
        return len(text)

    def _shutdown(self, sim: Any, broker: Any, standin: Any, gateway: Any) -> None:
        if gateway is not None:
            t0 = time.monotonic()
            code = gateway.stop()
            self.say(
                f"stopped   gateway (SIGINT, exit {code}, {time.monotonic() - t0:.1f} s)"
                + (f"; work dir kept: {gateway.workdir}" if self.args.keep else "")
            )
        self.release(flush=True)  # disconnect lines that came during the gateway's shutdown
        if standin is not None:
            standin.stop()
        if broker is not None:
            broker.stop()
            self.say("stopped   broker")
        if sim is not None:
            sim.stop()
            self.say(f"stopped   meters ({sim.requests} requests served)")
        self.say(f"summary   {self.points} telemetry message(s) received")
