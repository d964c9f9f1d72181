"""The disconnect control state machine of a simulated meter (Blue Book, class 70), as tables.

Split from model.py; MeterModel holds the state and applies these transitions.
"""

from __future__ import annotations

__all__ = ["MACHINE", "MODES", "TRANSITIONS", "ControlState"]


class ControlState:
    DISCONNECTED = 0
    CONNECTED = 1
    READY_FOR_RECONNECTION = 2


# Disconnect control state machine (Blue Book, class 70): transition letter ->
# (trigger, from state, to state), and the transitions each control_mode allows.
TRANSITIONS = {
    "a": ("remote_reconnect", 0, 2),
    "b": ("remote_disconnect", 1, 0),
    "c": ("remote_disconnect", 2, 0),
    "d": ("remote_reconnect", 0, 1),
    "e": ("manual_reconnect", 2, 1),
    "f": ("manual_disconnect", 1, 2),
    "g": ("local_disconnect", 1, 2),
    "h": ("local_reconnect", 2, 1),
}
MODES = {
    0: "",
    1: "bcfgde",
    2: "bcfgae",
    3: "bcgde",
    4: "bcgae",
    5: "bcfgdeh",
    6: "bcgaeh",
}
# (mode, trigger) -> {from state: to state}
MACHINE: dict[tuple[int, str], dict[int, int]] = {}
for _mode, _letters in MODES.items():
    for _trigger in {t for t, _a, _b in TRANSITIONS.values()}:
        MACHINE[(_mode, _trigger)] = {
            src: dst for t, src, dst in (TRANSITIONS[x] for x in _letters) if t == _trigger
        }
