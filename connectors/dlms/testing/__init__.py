"""What only tests and benchmarks need, beside the demo's pieces in :mod:`tb_dlms.sandbox`
(broker, ThingsBoard stand-in, real gateway process, the simulator's ``dlms.json``), which the
tests import from there.

- :mod:`.pty`: socat pseudo terminals (serial lines for the transport and engine tests);
- :mod:`.hostile`: a meter that misbehaves on purpose (tests/hostile, benchmarks/bench_hostile).

May import any layer; no product module may import it (tests/test_layers.py).
"""
