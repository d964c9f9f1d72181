"""Settings of one meter session: addresses, credentials, timeouts, link proposals, quirks.

Frozen and validated at construction: a bad value raises ``ConfigError`` naming the meter and the
field, never later in the field. The LLS password never shows in ``repr`` or ``str`` (settings get
logged and pasted into tickets).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ..protocol.association_events import AssociationSettings, Authentication
from ..protocol.errors import ConfigError, DlmsError
from ..protocol.hdlc import HdlcAddress, LinkParameters
from ..protocol.obis import Obis
from ..protocol.security import GcmKey, InvocationCounter, Policy, SecurityContext
from ..protocol.security.server import AssociationSecurity

__all__ = ["SessionSettings"]

_SIZE_LIMIT = {1: 0x7F, 2: 0x7F, 4: 0x3FFF}
_AUTHENTICATIONS = ("none", "lls", "hls-gmac", "hls-sha256", "hls-md5", "hls-sha1")
_POLICIES = {"": None, "none": None, "auth": Policy.AUTHENTICATION, "enc": Policy.ENCRYPTION,
             "auth-enc": Policy.AUTHENTICATED_ENCRYPTION}
_SECRETS = ("password", "block_key", "auth_key")
FRAME_COUNTER = Obis(0, 0, 43, 1, 0, 255)  # class 1 (Data), attribute 2: the meter's count of ours


@dataclass(frozen=True)
class SessionSettings:
    """How to reach and talk to one meter.

    Addresses: ``client`` is the client SAP (16 public, 1 and 32 LLS on the original meter).
    ``server_logical`` / ``server_physical`` form the HDLC server address; ``address_size`` (1, 2
    or 4 bytes) defaults to the shortest that holds them. With ``wrapper`` the IEC 62056-47
    wrapper is used instead of HDLC: the client wPort is ``client``, the server wPort
    ``server_logical``.

    Times are seconds. ``response_timeout`` bounds each exchange; after it the request is repeated
    (HDLC retransmission) up to ``retries`` times before the session is declared broken.
    ``inter_frame_timeout`` bounds the silence in the middle of a frame.

    Whatever the meter sends, no operation (connect, read, SET, ACTION, close) outlives
    ``operation_timeout`` (0: twenty ``response_timeout``/``connect_timeout``, at least 60 s, so a
    slow meter's long time-outs still fit) nor takes in more than ``max_operation_frames`` frames or
    ``max_operation_bytes`` bytes: automatic RRs, segments and retransmissions never push these
    forward (a meter that keeps talking would otherwise hold a read forever).
    ``inactivity_timeout`` is
    the meter's (0 = none): ``keepalive_if_due`` sends a cheap GET once the link has been idle for
    ``inactivity_timeout - keepalive_margin``.

    Security suite 0: ``authentication`` "hls-gmac" (or "hls-sha256", "hls-md5", "hls-sha1" with
    ``password`` as the secret) with ``system_title`` (ours, 8 octets), ``block_key`` and
    ``auth_key`` (16 octets each, never in repr), ``security`` "auth-enc" (the default with an
    HLS mechanism), "auth", "enc" or "none", and ``invocation_counter``: the first one to send
    (one per ciphered APDU; None: unknown). ``counter``, when given, is the sequence itself (an
    ``InvocationCounter``, persisted by the connector) and wins over ``invocation_counter``; it
    is shared by every association made from these settings, so no value is ever sent twice.
    An unknown counter is first read from the meter's frame counter object (``frame_counter``,
    attribute 2, with the ``public_client``), and so is a counter the meter refused, once
    (``counter_resync``; by default only for a counter that was unknown or given as a sequence:
    a number given is used as given).
    ``dedicated_key``: each association draws a fresh 16-octet dedicated key (``os.urandom``),
    proposes it inside the ciphered InitiateRequest and ciphers its requests with it (ded-xxx);
    it needs a security policy (the key must not travel in plain) and is forgotten at release.
    Ciphered sessions take the express path too (``express``): each cycle's request is sealed
    with the next counter, each answer deciphered and checked as on the full path.
    """

    client: int = 16
    server_logical: int = 1
    server_physical: int | None = None
    address_size: int | None = None
    authentication: str = "none"
    password: bytes = field(default=b"", repr=False)
    wrapper: bool = False
    connect_timeout: float = 5.0
    response_timeout: float = 3.0
    retries: int = 2
    inter_frame_timeout: float = 1.0
    operation_timeout: float = 0.0
    max_operation_frames: int = 20_000  # ~2.5 MB at 128-byte frames: a year of load profile
    max_operation_bytes: int = 8 * 1024 * 1024
    max_info_tx: int = 128
    max_info_rx: int = 128
    window_tx: int = 1
    window_rx: int = 1
    max_pdu_size: int = 0xFFFF
    max_list_items: int | None = None  # a meter's cap on GET-with-list items (quirk)
    inactivity_timeout: float = 180.0
    keepalive_margin: float = 30.0
    deviation_sign: int = -1  # -1 Blue Book; +1 for meters that send the opposite sign
    release_on_close: bool = True  # send RLRQ before DISC
    express: bool = True  # steady cycles through session/express.py (False: the full path only)
    name: str = ""  # for logs and errors; default: the transport's description
    security: str = ""  # "", "none", "auth", "enc", "auth-enc" ("" = auth-enc with HLS)
    system_title: bytes = b""
    block_key: bytes = field(default=b"", repr=False)
    auth_key: bytes = field(default=b"", repr=False)
    invocation_counter: int | None = 0  # None: unknown, read the meter's frame counter first
    counter: InvocationCounter | None = field(default=None, repr=False, compare=False)
    frame_counter: Obis = FRAME_COUNTER
    public_client: int = 16
    # Re-synchronise a refused counter from the frame counter once (None: when the counter is
    # unknown or a sequence object was given; a number given is used as given).
    counter_resync: bool | None = None
    dedicated_key: bool = False  # a fresh dedicated key per association (needs a policy)

    def __post_init__(self) -> None:
        if isinstance(self.password, str):
            object.__setattr__(self, "password", self.password.encode("utf-8"))
        auth = str(getattr(self.authentication, "value", self.authentication)).lower()
        object.__setattr__(self, "authentication", auth)
        if auth.startswith("hls") and not self.security:
            object.__setattr__(self, "security", "auth-enc")
        if self.counter_resync is None:
            resync = self.counter is not None or self.invocation_counter is None
            object.__setattr__(self, "counter_resync", resync)
        if self.ciphered:
            if self.counter is None:  # one sequence for every association of these settings
                start = self.invocation_counter
                ok = start is None or (isinstance(start, int) and 0 <= start <= 0xFFFFFFFF)
                object.__setattr__(self, "counter", InvocationCounter(start if ok else 0))
        if isinstance(self.frame_counter, str):
            object.__setattr__(self, "frame_counter", Obis.parse(self.frame_counter))
        self._check()

    # ------------------------------------------------------------------------------ checks
    def _fail(self, name: str, message: str) -> ConfigError:
        who = f"meter {self.name!r}: " if self.name else ""
        return ConfigError(f"{who}{name}: {message}")

    def _int(self, name: str, low: int, high: int, optional: bool = False) -> None:
        value = getattr(self, name)
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(name, f"must be an integer in {low}..{high}, not {value!r}")

    def _seconds(self, name: str, positive: bool = True) -> None:
        value = getattr(self, name)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0 or (positive and value == 0):
            need = "a positive" if positive else "a non-negative"
            raise self._fail(name, f"must be {need} number of seconds, not {value!r}")

    def _check(self) -> None:
        self._int("client", 0, 0xFFFF if self.wrapper else 0x7F)
        if self.authentication not in _AUTHENTICATIONS:
            raise self._fail(
                "authentication", f"must be one of {', '.join(_AUTHENTICATIONS)}, "
                f"not {self.authentication!r}"
            )
        self._check_security()
        if self.dedicated_key and not self.ciphered:
            raise self._fail("dedicated_key", "needs an HLS authentication (hls-gmac) and a "
                             "security policy")
        if not isinstance(self.password, bytes):
            raise self._fail("password", "must be bytes or text")
        if self.authentication == "lls" and not self.password:
            raise self._fail("password", "LLS authentication needs a password")
        self._check_server()
        for name in ("connect_timeout", "response_timeout", "inter_frame_timeout"):
            self._seconds(name)
        for name in ("inactivity_timeout", "keepalive_margin", "operation_timeout"):
            self._seconds(name, positive=False)
        self._int("retries", 0, 100)
        self._int("max_operation_frames", 1, 10**9)
        self._int("max_operation_bytes", 64, 2**40)
        self._int("max_info_tx", 32, 2030)
        self._int("max_info_rx", 32, 2030)
        self._int("window_tx", 1, 7)
        self._int("window_rx", 1, 7)
        self._int("max_pdu_size", 64, 0xFFFF)
        self._int("max_list_items", 1, 0xFFFF, optional=True)
        if self.deviation_sign not in (-1, 1):
            raise self._fail("deviation_sign", f"must be -1 or +1, not {self.deviation_sign!r}")
        if self.inactivity_timeout and self.keepalive_margin >= self.inactivity_timeout:
            raise self._fail("keepalive_margin", "must be shorter than inactivity_timeout")
        if not isinstance(self.wrapper, bool) or not isinstance(self.release_on_close, bool):
            raise self._fail("wrapper", "wrapper and release_on_close must be true or false")

    def _check_security(self) -> None:
        if self.security not in _POLICIES:
            raise self._fail("security", f"must be auth-enc, auth, enc or none, not "
                             f"{self.security!r}")
        hls = self.authentication.startswith("hls")
        if _POLICIES[self.security] is not None and not hls:
            raise self._fail("security", "ciphering needs an HLS authentication (hls-gmac)")
        if not hls:
            return
        if not isinstance(self.system_title, bytes) or len(self.system_title) != 8:
            raise self._fail("system_title", "must be 8 octets (16 hex digits)")
        for name in ("block_key", "auth_key"):
            key = getattr(self, name)
            if not isinstance(key, bytes) or len(key) != 16:
                raise self._fail(name, "must be 16 octets (32 hex digits)")  # never the value
        if self.authentication != "hls-gmac" and not self.password:
            raise self._fail("password", f"{self.authentication} needs a secret")
        self._int("invocation_counter", 0, 0xFFFFFFFF, optional=True)
        if not isinstance(self.dedicated_key, bool):
            raise self._fail("dedicated_key", f"must be true or false, not {self.dedicated_key!r}")
        if self.dedicated_key and _POLICIES[self.security] is None:
            raise self._fail("dedicated_key", "the dedicated key travels in the ciphered "
                             "InitiateRequest: it needs security auth, enc or auth-enc, not none")
        self._int("public_client", 0, 0xFFFF if self.wrapper else 0x7F)

    @property
    def ciphered(self) -> bool:
        return self.authentication.startswith("hls")

    def _check_server(self) -> None:
        if self.wrapper:
            self._int("server_logical", 0, 0xFFFF)
            if self.server_physical is not None or self.address_size is not None:
                raise self._fail("server_physical", "HDLC addressing does not apply to the wrapper")
            return
        size = self.address_size
        if size is not None and size not in _SIZE_LIMIT:
            raise self._fail("address_size", f"must be 1, 2 or 4, not {size!r}")
        if size == 1 and self.server_physical is not None:
            raise self._fail("server_physical", "a 1-byte server address has no physical part")
        if size in (2, 4) and self.server_physical is None:
            raise self._fail("server_physical", f"a {size}-byte server address needs one")
        limit = _SIZE_LIMIT[size or (1 if self.server_physical is None else 4)]
        self._int("server_logical", 0, limit)
        self._int("server_physical", 0, limit, optional=True)

    # ------------------------------------------------------------------------- derived
    @property
    def client_address(self) -> HdlcAddress:
        return HdlcAddress(self.client)

    @property
    def server_address(self) -> HdlcAddress:
        if self.address_size is None:
            return HdlcAddress.server(self.server_logical, self.server_physical)
        return HdlcAddress(self.server_logical, self.server_physical, self.address_size)

    @property
    def operation_limit(self) -> float:
        """Seconds any one operation may take (see ``operation_timeout``)."""
        if self.operation_timeout:
            return float(self.operation_timeout)
        return max(60.0, 20.0 * max(self.response_timeout, self.connect_timeout))

    @property
    def link_parameters(self) -> LinkParameters:
        return LinkParameters(self.max_info_tx, self.max_info_rx, self.window_tx, self.window_rx)

    @property
    def client_wport(self) -> int:
        return self.client

    @property
    def server_wport(self) -> int:
        return self.server_logical

    def association_settings(self) -> AssociationSettings:
        try:
            return AssociationSettings(
                authentication=Authentication(self.authentication),
                password=self.password,
                max_pdu_size=self.max_pdu_size,
                security=self._association_security(),
            )
        except DlmsError as exc:  # pragma: no cover - the checks above come first
            raise self._fail("authentication", str(exc)) from None

    def _association_security(self) -> AssociationSecurity | None:
        if not self.ciphered:
            return None
        return AssociationSecurity(
            SecurityContext(GcmKey(self.block_key, self.auth_key)), self.system_title,
            _POLICIES[self.security], lambda: os.urandom(16), counter=self.counter,
            dedicated_keys=(lambda: os.urandom(16)) if self.dedicated_key else None)

    def public(self) -> SessionSettings:
        """The public client's settings for the same meter (reads the frame counter)."""
        return replace(self, client=self.public_client, authentication="none", password=b"",
                       security="none", system_title=b"", block_key=b"", auth_key=b"",
                       invocation_counter=0, counter=None, dedicated_key=False)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value: Any = getattr(self, f.name)
            if f.name in _SECRETS:
                value = "'***'" if value else "b''"
            else:
                value = repr(value)
            parts.append(f"{f.name}={value}")
        return f"SessionSettings({', '.join(parts)})"

    __str__ = __repr__
