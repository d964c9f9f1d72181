"""Everything ``tb-dlms demo`` runs around the connector, on loopback, leaving nothing behind.

* :mod:`.broker` - a private mosquitto on a free loopback port.
* :mod:`.tb_standin` - a small ThingsBoard stand-in on that broker: answers the gateway's
  ``getSessionLimits``, records ``v1/gateway/*`` traffic, pushes attribute updates and RPCs.
* :mod:`.gateway` - a gateway config dir and the real ``thingsboard_gateway`` process, with the
  connector installed by ``tb-dlms install`` into a folder the gateway's own loader searches.
* :mod:`.meters` - the ``dlms.json`` that reads the meters of ``tb-dlms simulate``.

Product code, in the commands layer: the demo a user runs needs it, so it lives here and the test
harness (tests, benchmarks) uses it too, never the other way round. Needs the gateway extra
(thingsboard-gateway, paho-mqtt) and the ``mosquitto`` binary; the connector never imports it.
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
