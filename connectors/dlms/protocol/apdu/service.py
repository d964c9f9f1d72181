"""Service-level failures: ExceptionResponse (0xD8) and ConfirmedServiceError (0x0E).

Both carry no invoke id: the association matches them to the request that is outstanding.
Names follow the Blue Book (IEC 62056-5-3 xDLMS ASN.1); ``str()`` gives a readable sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from ..errors import DecodeError

EXCEPTION_RESPONSE_TAG = 0xD8
CONFIRMED_SERVICE_ERROR_TAG = 0x0E

E = TypeVar("E", bound=IntEnum)


def _label(member: IntEnum) -> str:
    return member.name.lower().replace("_", "-")


class StateError(IntEnum):
    SERVICE_NOT_ALLOWED = 1
    SERVICE_UNKNOWN = 2

    @property
    def label(self) -> str:
        return _label(self)


class ServiceErrorCode(IntEnum):
    """The service-error of an ExceptionResponse."""

    OPERATION_NOT_POSSIBLE = 1
    SERVICE_NOT_SUPPORTED = 2
    OTHER_REASON = 3
    PDU_TOO_LONG = 4
    DECIPHERING_ERROR = 5
    INVOCATION_COUNTER_ERROR = 6

    @property
    def label(self) -> str:
        return _label(self)


@dataclass(frozen=True)
class ExceptionResponse:
    state_error: StateError
    service_error: ServiceErrorCode
    invocation_counter: int | None = None  # only with invocation-counter-error

    def encode(self) -> bytes:
        out = bytes((EXCEPTION_RESPONSE_TAG, self.state_error, self.service_error))
        if self.service_error == ServiceErrorCode.INVOCATION_COUNTER_ERROR:
            out += (self.invocation_counter or 0).to_bytes(4, "big")
        return out

    @classmethod
    def decode(cls, data: bytes) -> ExceptionResponse:
        if len(data) < 3 or data[0] != EXCEPTION_RESPONSE_TAG:
            raise DecodeError("truncated or wrong exception-response", min(len(data), 1))
        state = decode_enum(StateError, data[1], 1, "state-error")
        service = decode_enum(ServiceErrorCode, data[2], 2, "service-error")
        counter = None
        end = 3
        if service == ServiceErrorCode.INVOCATION_COUNTER_ERROR:
            if len(data) < 7:
                raise DecodeError("truncated invocation counter", len(data))
            counter = int.from_bytes(data[3:7], "big")
            end = 7
        if end != len(data):
            raise DecodeError("trailing bytes after exception-response", end)
        return cls(state, service, counter)

    def __str__(self) -> str:
        return f"exception-response: {self.state_error.label}, {self.service_error.label}"


class ConfirmedService(IntEnum):
    """Which service failed (the CHOICE of ConfirmedServiceError)."""

    INITIATE_ERROR = 1
    GET_STATUS = 2
    GET_NAME_LIST = 3
    GET_VARIABLE_ATTRIBUTE = 4
    READ = 5
    WRITE = 6
    GET_DATA_SET_ATTRIBUTE = 7
    GET_TI_ATTRIBUTE = 8
    CHANGE_SCOPE = 9
    START = 10
    STOP = 11
    RESUME = 12
    MAKE_USABLE = 13
    INITIATE_LOAD = 14
    LOAD_SEGMENT = 15
    TERMINATE_LOAD = 16
    INITIATE_UPLOAD = 17
    UPLOAD_SEGMENT = 18
    TERMINATE_UPLOAD = 19

    @property
    def label(self) -> str:
        return _label(self)


class ErrorClass(IntEnum):
    """The CHOICE of ServiceError: which family the error value belongs to."""

    APPLICATION_REFERENCE = 0
    HARDWARE_RESOURCE = 1
    VDE_STATE_ERROR = 2
    SERVICE = 3
    DEFINITION = 4
    ACCESS = 5
    INITIATE = 6
    LOAD_DATA_SET = 7
    CHANGE_SCOPE = 8
    TASK = 9
    OTHER = 10

    @property
    def label(self) -> str:
        return _label(self)


# Value names per error class (Blue Book ServiceError enumerations).
ERROR_VALUE_NAMES: dict[ErrorClass, tuple[str, ...]] = {
    ErrorClass.APPLICATION_REFERENCE: (
        "other", "time-elapsed", "application-unreachable", "application-reference-invalid",
        "application-context-unsupported", "provider-communication-error", "deciphering-error"),
    ErrorClass.HARDWARE_RESOURCE: (
        "other", "memory-unavailable", "processor-resource-unavailable",
        "mass-storage-unavailable", "other-resource-unavailable"),
    ErrorClass.VDE_STATE_ERROR: (
        "other", "no-dlms-context", "loading-data-set", "status-nochange", "status-inoperable"),
    ErrorClass.SERVICE: ("other", "pdu-size", "service-unsupported"),
    ErrorClass.DEFINITION: (
        "other", "object-undefined", "object-class-inconsistent", "object-attribute-inconsistent"),
    ErrorClass.ACCESS: (
        "other", "scope-of-access-violated", "object-access-violated", "hardware-fault",
        "object-unavailable"),
    ErrorClass.INITIATE: (
        "other", "dlms-version-too-low", "incompatible-conformance", "pdu-size-too-short",
        "refused-by-the-vde-handler"),
    ErrorClass.LOAD_DATA_SET: (
        "other", "primitive-out-of-sequence", "not-loadable", "dataset-size-too-large",
        "not-awaited-segment", "interpretation-failure", "storage-failure", "data-set-not-ready"),
    ErrorClass.CHANGE_SCOPE: ("other",),
    ErrorClass.TASK: ("other", "no-remote-control", "ti-stopped", "ti-running", "ti-unusable"),
    ErrorClass.OTHER: ("other",),
}


class InitiateError(IntEnum):
    """Values of ErrorClass.INITIATE, the ones a server uses to refuse an InitiateRequest."""

    OTHER = 0
    DLMS_VERSION_TOO_LOW = 1
    INCOMPATIBLE_CONFORMANCE = 2
    PDU_SIZE_TOO_SHORT = 3
    REFUSED_BY_THE_VDE_HANDLER = 4


@dataclass(frozen=True)
class ConfirmedServiceError:
    service: ConfirmedService
    error_class: ErrorClass
    error_value: int

    @property
    def error_name(self) -> str:
        names = ERROR_VALUE_NAMES[self.error_class]
        if 0 <= self.error_value < len(names):
            return names[self.error_value]
        return f"unknown-{self.error_value}"

    def encode(self) -> bytes:
        return bytes((CONFIRMED_SERVICE_ERROR_TAG, self.service, self.error_class,
                      self.error_value))

    @classmethod
    def decode(cls, data: bytes) -> ConfirmedServiceError:
        if len(data) < 4 or data[0] != CONFIRMED_SERVICE_ERROR_TAG:
            raise DecodeError("truncated or wrong confirmed-service-error", min(len(data), 4))
        if len(data) != 4:
            raise DecodeError("trailing bytes after confirmed-service-error", 4)
        return cls(decode_enum(ConfirmedService, data[1], 1, "confirmed service"),
                   decode_enum(ErrorClass, data[2], 2, "service-error class"), data[3])

    def __str__(self) -> str:
        return (f"confirmed-service-error: {self.service.label}, "
                f"{self.error_class.label}: {self.error_name}")


def decode_enum(kind: type[E], value: int, offset: int, what: str) -> E:
    """kind(value), or a DecodeError naming the field and where it was."""
    try:
        return kind(value)
    except ValueError:
        raise DecodeError(f"unknown {what} {value}", offset) from None
