"""Fixtures for integration tests: real mosquitto, the ThingsBoard stand-in, the real gateway.

Every process started here is stopped at teardown, also when the test fails; the gateway's
console output is printed when a test fails so the failure explains itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from harness_marks import (  # noqa: F401
    HAVE_GATEWAY,
    connector_available,
    needs_broker,
    needs_connector,
    needs_gateway,
)
from tb_dlms.sandbox.broker import Broker


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request: pytest.FixtureRequest) -> bool:
    return any(
        getattr(getattr(request.node, "rep_" + when, None), "failed", False)
        for when in ("setup", "call")
    )


@pytest.fixture
def broker() -> Iterator[Broker]:
    b = Broker().start()
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def standin(broker: Broker) -> Iterator[Any]:
    from tb_dlms.sandbox.tb_standin import ThingsBoardStandIn

    tb = ThingsBoardStandIn(broker.host, broker.port).start()
    try:
        yield tb
    finally:
        tb.stop()


@pytest.fixture
def gateway_factory(broker: Broker, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """``make(connectors=[...], connector_files={...}, install="dlms")`` -> a started
    GatewayProcess on the test's broker (``install``: run ``tb-dlms install`` into its
    extensions folder first; None to skip)."""
    from tb_dlms.sandbox.gateway import GatewayProcess

    made: list[GatewayProcess] = []

    def make(
        connectors: list[dict[str, Any]] | None = None,
        connector_files: dict[str, Any] | None = None,
        install: str | None = None,
        start: bool = True,
        port: int | None = None,
        main: Callable[[dict[str, Any]], None] | None = None,
        **process: Any,
    ) -> GatewayProcess:
        """``port``: another way to the broker (a relay); ``main`` edits tb_gateway.json;
        ``process``: GatewayProcess keywords (workdir, keep, extra_env)."""
        gw = GatewayProcess(broker.host, port or broker.port, connectors, connector_files,
                            **process)
        made.append(gw)
        if main is not None:
            path = gw.config_dir / "tb_gateway.json"
            settings = json.loads(path.read_text(encoding="utf-8"))
            main(settings)
            path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
        if install:
            gw.install_connector(install)
        return gw.start() if start else gw

    yield make
    for gw in reversed(made):
        output = gw.output()
        gw.stop()
        if _failed(request):
            print(f"--- gateway output ({gw.workdir}) ---\n{output[-6000:]}")


@pytest.fixture
def simulator() -> Iterator[Callable[..., Any]]:
    """``start(count)`` -> a SimulatorServer on free loopback ports, running in a thread."""
    from tb_dlms.simulator.server import SimulatorServer

    servers: list[Any] = []

    def start(count: int = 1, **kwargs: Any) -> Any:
        server = SimulatorServer(count, 0, **kwargs).run_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
