"""Free TCP port ranges for tests that start ``tb-dlms simulate`` on consecutive ports."""

from __future__ import annotations

import socket

__all__ = ["free_port_range"]


def free_port_range(count: int, attempts: int = 50) -> int:
    """A base port with ``count`` free ports after it on 127.0.0.1 (best effort: all probed).

    Probed with SO_REUSEADDR, as the simulator's listeners bind: ports left in TIME_WAIT by
    earlier connections (thousands after a fleet benchmark) are free to them."""
    for _ in range(attempts):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base + count > 65535:
            continue
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError(f"no {count} consecutive free ports found in {attempts} attempts")
