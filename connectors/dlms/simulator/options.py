"""The options of a simulated meter: its quirks, secrets and the ways it keeps time.

Frozen and shared: 1,000 meters built with the same options hold one object. ``tb-dlms simulate``
maps its flags onto these fields (commands/simulate.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..protocol.errors import LocalProtocolError
from .meter_models import CHOICES as MODEL_CHOICES
from .meter_time import meter_zone
from .push_setup import check_push_options

__all__ = [
    "AUTHENTICATIONS",
    "DEFAULT_OPTIONS",
    "GREEN_BOOK_AUTH_KEY",
    "GREEN_BOOK_BLOCK_KEY",
    "MeterOptions",
]

# Documented test keys (the Green Book's examples), the defaults of `tb-dlms simulate`.
GREEN_BOOK_BLOCK_KEY = bytes(range(16))  # 000102...0F
GREEN_BOOK_AUTH_KEY = bytes(range(0xD0, 0xE0))  # D0D1...DF
AUTHENTICATIONS = ("lls", "hls-md5", "hls-sha1", "hls-gmac", "hls-sha256")


@dataclass(frozen=True)
class MeterOptions:
    """Quirks of one simulated meter. The model only stores them; the server wiring applies
    the link/session ones (sizes, latency, dropped or garbled replies, timeouts, wrapper)."""

    max_info_field: int = 128  # HDLC max information field length offered in the UA
    max_pdu_size: int = 1024  # xDLMS server max receive PDU size
    with_list: bool = True  # GET/SET-with-list in the conformance block
    latency_s: float = 0.0  # delay before every reply
    drop_every: int = 0  # drop every Nth reply (0 = never)
    garbage_every: int = 0  # prepend garbage bytes to every Nth reply (0 = never)
    password: bytes = b"22222222"  # LLS secret of clients 1 and 32 (client 16: public, no auth)
    inactivity_timeout_s: float = 180.0
    wrapper: bool = False  # IEC 62056-47 wrapper over TCP instead of HDLC
    clock_offset_s: float = 0.0  # the meter clock's error at construction
    clock_drift_ppm: float = 0.0  # how fast that error grows (+ = meter clock runs fast)
    control_mode: int = 1  # disconnect control mode at construction (Blue Book 0..6)
    # Malformed GET-with-list answers (single GETs stay right): "short" declares N results and
    # sends N-1, "block" puts a data-block layout under the with-list tag; "" answers well.
    bad_with_list: str = ""
    window: int = 1  # HDLC window offered in the UA, both directions (1..7)
    # Take only the first N I frames of each burst from the client and drop the rest (0 = all):
    # the poll is answered by RR N(R) below the client's last frame, a partial acknowledgement.
    partial_ack: int = 0
    # Clients 1 and 32: "lls", or an HLS mechanism ("hls-gmac", "hls-sha256", "hls-md5",
    # "hls-sha1"; the last three use ``password`` as the HLS secret). ``security``: "" (plain
    # xDLMS), "auth", "enc" or "auth-enc" (ciphering required, suite 0, global keys below).
    authentication: str = "lls"
    security: str = ""
    block_key: bytes = field(default=GREEN_BOOK_BLOCK_KEY, repr=False)
    auth_key: bytes = field(default=GREEN_BOOK_AUTH_KEY, repr=False)
    # Reject an AARQ proposing a dedicated key (a meter without them); else take it.
    refuse_dedicated: bool = False
    # Profiles (load profile, daily billing, event log; see profile_data and profile_book):
    # False answers selector 1 (range) with other-reason, as meters with entry access only do.
    profile_range_access: bool = True
    # Every Nth row (row number j % N == 0) of each profile has clock status 0x02 doubtful,
    # every other such row 0x01 invalid (0 = all rows OK; bit 0x80 comes from the time zone).
    clock_status_every: int = 0
    # IANA zone the meter keeps local time in ("" = UTC): clock, profile stamps and bounds carry
    # local time with the Blue Book deviation (CET -60) and bit 0x80 in summer.
    time_zone: str = ""
    # Local time stamped with deviation 0x8000 "not specified" (wall time and DST bit only).
    deviation_unspecified: bool = False
    # Meter model (meter_models.py): "poly" the original three-phase meter, "mono" single-phase
    # residential, "ct" C&I CT-connected; "mixed": meter i is ("poly", "mono", "ct")[i % 3].
    model: str = "poly"
    # Pushing (push_setup.py, pusher.py): the Push setup's initial destination "HOST:PORT" ("":
    # none until a client writes attribute 3), the period of the regular push (0: only method 1
    # and alarms), its protection ("", "auth", "enc", "auth-enc": general-glo-ciphering with the
    # keys above), the suite id put in the security control byte (0 or 1, AES-GCM-128 either
    # way), every Nth push also resending the previous one byte for byte (0: never, a replay for
    # the receiver's test), the first push spread over the period by meter index (else at once),
    # and the bytes a push connection may hold unsent before pushes are dropped and counted.
    push_to: str = ""
    push_period_s: float = 0.0
    push_security: str = ""
    push_suite_id: int = 0
    push_replay_every: int = 0
    push_stagger: bool = True
    push_buffer_bytes: int = 65536

    def __post_init__(self) -> None:
        if self.authentication not in AUTHENTICATIONS:
            raise LocalProtocolError(f"authentication must be one of {AUTHENTICATIONS}, "
                                     f"got {self.authentication!r}")
        if self.security not in ("", "auth", "enc", "auth-enc"):
            raise LocalProtocolError(f"security must be '', 'auth', 'enc' or 'auth-enc', "
                                     f"got {self.security!r}")
        if self.security and self.authentication == "lls":
            raise LocalProtocolError("ciphering (security) needs an HLS authentication")
        if self.clock_status_every < 0:
            raise LocalProtocolError(f"clock_status_every must be >= 0, "
                                     f"got {self.clock_status_every}")
        meter_zone(self.time_zone, self.deviation_unspecified)  # an unknown zone fails here
        if self.model not in MODEL_CHOICES:
            raise LocalProtocolError(f"model must be one of {MODEL_CHOICES}, got {self.model!r}")
        check_push_options(self)
        if self.bad_with_list not in ("", "short", "block"):
            raise LocalProtocolError(f"bad_with_list must be '', 'short' or 'block', "
                                     f"got {self.bad_with_list!r}")


DEFAULT_OPTIONS = MeterOptions()
