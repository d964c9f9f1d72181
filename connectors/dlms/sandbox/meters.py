"""A ``dlms.json`` for meters of ``tb-dlms simulate`` / :class:`tb_dlms.simulator.server.SimulatorServer`.

The simulator's meter ``i`` listens on its own port, answers the 1-byte server address (logical 1)
and accepts client 1 with the LLS password ``22222222``; its registers are the nine of the
original system (OBIS ``1-1:32.7.0`` ...), plus the serial number ``0-0:96.1.0.255``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["REGISTERS", "SIMULATOR_PASSWORD", "simulator_dlms_config"]

SIMULATOR_PASSWORD = "22222222"

# (telemetry key, OBIS) of the simulated meter's registers (class 3, attribute 2).
REGISTERS = (
    ("voltage_l1", "1-1:32.7.0"),
    ("voltage_l2", "1-1:52.7.0"),
    ("voltage_l3", "1-1:72.7.0"),
    ("current_l1", "1-1:31.7.0"),
    ("current_l2", "1-1:51.7.0"),
    ("current_l3", "1-1:71.7.0"),
    ("frequency", "1-1:14.7.0"),
    ("active_power", "1-1:1.7.0"),
    ("active_energy", "1-1:1.8.0"),
)


def simulator_dlms_config(
    ports: Sequence[int],
    host: str = "127.0.0.1",
    period_ms: int = 1000,
    health_period_ms: int = 5000,
    name_prefix: str = "Meter-",
    wrapper: bool = False,
) -> dict[str, Any]:
    """One meter entry per port, named ``Meter-1``, ``Meter-2`` ..."""
    meters = []
    for i, port in enumerate(ports, start=1):
        meters.append(
            {
                "deviceName": f"{name_prefix}{i}",
                "deviceType": "DLMS Meter",
                "connection": {"type": "tcp", "host": host, "port": port, "wrapper": wrapper},
                "clientAddress": 1,
                "serverLogicalAddress": 1,
                "serverAddressSize": 1,
                "authentication": "lls",
                "password": SIMULATOR_PASSWORD,
                "pollPeriod": period_ms,
                "timeout": 3000,
                "retries": 2,
                "healthPeriod": health_period_ms,
                "timeseries": [
                    {"key": key, "obis": obis, "classId": 3, "attribute": 2}
                    for key, obis in REGISTERS
                ],
                "staticAttributes": [
                    {"key": "serial_number", "obis": "0-0:96.1.0.255", "classId": 1, "attribute": 2}
                ],
            }
        )
    return {"logLevel": "INFO", "reportStrategy": {"type": "ON_RECEIVED"}, "meters": meters}
