"""Polling engine benchmark: N simulated meters on loopback, polled by PollingEngine.

The simulator runs in a child process (``python -m tb_dlms.cli simulate``), so its CPU is not
counted as ours. Every meter has the 9 registers of the original system (3 V, 3 A, Hz, W, Wh),
read by the real SessionMachine (GET-with-list, scaler cache) on the engine's selector loop
(one thread for every TCP meter).

Figures printed (nothing asserted):
- round trips of the association + first cycle, and per steady-state cycle;
- cycle latency p50/p99 (session.read of one cycle), without and with meter latency
  (target: p99 within 1.1 x one round trip);
- engine CPU per polled register = process CPU time (user and sys apart) / registers read, over a
  steady window (target < 8 us), the share of cycles started on time (target >= 99 %) and RSS;
  start-up objects are frozen out of the garbage collector after the warm-up, as the connector
  does in the gateway (``--no-freeze``: not);
- the same meters read by our BlockingSession alone and by the gurux-dlms client in its best mode
  (GET-with-list of the values, scalers read once), each in one tight loop: CPU per register.

Run: python benchmarks/bench_engine.py [--count 1000] [--seconds 20] [--period 1.0]
     [--latency-ms 20] [--latency-count 100] [--skip-gurux]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from tb_dlms.engine.engine import PollingEngine
from tb_dlms.engine.events import NullSink
from tb_dlms.engine.policy import MeterPolicy
from tb_dlms.engine.spec import MeterSpec, ObjectRef, PollPoint, RecoverySpec, TcpSpec
from tb_dlms.session import BlockingSession, SessionSettings
from tb_dlms.simulator.values import REGISTERS

POINTS = tuple(PollPoint(r.key, ObjectRef(3, r.obis, 2)) for r in REGISTERS)
RECOVERY = RecoverySpec(min_connect_spacing_s=0.0, backoff_initial_s=0.5, backoff_max_s=5.0)


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Simulator:
    """``tb-dlms simulate`` in a child process; ready once its last port accepts."""

    def __init__(self, count: int, base_port: int, latency_ms: int = 0) -> None:
        self.count, self.base_port = count, base_port
        cmd = [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", str(count),
               "--base-port", str(base_port), "--latency-ms", str(latency_ms)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise SystemExit(f"simulator failed to start: {err}")
        for port in (base_port, base_port + count - 1):
            socket.create_connection(("127.0.0.1", port), 5.0).close()

    def stop(self) -> str:
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.strip().splitlines()[-1] if out.strip() else ""


class Stats:
    """Per-cycle figures collected by TimedSession (list appends are atomic under the GIL)."""

    def __init__(self) -> None:
        self.cycles: list[tuple[float, float]] = []  # (end perf_counter, duration)
        self.first_trips: list[int] = []  # round trips of association + first cycle
        self.lateness: list[tuple[float, float]] = []  # (end perf_counter, start - deadline)


def instrument(stats: Stats) -> Any:
    """Time every cycle the loop books (one append per cycle; ``started`` is on the engine's
    monotonic clock, as perf_counter is on Linux). Returns the method it replaced."""
    original = MeterPolicy.cycle_done

    def timed(self: Any, m: Any, results: Any, started: float, end: float, *rest: Any) -> None:
        stats.cycles.append((time.perf_counter(), end - started))
        stats.lateness.append((time.perf_counter(), rest[-1].lateness))  # the CycleBooking
        if m.health.total_reads == 0:
            stats.first_trips.append(m.session_obj.round_trips)
        original(self, m, results, started, end, *rest)

    MeterPolicy.cycle_done = timed  # type: ignore[method-assign]
    return original


def specs_for(count: int, base_port: int, period: float, timeout: float) -> list[MeterSpec]:
    return [
        MeterSpec(
            f"meter-{i}", "meter", TcpSpec("127.0.0.1", base_port + i, 5.0),
            SessionSettings(client=16, name=f"meter-{i}", response_timeout=timeout,
                            connect_timeout=5.0),
            period, POINTS, RECOVERY, 3600.0,
        )
        for i in range(count)
    ]


def run_engine(count: int, base_port: int, period: float, seconds: float, latency_ms: int,
               label: str, freeze: bool = True) -> dict[str, Any]:
    sim = Simulator(count, base_port, latency_ms)
    stats = Stats()
    specs = specs_for(count, base_port, period, max(3.0, 10 * latency_ms / 1000))
    original = instrument(stats)
    engine = PollingEngine(specs, NullSink())
    rss0 = rss_mb()
    threads0 = threading.active_count()
    engine.start()
    warmup = min(seconds / 3, 2 * period + 2.0)
    time.sleep(warmup)
    if freeze:  # what the connector does once start-up is over (connector/gc_tuning.py)
        gc.collect()  # one pause, as in the gateway: the window starts once its backlog is gone
        gc.freeze()
        time.sleep(min(2.0, warmup))
    h0 = engine.health()
    c0, t0 = os.times(), time.perf_counter()
    time.sleep(seconds - warmup)
    c1, t1 = os.times(), time.perf_counter()
    user, system = c1.user - c0.user, c1.system - c0.system
    h1 = engine.health()
    rss1, threads1 = rss_mb(), threading.active_count()
    MeterPolicy.cycle_done = original  # type: ignore[method-assign]
    trips = [ch.meters[n].session_obj.round_trips for ch in engine.channels for n in ch.meters
             if ch.meters[n].session_obj is not None]
    stopped0 = time.perf_counter()
    clean = engine.stop(timeout_s=10.0)
    gc.unfreeze()
    stop_s = time.perf_counter() - stopped0
    sim_line = sim.stop()

    def total(h: dict[str, dict[str, Any]], key: str) -> int:
        return sum(int(v[key]) for v in h.values())

    regs = total(h1, "registers_read") - total(h0, "registers_read")
    cycles = total(h1, "total_cycles") - total(h0, "total_cycles")
    on_time = total(h1, "cycles_on_time") - total(h0, "cycles_on_time")
    missed = total(h1, "cycles_missed") - total(h0, "cycles_missed")
    all_cycles = total(h1, "successful_reads")
    first = sum(stats.first_trips)
    steady = [d for end, d in stats.cycles if t0 <= end <= t1]
    late = [x for end, x in stats.lateness if t0 <= end <= t1]
    steady_trips = (sum(trips) - first) / max(1, all_cycles - len(stats.first_trips))
    return {
        "label": label, "count": count, "period": period, "latency_ms": latency_ms,
        "window_s": t1 - t0, "cycles": cycles, "registers": regs,
        "cpu_us_per_register": 1e6 * (user + system) / regs if regs else float("nan"),
        "user_us_per_register": 1e6 * user / regs if regs else float("nan"),
        "sys_us_per_register": 1e6 * system / regs if regs else float("nan"),
        "cpu_share": (user + system) / (t1 - t0),
        "on_time": on_time / cycles if cycles else float("nan"), "missed": missed,
        "p50_ms": 1000 * pct(steady, 0.50), "p99_ms": 1000 * pct(steady, 0.99),
        "max_ms": 1000 * max(steady) if steady else float("nan"),
        "late_p50_ms": 1000 * pct(late, 0.50),
        "late_p99_ms": 1000 * pct(late, 0.99),
        "first_trips": first / max(1, len(stats.first_trips)), "steady_trips": steady_trips,
        "associated": sum(1 for v in h1.values() if v["connection_state"] == "associated"),
        "rss_before_mb": rss0, "rss_mb": rss1, "threads": threads1 - threads0,
        "stop_s": stop_s, "clean_stop": clean, "simulator": sim_line,
        "failed_reads": total(h1, "failed_reads"),
    }


def session_loop(base_port: int, meters: int, seconds: float) -> dict[str, Any]:
    """Our BlockingSession alone, one thread, GET-with-list cycles over ``meters`` meters."""
    from tb_dlms.transport import TcpTransport

    sessions = []
    for i in range(meters):
        s = BlockingSession(TcpTransport("127.0.0.1", base_port + i),
                         SessionSettings(client=16, name=f"m{i}"))
        s.connect()
        sessions.append(s)
    refs = tuple((3, r.obis, 2) for r in REGISTERS)  # one tuple every cycle, as the engine passes
    for s in sessions:
        s.read(refs)  # scalers cached
    regs = 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for s in sessions:
            regs += len(s.read(refs))
    cpu = time.process_time() - cpu0
    for s in sessions:
        s.close()
    return {"registers": regs, "cpu_us_per_register": 1e6 * cpu / regs}


def gurux_loop(base_port: int, meters: int, seconds: float) -> dict[str, Any] | None:
    """gurux-dlms's GXDLMSClient, best mode: scalers once, then one readList per cycle."""
    try:
        from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
        from gurux_dlms.enums import Authentication, InterfaceType
        from gurux_dlms.objects import GXDLMSRegister
    except ImportError:
        return None

    class Link:
        def __init__(self, port: int) -> None:
            self.client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
            self.sock = socket.create_connection(("127.0.0.1", port), 5.0)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock.settimeout(5.0)

        def exchange(self, frames: Any, reply: Any) -> None:
            for frame in frames if isinstance(frames, list) else [frames]:
                reply.clear()
                self._packet(frame, reply)
                while reply.isMoreData():
                    self._packet(self.client.receiverReady(reply), reply)

        def _packet(self, data: Any, reply: Any) -> None:
            self.sock.sendall(bytes(data))
            buffer, notify = GXByteBuffer(), GXReplyData()
            while not self.client.getData(buffer, reply, notify):
                buffer.set(self.sock.recv(65536))

    links, regsets = [], []
    for i in range(meters):
        link = Link(base_port + i)
        reply = GXReplyData()
        link.exchange(link.client.snrmRequest(), reply)
        link.client.parseUAResponse(reply.data)
        link.exchange(link.client.aarqRequest(), reply)
        link.client.parseAareResponse(reply.data)
        regs = [GXDLMSRegister(r.obis.dotted()) for r in REGISTERS]
        scalers: list[Any] = []
        for message in link.client.readList([(r, 3) for r in regs]):
            link.exchange(message, reply)
            scalers.extend(reply.value)
        for r, v in zip(regs, scalers):
            link.client.updateValue(r, 3, v)
        links.append(link)
        regsets.append(regs)
    count = 0
    reply = GXReplyData()
    cpu0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for link, regs in zip(links, regsets):
            raw: list[Any] = []
            for message in link.client.readList([(r, 2) for r in regs]):  # one message here
                link.exchange(message, reply)
                raw.extend(reply.value)
            values = [v * r.scaler for r, v in zip(regs, raw)]  # scaled, as ours are
            count += len(values)
    cpu = time.process_time() - cpu0
    for link in links:
        link.sock.close()
    return {"registers": count, "cpu_us_per_register": 1e6 * cpu / count}


def show(r: dict[str, Any]) -> None:
    print(f"\n== {r['label']}: {r['count']} meters x 9 registers, period {r['period']} s, "
          f"meter latency {r['latency_ms']} ms, steady window {r['window_s']:.1f} s")
    print(f"  associated meters              {r['associated']}/{r['count']}  "
          f"(failed reads in the whole run: {r['failed_reads']})")
    print(f"  round trips, association+1st   {r['first_trips']:.2f}")
    print(f"  round trips per steady cycle   {r['steady_trips']:.3f}")
    print(f"  cycle latency p50 / p99 / max  {r['p50_ms']:.2f} / {r['p99_ms']:.2f} / "
          f"{r['max_ms']:.2f} ms")
    if r["latency_ms"]:
        print(f"  p99 / p50 (p50 = one round trip) {r['p99_ms'] / r['p50_ms']:.3f}; "
              f"p99 / meter latency {r['p99_ms'] / r['latency_ms']:.3f}")
    print(f"  cycle start after deadline     p50 {r['late_p50_ms']:.2f} / p99 "
          f"{r['late_p99_ms']:.2f} ms (timer grid + loop backlog)")
    print(f"  cycles in window (on time)     {r['cycles']} ({100 * r['on_time']:.2f} %), "
          f"slots missed {r['missed']}")
    print(f"  engine CPU per register        {r['cpu_us_per_register']:.2f} us "
          f"({100 * r['cpu_share']:.1f} % of one core): user {r['user_us_per_register']:.2f}"
          f" + sys {r['sys_us_per_register']:.2f} us")
    print(f"  RSS before / running           {r['rss_before_mb']:.1f} / {r['rss_mb']:.1f} MB, "
          f"{r['threads']} worker threads")
    print(f"  stop                           {r['stop_s']:.2f} s, clean={r['clean_stop']}")
    if r["simulator"]:
        print(f"  simulator                      {r['simulator']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--period", type=float, default=1.0)
    p.add_argument("--latency-ms", type=int, default=20)
    p.add_argument("--latency-count", type=int, default=100)
    p.add_argument("--loop-meters", type=int, default=10)
    p.add_argument("--loop-seconds", type=float, default=3.0)
    p.add_argument("--base-port", type=int, default=0, help="default: a random free-ish range")
    p.add_argument("--skip-gurux", action="store_true")
    p.add_argument("--no-freeze", action="store_true", help="leave the garbage collector alone")
    args = p.parse_args()
    # Below the usual ephemeral range (32768+), where outgoing connections take their ports.
    base = args.base_port or random.randrange(10000, 32768 - 6000 - 2 * args.count, 100)
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
          f"simulator in a child process")

    freeze = not args.no_freeze
    show(run_engine(args.count, base, args.period, args.seconds, 0, "engine", freeze))
    if args.latency_ms and args.latency_count > 0:
        n = min(args.count, args.latency_count)
        show(run_engine(n, base + args.count + 10, args.period, min(args.seconds, 12.0),
                        args.latency_ms, "engine, slow meters", freeze))

    n = args.loop_meters
    if n < 1:  # --loop-meters 0: the engine figures only
        return
    sim = Simulator(n, base + 5000)
    try:
        ours = session_loop(base + 5000, n, args.loop_seconds)
        theirs = None if args.skip_gurux else gurux_loop(base + 5000, n, args.loop_seconds)
    finally:
        sim.stop()
    print(f"\n== tight loop, {n} meters, GET-with-list of 9 registers, one thread")
    print(f"  tb_dlms BlockingSession           {ours['cpu_us_per_register']:.2f} us CPU/register "
          f"({ours['registers']} registers)")
    if theirs is not None:
        print(f"  gurux-dlms GXDLMSClient        {theirs['cpu_us_per_register']:.2f} us "
              f"CPU/register ({theirs['registers']} registers)")
        print(f"  ratio gurux / ours             "
              f"{theirs['cpu_us_per_register'] / ours['cpu_us_per_register']:.1f} x")


if __name__ == "__main__":
    # A SIGTERM unwinds like Ctrl-C, so the simulator child is stopped, not left running.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    main()
