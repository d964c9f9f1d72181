"""Keeping CPython's garbage collector from stopping the polling loop for a third of a second.

Measured with benchmarks/bench_gateway.py (1,000 meters at 1 s in the real gateway): once started,
the gateway process holds ~400,000 objects the collector tracks (the gateway's, its MQTT client's,
our meters'). Messages live tens of milliseconds (publisher batch, storage, MQTT), long enough to
be promoted to the oldest generation, so a full collection ran every ~4 s; each walked all of
them, 235 ms on average and 335 ms at worst, holding the GIL: every poll due meanwhile started
late (94-95 % on time) and readings queued (read -> ThingsBoard p99 390 ms).

``gc.freeze()`` moves every object alive at that moment to a permanent generation that no later
collection walks. Done once start-up is over (the objects frozen then live as long as the process
anyway), after a full collection so that no garbage is frozen: 100 % on time, p99 170 ms.

The collector is the process's, not ours: hence once per process (a reloaded connector does not
freeze again), ``gcFreezeAfterMs: 0`` in dlms.json to leave it alone, and a log line saying what
was done.
"""

from __future__ import annotations

import gc
import logging
import threading
import time

__all__ = ["freeze_startup_objects"]

_lock = threading.Lock()
_done = False


def freeze_startup_objects(log: logging.Logger) -> int | None:
    """Collect, then freeze what is alive (once per process). Returns how many objects are now
    frozen, or None when it was done already or this Python cannot (no ``gc.freeze``)."""
    global _done
    with _lock:
        if _done or not hasattr(gc, "freeze"):
            return None
        _done = True
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "garbage collector: %d start-up objects frozen out of later collections (took %.0f ms; "
        "gcFreezeAfterMs: 0 in dlms.json turns this off)",
        frozen, 1000 * (time.perf_counter() - started),
    )
    return frozen
