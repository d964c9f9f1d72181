"""A reusable harness that proves the connector inside the REAL ThingsBoard IoT Gateway.

* :mod:`.broker` - a private mosquitto on a free loopback port.
* :mod:`.tb_standin` - a small ThingsBoard stand-in on that broker: answers the gateway's
  ``getSessionLimits``, records ``v1/gateway/*`` traffic, pushes attribute updates and RPCs.
* :mod:`.gateway` - a gateway config dir and the real ``thingsboard_gateway`` process, with the
  connector installed by ``tb-dlms install`` into a folder the gateway's own loader searches.

Used by ``tests/integration`` and ``tb-dlms demo``. Needs the gateway extra (thingsboard-gateway,
paho-mqtt) and the ``mosquitto`` binary; nothing here is imported by the connector itself.
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
