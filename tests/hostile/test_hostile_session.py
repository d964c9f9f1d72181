"""The blocking driver (``BlockingSession``, used by ``tb-dlms read`` and the serial bus workers)
against each hostile meter: the read fails within its deadline, with an error naming the meter,
having taken in a bounded number of frames and a bounded heap."""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hostile_bounds import CLOSE_MARGIN_S, PEAK_BYTES
from tb_dlms.protocol.errors import DlmsError, RemoteProtocolError
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.session.machine import SessionState
from tb_dlms.testing.hostile import HostileMeter
from tb_dlms.transport import TcpTransport

REFS = [(3, "1-1:32.7.0", 2), (3, "1-1:14.7.0", 2)]
DEADLINE_S = 2.0


def settings(name: str, **extra: object) -> SessionSettings:
    values: dict[str, object] = {"response_timeout": 0.5, "operation_timeout": DEADLINE_S}
    return SessionSettings(name=name, **{**values, **extra})  # type: ignore[arg-type]


def test_every_hostile_read_ends_by_its_deadline_with_bounded_frames_and_memory(hostile):
    name = f"hostile-{hostile.mode}"
    session = BlockingSession(TcpTransport("127.0.0.1", hostile.port), settings(name))
    session.connect()
    frames_before = session.machine.channel.frames
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(DlmsError) as caught:
            session.read(REFS)
        gave_up = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        session.close()
    assert name in str(caught.value)
    assert gave_up < DEADLINE_S + 1.0  # + the grace of a failed operation (1 s at most)
    frames = session.machine.channel.frames - frames_before
    assert frames <= session.settings.max_operation_frames + 16 + 4  # budget + grace + DISC
    assert peak < PEAK_BYTES, f"peak {peak} bytes"
    assert session.machine.state is SessionState.CLOSED


def test_close_after_a_hostile_read_is_bounded_too(hostile):
    session = BlockingSession(TcpTransport("127.0.0.1", hostile.port), settings("m"))
    session.connect()
    with pytest.raises(DlmsError):
        session.read(REFS)
    started = time.monotonic()
    session.close()  # the meter keeps talking through RLRQ/DISC as well
    assert time.monotonic() - started < CLOSE_MARGIN_S
    assert not session.transport.is_open


def test_a_repeated_frame_counts_against_the_retries():
    # Each repeat makes our link resend at once, without waiting for a time-out: before, the two
    # sides echoed forever; now the third repeat (retries=2) ends the read, long before the
    # deadline.
    with HostileMeter("repeat") as meter:
        session = BlockingSession(TcpTransport("127.0.0.1", meter.port),
                               settings("echo", operation_timeout=30.0))
        session.connect()
        started = time.monotonic()
        with pytest.raises(RemoteProtocolError, match="echo: .*repeated an old frame 3 time"):
            session.read(REFS)
        assert time.monotonic() - started < 5.0
        assert meter.frames_sent <= 5  # one repeat per frame of ours: the GET and 3 resends
        session.close()


def test_the_frame_budget_ends_a_meter_that_keeps_talking_before_the_deadline():
    with HostileMeter("segments") as meter:
        session = BlockingSession(
            TcpTransport("127.0.0.1", meter.port),
            settings("talker", operation_timeout=60.0, max_operation_frames=500),
        )
        session.connect()
        with pytest.raises(RemoteProtocolError, match="talker: the meter kept talking: 501 frames"):
            session.read(REFS)
        session.close()


def test_the_deadline_ends_a_slow_drip_that_never_misses_a_frame_timeout():
    with HostileMeter("drip") as meter:
        session = BlockingSession(TcpTransport("127.0.0.1", meter.port), settings("drip"))
        session.connect()
        with pytest.raises(DlmsError, match=f"drip: operation did not end within {DEADLINE_S:g} s"):
            session.read(REFS)
        session.close()
