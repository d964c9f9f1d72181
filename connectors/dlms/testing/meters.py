"""The simulator's ``dlms.json`` (:mod:`tb_dlms.sandbox.meters`), under the harness's name."""

from ..sandbox.meters import REGISTERS, SIMULATOR_PASSWORD, simulator_dlms_config

__all__ = ["REGISTERS", "SIMULATOR_PASSWORD", "simulator_dlms_config"]
