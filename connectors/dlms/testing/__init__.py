"""A reusable harness that proves the connector inside the REAL ThingsBoard IoT Gateway.

The broker, the ThingsBoard stand-in, the gateway process and the simulator's ``dlms.json`` are
the ones ``tb-dlms demo`` runs (:mod:`tb_dlms.sandbox`); this package re-exports them under the
names the tests use and adds what only tests need (:mod:`.pty`: socat pseudo terminals).

Used by ``tests/integration`` and the benchmarks. May import any layer; no product module may
import it (tests/test_layers.py). Needs the gateway extra (thingsboard-gateway, paho-mqtt) and the
``mosquitto`` binary.
"""

from __future__ import annotations

from .broker import Broker, BrokerError, free_port
from .gateway import GatewayError, GatewayProcess, write_gateway_config
from .tb_standin import Message, ThingsBoardStandIn

__all__ = [
    "Broker",
    "BrokerError",
    "GatewayError",
    "GatewayProcess",
    "Message",
    "ThingsBoardStandIn",
    "free_port",
    "write_gateway_config",
]
