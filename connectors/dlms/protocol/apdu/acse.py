"""ACSE APDUs (BER): AARQ, AARE, RLRQ, RLRE, as profiled by DLMS (Green Book, ch. 9).

Only the fields DLMS uses are modelled; other optional fields are skipped on decode (their BER
framing is still checked). The user-information is an OCTET STRING holding an A-XDR xDLMS APDU:
InitiateRequest in the AARQ, InitiateResponse or ConfirmedServiceError in the AARE. Ciphered
(glo-/ded-) contents are kept as raw bytes here; ``protocol/security/hls_acse.py`` ciphers and
opens them (HLS with ciphering: AP titles, challenges, glo-initiate-request/response).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Union

from ..errors import DecodeError
from .ber import (
    INTEGER,
    OBJECT_IDENTIFIER,
    OCTET_STRING,
    decode_integer,
    encode_integer,
    expect_single,
    iter_tlvs,
    read_tlv,
    tlv,
)
from .service import CONFIRMED_SERVICE_ERROR_TAG, ConfirmedServiceError, decode_enum
from .xdlms import (
    INITIATE_REQUEST_TAG,
    INITIATE_RESPONSE_TAG,
    InitiateRequest,
    InitiateResponse,
)

AARQ_TAG, AARE_TAG, RLRQ_TAG, RLRE_TAG = 0x60, 0x61, 0x62, 0x63

# {joint-iso-ccitt(2) country(16) country-name(756) identified-organization(5) DLMS-UA(8) ...}
_CONTEXT_OID_PREFIX = bytes.fromhex("608574050801")  # application-context(1)
_MECHANISM_OID_PREFIX = bytes.fromhex("608574050802")  # authentication-mechanism-name(2)
# sender/responder-acse-requirements: BIT STRING, 7 unused bits, bit 0 (authentication) set.
_AUTHENTICATION_REQUIRED = b"\x07\x80"
_USER_INFORMATION = 0xBE


def _label(member: IntEnum) -> str:
    return member.name.lower().replace("_", "-")


class ApplicationContext(IntEnum):
    LOGICAL_NAME = 1
    SHORT_NAME = 2
    LOGICAL_NAME_WITH_CIPHERING = 3
    SHORT_NAME_WITH_CIPHERING = 4


class AuthMechanism(IntEnum):
    NONE = 0  # lowest-level security: no mechanism name is sent
    LLS = 1
    HLS = 2  # manufacturer specific
    HLS_MD5 = 3
    HLS_SHA1 = 4
    HLS_GMAC = 5
    HLS_SHA256 = 6
    HLS_ECDSA = 7


class AssociationResult(IntEnum):
    ACCEPTED = 0
    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2

    @property
    def label(self) -> str:
        return _label(self)


class AcseServiceUserDiagnostic(IntEnum):
    NULL = 0
    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AP_TITLE_NOT_RECOGNIZED = 3
    CALLING_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 4
    CALLING_AE_QUALIFIER_NOT_RECOGNIZED = 5
    CALLING_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 6
    CALLED_AP_TITLE_NOT_RECOGNIZED = 7
    CALLED_AP_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 8
    CALLED_AE_QUALIFIER_NOT_RECOGNIZED = 9
    CALLED_AE_INVOCATION_IDENTIFIER_NOT_RECOGNIZED = 10
    AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED = 11
    AUTHENTICATION_MECHANISM_NAME_REQUIRED = 12
    AUTHENTICATION_FAILURE = 13
    AUTHENTICATION_REQUIRED = 14

    @property
    def label(self) -> str:
        return _label(self)


class AcseServiceProviderDiagnostic(IntEnum):
    NULL = 0
    NO_REASON_GIVEN = 1
    NO_COMMON_ACSE_VERSION = 2

    @property
    def label(self) -> str:
        return _label(self)


Diagnostic = Union[AcseServiceUserDiagnostic, AcseServiceProviderDiagnostic]
AarqUserInformation = Union[InitiateRequest, bytes, None]
AareUserInformation = Union[InitiateResponse, ConfirmedServiceError, bytes, None]


class ReleaseRequestReason(IntEnum):
    NORMAL = 0
    URGENT = 1
    USER_DEFINED = 30


class ReleaseResponseReason(IntEnum):
    NORMAL = 0
    NOT_FINISHED = 1
    USER_DEFINED = 30


def _oid_field(tag: int, prefix: bytes, value: int, inner: bool) -> bytes:
    oid = prefix + bytes((value,))
    return tlv(tag, tlv(OBJECT_IDENTIFIER, oid)) if inner else tlv(tag, oid)


def _oid_value(data: bytes, start: int, end: int, prefix: bytes, what: str) -> int:
    if end - start != len(prefix) + 1 or data[start:end - 1] != prefix:
        raise DecodeError(f"unknown {what} OID {bytes(data[start:end]).hex()}", start)
    return data[end - 1]


def _user_information(payload: bytes | None) -> bytes:
    return b"" if payload is None else tlv(_USER_INFORMATION, tlv(OCTET_STRING, payload))


def _decode_user_information(data: bytes, start: int, end: int) -> bytes:
    cstart, cend = expect_single(data, start, end, OCTET_STRING, "user-information")
    return bytes(data[cstart:cend])


def _open(data: bytes, tag: int, what: str) -> int:
    """Check the outer tag and that the length covers the whole buffer; return content end."""
    if not data:
        raise DecodeError(f"empty {what}", 0)
    if data[0] != tag:
        raise DecodeError(f"not an {what} (tag 0x{data[0]:02X})", 0)
    _, start, stop = read_tlv(data, 0, len(data))
    if stop != len(data):
        raise DecodeError(f"trailing bytes after {what}", stop)
    return start


def _auth_value(data: bytes, start: int, end: int) -> bytes:
    # Authentication-value ::= CHOICE { charstring [0], bitstring [1], ... }
    _, cstart, cend = read_tlv(data, start, end)
    return bytes(data[cstart:cend])


def _ap_title(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


@dataclass(frozen=True)
class AARQ:
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    mechanism: AuthMechanism = AuthMechanism.NONE
    calling_authentication_value: bytes | None = None
    user_information: AarqUserInformation = None
    calling_ap_title: bytes | None = None

    def __repr__(self) -> str:
        # The LLS password (or CtoS) must not reach a log line; `tb-dlms decode` masks it apart.
        value = self.calling_authentication_value
        masked = None if value is None else f"<{len(value)} bytes hidden>"
        return (f"AARQ(application_context={self.application_context!r}, "
                f"mechanism={self.mechanism!r}, calling_authentication_value={masked}, "
                f"user_information={self.user_information!r}, "
                f"calling_ap_title={self.calling_ap_title!r})")

    def encode(self) -> bytes:
        parts: list[bytes] = [_oid_field(0xA1, _CONTEXT_OID_PREFIX, self.application_context, True)]
        if self.calling_ap_title is not None:
            parts.append(tlv(0xA6, _ap_title(self.calling_ap_title)))
        if self.mechanism != AuthMechanism.NONE:
            parts.append(tlv(0x8A, _AUTHENTICATION_REQUIRED))
            parts.append(_oid_field(0x8B, _MECHANISM_OID_PREFIX, self.mechanism, False))
            if self.calling_authentication_value is not None:
                parts.append(tlv(0xAC, tlv(0x80, self.calling_authentication_value)))
        info = self.user_information
        parts.append(_user_information(info.encode() if isinstance(info, InitiateRequest) else info))
        return tlv(AARQ_TAG, b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> AARQ:
        start = _open(data, AARQ_TAG, "AARQ")
        context: ApplicationContext | None = None
        mechanism = AuthMechanism.NONE
        auth_value = ap_title = None
        info: AarqUserInformation = None
        for tag, cstart, cend in iter_tlvs(data, start, len(data)):
            if tag == 0xA1:
                s, e = expect_single(data, cstart, cend, OBJECT_IDENTIFIER, "application-context")
                value = _oid_value(data, s, e, _CONTEXT_OID_PREFIX, "application-context")
                context = decode_enum(ApplicationContext, value, s, "application context")
            elif tag == 0xA6:
                s, e = expect_single(data, cstart, cend, OCTET_STRING, "calling-AP-title")
                ap_title = bytes(data[s:e])
            elif tag == 0x8B:
                value = _oid_value(data, cstart, cend, _MECHANISM_OID_PREFIX, "mechanism")
                mechanism = decode_enum(AuthMechanism, value, cstart, "mechanism")
            elif tag == 0xAC:
                auth_value = _auth_value(data, cstart, cend)
            elif tag == _USER_INFORMATION:
                raw = _decode_user_information(data, cstart, cend)
                info = InitiateRequest.decode(raw) if raw[:1] == bytes(
                    (INITIATE_REQUEST_TAG,)) else raw
            # 0x80 protocol-version, 0x8A sender-acse-requirements, A2..A5 called-*, A7..A9:
            # nothing DLMS LN without ciphering needs.
        if context is None:
            raise DecodeError("AARQ without application-context-name", 0)
        return cls(context, mechanism, auth_value, info, ap_title)


@dataclass(frozen=True)
class AARE:
    result: AssociationResult = AssociationResult.ACCEPTED
    diagnostic: Diagnostic = AcseServiceUserDiagnostic.NULL
    mechanism: AuthMechanism | None = None
    responding_authentication_value: bytes | None = None
    user_information: AareUserInformation = None
    application_context: ApplicationContext = ApplicationContext.LOGICAL_NAME
    responding_ap_title: bytes | None = None

    @property
    def diagnostic_label(self) -> str:
        source = ("acse-service-provider" if isinstance(
            self.diagnostic, AcseServiceProviderDiagnostic) else "acse-service-user")
        return f"{source}: {self.diagnostic.label}"

    def encode(self) -> bytes:
        source = 0xA2 if isinstance(self.diagnostic, AcseServiceProviderDiagnostic) else 0xA1
        parts: list[bytes] = [
            _oid_field(0xA1, _CONTEXT_OID_PREFIX, self.application_context, True),
            tlv(0xA2, tlv(INTEGER, encode_integer(self.result))),
            tlv(0xA3, tlv(source, tlv(INTEGER, encode_integer(self.diagnostic)))),
        ]
        if self.responding_ap_title is not None:
            parts.append(tlv(0xA4, _ap_title(self.responding_ap_title)))
        if self.mechanism is not None and self.mechanism != AuthMechanism.NONE:
            parts.append(tlv(0x88, _AUTHENTICATION_REQUIRED))
            parts.append(_oid_field(0x89, _MECHANISM_OID_PREFIX, self.mechanism, False))
            if self.responding_authentication_value is not None:
                parts.append(tlv(0xAA, tlv(0x80, self.responding_authentication_value)))
        info = self.user_information
        parts.append(_user_information(
            info.encode() if isinstance(info, (InitiateResponse, ConfirmedServiceError)) else info))
        return tlv(AARE_TAG, b"".join(parts))

    @classmethod
    def decode(cls, data: bytes) -> AARE:
        start = _open(data, AARE_TAG, "AARE")
        context = ApplicationContext.LOGICAL_NAME
        result: AssociationResult | None = None
        diagnostic: Diagnostic = AcseServiceUserDiagnostic.NULL
        mechanism: AuthMechanism | None = None
        auth_value = ap_title = None
        info: AareUserInformation = None
        for tag, cstart, cend in iter_tlvs(data, start, len(data)):
            if tag == 0xA1:
                s, e = expect_single(data, cstart, cend, OBJECT_IDENTIFIER, "application-context")
                value = _oid_value(data, s, e, _CONTEXT_OID_PREFIX, "application-context")
                context = decode_enum(ApplicationContext, value, s, "application context")
            elif tag == 0xA2:
                s, e = expect_single(data, cstart, cend, INTEGER, "result")
                result = decode_enum(AssociationResult, decode_integer(data, s, e), s, "result")
            elif tag == 0xA3:
                source, s, e = read_tlv(data, cstart, cend)
                s, e = expect_single(data, s, e, INTEGER, "result-source-diagnostic")
                code = decode_integer(data, s, e)
                if source == 0xA1:
                    diagnostic = decode_enum(AcseServiceUserDiagnostic, code, s, "diagnostic")
                elif source == 0xA2:
                    diagnostic = decode_enum(AcseServiceProviderDiagnostic, code, s, "diagnostic")
                else:
                    raise DecodeError(f"unknown diagnostic source 0x{source:02X}", cstart)
            elif tag == 0xA4:
                s, e = expect_single(data, cstart, cend, OCTET_STRING, "responding-AP-title")
                ap_title = bytes(data[s:e])
            elif tag == 0x89:
                value = _oid_value(data, cstart, cend, _MECHANISM_OID_PREFIX, "mechanism")
                mechanism = decode_enum(AuthMechanism, value, cstart, "mechanism")
            elif tag == 0xAA:
                auth_value = _auth_value(data, cstart, cend)
            elif tag == _USER_INFORMATION:
                raw = _decode_user_information(data, cstart, cend)
                first = raw[0] if raw else -1
                if first == INITIATE_RESPONSE_TAG:
                    info = InitiateResponse.decode(raw)
                elif first == CONFIRMED_SERVICE_ERROR_TAG:
                    info = ConfirmedServiceError.decode(raw)
                else:
                    info = raw
        if result is None:
            raise DecodeError("AARE without result", 0)
        return cls(result, diagnostic, mechanism, auth_value, info, context, ap_title)


def _release_encode(tag: int, reason: int | None, info: bytes | None) -> bytes:
    body = b"" if reason is None else tlv(0x80, encode_integer(reason))
    return tlv(tag, body + _user_information(info))


def _release_decode(data: bytes, tag: int, what: str):  # type: ignore[no-untyped-def]
    start = _open(data, tag, what)
    reason = info = None
    for field, cstart, cend in iter_tlvs(data, start, len(data)):
        if field == 0x80:
            reason = decode_integer(data, cstart, cend)
        elif field == _USER_INFORMATION:
            info = _decode_user_information(data, cstart, cend)
    return reason, info


@dataclass(frozen=True)
class RLRQ:
    """Release request; user_information is the raw xDLMS payload (an InitiateRequest when
    ciphering is used), kept opaque."""

    reason: int | None = ReleaseRequestReason.NORMAL
    user_information: bytes | None = None

    def encode(self) -> bytes:
        return _release_encode(RLRQ_TAG, self.reason, self.user_information)

    @classmethod
    def decode(cls, data: bytes) -> RLRQ:
        return cls(*_release_decode(data, RLRQ_TAG, "RLRQ"))


@dataclass(frozen=True)
class RLRE:
    reason: int | None = ReleaseResponseReason.NORMAL
    user_information: bytes | None = None

    def encode(self) -> bytes:
        return _release_encode(RLRE_TAG, self.reason, self.user_information)

    @classmethod
    def decode(cls, data: bytes) -> RLRE:
        return cls(*_release_decode(data, RLRE_TAG, "RLRE"))
