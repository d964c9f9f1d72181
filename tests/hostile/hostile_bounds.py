"""Bounds the hostile-meter suite states (shared by its test modules)."""

from __future__ import annotations

# What "ends within its deadline" allows on top of the deadline: the polite close (at most two
# short waits of 1 s) plus scheduling noise on a busy machine.
CLOSE_MARGIN_S = 3.0
# The heap a read against a hostile meter may use at its peak (tracemalloc): the framer buffer,
# one reassembled APDU (64 KiB at most), the frame trace, the decoder's bounded work.
PEAK_BYTES = 4 * 1024 * 1024
