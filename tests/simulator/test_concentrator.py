"""The simulator's data-concentrator mode: several meters behind one port, each answering only the
HDLC frames addressed to it (the engine side is in tests/engine/test_shared_tcp.py)."""

from __future__ import annotations

import pytest
from tb_dlms.simulator.server import SimulatorServer


def test_meters_are_grouped_behind_ports_and_still_counted_as_meters():
    with SimulatorServer(5, 0, meters_per_port=2) as server:
        assert len(server.ports) == 3 and len(set(server.ports)) == 3
        assert [m.physical for m in server.meters] == [16, 17, 18, 19, 20]
        assert server.model(4) is server.meters[4].model


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"meters_per_port": 0}, "meters_per_port must be >= 1"),
     ({"meters_per_port": 2, "wrapper": True}, "needs HDLC")],
)
def test_bad_concentrator_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SimulatorServer(2, 0, **kwargs)
