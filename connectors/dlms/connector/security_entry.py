"""The secrets and security keys of one meter entry: password, HLS keys, system title.

Each secret may be written into dlms.json (``password``, ``blockCipherKey``, ...), named as an
environment variable (``...Env``) or as a file (``...File``, first line): the last two keep
secrets out of a file that gets copied, versioned and sent to ThingsBoard. Errors name the field,
the variable or the file, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..protocol.errors import DlmsError
from ..protocol.obis import Obis
from .field_readers import Section, show

__all__ = ["HASH_MECHANISMS", "hex_field", "parse_password", "parse_security", "read_secret"]

HASH_MECHANISMS = ("hls-sha256", "hls-md5", "hls-sha1")  # the password is the HLS secret
_KEYS = (("blockCipherKey", "block_key"), ("authenticationKey", "auth_key"))
_HLS_ONLY = ("security", "systemTitle", "frameCounterObis", "publicClientAddress",
             "dedicatedKey") + tuple(
    f"{key}{suffix}" for key, _ in _KEYS for suffix in ("", "Env", "File"))
_MAX_FILE = 4096


def read_secret(m: Section, key: str, environ: Mapping[str, str], what: str) -> str | None:
    """The value of ``key``, ``keyEnv`` or ``keyFile`` (exactly one), or None (error reported
    when ``what`` is needed and none is given)."""
    given = [k for k in (key, f"{key}Env", f"{key}File") if m.has(k)]
    for k in given:
        if m.raw(k) is None:
            m.error(k, "must not be null (leave the key out)")
            return None
    if len(given) > 1:
        m.error(key, f"give only one of {', '.join(given)}")
        return None
    if not given:
        m.error(key, f"{what} needs {key}, {key}Env or {key}File")
        return None
    (k,) = given
    if k.endswith("Env"):
        var = m.string(k, required=True)
        if var is None:
            return None
        value = environ.get(var)
        if not value:
            m.error(k, f"environment variable {show(var)} is {'empty' if value == '' else 'not set'}")
            return None
        return value
    if k.endswith("File"):
        path = m.string(k, required=True)
        if path is None:
            return None
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read(_MAX_FILE)
        except (OSError, UnicodeDecodeError) as exc:
            m.error(k, f"cannot read {show(path)}: {getattr(exc, 'strerror', None) or exc}")
            return None
        lines = text.splitlines()
        value = lines[0].strip() if lines else ""
        if not value:
            m.error(k, f"{show(path)} is empty")
            return None
        return value
    raw = m.raw(k)
    if not isinstance(raw, str) or not raw:
        m.error(k, "must be a non-empty string")  # the value itself is never echoed
        return None
    return raw


def parse_password(m: Section, auth: str | None, environ: Mapping[str, str]) -> bytes:
    """The LLS password, or the secret of HLS mechanisms 3, 4 and 6."""
    if auth != "lls" and auth not in HASH_MECHANISMS:
        if any(m.has(k) for k in ("password", "passwordEnv", "passwordFile")):
            m.report.warn("password", f"ignored: authentication is {show(auth)}")
        return b""
    value = read_secret(m, "password", environ, f"{auth} authentication")
    if value is None:
        return b""
    secret = value.encode("utf-8")
    if len(secret) > 255:
        m.error("password", "is longer than 255 bytes")
        return b""
    return secret


def hex_field(m: Section, key: str, text: str | None, octets: int) -> bytes:
    """``text`` as ``octets`` octets; b"" when absent, or bad (reported, never the value)."""
    if text is None:
        return b""
    digits = text.replace(" ", "").replace(":", "")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        value = b""
    if len(value) != octets:
        m.error(key, f"must be {2 * octets} hex digits ({octets} octets)")  # never the value
        return b""
    return value


def parse_security(m: Section, auth: str | None, v: Mapping[str, Any],
                   environ: Mapping[str, str]) -> dict[str, Any]:
    """SessionSettings keywords of an HLS meter (system title, keys, policy, frame counter);
    {} for the others, with a warning for HLS keys that would be ignored."""
    if not auth or not auth.startswith("hls"):
        stray = [k for k in _HLS_ONLY if m.has(k)]
        if stray:
            m.report.warn(stray[0], f"ignored: authentication is {show(auth)} "
                                    f"({', '.join(stray)} go with hls-gmac)")
        return {}
    out: dict[str, Any] = {"security": v["security"] or "auth-enc", "invocation_counter": None,
                           "public_client": v["publicClientAddress"]}
    title = m.string("systemTitle")
    if title is None and not m.has("systemTitle"):
        m.error("systemTitle", f"{auth} needs our system title (16 hex digits)")
    out["system_title"] = hex_field(m, "systemTitle", title, 8)
    for key, name in _KEYS:
        out[name] = hex_field(m, key, read_secret(m, key, environ, auth), 16)
    if v["dedicatedKey"]:
        if out["security"] == "none":
            m.error("dedicatedKey", 'the dedicated key travels in the ciphered InitiateRequest: '
                                    'it needs security "auth", "enc" or "auth-enc", not "none"')
        out["dedicated_key"] = True
    obis = m.string("frameCounterObis")
    if obis is not None:
        try:
            out["frame_counter"] = Obis.parse(obis)
        except (DlmsError, ValueError) as exc:
            m.error("frameCounterObis", str(exc))
    return out
