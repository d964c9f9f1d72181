"""One small error tree for the whole connector.

Split the h11 way: a *local* error means our side asked for something illegal (a GET before the
association, a value that cannot be encoded); a *remote* error means the peer sent something
illegal (bad FCS, truncated APDU, unexpected frame). Everything the package raises on purpose is a
``DlmsError``, so callers (and the fuzz tests) can tell our verdicts from real bugs.
"""

from __future__ import annotations

from typing import Optional


class DlmsError(Exception):
    """Base of every error this package raises on purpose."""


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


class TimeoutError_(TransportError):  # noqa: N801 - avoid shadowing the builtin
    """No (complete) answer within the allowed time."""


class ConfigError(DlmsError, ValueError):
    """A setting is invalid: the message names the meter and the field."""
