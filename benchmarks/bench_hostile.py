"""Hostile-meter figures (issue 8): how fast and how cheaply a read gives up on a meter that
misbehaves, for each mode of ``tb_dlms.testing.hostile.HostileMeter``.

Three tables:
* the blocking driver (``BlockingSession``, default budgets, ``operation_timeout`` as given): time
  to give up, frames and bytes received by the failed read, tracemalloc peak during it, the error;
* ``tb-dlms read --timeout N`` as a subprocess: wall time (interpreter start included), exit code;
* the engine on its selector loop, one hostile meter beside a good one for a few seconds: failed
  reads and reconnects of the hostile one, the longest span from its association to the BACKOFF
  that ended it (first poll + failed read + close), the good meter's reads.

Prints figures, asserts nothing. Run: python benchmarks/bench_hostile.py [deadline_s]
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import tracemalloc

from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.protocol.errors import DlmsError
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.server import SimulatorServer
from tb_dlms.simulator.values import REGISTERS
from tb_dlms.testing.hostile import MODES, HostileMeter, TimedSink
from tb_dlms.transport import TcpTransport

REFS = [(3, r.obis, 2) for r in REGISTERS]
POINTS = tuple(PollPoint(r.key, ObjectRef(3, r.obis, 2)) for r in REGISTERS)
FAST = RecoverySpec(min_connect_spacing_s=0.0, backoff_initial_s=0.05, backoff_max_s=0.2,
                    breaker_threshold=50, breaker_open_s=1.0)
ENGINE_RUN_S = 5.0


def blocking(mode: str, deadline: float) -> str:
    with HostileMeter(mode) as meter:
        settings = SessionSettings(name=mode, response_timeout=0.5, operation_timeout=deadline)
        session = BlockingSession(TcpTransport("127.0.0.1", meter.port), settings)
        session.connect()
        frames0, bytes0 = session.machine.channel.frames, session.machine.bytes_received
        tracemalloc.start()
        started = time.monotonic()
        try:
            session.read(REFS)
            error = "(no error)"
        except DlmsError as exc:
            error = type(exc).__name__
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        frames = session.machine.channel.frames - frames0
        size = session.machine.bytes_received - bytes0
        session.close()
    return (f"{mode:9} {took:8.2f} {frames:8d} {size:11d} {peak / 1024:9.0f}  {error}")


def cli(mode: str, deadline: float) -> str:
    with HostileMeter(mode) as meter:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "tb_dlms.cli", "read", "--host", "127.0.0.1", "--port",
             str(meter.port), "--timeout", f"{deadline:g}", "1-1:32.7.0"],
            capture_output=True, text=True, check=False, timeout=120, env={**os.environ},
        )
        took = time.monotonic() - started
    return f"{mode:9} {took:8.2f} {done.returncode:5d}  {done.stderr.strip()[:70]}"


def engine(mode: str, deadline: float) -> str:
    good = SimulatorServer(1, 0).run_in_thread()
    with HostileMeter(mode) as meter:
        def spec(name: str, port: int) -> MeterSpec:
            settings = SessionSettings(client=16, name=name, response_timeout=0.3,
                                       connect_timeout=0.5, operation_timeout=deadline)
            return MeterSpec(name, "meter", TcpSpec("127.0.0.1", port, connect_timeout_s=1.0),
                             settings, 0.2, POINTS, FAST, 1.0)

        sink = TimedSink()
        eng = PollingEngine([spec("good", good.ports[0]), spec("bad", meter.port)], sink)
        eng.start()
        time.sleep(ENGINE_RUN_S)
        health = eng.health()
        eng.stop(timeout_s=3.0)
        connections = meter.connections
    good.stop()
    bad, ok = health["bad"], health["good"]
    worst = max(sink.failed_read_spans("bad"), default=0.0)
    return (f"{mode:9} {bad['failed_reads']:6d} {connections:5d} {worst:9.2f}"
            f" {ok['total_reads']:6d} {ok['failed_reads']:6d} {ok['on_time_rate']:8.1f}")


def main() -> None:
    deadline = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    logging.disable(logging.CRITICAL)  # the failures' frame dumps are not the figures
    print(f"deadline {deadline:g} s; default budgets: "
          f"{SessionSettings().max_operation_frames} frames, "
          f"{SessionSettings().max_operation_bytes} bytes per operation\n")
    print("blocking driver (BlockingSession)")
    print("mode      gave up s   frames    bytes rx   peak KiB  error")
    for mode in MODES:
        print(blocking(mode, deadline))
    print(f"\ntb-dlms read --timeout {deadline:g} (subprocess)")
    print("mode        wall s  exit  stderr")
    for mode in MODES:
        print(cli(mode, deadline))
    print(f"\nengine, {ENGINE_RUN_S:g} s, hostile 'bad' beside a good meter (period 0.2 s)")
    print("mode      failed  conn  worst s  good ok  good x  on time %   (worst: assoc->backoff)")
    for mode in MODES:
        print(engine(mode, deadline))


if __name__ == "__main__":
    main()
