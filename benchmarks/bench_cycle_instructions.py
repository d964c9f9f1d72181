"""The engine's steady-state cost per polled register, counted instead of timed.

Wall-clock CPU per register (bench_engine.py) moves by +-2 us from run to run on a shared machine,
more than a commit adds. Here N simulated meters (a child process, not counted) are polled on the
engine's selector loop (PollingEngine over TCP, the production path), and only a steady window
after the warm-up is measured, in one of two ways:

- ``callgrind`` (default): the engine runs under valgrind's callgrind with instrumentation off;
  it is switched on (``callgrind_control -i on``) for the window only, so the count is the
  user-space instructions of every engine thread over the window (system calls inside the kernel
  are not counted). Printed: instructions per register and per cycle.
- ``profile``: cProfile in the loop thread for the window; printed: the Python calls per register
  (deterministic: they depend on the code path, not on timing) and the functions with most calls
  per register, to compare two trees function by function.

Works against any tree with the public engine API (PollingEngine, MeterSpec, SessionSettings):
run it with that tree's interpreter, e.g.
  /work/wt/cpu-base/.venv/bin/python benchmarks/bench_cycle_instructions.py --meters 50

Run: python benchmarks/bench_cycle_instructions.py [--mode callgrind|profile] [--meters 50]
     [--seconds 20] [--period 1.0] [--top 40]
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import NullSink
from tb_dlms.engine.loop import SelectorLoop
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.session import SessionSettings
from tb_dlms.simulator.values import REGISTERS

POINTS = tuple(PollPoint(r.key, ObjectRef(3, r.obis, 2)) for r in REGISTERS)
RECOVERY = RecoverySpec(min_connect_spacing_s=0.0, backoff_initial_s=0.5, backoff_max_s=5.0)


def free_port_block(count: int) -> int:
    """A base port whose next ``count`` ports are free now (the simulator binds them)."""
    for base in range(23000, 60000, count + 7):
        try:
            for port in (base, base + count - 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise SystemExit("no free port block")


def start_simulator(count: int, base_port: int) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", str(count),
           "--base-port", str(base_port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not (proc.stdout and proc.stdout.readline()):
        raise SystemExit(f"simulator failed: {proc.stderr.read() if proc.stderr else ''}")
    for port in (base_port, base_port + count - 1):
        socket.create_connection(("127.0.0.1", port), 5.0).close()
    return proc


def specs_for(count: int, base_port: int, period: float) -> list[MeterSpec]:
    return [
        MeterSpec(
            f"meter-{i}", "meter", TcpSpec("127.0.0.1", base_port + i, 5.0),
            SessionSettings(client=16, name=f"meter-{i}", response_timeout=10.0,
                            connect_timeout=10.0),
            period, POINTS, RECOVERY, 3600.0,
        )
        for i in range(count)
    ]


def totals(engine: PollingEngine) -> tuple[int, int, int]:
    h = engine.health()
    return (sum(int(v["registers_read"]) for v in h.values()),
            sum(int(v["total_cycles"]) for v in h.values()),
            sum(int(v["failed_reads"]) for v in h.values()))


def inner(args: argparse.Namespace) -> None:
    """The engine process: warm up, say 'ready', measure between 'go' and 'done'."""
    loops: list[SelectorLoop] = []
    profiler = cProfile.Profile()
    run = SelectorLoop.run

    def keep_loop(self: SelectorLoop) -> None:
        loops.append(self)
        run(self)

    SelectorLoop.run = keep_loop  # type: ignore[method-assign]
    engine = PollingEngine(specs_for(args.meters, args.base_port, args.period), NullSink())
    engine.start()
    time.sleep(args.warmup)
    gc.collect()
    gc.freeze()  # as the connector does once start-up is over
    time.sleep(1.0)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent switched instrumentation on
    if args.mode == "profile":
        loops[0].call_soon_threadsafe(profiler.enable)
    r0, c0, f0 = totals(engine)
    time.sleep(args.seconds)
    r1, c1, f1 = totals(engine)
    if args.mode == "profile":
        done = threading.Event()
        loops[0].call_soon_threadsafe(lambda: (profiler.disable(), done.set()))
        done.wait(10.0)
    print(f"done {r1 - r0} {c1 - c0} {f1 - f0}", flush=True)
    sys.stdin.readline()  # the parent switched instrumentation off
    engine.stop(timeout_s=10.0)
    if args.mode == "profile":
        profiler.dump_stats(args.out)


def callgrind_total(path: str) -> int:
    total = 0
    with open(path) as f:
        for line in f:
            if line.startswith("totals:"):
                total = int(line.split()[1])
    if not total:
        raise SystemExit(f"no totals in {path}")
    return total


def outer(args: argparse.Namespace) -> None:
    base = free_port_block(args.meters)
    sim = start_simulator(args.meters, base)
    out = args.out or os.path.join(tempfile.gettempdir(), f"cycle-{os.getpid()}.out")
    cmd = [sys.executable, os.path.abspath(__file__), "--inner", "--base-port", str(base),
           "--meters", str(args.meters), "--seconds", str(args.seconds), "--period",
           str(args.period), "--warmup", str(args.warmup), "--mode", args.mode, "--out", out]
    if args.mode == "callgrind":
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", *cmd]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    try:
        if proc.stdout.readline().strip() != "ready":
            raise SystemExit("engine process failed")

        def control(switch: str) -> None:
            if args.mode == "callgrind":
                subprocess.run(["callgrind_control", "-i", switch, str(proc.pid)], check=True,
                               stdout=subprocess.DEVNULL)

        control("on")
        proc.stdin.write("go\n")
        proc.stdin.flush()
        _, regs, cycles, failed = proc.stdout.readline().split()
        control("off")
        proc.stdin.write("end\n")
        proc.stdin.flush()
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.terminate()
        sim.wait(10)
    registers, n_cycles = int(regs), int(cycles)
    print(f"tree: {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))}")
    print(f"meters {args.meters}, period {args.period} s, window {args.seconds} s: "
          f"{n_cycles} cycles, {registers} registers, {failed} failed reads")
    if args.mode == "callgrind":
        ir = callgrind_total(out)
        print(f"instructions per register: {ir / registers:,.0f}")
        print(f"instructions per cycle:    {ir / n_cycles:,.0f}")
        print(f"callgrind file: {out}")
        return
    stats = pstats.Stats(out)
    calls = sum(v[1] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"Python calls per register: {calls / registers:.2f} (per cycle {calls / n_cycles:.1f})")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][1])  # type: ignore[attr-defined]
    for (file, line, name), (_cc, nc, tt, _ct, _callers) in rows[:args.top]:
        where = re.sub(r".*/(tb_dlms|dlms)/", "", file)
        print(f"{nc / n_cycles:8.2f}/cycle {1e6 * tt / n_cycles:7.1f} us self  {where}:{line} {name}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("callgrind", "profile"), default="callgrind")
    p.add_argument("--meters", type=int, default=50)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--period", type=float, default=1.0)
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--top", type=int, default=40)
    p.add_argument("--out", default="")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base-port", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        inner(args)
    else:
        outer(args)


if __name__ == "__main__":
    main()
