"""The demo's ThingsBoard stand-in (:mod:`tb_dlms.sandbox.tb_standin`), under the harness's name."""

from ..sandbox.tb_standin import SESSION_LIMITS, Message, ThingsBoardStandIn

__all__ = ["SESSION_LIMITS", "Message", "ThingsBoardStandIn"]
