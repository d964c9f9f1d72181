"""Several gateways on one dlms.json: which meters this gateway polls.

Each gateway is shard ``index`` of ``count`` (``"shard": {"index": 0, "count": 3}`` in dlms.json,
or ``TB_DLMS_SHARD_INDEX`` / ``TB_DLMS_SHARD_COUNT`` in the environment, which override the file
field by field: one image and one dlms.json serve every gateway). A meter belongs to the shard
with the highest weight ``blake2b(shard, key)`` (rendezvous hashing): going from N to N+1
gateways moves only the meters that the new gateway wins, about 1/(N+1) of them, and every
gateway computes the same answer without talking to the others.

The key is the meter's deviceName, except for meters that share one serial port or one TCP
host:port with another meter of the file: those share one line (a bus, a concentrator), which
two gateways cannot both open, so they go together, keyed by the channel.

A bad shard setting is an error and this gateway then polls nothing: a meter polled by two
gateways is worse than one polled by none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .field_readers import show
from .model import ConnectorConfig, MeterConfig

__all__ = ["ENV_COUNT", "ENV_INDEX", "MAX_COUNT", "channel_of", "parse_shard",
           "select", "shard_keys", "shard_of"]

ENV_INDEX, ENV_COUNT = "TB_DLMS_SHARD_INDEX", "TB_DLMS_SHARD_COUNT"
MAX_COUNT = 1024


def _weight(shard: int, key: str) -> int:
    """A stable 64-bit weight (never Python's hash(): it changes from process to process)."""
    data = f"{shard}\x00{key}".encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def shard_of(key: str, count: int) -> int:
    """The shard (0..count-1) that owns ``key``; the lowest shard wins a tie."""
    if count < 1:
        raise ValueError(f"shard count must be at least 1, got {count}")
    key = key.strip()
    best, best_weight = 0, -1
    for s in range(count):
        w = _weight(s, key)
        if w > best_weight:
            best, best_weight = s, w
    return best


def channel_of(entry: Any) -> str | None:
    """The line a meter entry uses, spelled as the engine's ``channel_key`` (None: no usable
    connection; that meter is refused anyway)."""
    conn = entry.get("connection") if isinstance(entry, dict) else None
    if not isinstance(conn, dict):
        return None
    kind, port = conn.get("type"), conn.get("port")
    kind = kind.strip().lower() if isinstance(kind, str) else None
    if isinstance(port, float) and port.is_integer():
        port = int(port)
    if kind == "serial" and isinstance(port, str) and port.strip():
        return f"serial://{port.strip()}"
    host = conn.get("host")
    if kind == "tcp" and isinstance(host, str) and host.strip() and isinstance(port, int):
        return f"tcp://{host.strip()}:{port}"
    return None


def _integer(text: str) -> int | None:
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def parse_shard(data: Mapping[str, Any], environ: Mapping[str, str]
                ) -> tuple[tuple[int, int] | None, list[str]]:
    """((index, count), or None when not sharded; errors). The environment overrides the
    file, field by field."""
    errors: list[str] = []
    raw = data.get("shard")
    if raw is not None and not isinstance(raw, dict):
        return None, [f"dlms.json: shard: must be an object {{\"index\": I, \"count\": N}}, got "
                      f"{show(raw)}"]
    raw = raw or {}
    for key in raw:
        if key not in ("index", "count"):
            errors.append(f"dlms.json: shard.{key}: unknown key (only index and count)")
    values: dict[str, int | None] = {}
    for field, var in (("index", ENV_INDEX), ("count", ENV_COUNT)):
        if var in environ:
            value = _integer(environ[var])
            if value is None:
                errors.append(f"dlms.json: shard: environment variable {var}="
                              f"{show(environ[var])} is not an integer")
            values[field] = value
            continue
        value = raw.get(field)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if field in raw and (isinstance(value, bool) or not isinstance(value, int)):
            errors.append(f"dlms.json: shard.{field}: must be an integer, got {show(value)}")
            value = None
        values[field] = value
    if errors:
        return None, errors
    index, count = values["index"], values["count"]
    if index is None and count is None:
        return None, []
    if index is None or count is None:
        missing = ("index", ENV_INDEX) if index is None else ("count", ENV_COUNT)
        return None, [f"dlms.json: shard.{missing[0]}: is required with the shard's other "
                      f"number (in the file or as {missing[1]})"]
    if not 1 <= count <= MAX_COUNT:
        return None, [f"dlms.json: shard.count: {count} is out of range 1..{MAX_COUNT}"]
    if not 0 <= index < count:
        return None, [f"dlms.json: shard.index: {index} is out of range 0..{count - 1} "
                      f"(count {count})"]
    return (index, count), []


def shard_keys(entries: list[tuple[str, Any]]) -> dict[str, str]:
    """deviceName -> hashing key for (name, merged entry) pairs of every enabled meter: the
    channel for meters sharing one, else the name."""
    channels: dict[str, int] = {}
    for _, entry in entries:
        ch = channel_of(entry)
        if ch is not None:
            channels[ch] = channels.get(ch, 0) + 1
    out = {}
    for name, entry in entries:
        ch = channel_of(entry)
        out[name] = ch if ch is not None and channels[ch] > 1 else name
    return out


def select(cfg: ConnectorConfig) -> ConnectorConfig:
    """``cfg`` with only this gateway's meters (none when the shard setting is bad)."""
    if cfg.shard_error:
        return replace(cfg, meters=(), by_name={}, push_meters=())
    if cfg.shard is None:
        return cfg
    index, count = cfg.shard
    mine: tuple[MeterConfig, ...] = tuple(
        m for m in cfg.meters if shard_of(cfg.shard_keys.get(m.name, m.name), count) == index)
    # A meter that pushes is received by the gateway of its shard (its push destination).
    pushing = tuple(m for m in cfg.push_meters
                    if shard_of(cfg.shard_keys.get(m.name, m.name), count) == index)
    return replace(cfg, meters=mine, by_name={}, push_meters=pushing)
