"""A meter whose GET-with-list answers are malformed (issue 8): the session falls back to single
GETs in the same cycle, remembers it, and says so once, against the simulator on loopback."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from session_peer import REGISTERS
from tb_dlms.protocol.apdu.get import GetResponseWithList, decode_get_response
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import DecodeError
from tb_dlms.session import SessionState
from tb_dlms.simulator.connection import spoil_with_list
from test_session import assert_registers

QUIRKS = ["short", "block"]


def warnings_about_with_list(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "GET-with-list" in r.getMessage()]


@pytest.mark.parametrize("quirk", QUIRKS)
def test_simulator_quirk_answers_are_really_malformed(quirk):
    values = [Typed(DataType.DOUBLE_LONG_UNSIGNED, n) for n in range(16)]
    good = GetResponseWithList(5, tuple(values)).encode()
    bad = spoil_with_list(good, values, quirk)
    assert bad[:3] == good[:3] and bad != good
    with pytest.raises(DecodeError):
        decode_get_response(bad)


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
@pytest.mark.parametrize("quirk", QUIRKS)
def test_malformed_with_list_falls_back_in_the_same_cycle_and_is_remembered(
    simulator, session, caplog, quirk, wrapper
):
    srv = simulator(wrapper=wrapper, bad_with_list=quirk)
    s = session(srv.ports[0], wrapper=wrapper, name="meter-7")
    caplog.set_level(logging.INFO, logger="tb_dlms")
    s.connect()
    assert_registers(s.read(REGISTERS), srv.model(0))  # the cycle is not lost
    assert s.state is SessionState.READY
    assert s.with_list.reason == "failed"
    requests = s.requests
    for _ in range(3):
        assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.requests - requests == 3 * len(REGISTERS)  # single GETs, no more with-list tries
    s.close()
    s.connect()  # the same meter again: still remembered
    assert_registers(s.read(REGISTERS), srv.model(0))
    said = warnings_about_with_list(caplog)
    assert len(said) == 1, said
    assert "meter-7" in said[0] and "malformed" in said[0] and "from now on" in said[0]


def test_meter_turning_malformed_under_the_express_path(simulator, session, caplog):
    # The steady cycle runs on the express path; then the meter's answers go bad (new firmware,
    # say): that cycle still gets its values, by single GETs.
    srv = simulator()
    s = session(srv.ports[0], name="meter-8")
    s.connect()
    for _ in range(3):
        assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.machine.express_cycles >= 1
    meter = srv.meters[0]
    meter.options = dataclasses.replace(meter.options, bad_with_list="short")
    caplog.set_level(logging.INFO, logger="tb_dlms")
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert s.state is SessionState.READY and s.with_list.reason == "failed"
    assert s.machine.express_fallbacks == 1
    assert_registers(s.read(REGISTERS), srv.model(0))
    assert len(warnings_about_with_list(caplog)) == 1
