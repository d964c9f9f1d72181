"""What a ``LoopMeterDriver`` is doing: one value of ``LoopOp`` at a time (None: nothing).

A plain enum, compared by identity on the hot path; ``str()`` gives the plain word for logs. The
operations that put bytes on the wire hold the meter's ``LoopLine`` while they run (``on_wire``);
the others leave it to the other meters behind the same host:port.
"""

from __future__ import annotations

import enum

__all__ = ["LoopOp"]


class LoopOp(enum.Enum):
    OPEN = "open"  # the TCP connect (or the name lookup before it)
    CONNECT = "connect"  # the association (SNRM/UA, AARQ/AARE)
    READ = "read"  # a poll cycle
    KEEPALIVE = "keepalive"  # a read of the clock that keeps an idle association alive
    RPC = "rpc"  # an RPC function runs on its thread, between its operations
    RPC_OP = "rpc-op"  # one get/set/action of that RPC function
    CLOSE = "close"  # release and disconnect (bounded), then the connection may close
    WAIT = "wait"  # a close waits for another meter of the line to finish its operation

    @property
    def on_wire(self) -> bool:
        return self not in _OFF_WIRE

    def __str__(self) -> str:
        return self.value


_OFF_WIRE = frozenset((LoopOp.RPC, LoopOp.WAIT))
