"""The error tree: names that say what went wrong, and errors that carry the meter's name."""

from __future__ import annotations

import pytest
from tb_dlms.protocol import errors as e


def test_every_error_is_a_dlms_error_and_timeouts_are_transport_errors() -> None:
    assert issubclass(e.DeadlineExceeded, e.NoAnswer)
    assert issubclass(e.NoAnswer, e.TransportError)
    assert issubclass(e.EngineStopped, e.EngineError) and issubclass(e.RequestNotStarted, e.EngineError)
    assert not issubclass(e.EngineError, e.ProtocolError)  # engine misuse is no protocol matter
    assert issubclass(e.ConfigError, ValueError)
    assert not hasattr(e, "TimeoutError_")


def test_an_error_names_its_meter_once() -> None:
    exc = e.NoAnswer("no answer within 3 s").for_meter("M-1")
    assert (exc.meter, str(exc)) == ("M-1", "M-1: no answer within 3 s")
    assert exc.for_meter("other").meter == "M-1"  # the first name given stays
    already = e.DeadlineExceeded("M-2: operation did not end within 9 s").for_meter("M-2")
    assert str(already) == "M-2: operation did not end within 9 s"  # not named twice
    assert str(e.DecodeError("truncated", 7).for_meter("M-3")) == "M-3: truncated (at byte 7)"
    with pytest.raises(e.TransportError, match="^M-4: closed$"):
        raise e.TransportError("closed").for_meter("M-4")


def test_an_error_without_a_meter_reads_as_before() -> None:
    assert str(e.AuthenticationError("refused", 1, 13)) == "refused"
    assert e.AuthenticationError("refused", 1, 13).meter is None
