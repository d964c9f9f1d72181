"""Security suite 0/1 (AES-GCM-128): ciphered xDLMS APDUs and HLS authentication, sans-IO.

Where it sits: between the channel (HDLC link or wrapper, which deliver APDU bytes) and the
association (which sees plain APDUs). See the README of tb_dlms.protocol.
"""

from .apdu import (
    CIPHERED_TAGS,
    GENERAL_DED_CIPHERING,
    GENERAL_GLO_CIPHERING,
    CipheredApdu,
    Deciphered,
    KeyKind,
    SecurityContext,
    ciphered_tag,
    is_ciphered,
)
from .control import (
    SECURITY_FAILURES,
    AuthenticationTagMismatch,
    CounterGuard,
    Policy,
    ReplayedInvocationCounter,
    SecurityControl,
    SecurityHeader,
    SecurityPolicyViolation,
    UnsupportedSecurity,
)
from .counter import CounterExhausted, CounterUnknown, InvocationCounter
from .express import ExpressCipher
from .gcm import GcmKey
from .hls import (
    HlsAuthenticationFailed,
    gmac_response,
    hash_response,
    sha256_response,
    verify_gmac_response,
    verify_response,
)
from .hls_acse import Ciphering, hls_aarq, open_aare, open_aarq, server_title_and_stoc

__all__ = [
    "SECURITY_FAILURES",
    "CIPHERED_TAGS", "GENERAL_DED_CIPHERING", "GENERAL_GLO_CIPHERING",
    "AuthenticationTagMismatch", "CipheredApdu", "Ciphering", "CounterExhausted", "CounterGuard",
    "CounterUnknown", "Deciphered", "ExpressCipher", "InvocationCounter",
    "GcmKey", "HlsAuthenticationFailed", "KeyKind", "Policy", "ReplayedInvocationCounter",
    "SecurityContext", "SecurityControl", "SecurityHeader", "SecurityPolicyViolation",
    "UnsupportedSecurity", "ciphered_tag", "gmac_response", "hash_response", "hls_aarq",
    "is_ciphered", "open_aare", "open_aarq", "server_title_and_stoc", "sha256_response",
    "verify_gmac_response", "verify_response",
]
