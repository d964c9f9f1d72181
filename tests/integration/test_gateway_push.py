"""Meters that push, through the REAL gateway (issue 13).

Five simulated meters push every second to the connector's listener over the IEC 62056-47
wrapper: three ciphered (auth-enc, their own system titles, the Green Book keys), one of them
also replaying its previous notification byte for byte every third push, and one in plain,
recognised by its serial number. A raw socket sends garbage, and a plain push from a serial
number nobody configured. Every valid notification reaches the ThingsBoard stand-in exactly
once, stamped with the meter's own date-time and holding the values the simulated meter had
then; the replays, the garbage and the stranger are counted and logged, never published; an
alarm raised on a meter arrives as its alarm keys. Keys appear in no log and no MQTT message.
"""

from __future__ import annotations

import json
import math
import socket
import time
from typing import Any

import pytest
from harness_marks import needs_broker, needs_connector, needs_gateway

pytestmark = [pytest.mark.integration, needs_gateway, needs_broker, needs_connector]

REPLAYER = 1  # the meter that replays
PLAIN = 3  # the meter that pushes in plain
BOUNDARY_MS = 50


def _options(listen: str) -> Any:
    from tb_dlms.simulator.model import MeterOptions

    def options(index: int) -> MeterOptions:
        return MeterOptions(push_to=listen, push_period_s=1.0,
                            push_security="" if index == PLAIN else "auth-enc",
                            push_replay_every=3 if index == REPLAYER else 0)
    return options


def _config(port: int) -> dict[str, Any]:
    from tb_dlms.sandbox.push_meters import simulator_push_config

    config = simulator_push_config(4, port)
    plain = config["meters"][PLAIN]["push"]
    del plain["systemTitle"]
    plain["security"] = "none"
    config["meters"][PLAIN]["push"] = plain
    template = config["templates"]["pushing"]["push"]
    # A template's keys are inherited: the plain meter says it has none by a template of its own.
    config["templates"]["plain"] = {"deviceType": "DLMS Push Meter",
                                    "push": {"objects": template["objects"],
                                             "setups": template["setups"]}}
    config["meters"][PLAIN]["template"] = "plain"
    return config


def _matches(model: Any, obis: str, ts_ms: int, value: Any) -> bool:
    times = [ts_ms / 1000.0] + ([ts_ms / 1000.0 - 1.0] if ts_ms % 1000 < BOUNDARY_MS else [])
    return isinstance(value, (int, float)) and any(
        math.isclose(value, model.expected_value(obis, t), rel_tol=1e-12, abs_tol=1e-9)
        for t in times)


def _stranger_and_garbage(port: int) -> None:
    from tb_dlms.protocol.axdr import DataType, Typed
    from tb_dlms.protocol.push import encode_data_notification
    from tb_dlms.protocol.wrapper import encode_wrapper

    body = Typed(DataType.STRUCTURE, (Typed(DataType.OCTET_STRING, bytes(6)),
                                      Typed(DataType.OCTET_STRING, b"NOBODY0001")))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(encode_wrapper(encode_data_notification(body), 1, 1))
        time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\x07GARBAGE" * 10)  # wrapper version 7: out of step, disconnected
        s.settimeout(5)
        assert s.recv(1) == b""


@pytest.mark.timeout(180)
def test_pushing_meters_reach_thingsboard_once_each_with_their_own_time(
        standin: Any, simulator: Any, gateway_factory: Any) -> None:
    from tb_dlms.commands.install import connector_entry
    from tb_dlms.sandbox.push_meters import simulator_serial
    from tb_dlms.simulator.options import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY
    from tb_dlms.testing.ports import free_port_range

    port = free_port_range(1)
    config = _config(port)
    names = [m["deviceName"] for m in config["meters"]]
    gw = gateway_factory([connector_entry("dlms")], {"dlms.json": config}, install="dlms")
    gw.wait_for_output("push: listening on", timeout=30)
    sim = simulator(4, wrapper=True, options=_options(f"127.0.0.1:{port}"))
    registers = {o["key"]: o["obis"] for o in config["templates"]["pushing"]["push"]["objects"]
                 if o.get("classId") == 3}

    def pushed(device: str) -> list[tuple[int, dict[str, Any]]]:
        return [(ts, v) for _, ts, v in standin.telemetry(device) if "active_energy" in v]

    standin.wait_for(lambda: all(len(pushed(n)) >= 4 for n in names), timeout=60)
    _stranger_and_garbage(port)
    sim.model(0).raise_alarm("fraud_attempt")  # the alarm push of meter 0: 0-4:25.9.0.255
    time.sleep(3)
    sim.stop()  # nothing more is sent: now compare what was sent with what arrived
    links = sim.pusher.links
    standin.wait_for(lambda: all(len(pushed(n)) >= links[i].sent - links[i].sent // 3
                                 for i, n in enumerate(names)), timeout=30)
    time.sleep(1.5)

    for i, device in enumerate(names):
        entries = pushed(device)
        stamps = [ts for ts, _ in entries]
        assert len(stamps) == len(set(stamps)), f"{device}: a notification published twice"
        # Made = sent whole, minus the replayed copies (every third push of the replayer
        # is followed by its copy) and the alarm push (another body, not these keys).
        made = links[i].pushes
        assert len(entries) >= made - 2, (device, len(entries), made)  # the last may be cut
        assert len(entries) <= made
        model = sim.model(i)
        for ts, values in entries:
            assert ts % 1000 == 0 or ts % 10 == 0  # the meter's clock, not a receive time
            for key, obis in registers.items():
                assert _matches(model, obis, ts, values[key]), (device, key, ts, values[key])
    serial = standin.wait_for(lambda: standin.attributes(names[PLAIN]).get("serial_number"), 10)
    assert serial == simulator_serial(PLAIN)

    connector_log = gw.log("dlms_meters_connector") or gw.output()
    assert connector_log.count("(replay;") == 1  # counted each time, logged once
    replay_status = [v for _, _, v in standin.telemetry(names[REPLAYER]) if "push_rejected" in v]
    assert replay_status and replay_status[-1]["push_last_rejection"] == "replay"
    assert "no meter has that identity or address" in connector_log  # the stranger
    assert "wrapper version 0x0007" in connector_log  # the garbage
    for other in (0, 2, PLAIN):
        assert not any("push_rejected" in v for _, _, v in standin.telemetry(names[other]))
    alarm = [v for _, _, v in standin.telemetry(names[0]) if "alarm_active" in v]
    assert alarm and alarm[-1]["alarm_fraud_attempt"] is True
    assert alarm[-1]["alarm_clock_invalid"] is False
    assert alarm[-1]["alarm_register"] == 1 << 13

    published = {d for d, _, _ in standin.telemetry()}
    assert published <= set(names), published  # nothing for the stranger
    everything = gw.output() + connector_log + json.dumps(
        [m.payload for m in standin.messages()], default=str)
    for key in (GREEN_BOOK_BLOCK_KEY.hex(), GREEN_BOOK_AUTH_KEY.hex()):
        assert key not in everything.lower()
