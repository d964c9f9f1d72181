"""BlockingSession against scripted meters: late replies, silence, a refused GET-with-list."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from session_peer import REGISTERS, T0, NoWithList, ScriptedPeer
from tb_dlms.protocol.errors import LocalProtocolError, NoAnswer
from tb_dlms.session import BlockingSession, Reading, SessionSettings, SessionState
from tb_dlms.simulator.model import MeterModel
from tb_dlms.transport import TcpTransport

ENERGY = REGISTERS[8]  # 1-1:1.8.0: grows with time, so every hour gives another value
VOLTAGE = REGISTERS[0]


def open_session(peer: ScriptedPeer, **settings: Any) -> BlockingSession:
    settings.setdefault("response_timeout", 0.3)
    s = BlockingSession(TcpTransport("127.0.0.1", peer.port), SessionSettings(**settings))
    s.connect()
    return s


def truth(obis: Any, t: float) -> float:
    return MeterModel(0, clock=lambda: t).expected_value(obis)


def hold_first_reply(peer: ScriptedPeer, out: bytes, service: bool) -> bytes:
    """Withhold the first service reply; deliver it just before the reply to the third."""
    if not service:
        return out
    if peer.service_replies == 1:
        peer.state["held"] = out
        return b""
    if peer.service_replies == 3:
        return peer.state.pop("held") + out
    return out


def test_late_reply_after_a_retry_is_never_taken_for_a_newer_answer_wrapper():
    # Each service reply moves the meter's clock by an hour, so every reply has other values:
    # reply 1 (held, T0), reply 2 (to the retransmission, T0+1h), reply 3 (T0+2h).
    with ScriptedPeer(wrapper=True, advance=3600, hook=hold_first_reply) as peer:
        s = open_session(peer, wrapper=True)
        try:
            first = s.get(ENERGY)
            assert s.retransmissions == 1
            assert first.value == truth(ENERGY.obis, T0 + 3600)
            second = s.get(ENERGY)  # preceded on the wire by the late reply of T0
            assert second.value == truth(ENERGY.obis, T0 + 7200)
            assert truth(ENERGY.obis, T0) not in (first.value, second.value)
            assert s.stale_responses == 1
            assert s.state is SessionState.READY
        finally:
            s.close()


def test_late_duplicate_frame_after_a_retry_is_dropped_hdlc():
    with ScriptedPeer(advance=3600, hook=hold_first_reply) as peer:
        s = open_session(peer)
        try:
            # The single GETs of a fresh association: scaler (1), value (2), then the next read.
            s.scalers.put(3, VOLTAGE.obis, _scaler_of(VOLTAGE))
            first = s.get(VOLTAGE)  # reply 1 held; the link repeats it after our retransmission
            assert first.value == truth(VOLTAGE.obis, T0)
            s.get(VOLTAGE)
            third = s.get(VOLTAGE)  # the held old frame arrives first: refused by its N(S)
            assert third.value == truth(VOLTAGE.obis, T0 + 7200)
            assert s.unexpected_frames + s._channel.link.duplicate_frames == 1
        finally:
            s.close()


def _scaler_of(ref: Any) -> Any:
    from tb_dlms.protocol.units import ScalerUnit

    _, scaler, unit = MeterModel(0).expected(ref.obis)
    return ScalerUnit(scaler, unit)


def silent_after_association(peer: ScriptedPeer, out: bytes, service: bool) -> bytes:
    if service:
        peer.state["silent"] = True
    return b"" if peer.state.get("silent") else out


@pytest.mark.parametrize("wrapper", [False, True], ids=["hdlc", "wrapper"])
def test_silent_meter_breaks_the_session_after_the_retries(caplog, wrapper):
    with ScriptedPeer(wrapper=wrapper, hook=silent_after_association) as peer:
        s = open_session(peer, wrapper=wrapper, response_timeout=0.1, retries=2, name="m-9")
        with (
            caplog.at_level(logging.WARNING, logger="tb_dlms.session"),
            pytest.raises(NoAnswer, match="m-9.*2 retransmission"),
        ):
            s.read(REGISTERS)
        assert s.retransmissions == 2
        assert s.state is SessionState.BROKEN and s.last_error is not None
        # The frame trace went to the log at WARNING although DEBUG is off.
        dump = [r.getMessage() for r in caplog.records if "last" in r.getMessage()]
        assert dump and " tx " in dump[0] and " rx " in dump[0]
        with pytest.raises(LocalProtocolError, match="broken"):
            s.read(REGISTERS)
        started = time.monotonic()
        s.close()  # RLRQ skipped (broken), DISC unanswered: bounded, never raises
        assert time.monotonic() - started < 2.0
        assert s.state is SessionState.CLOSED


def test_with_list_refused_by_service_error_falls_back_and_is_remembered():
    with ScriptedPeer(connection=NoWithList) as peer:
        s = open_session(peer)
        try:
            rt = s.round_trips
            first = s.read(REGISTERS)
            assert all(isinstance(r, Reading) for r in first)
            # The refused with-list (184 bytes: two frames at max info 128), then single GETs.
            assert s.round_trips - rt == 2 + 18
            assert s.with_list.reason == "failed"
            rt = s.round_trips
            s.read(REGISTERS)
            assert s.round_trips - rt == 9
            s.close()
            s.connect()  # same meter, same conformance: still single GETs
            rt = s.round_trips
            s.read(REGISTERS)
            assert s.round_trips - rt == 18
        finally:
            s.close()
