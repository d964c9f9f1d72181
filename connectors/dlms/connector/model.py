"""What the dlms.json loader produces besides the engine's MeterSpec: per-meter extras for the
connector (report strategy, static attributes, attribute updates, configured RPCs, clock checks).

Frozen values: built once at open(), shared by the gateway's threads and the engine's workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..engine.spec import MeterSpec, ObjectRef, PollPoint
from ..protocol.axdr import DataType
from ..protocol.obis import Obis

__all__ = [
    "BUILTIN_RPCS",
    "AttributeUpdate",
    "ConnectorConfig",
    "MeterConfig",
    "RpcMethod",
]

# Device RPCs every meter answers; configured ``rpc`` entries may not reuse these names.
BUILTIN_RPCS = (
    "read", "set", "action", "clock_read", "clock_sync", "disconnect", "reconnect",
    "relay_state", "reconnect_session", "health", "read_profile", "scan",
    "push_setup_read", "push_setup_write", "push_now", "push_setup_point",
)


@dataclass(frozen=True)
class AttributeUpdate:
    """A shared attribute written to the meter with a SET when ThingsBoard changes it."""

    key: str
    ref: ObjectRef
    data_type: DataType


@dataclass(frozen=True)
class RpcMethod:
    """A configured device RPC: GET or SET of an attribute, or ACTION of a method.

    ``index`` is the attribute (get/set) or the method index (action). ``value`` is a fixed value
    from dlms.json (``has_value``); otherwise the value comes from the RPC params.
    """

    method: str
    kind: str  # "get" | "set" | "action"
    class_id: int
    obis: Obis
    index: int
    value_type: DataType | None = None
    value: Any = None
    has_value: bool = False


@dataclass(frozen=True)
class MeterConfig:
    """One meter as configured: the engine's spec plus what only the connector uses."""

    spec: MeterSpec
    report_strategy: dict[str, Any] | None = None
    static_attributes: tuple[PollPoint, ...] = ()
    attribute_updates: tuple[AttributeUpdate, ...] = ()
    rpc: tuple[RpcMethod, ...] = ()
    clock_check_period_s: float = 3600.0  # 0: no periodic clock check
    clock_drift_threshold_s: float = 10.0
    profiles: tuple[Any, ...] = ()  # ProfileConfig (connector/profile_config.py)
    time_zone: Any = None  # tzinfo of the meter's local time; None: the gateway's
    # Where the secrets come from, as configured: (("passwordEnv", "VAR"), ...); never values.
    secret_sources: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def rpc_method(self, method: str) -> RpcMethod | None:
        for r in self.rpc:
            if r.method == method:
                return r
        return None

    def attribute_update(self, key: str) -> AttributeUpdate | None:
        for u in self.attribute_updates:
            if u.key == key:
                return u
        return None


@dataclass(frozen=True)
class ConnectorConfig:
    """The whole dlms.json: the meters that passed validation and what was said about the rest.

    ``errors`` has one line per bad field ("meter 'M2': timeseries[3].obis: ..."), ``skipped``
    one line per refused meter, ``disabled`` the names of meters with ``"enabled": false``.
    """

    meters: tuple[MeterConfig, ...] = ()
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    disabled: tuple[str, ...] = ()
    log_level: str = "INFO"
    enable_remote_logging: bool = False
    report_strategy: dict[str, Any] | None = None
    gc_freeze_after_s: float = 60.0  # connector/gc_tuning.py; 0: leave the collector alone
    converter: str = "DlmsUplinkConverter"  # connector/converter_loading.py
    state_folder: str = ""  # connector/state_files.py: "" = the gateway's data folder
    profile_rows_per_second: float = 10_000.0  # connector/profile_scheduler.py
    profile_reads_in_flight: int = 4
    startup_rate: float = 100.0  # meters started per second (connector/registration.py)
    shard: tuple[int, int] | None = None  # (index, count) of this gateway; connector/shards.py
    shard_error: str = ""  # a bad shard setting: this gateway polls nothing
    shard_keys: dict[str, str] = field(default_factory=dict, compare=False, repr=False)
    push: Any = None  # PushSettings (connector/push_config.py): where pushing meters connect
    push_meters: tuple[Any, ...] = ()  # PushMeter: meters that push, polled or not
    by_name: dict[str, MeterConfig] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({m.name: m for m in self.meters})

    @property
    def push_by_name(self) -> dict[str, Any]:
        return {m.name: m for m in self.push_meters}

    @property
    def specs(self) -> list[MeterSpec]:
        return [m.spec for m in self.meters]
