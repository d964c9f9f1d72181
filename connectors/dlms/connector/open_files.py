"""Enough open files for the configured meters, or one clear error saying what to set."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..transport.fd_limits import OpenFileLimit, raise_open_file_limit
from .model import MeterConfig

__all__ = ["ensure_open_files"]


def ensure_open_files(meters: Sequence[MeterConfig], log: Any, label: str,
                      pushing: int = 0) -> OpenFileLimit:
    """One descriptor per line (a TCP host:port or a serial port, shared by the meters on it)
    and one per meter that pushes (its connection to our listener): raise the soft limit where
    allowed; if the hard limit is too low, say so once with the fix (the meters beyond it fail
    to connect with "Too many open files", each named)."""
    lines = len({m.spec.transport.channel_key for m in meters}) + pushing
    limit = raise_open_file_limit(lines)
    if limit.after > limit.before:
        log.info("%s: open-file limit raised from %d to %d for %d meter connections", label,
                 limit.before, limit.after, lines)
    if not limit.enough:
        log.error(
            "%s: %d meter connections need an open-file limit of about %d, and this process may "
            "only have %d (hard limit): meters beyond it will fail to connect. Raise it where "
            "the gateway starts: `ulimit -n %d` (shell), `--ulimit nofile=%d:%d` (docker run), "
            "`ulimits: nofile: %d` (compose), `LimitNOFILE=%d` (systemd unit)", label, lines,
            limit.wanted, limit.after, limit.wanted, limit.wanted, limit.wanted, limit.wanted,
            limit.wanted)
    return limit
