"""The client session layer: drives the sans-IO protocol core over a transport for one meter.

``BlockingSession`` (connect, read, get/set/action, keep-alive, close), its ``SessionSettings``, the
``Reading`` values it returns and the ``FrameTrace`` it dumps when a meter misbehaves.
"""

from __future__ import annotations

from .blocking import CLOCK_REF, BlockingSession, SessionState
from .channel import ApduChannel, HdlcChannel, WrapperChannel, make_channel
from .machine import SessionMachine
from .reading import Reading, Ref, ScalerCache, render_value
from .settings import SessionSettings
from .trace import FrameTrace, TraceEntry

__all__ = [
    "CLOCK_REF",
    "ApduChannel",
    "FrameTrace",
    "HdlcChannel",
    "BlockingSession",
    "Reading",
    "Ref",
    "ScalerCache",
    "SessionMachine",
    "SessionSettings",
    "SessionState",
    "TraceEntry",
    "WrapperChannel",
    "make_channel",
    "render_value",
]
