"""``ChannelDriver``: the one interface between ``PollingEngine`` and what drives a channel.

A channel is one connection (a TCP host:port, a wrapper connection, a serial line) shared by one
or more meters. Two kinds drive one: ``ChannelWorker`` (a thread with blocking sessions: serial
lines, injected factories) and ``LoopChannel`` (the meters of one host:port on the selector
loop). The engine routes requests, stops and observation through this interface alone.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from .poll_state import MeterPollState

__all__ = ["ChannelDriver"]


class ChannelDriver(Protocol):
    @property
    def key(self) -> str:
        """The channel's key (``TransportSpec.channel_key``)."""

    @property
    def meters(self) -> dict[str, MeterPollState]:
        """The polling state of each meter on the channel, by name."""

    def start(self) -> None:
        """Begin polling (the selector loop, if any, runs already)."""

    def request_stop(self) -> None:
        """Begin stopping: queued requests fail, sessions close politely."""

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the stop to finish; True when nothing is left running."""

    def abort_line(self) -> None:
        """Stop time is up: close the line under whatever still runs on it."""

    def submit(self, name: str, fn: Callable[[Any], Any], timeout_s: float) -> Future[Any]:
        """Queue ``fn(session)`` for meter ``name``, run between its cycles."""

    def reconnect(self, name: str) -> None:
        """Close meter ``name``'s session and associate again."""
