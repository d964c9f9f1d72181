"""Polling engine: the pure policies first, the drivers of channels on top of them.

The policy modules (the first four below) import no ``time``, ``threading`` or I/O module. Every
decision takes ``now`` (monotonic seconds) or a ``clock`` callable, and randomness comes from an
injected ``random.Random``, so each policy is tested with a fake clock and never sleeps.

| module | job |
|---|---|
| ``schedule.py`` | ``PollSchedule`` (drift-free deadlines, skipped slots), ``stagger``, ``BusSchedule`` |
| ``recovery.py`` | ``Backoff``, ``ConnectGate``, ``CircuitBreaker``, ``Watchdog``, ``ReconnectPolicy`` |
| ``health.py`` | ``MeterHealth``: per-meter statistics published as ThingsBoard telemetry |
| ``poll_state.py`` | ``MeterPollState``: one meter's polling state (policies, schedule, session, RPCs) |
| ``policy.py`` | ``MeterPolicy``: what a driver decides and reports about its meters |
| ``channel.py`` | ``ChannelDriver``: the one interface between ``PollingEngine`` and a channel |
| ``worker.py`` | ``ChannelWorker``: a thread driving blocking sessions (serial lines) |
| ``loop_channel.py`` | ``LoopChannel``: one TCP host:port on the selector loop (``loop.py``) |
| ``loop_driver.py`` | ``LoopMeterDriver``: one meter on the loop; RPCs in ``loop_rpc.py`` |
| ``engine.py`` | ``PollingEngine``: groups meters into channels, starts, routes, stops them |
"""
