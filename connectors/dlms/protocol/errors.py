"""One small error tree for the whole connector.

Split the h11 way: a *local* error means our side asked for something illegal (a GET before the
association, a value that cannot be encoded); a *remote* error means the peer sent something
illegal (bad FCS, truncated APDU, unexpected frame). Everything the package raises on purpose is a
``DlmsError``, so callers (and the fuzz tests) can tell our verdicts from real bugs.
"""

from __future__ import annotations

from typing import Optional, TypeVar

_E = TypeVar("_E", bound="DlmsError")


class DlmsError(Exception):
    """Base of every error this package raises on purpose.

    ``meter`` names the meter the error concerns, set by the layer that knows it (``for_meter``:
    the session, the engine); ``str()`` then starts with it, so every log line, health detail
    and RPC reply says which meter, without each message spelling it out.
    """

    meter: Optional[str] = None

    def for_meter(self: _E, name: str) -> _E:
        """This error, about meter ``name`` (a name set earlier is kept)."""
        if self.meter is None:
            self.meter = name
        return self

    def __str__(self) -> str:
        text = super().__str__()
        meter = self.meter
        return text if meter is None or meter in text else f"{meter}: {text}"


class ProtocolError(DlmsError):
    """A rule of HDLC, A-XDR, ACSE or xDLMS was broken."""


class LocalProtocolError(ProtocolError):
    """Our side asked for something the protocol or the current state forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something malformed or unexpected."""


class DecodeError(RemoteProtocolError):
    """Bytes that cannot be decoded; ``offset`` says where decoding broke (None if unknown)."""

    def __init__(self, message: str, offset: Optional[int] = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte {offset})")


class AssociationError(DlmsError):
    """The meter refused the association (AARE result not accepted)."""

    def __init__(self, message: str, result: int = 0, diagnostic: int = 0) -> None:
        self.result = result
        self.diagnostic = diagnostic
        super().__init__(message)


class AuthenticationError(AssociationError):
    """The meter refused our credentials (AARE diagnostic authentication-failure and kin)."""


class InvocationCounterRejected(AuthenticationError):
    """The meter refused our invocation counter (exception-response invocation-counter-error),
    even after we re-synchronised it with the meter's frame counter."""


class DataAccessError(DlmsError):
    """The meter answered a request with a data-access-result other than success."""

    def __init__(self, result: int, name: str) -> None:
        self.result = result
        self.name = name
        super().__init__(f"data access failed: {name} ({result})")


class ServiceError(DlmsError):
    """ExceptionResponse or ConfirmedServiceError from the meter."""


class TransportError(DlmsError):
    """The byte pipe failed: connect refused, closed, timed out."""


class NoAnswer(TransportError):
    """The meter did not answer, or not completely, within the answer time-out and its retries."""


class DeadlineExceeded(NoAnswer):
    """An operation did not end within its overall deadline (a meter that keeps talking, or
    drips its answer, cannot push it forward) or the watchdog's silence."""


class ConfigError(DlmsError, ValueError):
    """A setting is invalid: the message names the meter and the field."""


class EngineError(DlmsError):
    """The polling engine was asked for what it cannot do now: it is stopped, the meter is not
    one of its meters, a request waited too long for its turn."""


class EngineStopped(EngineError):
    """The polling engine is not running (not started yet, or stopped)."""


class RequestNotStarted(EngineError):
    """A queued request did not get the meter within its time-out (the meter stayed busy or
    could not be connected)."""
