"""An engine that polls nothing: for connector tests about config, shards and registration."""

from __future__ import annotations

from typing import Any


class IdleEngine:
    """The PollingEngine calls the connector makes, doing nothing (``check``: run the real
    engine's own channel checks on the specs first, as the connector's would at start)."""

    check = False

    def __init__(self, specs: list[Any], sink: Any) -> None:
        if self.check:
            from tb_dlms.engine.engine import PollingEngine

            PollingEngine(specs, sink, transport_factory=lambda t: None).build(0.0)
        self.specs = specs

    def start(self, hold: bool = False) -> None:
        pass

    def release(self, name: str) -> bool:
        return True

    def stop(self, timeout_s: float = 0.0) -> None:
        pass


class CheckingIdleEngine(IdleEngine):
    check = True
