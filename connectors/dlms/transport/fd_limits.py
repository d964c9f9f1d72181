"""Open files for a fleet: the soft limit raised where allowed, meter sockets kept above 1024.

Two limits bite a gateway with thousands of meters (one socket per TCP host:port):

- ``RLIMIT_NOFILE``: a soft limit of 1,024 (many distributions, systemd services) leaves no room
  for 10,000 sockets. An unprivileged process may raise its soft limit up to the hard one.
- ``select()``: paho-mqtt 2.x, the gateway's MQTT client, waits on its socket with ``select()``,
  which takes only descriptors below 1,024 (FD_SETSIZE). Linux gives a new socket the lowest free
  number, so once 1,000 meter sockets hold the low numbers, the gateway's next connection to
  ThingsBoard (a reconnect after an outage) gets a higher one and never connects again: paho's
  loop fails on it silently. Meter sockets are therefore moved above 1,023 when the limit leaves
  room there (``F_DUPFD``), keeping the low numbers for the gateway's own.
"""

from __future__ import annotations

import socket
from typing import NamedTuple

try:  # POSIX only; elsewhere both are no-ops
    import fcntl
    import resource
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    resource = None  # type: ignore[assignment]

__all__ = ["LOW_FDS", "OpenFileLimit", "keep_high", "raise_open_file_limit"]

LOW_FDS = 1024  # FD_SETSIZE: select() takes descriptors below this
_SPARE = 256  # the gateway's own files: logs, storage, MQTT, connectors' other files
_OPEN_MAX = 10240  # macOS's cap on the soft limit (sys/syslimits.h)


class OpenFileLimit(NamedTuple):
    before: int  # soft limit found
    after: int  # soft limit now
    hard: int
    wanted: int  # what ``needed`` sockets call for, low numbers and spare included

    @property
    def enough(self) -> bool:
        return self.after >= self.wanted


def _finite(value: int) -> int:
    return 1 << 62 if resource is not None and value == resource.RLIM_INFINITY else value


def raise_open_file_limit(needed: int) -> OpenFileLimit:
    """Raise the soft ``RLIMIT_NOFILE`` so ``needed`` meter sockets fit above the low numbers
    (up to the hard limit, never lowering it). ``enough`` says whether it now does."""
    wanted = LOW_FDS + _SPARE + max(0, needed)
    if resource is None:
        return OpenFileLimit(wanted, wanted, wanted, wanted)
    soft, hard = (_finite(v) for v in resource.getrlimit(resource.RLIMIT_NOFILE))
    after = soft
    if soft < wanted:
        # macOS refuses a soft limit over OPEN_MAX whatever the hard one says: take that then
        for target in dict.fromkeys((min(hard, wanted), min(hard, wanted, _OPEN_MAX))):
            if target <= soft:
                break
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, resource.getrlimit(
                    resource.RLIMIT_NOFILE)[1]))
                after = target
                break
            except (OSError, ValueError):
                continue
    return OpenFileLimit(soft, after, hard, wanted)


def keep_high(sock: socket.socket) -> socket.socket:
    """``sock``, renumbered to the lowest free descriptor >= 1,024 when there is one (the
    original closed); else ``sock`` as it is. Call it before any other option is set."""
    if fcntl is None:
        return sock
    try:
        fd = fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD_CLOEXEC, LOW_FDS)
    except OSError:  # EINVAL/EMFILE: nothing free up there (soft limit <= 1,024)
        return sock
    high = socket.socket(sock.family, sock.type, sock.proto, fileno=fd)
    sock.close()
    return high
