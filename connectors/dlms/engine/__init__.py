"""Polling engine: the pure policies first, the threads on top of them later.

The policy modules below import no ``time``, ``threading`` or I/O module. Every decision takes
``now`` (monotonic seconds) or a ``clock`` callable, and randomness comes from an injected
``random.Random``, so each policy is tested with a fake clock and never sleeps.

| module | job |
|---|---|
| ``schedule.py`` | ``PollSchedule`` (drift-free deadlines, skipped slots), ``stagger``, ``BusSchedule`` |
| ``recovery.py`` | ``Backoff``, ``ConnectGate``, ``CircuitBreaker``, ``Watchdog``, ``ReconnectPolicy`` |
| ``health.py`` | ``MeterHealth``: per-meter statistics published as ThingsBoard telemetry |
"""
