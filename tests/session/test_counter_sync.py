"""Invocation counters against the simulator over TCP: unknown → read from the meter's frame
counter with the public client; a refused counter → one re-synchronisation, then a clear error.
The simulator's replay protection is the judge: it refuses any counter not above the last."""

from __future__ import annotations

from typing import Any

import pytest
from session_peer import T0
from tb_dlms.protocol.errors import (
    AssociationError,
    AuthenticationError,
    InvocationCounterRejected,
    RemoteProtocolError,
)
from tb_dlms.protocol.security import InvocationCounter
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.model import GREEN_BOOK_AUTH_KEY, GREEN_BOOK_BLOCK_KEY, MeterOptions
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.transport import TcpTransport

NAME = (1, "0-0:42.0.0.255", 2)
FRAME_COUNTER = (1, "0-0:43.1.0.255", 2)


@pytest.fixture(params=[False, True], ids=["hdlc", "wrapper"])
def meter(request: Any) -> Any:
    srv = SimulatorServer(1, 0, options=MeterOptions(authentication="hls-gmac",
                          security="auth-enc"), wrapper=request.param, clock=lambda: T0)
    srv.run_in_thread()
    yield srv
    srv.stop()


def hls(meter: Any, **kw: Any) -> SessionSettings:
    kw.setdefault("invocation_counter", None)
    return SessionSettings(
        client=1, authentication="hls-gmac", system_title=b"TBDLMS01",
        block_key=GREEN_BOOK_BLOCK_KEY, auth_key=GREEN_BOOK_AUTH_KEY, wrapper=meter.wrapper,
        response_timeout=0.5, name="m1", **kw)


def session(meter: Any, settings: SessionSettings) -> BlockingSession:
    return BlockingSession(TcpTransport("127.0.0.1", meter.ports[0], 2.0), settings)


def frame_counter(meter: Any) -> int:
    with session(meter, SessionSettings(client=16, wrapper=meter.wrapper)) as public:
        public.connect()
        (reading,) = public.read([FRAME_COUNTER])
    return int(reading.value)


def read_name(meter: Any, settings: SessionSettings) -> Any:
    with session(meter, settings) as s:
        s.connect()
        (reading,) = s.read([NAME])
    return reading.value


def test_an_unknown_counter_is_read_from_the_frame_counter_first(meter: Any) -> None:
    read_name(meter, hls(meter, invocation_counter=500))
    last = frame_counter(meter)
    assert last >= 500
    counter = InvocationCounter(None)
    assert read_name(meter, hls(meter, counter=counter))
    assert counter.next_value is not None and counter.next_value > last + 1  # used, above
    assert frame_counter(meter) == counter.next_value - 1


def test_a_replayed_counter_is_resynchronised_once_and_the_read_succeeds(meter: Any) -> None:
    read_name(meter, hls(meter, invocation_counter=1000))
    counter = InvocationCounter(10)  # a lost state file restored from an old backup
    assert read_name(meter, hls(meter, counter=counter))
    assert counter.next_value is not None and counter.next_value > 1000
    assert meter.model(0).received.last == counter.next_value - 1  # the meter took them


def test_without_resync_a_refused_counter_is_an_association_error(meter: Any) -> None:
    read_name(meter, hls(meter, invocation_counter=1000))
    with pytest.raises(AssociationError) as caught:
        read_name(meter, hls(meter, invocation_counter=10, counter_resync=False))
    assert caught.value.meter == "m1"
    assert not isinstance(caught.value, InvocationCounterRejected)


def test_wrong_keys_with_a_counter_fresh_from_the_meter_are_not_blamed_on_the_counter(
        meter: Any) -> None:
    wrong = SessionSettings(
        client=1, authentication="hls-gmac", system_title=b"TBDLMS01", invocation_counter=None,
        block_key=bytes(16), auth_key=GREEN_BOOK_AUTH_KEY, wrapper=meter.wrapper,
        response_timeout=0.5, name="m1")
    with pytest.raises(AssociationError) as caught:
        read_name(meter, wrong)
    assert not isinstance(caught.value, InvocationCounterRejected)


def test_a_counter_refused_after_the_resync_is_a_clear_error(meter: Any, monkeypatch: Any) -> None:
    # The meter's frame counter lies low: re-synchronising from it cannot help.
    read_name(meter, hls(meter, invocation_counter=1000))
    monkeypatch.setattr(type(meter.model(0)), "frame_counter", property(lambda m: 3))
    counter = InvocationCounter(10)
    with pytest.raises(AuthenticationError, match=r"frame counter 3: check the keys") as caught:
        read_name(meter, hls(meter, counter=counter))
    assert caught.value.meter == "m1"
    assert counter.next_value is not None and counter.next_value > 10  # spent, never reused


def test_a_refused_request_counter_inside_an_association_ends_the_session(meter: Any) -> None:
    counter = InvocationCounter(None)
    with session(meter, hls(meter, counter=counter)) as s:
        s.connect()
        meter.model(0).received.last = 10**6  # another client with our title went far ahead
        with pytest.raises(InvocationCounterRejected, match="refused our invocation counter"):
            s.read([NAME])


def test_a_frame_counter_the_meter_cannot_give_is_one_clear_error(meter: Any) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        read_name(meter, hls(meter, frame_counter="0-0:43.1.9.255"))
    text = str(caught.value)
    assert text.startswith("m1: reading the frame counter 0-0:43.1.9.255 with the public client:")
    assert "not a counter" in text and text.count("frame counter") == 1
