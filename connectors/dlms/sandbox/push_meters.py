"""A ``dlms.json`` for simulated meters that push (``tb-dlms simulate --push-to``).

Meter ``i`` of a simulator pushes its regular Push setup 0-0:25.9.0.255: the Push setup's own
logical name, its serial number, its clock, then its model's registers (raw values). A template
maps that body once; each meter gives its system title (ciphered pushes are recognised by it) or
its serial number (plain pushes). The alarm push (0-4:25.9.0.255) of the same meters is another
notification shape, mapped by ``alarm_objects``.
"""

from __future__ import annotations

from typing import Any

from ..simulator.meter_models import registers_of
from ..simulator.model import server_system_title
from ..simulator.options import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY

__all__ = ["ALARM_OBJECTS", "push_objects", "simulator_push_config", "simulator_serial"]

# The alarm push (Push setup 0-4:25.9.0.255): alarm register 1 and the disconnector event code.
ALARM_OBJECTS: list[dict[str, Any]] = [
    {"classId": 40, "obis": "0-4:25.9.0.255", "attribute": 1},
    {"classId": 1, "obis": "0-0:96.1.0.255"},
    {"classId": 1, "obis": "0-0:97.98.0.255", "key": "alarm_register"},
    {"classId": 1, "obis": "0-0:96.11.2.255", "key": "disconnector_event"},
]


def simulator_serial(index: int) -> str:
    return f"SIM{index:08d}"


def push_objects(model: str = "poly") -> list[dict[str, Any]]:
    """``push.objects`` for the regular push of ``model``: keys are the registers' own names."""
    return [
        {"classId": 40, "obis": "0-0:25.9.0.255", "attribute": 1},
        {"classId": 1, "obis": "0-0:96.1.0.255", "key": "serial_number", "type": "attribute",
         "identity": True},
        {"classId": 8, "obis": "0-0:1.0.0.255", "timestamp": True},
        *({"classId": 3, "obis": str(r.spec.obis), "key": r.spec.key, "scaler": r.spec.scaler}
          for r in registers_of(model)),
    ]


def simulator_push_config(count: int, port: int, *, security: str = "auth-enc",
                          host: str = "127.0.0.1", model: str = "poly",
                          name_prefix: str = "Push-", first_index: int = 0) -> dict[str, Any]:
    """``count`` pushing meters (simulator indexes from ``first_index``) and a listener on
    ``host:port``; ``security`` "none" for plain pushes, else the simulator's Green Book keys."""
    template: dict[str, Any] = {"deviceType": "DLMS Push Meter",
                                "push": {"objects": push_objects(model), "security": security,
                                         "setups": {"0-4:25.9.0.255": ALARM_OBJECTS}}}
    if security != "none":
        template["push"].update(blockCipherKey=GREEN_BOOK_BLOCK_KEY.hex(),
                                authenticationKey=GREEN_BOOK_AUTH_KEY.hex())
    meters = []
    for i in range(first_index, first_index + count):
        push: dict[str, Any] = {"identity": simulator_serial(i)}
        if security != "none":
            push["systemTitle"] = server_system_title(i).hex().upper()
        meters.append({"deviceName": f"{name_prefix}{i + 1}", "template": "pushing", "push": push})
    return {"logLevel": "INFO", "reportStrategy": {"type": "ON_RECEIVED"},
            "push": {"listeners": [{"type": "tcp", "host": host, "port": port,
                                    "framing": "wrapper"}]},
            "templates": {"pushing": template}, "meters": meters}
