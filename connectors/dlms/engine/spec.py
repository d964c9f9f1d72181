"""What the engine is told about one meter: the neutral contract between dlms.json and the engine.

The connector's config loader builds MeterSpec values (validated, secrets resolved); the engine
polls them and knows nothing of the gateway's JSON. Frozen, so a spec can be shared across threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..protocol.apdu import SelectiveAccess
from ..protocol.obis import Obis


@dataclass(frozen=True)
class ObjectRef:
    """One COSEM attribute: class, logical name, attribute (and optional selective access)."""

    class_id: int
    obis: Obis
    attribute: int
    access: Optional[SelectiveAccess] = None

    def __str__(self) -> str:
        return f"{self.obis}/{self.class_id}/{self.attribute}"


@dataclass(frozen=True)
class PollPoint:
    """A value polled every cycle and the ThingsBoard key it feeds."""

    key: str
    ref: ObjectRef
    kind: str = "timeseries"  # or "attribute"
    report_strategy: Optional[dict[str, Any]] = None


@dataclass(frozen=True)
class TcpSpec:
    host: str
    port: int
    connect_timeout_s: float = 5.0

    @property
    def channel_key(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class SerialSpec:
    port: str
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: float = 1
    mode_e: bool = False

    @property
    def channel_key(self) -> str:
        # Meters on one serial port share one line, hence one worker.
        return f"serial://{self.port}"


TransportSpec = Union[TcpSpec, SerialSpec]


@dataclass(frozen=True)
class RecoverySpec:
    min_connect_spacing_s: float = 10.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    breaker_threshold: int = 5
    breaker_open_s: float = 60.0
    watchdog_s: float = 0.0  # 0: three poll periods, at least 30 s


@dataclass(frozen=True)
class MeterSpec:
    name: str
    device_type: str
    transport: TransportSpec
    session: Any  # tb_dlms.session.settings.SessionSettings
    poll_period_s: float = 1.0
    points: tuple[PollPoint, ...] = ()
    recovery: RecoverySpec = field(default_factory=RecoverySpec)
    health_period_s: float = 60.0
