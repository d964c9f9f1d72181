"""``DlmsConnector``: the ThingsBoard IoT Gateway glue around the polling engine.

The gateway builds it with ``(gateway, config, connector_type)``, sets ``name`` and calls
``open()``; ``close()`` is called until ``is_stopped()``. Everything the gateway calls into
(``on_attributes_update``, ``server_side_rpc_handler``, the engine's sink callbacks) is guarded:
a bad request or a bug is logged with the meter's name, never raised into the gateway.

Threads: the engine calls the sink, which only queues; the publisher thread converts and hands
the data to the gateway in order (``publisher.py``); one small housekeeping thread
registers the devices (retrying while ThingsBoard is away) and runs the periodic clock checks.
RPC replies are sent from the worker that served them, so the gateway's RPC thread never waits
for a meter.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, Callable

from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.gateway.statistics.statistics_service import StatisticsService

from ..engine.events import PointReading
from ..engine.health import MeterState
from ..engine.spec import MeterSpec
from ..protocol.errors import ConfigError, DlmsError
from ..session.reading import Reading, Ref
from .alarms import MeterStatus
from .config import load_config, masked
from .converter_loading import DEFAULT_CONVERTER, UplinkConverter, converter_class
from .counter_store import CounterStore, with_counters
from .field_readers import show
from .gc_tuning import freeze_startup_objects
from .model import ConnectorConfig, MeterConfig
from .open_files import ensure_open_files
from .profile_positions import PositionStore
from .profile_scheduler import ProfileScheduler
from .publisher import Publisher
from .push_service import PushService, push_stats, start_push
from .push_setup_rpc import PushSetupRpcs
from .registration import DeviceRegistrar
from .rpc import RpcDispatcher, connector_rpc, normalize_params
from .shards import select
from .state_files import state_folder
from .values import coerce_value

__all__ = ["DlmsConnector"]

_REGISTER_RETRY_S = 10.0  # while ThingsBoard is not connected
_CONNECT_GRACE_S = 30.0  # the gateway's MQTT client connects after the connectors open
_REGISTER_WORKERS = 4  # registrations in flight at once (each waits for ThingsBoard's ack)
# A gateway that registers no device for this long (a hung publish) does not hold the polling.
_REGISTER_STALL_S = 60.0


def _make_logger(gateway: Any, name: str, level: str, remote: bool,
                 converter: bool = False) -> logging.Logger:
    from thingsboard_gateway.tb_utility.tb_logger import init_logger

    log: logging.Logger
    if converter:
        log = init_logger(gateway, name + "_converter", level, enable_remote_logging=remote,
                          is_converter_logger=True, attr_name=name)
    else:
        log = init_logger(gateway, name, level, enable_remote_logging=remote,
                          is_connector_logger=True)
    return log


class _Sink:
    """The engine's EngineSink: queues each event for the connector's publisher thread, so the
    polling loop never waits for the gateway (kept apart: a small surface)."""

    def __init__(self, connector: DlmsConnector, publisher: Publisher) -> None:
        self._c = connector
        self._put = publisher.put

    def on_readings(self, spec: MeterSpec, readings: Sequence[PointReading],
                    cycle_started_wall_ms: int) -> None:
        self._put(self._c._on_readings, spec, readings)

    def on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None:
        self._put(self._c._on_state, spec, state, detail)

    def on_health(self, spec: MeterSpec, snapshot: dict[str, Any]) -> None:
        self._put(self._c._on_health, spec, snapshot)


class DlmsConnector(Connector):  # type: ignore[misc] # the gateway has no types
    """DLMS/COSEM meters as ThingsBoard devices. See config/README.md for dlms.json."""

    def __init__(self, gateway: Any, config: dict[str, Any], connector_type: str, *,
                 engine_factory: Callable[..., Any] | None = None,
                 environ: dict[str, str] | None = None,
                 logger: logging.Logger | None = None,
                 converter_logger: logging.Logger | None = None) -> None:
        super().__init__()
        self.statistics = {"MessagesReceived": 0, "MessagesSent": 0}
        self._gateway = gateway
        self._raw_config = config
        self._type = connector_type
        self.name = str(config.get("name") or "DLMS Connector")
        self._id = config.get("id")
        level = str(config.get("logLevel", "INFO"))
        remote = bool(config.get("enableRemoteLogging", False))
        self._log = logger or _make_logger(gateway, self.name, level, remote)
        self._converter_log = converter_logger or _make_logger(
            gateway, self.name, level, remote, converter=True)
        self._engine_factory = engine_factory
        self._environ = environ
        self._config = ConnectorConfig()
        self._meters: dict[str, MeterConfig] = {}
        self._status: dict[str, MeterStatus] = {}
        self._engine: Any = None
        self._publisher = Publisher(self.name, self._log)
        self._dispatcher: RpcDispatcher | None = None
        self._converter: UplinkConverter | None = None
        self._stop = threading.Event()
        self._housekeeper: threading.Thread | None = None
        self._registrar: DeviceRegistrar | None = None
        self._next_clock: dict[str, float] = {}
        self._clock_busy: set[str] = set()
        self._stats_lock = threading.Lock()
        self._connected = False
        self._stopped = False
        self._gc_freeze_at: float | None = None
        self._profiles: ProfileScheduler | None = None
        self._push: PushService | None = None

    # -- Connector contract ---------------------------------------------------------------------
    def open(self) -> None:
        self._stopped = False
        self._stop.clear()
        try:
            self._open()
        except Exception:  # noqa: BLE001 - never crash the gateway's start-up
            self._log.exception("%s: cannot start", self.name)
            self._connected = False

    def _open(self) -> None:
        cfg = self._my_shard(load_config(self._raw_config, self._environ))
        folder = state_folder(cfg.state_folder, self._gateway)
        if any(m.spec.session.ciphered for m in cfg.meters):
            self._log.info("%s: invocation counters kept in %s", self.name, folder)
            cfg = with_counters(cfg, CounterStore(folder))
        for line in cfg.warnings:
            self._log.warning("%s", line)
        for line in cfg.errors:
            if line.startswith("dlms.json"):  # top-level: no meter to skip
                self._log.error("%s", line)
        for line in cfg.skipped:  # one line per refused meter, listing its bad fields
            self._log.error("%s", line)
        for name in cfg.disabled:
            self._log.info("meter %r is disabled (\"enabled\": false)", name)
        self._config = cfg
        self._meters = dict(cfg.by_name)
        self._status = {m.name: MeterStatus(m.clock_drift_threshold_s) for m in cfg.meters}
        self._converter = self._make_converter(cfg)
        self._publisher = Publisher(self.name, self._log)
        self._publisher.start()
        ensure_open_files(cfg.meters, self._log, self.name,
                          pushing=len(cfg.push_meters) if cfg.push is not None else 0)
        self._engine = self._build_engine(cfg)
        self._dispatcher = RpcDispatcher(
            self._engine, self._meters, on_clock=self._on_clock,
            status=lambda name: self._status[name].snapshot() if name in self._status else {},
            push_setup=PushSetupRpcs(cfg.push.address if cfg.push is not None else None))
        self._push = start_push(
            cfg.push, cfg.push_meters, folder, publish=self._publisher.put,
            converter=lambda: self._converter, send=self._send,
            received=lambda: self._count(received=1, from_meter=True), log=self._log)
        self._registrar = DeviceRegistrar(
            [m.name for m in cfg.meters] + [m.name for m in cfg.push_meters
                                            if m.name not in self._meters],
            self._add_device, self._release,
            self._registered, self._log, self.name,
            retry_s=_REGISTER_RETRY_S, connect_grace_s=_CONNECT_GRACE_S,
            workers=_REGISTER_WORKERS, start_rate=cfg.startup_rate)
        self._next_clock = dict.fromkeys(self._meters, 0.0)
        after = cfg.gc_freeze_after_s
        self._gc_freeze_at = time.monotonic() + after if after and cfg.meters else None
        if cfg.meters:
            self._engine.start(hold=True)  # each meter starts once its device is registered
        if cfg.meters or cfg.push_meters:
            self._registrar.start()
        self._profiles = ProfileScheduler(
            self._engine, [m for m in cfg.meters if m.profiles], PositionStore(folder),
            self._deliver_rows, self._is_associated,
            rows_per_second=cfg.profile_rows_per_second,
            reads_in_flight=cfg.profile_reads_in_flight, log=self._log)
        if self._profiles.tasks:
            self._log.info("%s: %d profiles, positions kept in %s", self.name,
                           self._profiles.tasks, folder)
            self._profiles.start()
        self._connected = True
        self._housekeeper = threading.Thread(target=self._housekeeping, daemon=True,
                                             name=f"{self.name} housekeeping")
        self._housekeeper.start()
        self._log.info("%s: polling %d meters (%d skipped, %d disabled)", self.name,
                       len(cfg.meters), len(cfg.skipped), len(cfg.disabled))

    def _my_shard(self, cfg: ConnectorConfig) -> ConnectorConfig:
        """Only this gateway's meters (every meter was validated, so all gateways agree)."""
        if cfg.shard_error:
            self._log.error("%s: shard setting refused (%s): polling NO meter, so that no meter "
                            "is polled by two gateways", self.name, cfg.shard_error)
        mine = select(cfg)
        if cfg.shard is not None and not cfg.shard_error:
            self._log.info("shard %d/%d: polling %d of %d meters", cfg.shard[0], cfg.shard[1],
                           len(mine.meters), len(cfg.meters))
        return mine

    def _build_engine(self, cfg: ConnectorConfig) -> Any:
        sink = _Sink(self, self._publisher)
        if self._engine_factory is not None:
            return self._engine_factory(cfg.specs, sink)
        from ..engine.engine import PollingEngine

        return PollingEngine(cfg.specs, sink, log=self._log)

    def close(self) -> None:
        if self._stopped:
            return
        self._connected = False
        self._stop.set()
        if self._registrar is not None:
            self._registrar.stop()
        if self._profiles is not None:
            self._profiles.stop()
        try:
            if self._engine is not None and self._config.meters:
                self._engine.stop(timeout_s=4.0)
        except Exception:  # noqa: BLE001
            self._log.exception("%s: error while stopping the polling engine", self.name)
        if self._push is not None:
            self._push.stop()
        self._publisher.stop()  # what the engine said last (e.g. "disconnected") still goes out
        thread = self._housekeeper
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)
        self._stopped = True
        self._log.info("%s: stopped", self.name)
        for log in (self._log, self._converter_log):
            stop = getattr(log, "stop", None)
            if callable(stop):
                stop()

    def get_id(self) -> Any:
        return self._id

    def get_name(self) -> str:
        return self.name

    def _make_converter(self, cfg: ConnectorConfig) -> UplinkConverter:
        """The converter dlms.json names; ours, with an error, when that class is not found."""
        cls = converter_class(self._type, cfg.converter)
        if cls is None:
            self._log.error("dlms.json: converter: class %s not found in the gateway's "
                            "extensions/%s/ folder; using %s", show(cfg.converter), self._type,
                            DEFAULT_CONVERTER)
            cls = converter_class(self._type, DEFAULT_CONVERTER)
        assert cls is not None  # ours is always there
        return cls({"name": self.name, "reportStrategy": cfg.report_strategy},
                   self._converter_log)

    def get_type(self) -> str:
        return self._type

    def get_config(self) -> dict[str, Any]:
        # The gateway may send this to ThingsBoard (remote configuration, shell): no secrets.
        return masked(self._raw_config)  # type: ignore[no-any-return]

    def is_connected(self) -> bool:
        return self._connected

    def is_stopped(self) -> bool:
        return self._stopped

    def get_device_shared_attributes_keys(self, device_name: str) -> list[str]:
        meter = self._meters.get(device_name)
        return [u.key for u in meter.attribute_updates] if meter is not None else []

    @property
    def config(self) -> ConnectorConfig:
        return self._config

    # -- statistics -----------------------------------------------------------------------------
    def _count(self, received: int = 0, sent: int = 0, from_meter: bool = False) -> None:
        """``statistics`` counts every message in and out; the gateway's connectorMsgsReceived
        only what came from meters (as the Modbus connector counts device reads)."""
        with self._stats_lock:
            self.statistics["MessagesReceived"] += received
            self.statistics["MessagesSent"] += sent
        if received and from_meter:
            StatisticsService.count_connector_message(
                self.name, stat_parameter_name="connectorMsgsReceived", count=received)

    def _send(self, data: Any) -> None:
        if not (data.telemetry or data.attributes):
            return
        self._gateway.send_to_storage(self.name, self._id, data)
        self._count(sent=1)

    # -- engine events (worker threads) ------------------------------------------------------------
    def _on_readings(self, spec: MeterSpec, readings: Sequence[PointReading]) -> None:
        meter = self._meters.get(spec.name)
        if meter is None or self._converter is None:
            return
        self._count(received=1, from_meter=True)
        refused = [r for r in readings if not r.ok]
        if refused:
            self._log.debug("%s: refused this cycle: %s", spec.name,
                            ", ".join(f"{r.key} ({r.result})" for r in refused))
        self._send(self._converter.convert(meter, readings))

    def _on_state(self, spec: MeterSpec, state: MeterState, detail: str) -> None:
        status = self._status.get(spec.name)
        meter = self._meters.get(spec.name)
        if status is None or meter is None or self._converter is None:
            return
        value = getattr(state, "value", state)  # the engine logs the change itself
        changed = status.on_state(state, detail)
        if changed:
            self._send(self._converter.status(meter, telemetry=changed))
        if value == MeterState.ASSOCIATED.value and meter.static_attributes:
            self._read_static(meter)

    def _on_health(self, spec: MeterSpec, snapshot: dict[str, Any]) -> None:
        meter = self._meters.get(spec.name)
        if meter is None or self._converter is None:
            return
        values = dict(snapshot)
        values.update(self._status[spec.name].snapshot())
        self._send(self._converter.status(meter, telemetry=values))

    def _on_clock(self, name: str, drift_s: float) -> None:
        meter, status = self._meters.get(name), self._status.get(name)
        if meter is None or status is None or self._converter is None:
            return
        values = status.on_clock(drift_s)
        if values["clock_drift_alarm"]:
            self._log.warning("%s: clock drift %.3f s exceeds %.3f s", name, drift_s,
                              meter.clock_drift_threshold_s)
        self._send(self._converter.status(meter, telemetry=values))

    def _is_associated(self, name: str) -> bool:
        status = self._status.get(name)
        return status is not None and (
            status.snapshot()["connection_state"] == MeterState.ASSOCIATED.value)

    def _deliver_rows(self, meter: MeterConfig, profile: Any,
                      rows: list[tuple[int, dict[str, Any]]]) -> bool:
        """Profile rows to the gateway's storage; True when it took them."""
        if self._converter is None or self._stop.is_set() or getattr(self._gateway, "stopped", False):
            return False  # a stopping gateway drops what is still in its queue
        client = getattr(self._gateway, "tb_client", None)
        if client is not None and not client.is_connected():
            # History can wait for ThingsBoard: a long outage would otherwise fill the gateway's
            # storage with backfill (memory storage drops what does not fit) and crowd out live
            # data. The position does not move, so the rows go once the link is back.
            return False
        data = self._converter.rows(meter, rows)
        self._count(received=1, from_meter=True)
        status = self._gateway.send_to_storage(self.name, self._id, data)
        self._count(sent=1)
        return status is None or getattr(status, "name", "SUCCESS") == "SUCCESS"

    def _read_static(self, meter: MeterConfig) -> None:
        points = meter.static_attributes
        refs = [Ref(p.ref.class_id, p.ref.obis, p.ref.attribute) for p in points]
        converter = self._converter

        def job(session: Any) -> None:
            results = session.read(refs)
            pairs = []
            for point, result in zip(points, results):
                if isinstance(result, Reading):
                    pairs.append((point, result.value))
                else:
                    self._log.info("%s: static attribute %s not read: %s", meter.name,
                                   point.key, result)
            if pairs and converter is not None:
                self._send(converter.attributes(meter, pairs))

        self._submit_logged(meter.name, job, "static attributes")

    def _submit_logged(self, name: str, job: Callable[[Any], Any], what: str) -> Future[Any]:
        future: Future[Any] = self._engine.submit(name, job, 60.0)

        def done(f: Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                self._log.warning("%s: %s failed: %s", name, what, exc)

        future.add_done_callback(done)
        return future

    # -- housekeeping thread ----------------------------------------------------------------------
    def _housekeeping(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                registrar = self._registrar
                if registrar is not None and registrar.pending and \
                        now - registrar.progress_at > _REGISTER_STALL_S:
                    registrar.release_all(f"the gateway registered no device for "
                                          f"{_REGISTER_STALL_S:.0f} s")
                self._clock_checks(now)
                if self._gc_freeze_at is not None and now >= self._gc_freeze_at:
                    self._gc_freeze_at = None
                    freeze_startup_objects(self._log)
            except Exception:  # noqa: BLE001 - keep housekeeping alive
                self._log.exception("%s: housekeeping failed", self.name)
            self._stop.wait(1.0)

    def _release(self, name: str) -> Any:
        """A meter's device is registered: it may poll, and its pushes go out."""
        if self._push is not None:
            self._push.release(name)
        return self._engine.release(name)

    def _add_device(self, name: str) -> Any:
        meter = self._meters.get(name) or self._config.push_by_name[name]
        return self._gateway.add_device(name, {"connector": self},
                                        device_type=meter.spec.device_type)

    def _registered(self, name: str) -> None:
        # Queued, not sent here: the registration thread goes on with the next device, and the
        # meter's readings (released after this) queue behind its status.
        self._publisher.put(self._send_status, name)

    def _send_status(self, name: str) -> None:
        converter = self._converter
        if converter is not None and name in self._meters:  # alarm keys from the start, clear
            self._send(converter.status(self._meters[name],
                                        telemetry=self._status[name].snapshot()))

    def _clock_checks(self, now: float) -> None:
        dispatcher = self._dispatcher
        if dispatcher is None:
            return
        for name, meter in self._meters.items():
            period = meter.clock_check_period_s
            if not period or name in self._clock_busy or now < self._next_clock.get(name, 0.0):
                continue
            if self._status[name].snapshot()["connection_state"] != MeterState.ASSOCIATED.value:
                continue
            self._next_clock[name] = now + period
            self._clock_check(dispatcher, meter)

    def _clock_check(self, dispatcher: RpcDispatcher, meter: MeterConfig) -> None:
        name = meter.name
        self._clock_busy.add(name)

        def job(session: Any) -> Any:
            return dispatcher.read_clock(meter, session)

        def done(_f: Future[Any]) -> None:
            self._clock_busy.discard(name)

        self._submit_logged(name, job, "clock check").add_done_callback(done)

    # -- from ThingsBoard --------------------------------------------------------------------------
    def on_attributes_update(self, content: dict[str, Any]) -> None:
        try:
            self._attributes_update(content)
        except Exception:  # noqa: BLE001 - never raise into the gateway
            self._log.exception("%s: attribute update %r failed", self.name, content)

    def _attributes_update(self, content: dict[str, Any]) -> None:
        device = content.get("device")
        data = content.get("data")
        meter = self._meters.get(device) if isinstance(device, str) else None
        if meter is None or not isinstance(data, dict):
            self._log.debug("%s: attribute update for an unknown device ignored: %r",
                            self.name, content)
            return
        self._count(received=1)
        for key, value in data.items():
            update = meter.attribute_update(key)
            if update is None:
                continue
            try:
                typed = coerce_value(value, update.data_type)
            except ConfigError as exc:
                self._log.error("%s: attribute %r: %s", meter.name, key, exc)
                continue
            ref = Ref(update.ref.class_id, update.ref.obis, update.ref.attribute)
            self._log.info("%s: attribute %r -> SET %s", meter.name, key, ref)
            self._submit_set(meter.name, key, ref, typed)

    def _submit_set(self, name: str, key: str, ref: Ref, typed: Any) -> None:
        def done(f: Future[Any]) -> None:
            exc = f.exception()
            if exc is not None:
                self._log.error("%s: attribute %r: SET %s failed: %s", name, key, ref, exc)
            elif int(f.result()) != 0:
                label = getattr(f.result(), "label", f.result())
                self._log.error("%s: attribute %r: the meter refused SET %s: %s", name, key,
                                ref, label)

        try:
            self._engine.submit(name, lambda session: session.set(ref, typed), 60.0) \
                .add_done_callback(done)
        except DlmsError as exc:
            self._log.error("%s: attribute %r: %s", name, key, exc)

    def server_side_rpc_handler(self, content: dict[str, Any]) -> Any:
        try:
            return self._rpc(content)
        except Exception as exc:  # noqa: BLE001 - never raise into the gateway
            self._log.exception("%s: RPC %r failed", self.name, content)
            return {"success": False, "error": f"{type(exc).__name__}: {exc}"}

    def _rpc(self, content: dict[str, Any]) -> Any:
        device = content.get("device")
        if device is None:  # connector RPC: "<type>_<method>" on the gateway device
            method = content.get("method")
            if not isinstance(method, str):
                return None  # an echoed reply, not a request
            self._count(received=1)
            if method.split("_", 1)[-1] == "push":
                return push_stats(self._push)
            return connector_rpc(method, normalize_params(content.get("params")),
                                 statistics=dict(self.statistics), engine=self._engine,
                                 meters=self._meters, status=self._status_of)
        data = content.get("data") or {}
        method = data.get("method") if isinstance(data, dict) else None
        if not isinstance(method, str):
            return None
        req_id = data.get("id", content.get("id"))
        self._count(received=1)
        push = self._push
        if device not in self._meters and push is not None and device in push.meters:
            self._reply(device, req_id, push.device_rpc(device, method))
            return None
        if self._dispatcher is None:
            reply = {"success": False, "error": f"{self.name} is not running"}
            self._reply(device, req_id, reply)
            return None
        self._log.debug("%s: RPC %s %r", device, method, data.get("params"))
        future = self._dispatcher.device_rpc(device, method, data.get("params"))
        future.add_done_callback(lambda f: self._reply(device, req_id, f.result()))
        return None

    def _status_of(self, name: str) -> dict[str, Any]:
        status = self._status.get(name)
        return status.snapshot() if status is not None else {}

    def _reply(self, device: str, req_id: Any, reply: dict[str, Any]) -> None:
        if not reply.get("success", False):
            self._log.warning("%s: RPC %s failed: %s", device, req_id, reply.get("error"))
        try:
            self._gateway.send_rpc_reply(device=device, req_id=req_id, content=reply)
            self._count(sent=1)
        except Exception:  # noqa: BLE001
            self._log.exception("%s: cannot send the RPC reply %s", device, req_id)
