"""The demo's private mosquitto (:mod:`tb_dlms.sandbox.broker`), under the harness's name."""

from ..sandbox.broker import Broker, BrokerError, find_mosquitto, free_port, wait_port

__all__ = ["Broker", "BrokerError", "find_mosquitto", "free_port", "wait_port"]
