"""Load-profile backfill benchmark: N simulated meters, each with ``--days`` of its 15-minute load
profile to backfill through the REAL thingsboard-gateway while the same meters are polled live.

The pieces are bench_gateway.py's: ``tb-dlms simulate`` in its own process (every simulated meter
serves the load profile 1-0:99.1.0.255, 2 columns + clock), a private mosquitto, a ThingsBoard
stand-in that decodes the telemetry, and ``python -m thingsboard_gateway.tb_gateway`` with our
connector installed by ``tb-dlms install``. dlms.json: the nine registers per meter at
``--period-ms`` (10 s) and ``profiles: [{"obis": "1-0:99.1.0.255", "backfillDays": days,
"maxRowsPerRead": 96}]``; profileRowsPerSecond / profileReadsInFlight are the product defaults
unless given.

Figures printed, nothing asserted:

- backfill: time until every expected row (N x 96 x days; distinct (device, ts) of the profile
  key) reached the stand-in, from the gateway's start and from the first row; the row rate;
- live cycles on time during the backfill (from its first row to its last): per meter, a reading
  is on time when its read time follows the previous one by the period within the engine's
  tolerance (10 % of the period), and the connector's own health counters as bench_gateway.py
  reads them (cycles_on_time / total_cycles, over whole health periods); target >= 99 %;
- gateway CPU (% of one core) and its busiest threads over the backfill, RSS peak; target < 300 MB;
- baseline: the same gateway alone (a stub connector, no DLMS, no simulator) pushing the same
  rows, 96 per device per send_to_storage, as fast as its queue and storage drain (it waits while
  the gateway holds more than a few hundred records): what the gateway's storage and MQTT take.
  Then the ratio backfill rate / baseline rate.

Not a test and not run by CI. Run:
  python benchmarks/bench_profiles.py [--meters 1000] [--days 7] [--period-ms 10000]
      [--rows-per-second R] [--reads-in-flight K] [--max-rows-per-read 96] [--no-baseline]
  python benchmarks/bench_profiles.py --quick      # 100 meters, 1 day: a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from bench_gateway import (
    STUB_IMPORTS,
    STUB_METHODS,
    Simulator,
    cpu_seconds,
    pct,
    status,
    thread_cpu,
    thread_names,
)
from tb_dlms.commands.install import connector_entry
from tb_dlms.sandbox import Broker, GatewayProcess, ThingsBoardStandIn
from tb_dlms.sandbox.meters import simulator_dlms_config

PROFILE_OBIS = "1-0:99.1.0.255"
ROW_KEY = "1-1:32.7.0.255"  # the profile's voltage column (default key: its OBIS code)
ROW_MARK = b'"1-1:32.7.0.255"'
LIVE_KEY = "active_energy"
HEALTH_KEY = "cycles_on_time"
ROWS_PER_DAY = 96  # 15-minute capture period


class ProfileStandIn(ThingsBoardStandIn):
    """The stand-in, keeping only what the figures need: profile row times per device (a set:
    a row the gateway sends twice counts once), live read times, health snapshots."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.lock = threading.Lock()
        self.rows: dict[str, set[int]] = {}
        self.row_arrivals: list[tuple[float, int]] = []  # (arrival s, distinct rows so far)
        self.distinct = 0
        self.received = 0  # rows, repeats included
        self.live: dict[str, list[int]] = {}
        self.health: dict[str, list[tuple[int, int, int]]] = {}  # device -> (ts, total, on)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic != "v1/gateway/telemetry":
            super()._on_message(client, userdata, msg)
            return
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        arrived = time.time()
        with self.lock:
            for device, entries in payload.items():
                for entry in entries if isinstance(entries, list) else [entries]:
                    values = entry.get("values", {}) if isinstance(entry, dict) else {}
                    ts = int(entry.get("ts", arrived * 1000)) if isinstance(entry, dict) else 0
                    if ROW_KEY in values:
                        seen = self.rows.setdefault(device, set())
                        self.received += 1
                        if ts not in seen:
                            seen.add(ts)
                            self.distinct += 1
                    elif LIVE_KEY in values:
                        self.live.setdefault(device, []).append(ts)
                    elif HEALTH_KEY in values:
                        self.health.setdefault(device, []).append(
                            (ts, int(values["total_cycles"]), int(values[HEALTH_KEY])))
            if ROW_MARK in msg.payload:
                self.row_arrivals.append((arrived, self.distinct))

    def complete(self, meters: int, per_meter: int) -> int:
        """Meters with every expected row."""
        with self.lock:
            return sum(1 for s in self.rows.values() if len(s) >= per_meter) if meters else 0


def live_on_time(live: dict[str, list[int]], start_ms: float, end_ms: float,
                 period_ms: int) -> tuple[float, int, int]:
    """(share %, intervals, on time): readings in the window whose read time follows the
    previous reading of the meter by the period within 10 % (the engine's tolerance)."""
    total = on = 0
    tolerance = 0.1 * period_ms
    for times in live.values():
        ordered = sorted(set(times))
        for before, t in zip(ordered, ordered[1:]):
            if start_ms <= t <= end_ms:
                total += 1
                on += abs(t - before - period_ms) <= tolerance
    return (100.0 * on / total if total else float("nan")), total, on


def health_on_time(health: dict[str, list[tuple[int, int, int]]], start_ms: float,
                   end_ms: float) -> tuple[float, int, int]:
    """bench_gateway.py's figure: per meter, the last snapshot in the window minus the last one
    before it (the first one in it when the backfill began before the first health message)."""
    total = on = 0
    for snaps in health.values():
        before = [s for s in snaps if s[0] < start_ms]
        inside = [s for s in snaps if start_ms <= s[0] <= end_ms]
        base = before[-1] if before else inside[0] if inside else None
        if base is not None and inside and inside[-1] is not base:
            total += inside[-1][1] - base[1]
            on += inside[-1][2] - base[2]
    return (100.0 * on / total if total else float("nan")), total, on


# --- the gateway alone: a stub connector pushing the same rows -----------------------------------

BASELINE_CONNECTOR = STUB_IMPORTS + """


class BenchRowsConnector(Connector):
    def __init__(self, gateway, config, connector_type):
        super().__init__()
        self.statistics = {"MessagesReceived": 0, "MessagesSent": 0}
        self._gateway, self._config, self._type = gateway, config, connector_type
        self.name = config.get("name", "Rows")
        strategy = ReportStrategyConfig({"type": "ON_RECEIVED"})
        self._keys = [DatapointKey(k, strategy) for k in config["keys"]]
        self._stop = threading.Event()
        self._stopped = False

    def open(self):
        threading.Thread(target=self._run, daemon=True, name="rows").start()

    def _backlog(self):
        storage = getattr(self._gateway, "_event_storage", None)
        queued = self._gateway.get_converted_data_queue().qsize()
        return queued + (storage.len() if storage is not None else 0)

    def _run(self):
        self._stop.wait(self._config["delayS"])
        count, rows, chunk = self._config["count"], self._config["rows"], self._config["chunk"]
        first = (int(time.time()) // 900 - rows) * 900_000
        for start in range(0, rows, chunk):
            for i in range(count):
                while self._backlog() > self._config["maxBacklog"]:
                    if self._stop.wait(0.005):
                        return
                data = ConvertedData("Meter-%d" % (i + 1), "DLMS Meter")
                for r in range(start, min(rows, start + chunk)):
                    data.add_to_telemetry(TelemetryEntry(
                        {self._keys[0]: 1234.5 + r, self._keys[1]: 230.1 + i % 7},
                        ts=first + r * 900_000))
                self._gateway.send_to_storage(self.name, self._config.get("id"), data)
""" + STUB_METHODS


def baseline_gateway(broker: Any, args: argparse.Namespace) -> GatewayProcess:
    entry = {"type": "benchrows", "name": "Rows", "class": "BenchRowsConnector",
             "configuration": "rows.json"}  # fmt: skip
    rows_cfg = {"count": args.meters, "rows": args.days * ROWS_PER_DAY, "chunk": args.max_rows_per_read,
                "keys": ["1-1:1.8.0.255", ROW_KEY], "maxBacklog": 300, "delayS": 5}  # fmt: skip
    gw = GatewayProcess(broker.host, broker.port, connectors=[entry],
                        connector_files={"rows.json": rows_cfg}, keep=args.keep)  # fmt: skip
    folder = gw.extensions_dir / "benchrows"
    folder.mkdir()
    (folder / "bench_rows_connector.py").write_text(BASELINE_CONNECTOR, encoding="utf-8")
    return gw


# --- the runs ------------------------------------------------------------------------------------


def dlms_json(ports: list[int], args: argparse.Namespace) -> dict[str, Any]:
    config = simulator_dlms_config(ports, period_ms=args.period_ms, health_period_ms=args.health_period_ms)
    config["logLevel"] = "INFO"
    if args.rows_per_second:
        config["profileRowsPerSecond"] = args.rows_per_second
    if args.reads_in_flight:
        config["profileReadsInFlight"] = args.reads_in_flight
    for meter in config["meters"]:
        meter["connectAttemptSpacingMs"] = 0  # the simulator takes any number of connects
        meter["clockCheckPeriod"] = 3_600_000
        meter["profiles"] = [{"obis": PROFILE_OBIS, "backfillDays": args.days,
                              "maxRowsPerRead": args.max_rows_per_read}]  # fmt: skip
    return config


class Sampler:
    """Gateway CPU, per-thread CPU and RSS every second (the window is known only afterwards)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float, dict[tuple[int, str], float], int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                rss = int(status(self.pid)["VmRSS"].split()[0])
                self.samples.append((time.time(), cpu_seconds(self.pid), thread_cpu(self.pid), rss))
            except (OSError, KeyError):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def between(self, t0: float, t1: float) -> tuple[float, list[tuple[float, str]], float, int]:
        """(CPU % of one core, busiest threads (%, name), seconds, peak RSS kB) from t0 to t1."""
        inside = [s for s in self.samples if t0 - 1 <= s[0] <= t1 + 1] or self.samples[-2:]
        a, b = inside[0], inside[-1]
        span = max(b[0] - a[0], 1e-9)
        names = thread_names(self.pid)
        threads = sorted(((100 * (t - a[2].get(k, 0.0)) / span, names.get(k[0], f"{k[1]} {k[0]}"))
                          for k, t in b[2].items()), reverse=True)  # fmt: skip
        return 100 * (b[1] - a[1]) / span, threads, span, max(s[3] for s in inside)


def wait_rows(standin: ProfileStandIn, gw: GatewayProcess, args: argparse.Namespace, what: str,
              t_start: float) -> tuple[float | None, float | None]:
    """Wait until every meter has its rows (or the timeout); print progress; return the wall
    times of the first and the last row's arrival (None: none came)."""
    per_meter = args.days * ROWS_PER_DAY
    expected = args.meters * per_meter
    deadline = t_start + args.timeout
    last_print = 0.0
    while time.monotonic() < deadline and gw.running:
        time.sleep(1.0)
        done = standin.complete(args.meters, per_meter)
        if time.monotonic() - last_print >= 10 or done >= args.meters:
            last_print = time.monotonic()
            with standin.lock:
                distinct = standin.distinct
            print(f"{what:9} {time.monotonic() - t_start:6.1f} s: {distinct}/{expected} rows, "
                  f"{done}/{args.meters} meters complete, gateway RSS {status(gw.pid or 0)['VmRSS']}")
        if done >= args.meters:
            break
    with standin.lock:
        arrivals = list(standin.row_arrivals)
    if not arrivals:
        return None, None
    last_needed = next((t for t, n in arrivals if n >= expected), arrivals[-1][0])
    return arrivals[0][0], last_needed


def run_backfill(args: argparse.Namespace, results: dict[str, str]) -> float | None:
    per_meter = args.days * ROWS_PER_DAY
    expected = args.meters * per_meter
    sim = Simulator(args.meters)
    broker = Broker().start()
    standin = ProfileStandIn(broker.host, broker.port).start()
    gw = GatewayProcess(broker.host, broker.port, connectors=[connector_entry("dlms")],
                        connector_files={"dlms.json": dlms_json(sim.ports, args)}, keep=args.keep)
    gw.install_connector("dlms")
    sampler = None
    rate = None
    try:
        t_start, wall_start = time.monotonic(), time.time()
        gw.start()
        pid = gw.pid
        assert pid is not None
        sampler = Sampler(pid)
        gw.wait_for_output("Gateway started", timeout=120)
        print(f"started   gateway pid {pid} in {time.monotonic() - t_start:.1f} s, simulator "
              f"ports {sim.ports[0]}..{sim.ports[-1]}")
        first, last = wait_rows(standin, gw, args, "backfill", t_start)
        time.sleep(2.0)  # health and readings of the window's end
        sampler.stop()
        load = os.getloadavg()[0]
        stats = standin.gateway_rpc("dlms_statistics", timeout=30) or {}
        with standin.lock:
            distinct, received = standin.distinct, standin.received
            complete = sum(1 for s in standin.rows.values() if len(s) >= per_meter)
            live = {d: list(t) for d, t in standin.live.items()}
            health = {d: list(h) for d, h in standin.health.items()}
        print()
        print(f"== backfill: {args.meters} meters x {per_meter} rows ({args.days} days), live "
              f"polling every {args.period_ms / 1000:g} s; machine load average {load:.2f}")
        if first is None or last is None:
            print("rows      none arrived")
            return None
        span = max(last - first, 1e-9)
        rate = distinct / span if distinct < expected else expected / span
        print(f"rows      {distinct} of {expected} distinct ({received - distinct} repeats), "
              f"{complete}/{args.meters} meters complete")
        print(f"time      every row delivered {last - wall_start:.1f} s after the gateway's start "
              f"({first - wall_start:.1f} s to the first row, then {span:.1f} s)"
              if distinct >= expected else f"time      NOT complete after {args.timeout:.0f} s")
        print(f"rate      {rate:.0f} rows/s from the first row to the last")
        share, intervals, on = live_on_time(live, first * 1000, last * 1000, args.period_ms)
        print(f"on time   live readings {share:.2f} % ({on} of {intervals} read-to-read intervals "
              f"within {args.period_ms / 1000:g} s +- 10 %)  target >= 99 %")
        late = sorted((t - b - args.period_ms) / 1000 for times in live.values()
                      for b, t in zip(sorted(times), sorted(times)[1:]) if first * 1000 <= t <= last * 1000)
        print(f"          read-to-read lateness p50 {pct(late, 0.5):.2f} s, p99 {pct(late, 0.99):.2f} s, "
              f"max {max(late, default=float('nan')):.2f} s")
        hshare, hcycles, hon = health_on_time(health, first * 1000, last * 1000)
        print(f"          connector health: {hshare:.2f} % of {hcycles} cycles ({hon} on time)")
        cpu, threads, cspan, peak_kb = sampler.between(first, last)
        st = status(pid)
        print(f"cpu       gateway {cpu:.1f} % of one core over {cspan:.0f} s; busiest threads: "
              + ", ".join(f"{name} {p:.1f}" for p, name in threads[:6]))
        print(f"memory    gateway RSS peak {peak_kb / 1024:.0f} MB during the backfill (VmHWM "
              f"{st['VmHWM']}, now {st['VmRSS']})  target < 300 MB; {st['Threads']} threads")
        results["every row delivered"] = (
            f"{last - wall_start:.0f} s after start ({span:.0f} s from the first row)"
            if distinct >= expected else f"not complete in {args.timeout:.0f} s")
        results["backfill rate"] = f"{rate:.0f} rows/s"
        results["live readings on time"] = f"{share:.2f} % of {intervals} (health {hshare:.2f} %)"
        results["gateway CPU"] = f"{cpu:.0f} % of one core"
        results["gateway RSS peak"] = f"{peak_kb / 1024:.0f} MB"
        keys = ("meters", "total_reads", "successful_reads", "failed_reads", "reconnects",
                "MessagesSent")  # fmt: skip
        print(f"connector {json.dumps({k: stats.get(k) for k in keys if k in stats})}")
    finally:
        if sampler is not None:
            sampler.stop()
        t0 = time.monotonic()
        code = gw.stop(grace=30)
        print(f"stopped   gateway (exit {code}) in {time.monotonic() - t0:.1f} s"
              + (f"; work dir kept: {gw.workdir}" if args.keep else ""))  # fmt: skip
        standin.stop()
        broker.stop()
        print(f"stopped   {sim.stop()}")
    return rate


def run_baseline(args: argparse.Namespace, results: dict[str, str]) -> float | None:
    expected = args.meters * args.days * ROWS_PER_DAY
    broker = Broker().start()
    standin = ProfileStandIn(broker.host, broker.port).start()
    gw = baseline_gateway(broker, args)
    rate = None
    try:
        t_start = time.monotonic()
        gw.start()
        pid = gw.pid
        assert pid is not None
        sampler = Sampler(pid)
        gw.wait_for_output("Gateway started", timeout=120)
        first, last = wait_rows(standin, gw, args, "baseline", t_start)
        sampler.stop()
        with standin.lock:
            distinct = standin.distinct
        print()
        print(f"== baseline: the gateway alone (stub connector, no DLMS) pushing the same "
              f"{expected} rows, {args.max_rows_per_read} per send_to_storage")
        if first is None or last is None:
            print("rows      none arrived")
            return None
        span = max(last - first, 1e-9)
        rate = min(distinct, expected) / span
        cpu, threads, _, peak_kb = sampler.between(first, last)
        print(f"rate      {rate:.0f} rows/s ({distinct} distinct in {span:.1f} s)")
        print(f"cpu       gateway {cpu:.1f} % of one core; busiest threads: "
              + ", ".join(f"{name} {p:.1f}" for p, name in threads[:5]))
        print(f"memory    gateway RSS peak {peak_kb / 1024:.0f} MB")
        results["gateway alone"] = f"{rate:.0f} rows/s, {cpu:.0f} % CPU, {peak_kb / 1024:.0f} MB"
    finally:
        code = gw.stop(grace=30)
        print(f"stopped   baseline gateway (exit {code})")
        standin.stop()
        broker.stop()
    return rate


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--meters", type=int, default=1000, help="simulated meters (default 1000)")
    p.add_argument("--days", type=int, default=7, help="backfillDays (default 7)")
    p.add_argument("--quick", action="store_true", help="a smoke run: 100 meters, 1 day")
    p.add_argument("--period-ms", type=int, default=10_000, help="live pollPeriod (default 10 s)")
    p.add_argument("--health-period-ms", type=int, default=30_000, help="healthPeriod (30 s)")
    p.add_argument("--rows-per-second", type=float, default=None,
                   help="profileRowsPerSecond (default: the product's)")  # fmt: skip
    p.add_argument("--reads-in-flight", type=int, default=None,
                   help="profileReadsInFlight (default: the product's)")  # fmt: skip
    p.add_argument("--max-rows-per-read", type=int, default=96, help="maxRowsPerRead (96)")
    p.add_argument("--timeout", type=float, default=1800.0, help="give up after (s, 1800)")
    p.add_argument("--no-baseline", action="store_true", help="skip the gateway-alone run")
    p.add_argument("--baseline-only", action="store_true", help="only the gateway-alone run")
    p.add_argument("--keep", action="store_true", help="keep the gateways' work dirs (logs)")
    args = p.parse_args(argv)
    if args.quick:
        args.meters, args.days = 100, 1
    print(f"bench     {args.meters} meters, {args.days} days of 15-minute rows each "
          f"({args.meters * args.days * ROWS_PER_DAY} rows), live every {args.period_ms} ms; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    results: dict[str, str] = {}
    rate = None if args.baseline_only else run_backfill(args, results)
    base = None if args.no_baseline else run_baseline(args, results)
    if rate and base:
        results["ratio backfill / alone"] = f"{rate / base:.2f}"
    targets = {"live readings on time": ">= 99 %", "gateway RSS peak": "< 300 MB",
               "ratio backfill / alone": "the gateway's rate"}  # fmt: skip
    print(f"\n| {args.meters} meters x {args.days * ROWS_PER_DAY} rows, live every "
          f"{args.period_ms / 1000:g} s | figure | target |\n|---|---|---|")
    for name, figure in results.items():
        print(f"| {name} | {figure} | {targets.get(name, '')} |")
    return 0


if __name__ == "__main__":
    # A SIGTERM (kill) unwinds like Ctrl-C, so the gateway, simulator and broker this run started
    # are stopped by their finally blocks instead of running on, orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
