"""Ciphered express cycles of our BlockingSession against a Gurux meter (gurux_dlms's
GXDLMSSecureServer over loopback TCP, gurux_server.py; GPLv2, tests only): an independent peer
ciphers every answer, and the steady cycles after the first two must take the express path at
each protection level, over HDLC and the wrapper, reading what Gurux holds. The frame counter is
one of the values: it moves every cycle (Gurux takes one counter of ours per request)."""

from __future__ import annotations

import pytest

pytest.importorskip("gurux_dlms")

from test_gurux_server_vs_our_client import (  # noqa: E402 - its fixtures and constants
    COUNTER_REF,
    ENERGY_RAW,
    ENERGY_REF,
    LEVELS,
    gurux,
    session,
)

pytestmark = pytest.mark.interop
__all__ = ["gurux", "session"]  # fixtures, used by name


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
@pytest.mark.parametrize("level", list(LEVELS))
def test_steady_cycles_against_gurux_take_the_express_path(gurux, session, level, wrapper):
    server = gurux(wrapper=wrapper, security=LEVELS[level])
    s = session(server, security=level, wrapper=wrapper)
    s.connect()
    refs = (ENERGY_REF, COUNTER_REF)  # one tuple every cycle, as the engine passes it
    for _ in range(8):
        energy, counter = s.read(refs)
        assert energy.raw == ENERGY_RAW
        assert counter.value == server.meter.client_counters[-1]  # this cycle's request
    machine = s.machine
    assert (machine.express_cycles, machine.express_fallbacks) == (6, 0)
    assert server.meter.seen[-1][1] == LEVELS[level]
    s.close()
