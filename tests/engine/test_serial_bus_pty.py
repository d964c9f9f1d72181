"""Two meters on one RS-485-like bus over a real pseudo-terminal line (socat), polled in turn.

The far end of the pty pair carries two simulated meters (HDLC physical addresses 16 and 17): every
byte reaches both, each answers only frames addressed to it, as on a multidrop bus. The engine
polls both through SerialTransport on the near end, one channel, one worker.
"""

from __future__ import annotations

import shutil

import pytest
from tb_dlms.engine.spec import SerialSpec
from tb_dlms.testing.pty import PtyMeterBus, PtyPair
from test_engine_simulator import POINTS, check_truth, run, spec

pytestmark = pytest.mark.skipif(shutil.which("socat") is None, reason="socat not installed")


def test_two_meters_share_one_pty_line_each_answering_its_own_address():
    pair = PtyPair()
    try:
        bus = PtyMeterBus(pair.b, (16, 17))
        try:
            line = SerialSpec(pair.a, baudrate=9600)
            specs = [spec(f"m{i}", line, period=0.3, server_physical=16 + i) for i in range(2)]
            sink, engine = run(specs, 2.0)
        finally:
            bus.close()
    finally:
        pair.kill()
    assert len(engine.channels) == 1  # one worker owns the line
    for i in range(2):
        # Every value published for meter i is meter i's truth for that register at its read time.
        assert check_truth(sink, f"m{i}", bus.meters[i].model) >= 3 * len(POINTS)
        assert engine.health()[f"m{i}"]["failed_reads"] == 0
        # Steady cycles took the express path on the shared line too (addresses per meter).
        machine = engine.channels[0].meters[f"m{i}"].session_obj.machine
        assert machine.express_cycles >= 1 and machine.express_fallbacks == 0
    assert bus.meters[0].model.serial != bus.meters[1].model.serial
