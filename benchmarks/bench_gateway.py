"""Gateway benchmark: N simulated meters polled through the REAL thingsboard-gateway process.

Everything as in production, on one machine: ``tb-dlms simulate`` in its own process, a private
mosquitto, a ThingsBoard stand-in and ``python -m thingsboard_gateway.tb_gateway`` with our
connector installed by ``tb-dlms install`` (the demo and integration-test harness, tb_dlms.sandbox).
The stand-in only counts what it receives (a full recorder would decode 1,000 messages a second
in this process and compete with the gateway for the two cores); it decodes the health messages
and a sample of the readings.

dlms.json is what a user with 1,000 meters would write: the nine registers of the original
system per meter at ``--period-ms``, ``healthPeriod`` 60 s (the default: 1,000 health messages a
second would dwarf the readings), report strategy ON_RECEIVED (every reading is wanted at that
period; ``--report-strategy`` to try others), connector log at INFO.

Figures printed over the measured window (after ``--warmup`` seconds), nothing asserted:

- share of cycles started on time, from the connector's health telemetry (``cycles_on_time`` /
  ``total_cycles``): per meter, its last health snapshot at the window's end minus its last one
  before the window (health is per meter every healthPeriod, so the spans are one health period
  long, spread around the window); target >= 99 %;
- gateway process CPU in % of one core (``/proc/<pid>/stat`` utime+stime), target < 60 %;
- gateway RSS (``/proc/<pid>/status`` VmRSS) at the end, target < 200 MB; its threads;
- readings per second (telemetry entries carrying the registers) and MQTT messages per second
  received by the stand-in; the read-to-arrival latency of a sample of the readings;
- the simulator's CPU, for context.

Run: python benchmarks/bench_gateway.py [--count 1000] [--seconds 60] [--period-ms 1000]
     [--warmup 100] [--health-period-ms 60000] [--report-strategy ON_RECEIVED]
     [--profile py-spy-output.svg]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from tb_dlms.commands.install import connector_entry
from tb_dlms.sandbox import Broker, GatewayProcess, ThingsBoardStandIn
from tb_dlms.sandbox.meters import simulator_dlms_config

CLK_TCK = os.sysconf("SC_CLK_TCK")
READING_MARK = b'"active_energy"'  # once in every reading entry, never in health entries
HEALTH_MARK = b'"cycles_on_time"'


# --- the processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (its threads included), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


def thread_cpu(pid: int) -> dict[tuple[int, str], float]:
    """(thread id, name) -> utime + stime seconds, for every thread of a process."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:
            continue  # ended meanwhile
        fields = tail.split()
        out[(int(tid), head.split("(", 1)[1])] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name, from ``py-spy dump`` when it is installed (the
    kernel only knows them all as "python")."""
    exe = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if exe is None:
        return {}
    result = subprocess.run([exe, "dump", "--json", "--nonblocking", "--pid", str(pid)],
                            capture_output=True, text=True, check=False)
    try:
        return {t["os_thread_id"]: t["thread_name"] for t in json.loads(result.stdout)
                if t.get("os_thread_id") and t.get("thread_name")}
    except (ValueError, TypeError, KeyError):
        return {}


def status(pid: int) -> dict[str, str]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def ports_free(base: int, count: int) -> bool:
    for port in (base, base + count // 2, base + count - 1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


class Simulator:
    """``tb-dlms simulate`` in a child process (its CPU is not the gateway's)."""

    def __init__(self, count: int) -> None:
        # Below the ephemeral range (32768+), so the gateway's own sockets never take one.
        base = next(b for b in range(12000, 30000 - count, 1000) if ports_free(b, count))
        self.base_port = base
        cmd = [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", str(count),
               "--base-port", str(base)]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise SystemExit(f"simulator failed to start: {err}")
        self.ports = [base + i for i in range(count)]

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out.strip().splitlines()[-1] if out.strip() else ""


class CountingStandIn(ThingsBoardStandIn):
    """The stand-in, counting telemetry instead of recording it (cheap: bytes.count in C)."""

    def __init__(self, host: str, port: int, sample_every: int = 25) -> None:
        super().__init__(host, port)
        self.lock = threading.Lock()
        self.messages_in = 0
        self.bytes_in = 0
        self.readings = 0
        self.health: dict[str, list[tuple[int, int, int]]] = {}  # device -> (ts, total, on)
        self.latencies_ms: list[float] = []
        self.timeline: list[tuple[float, float]] = []  # (arrival ms, read-to-arrival ms)
        self.health_arrivals: list[float] = []
        self._sample_every = sample_every

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic != "v1/gateway/telemetry":
            super()._on_message(client, userdata, msg)
            return
        arrived = time.time() * 1000.0
        raw = msg.payload
        with self.lock:
            self.messages_in += 1
            self.bytes_in += len(raw)
            self.readings += raw.count(READING_MARK)
            sample = self.messages_in % self._sample_every == 0
        if HEALTH_MARK in raw or sample:
            self._decode(raw, arrived, sample)

    def _decode(self, raw: bytes, arrived: float, sample: bool) -> None:
        try:
            payload = json.loads(raw)
        except ValueError:
            return
        for device, entries in payload.items():
            for entry in entries if isinstance(entries, list) else [entries]:
                values = entry.get("values", {}) if isinstance(entry, dict) else {}
                if "cycles_on_time" in values:
                    snap = (int(entry.get("ts", arrived)), int(values["total_cycles"]),
                            int(values["cycles_on_time"]))  # fmt: skip
                    with self.lock:
                        self.health.setdefault(device, []).append(snap)
                        self.health_arrivals.append(arrived)
                elif sample and "active_energy" in values and "ts" in entry:
                    with self.lock:
                        self.latencies_ms.append(arrived - float(entry["ts"]))
                        self.timeline.append((arrived, arrived - float(entry["ts"])))

    def counters(self) -> tuple[int, int, int]:
        with self.lock:
            return self.messages_in, self.bytes_in, self.readings


# --- the gateway's own floor ---------------------------------------------------------------------

# A stub connector's source, written into the gateway's extensions folder: its imports and the
# Connector methods it answers trivially (bench_profiles.py builds its own from these too).
STUB_IMPORTS = """
import threading, time
from thingsboard_gateway.connectors.connector import Connector
from thingsboard_gateway.gateway.entities.converted_data import ConvertedData
from thingsboard_gateway.gateway.entities.datapoint_key import DatapointKey
from thingsboard_gateway.gateway.entities.report_strategy_config import ReportStrategyConfig
from thingsboard_gateway.gateway.entities.telemetry_entry import TelemetryEntry
"""
STUB_METHODS = """
    def close(self):
        self._stop.set()
        self._stopped = True

    def get_id(self): return self._config.get("id")
    def get_name(self): return self.name
    def get_type(self): return self._type
    def get_config(self): return self._config
    def is_connected(self): return True
    def is_stopped(self): return self._stopped
    def on_attributes_update(self, content): pass
    def server_side_rpc_handler(self, content): return None
"""

# A connector with no DLMS at all: every period, each of N devices gets nine values stamped
# "now", shaped like ours (one ConvertedData per device per cycle). What the gateway itself
# spends to take 1,000 readings a second to ThingsBoard; ours adds the polling on top.
BASELINE_CONNECTOR = STUB_IMPORTS + """

KEYS = ("voltage_l1", "voltage_l2", "voltage_l3", "current_l1", "current_l2", "current_l3",
        "frequency", "active_power", "active_energy")


class BenchBaselineConnector(Connector):
    def __init__(self, gateway, config, connector_type):
        super().__init__()
        self.statistics = {"MessagesReceived": 0, "MessagesSent": 0}
        self._gateway, self._config, self._type = gateway, config, connector_type
        self.name = config.get("name", "Baseline")
        self._count, self._period = int(config["count"]), config["periodMs"] / 1000.0
        strategy = ReportStrategyConfig({"type": "ON_RECEIVED"})
        self._keys = [DatapointKey(k, strategy) for k in KEYS]
        self._stop = threading.Event()
        self._stopped = False

    def open(self):
        threading.Thread(target=self._run, daemon=True, name="baseline").start()

    def _run(self):
        start = time.monotonic()
        while not self._stop.is_set():
            for i in range(self._count):
                # Spread over the period like the engine staggers meters.
                due = start + self._period * i / self._count
                delay = due - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                data = ConvertedData("Meter-%d" % (i + 1), "DLMS Meter")
                now = int(time.time() * 1000)
                data.add_to_telemetry(TelemetryEntry(
                    {k: 230.0 + i + j for j, k in enumerate(self._keys)}, ts=now))
                self._gateway.send_to_storage(self.name, self._config.get("id"), data)
            start += self._period
""" + STUB_METHODS


def baseline_gateway(broker: Any, args: argparse.Namespace) -> GatewayProcess:
    entry = {"type": "benchbaseline", "name": "Baseline", "class": "BenchBaselineConnector",
             "configuration": "baseline.json"}  # fmt: skip
    gw = GatewayProcess(
        broker.host,
        broker.port,
        connectors=[entry],
        connector_files={"baseline.json": {"count": args.count, "periodMs": args.period_ms}},
        keep=args.keep,
    )
    folder = gw.extensions_dir / "benchbaseline"
    folder.mkdir()
    (folder / "bench_baseline_connector.py").write_text(BASELINE_CONNECTOR, encoding="utf-8")
    return gw


# --- the run -------------------------------------------------------------------------------------


def dlms_json(ports: list[int], args: argparse.Namespace) -> dict[str, Any]:
    config = simulator_dlms_config(ports, period_ms=args.period_ms, health_period_ms=args.health_period_ms)
    config["logLevel"] = "INFO"
    config["reportStrategy"] = {"type": args.report_strategy}
    if args.report_strategy.endswith("REPORT_PERIOD"):
        config["reportStrategy"]["reportPeriod"] = max(args.period_ms * 10, 10_000)
    for meter in config["meters"]:
        meter["connectAttemptSpacingMs"] = 0  # the simulator takes any number of connects
        meter["clockCheckPeriod"] = 3_600_000
    return config


def on_time(
    health: dict[str, list[tuple[int, int, int]]], start_ms: float, end_ms: float
) -> tuple[float, int, int, int]:
    """(share %, cycles, on time, meters measured): per meter, last snapshot <= end minus last
    snapshot < start."""
    total = on = meters = 0
    for snaps in health.values():
        before = [s for s in snaps if s[0] < start_ms]
        after = [s for s in snaps if start_ms <= s[0] <= end_ms]
        if before and after:
            meters += 1
            total += after[-1][1] - before[-1][1]
            on += after[-1][2] - before[-1][2]
    share = 100.0 * on / total if total else float("nan")
    return share, total, on, meters


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def profile(pid: int, seconds: float, output: str) -> None:
    """py-spy record of the gateway for ``seconds`` (pip install py-spy), as a flame graph or
    speedscope file, plus a top-functions summary on stdout."""
    exe = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if exe is None:
        print("profile   py-spy not installed (pip install py-spy): skipped")
        return
    fmt = {".json": "speedscope", ".txt": "raw"}.get(os.path.splitext(output)[1], "flamegraph")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "50",
           "--nonblocking", "--threads", "--format", fmt, "--output", output]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print(f"profile   py-spy -> {output} (exit {result.returncode}) {result.stderr[-300:]}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=1000, help="simulated meters (default 1000)")
    p.add_argument("--seconds", type=float, default=60.0, help="measured window (default 60)")
    p.add_argument("--period-ms", type=int, default=1000, help="pollPeriod (default 1000)")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds before the window (default: health period + 40 s)")  # fmt: skip
    p.add_argument("--health-period-ms", type=int, default=60_000, help="healthPeriod")
    p.add_argument("--report-strategy", default="ON_RECEIVED",
                   choices=("ON_RECEIVED", "ON_CHANGE", "ON_REPORT_PERIOD",
                            "ON_CHANGE_OR_REPORT_PERIOD"))  # fmt: skip
    p.add_argument(
        "--profile", metavar="FILE",
        help="py-spy the gateway during the window (.svg flame graph, .json speedscope, .txt raw)",
    )
    p.add_argument("--keep", action="store_true", help="keep the gateway's work dir (logs)")
    p.add_argument(
        "--switch-interval-ms",
        type=float,
        default=0.0,
        help="experiment: sys.setswitchinterval in the gateway process (default: Python's 5 ms)",
    )
    p.add_argument("--baseline", action="store_true",
                   help="no DLMS: a stub connector publishes the same readings (the gateway's "
                   "own cost; no simulator, no on-time figure)")  # fmt: skip
    p.add_argument("--patched-gateway", action="store_true",
                   help="experiment: the gateway with gateway_patch.py's upstream change")
    args = p.parse_args(argv)
    # The gateway drains its start-up backlog in 20-40 s at 1,000 devices, and the connector
    # freezes its start-up objects 60 s after it opens (one pause): both before the window.
    warmup = args.warmup if args.warmup is not None else args.health_period_ms / 1000 + 40

    print(f"bench     {args.count} meters x 9 registers every {args.period_ms} ms, health every "
          f"{args.health_period_ms} ms, {args.report_strategy}; warm-up {warmup:.0f} s, window "
          f"{args.seconds:.0f} s; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
          + (f"; GIL switch {args.switch_interval_ms} ms" if args.switch_interval_ms else ""))  # fmt: skip
    sim = None if args.baseline else Simulator(args.count)
    broker = Broker().start()
    standin = CountingStandIn(broker.host, broker.port).start()
    if sim is None:
        gw = baseline_gateway(broker, args)
    else:
        gw = GatewayProcess(
            broker.host,
            broker.port,
            connectors=[connector_entry("dlms")],
            connector_files={"dlms.json": dlms_json(sim.ports, args)},
            keep=args.keep,
        )
        gw.install_connector("dlms")
    if args.patched_gateway:
        import gateway_patch
        from tb_dlms.sandbox.gateway import gateway_package_dir

        gateway_patch.apply(gw.workdir / "pkg" / "thingsboard_gateway", gateway_package_dir())
    if args.switch_interval_ms:
        # An experiment, not a setting we ship: the gateway's GIL switch interval (default 5 ms)
        # bounds how soon the engine's loop thread gets the GIL back from the gateway's threads.
        site = gw.workdir / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(
            f"import sys\nsys.setswitchinterval({args.switch_interval_ms / 1000!r})\n", encoding="utf-8"
        )
        gw.extra_env["PYTHONPATH"] = str(site)
    try:
        t_start = time.monotonic()
        gw.start()
        pid = gw.pid
        assert pid is not None
        gw.wait_for_output("Gateway started", timeout=120)
        where = "baseline stub" if sim is None else f"simulator ports {sim.ports[0]}..{sim.ports[-1]}"
        print(f"started   gateway pid {pid} in {time.monotonic() - t_start:.1f} s, {where}")
        # Warm-up: every meter associates (spread over one period) and publishes health once.
        deadline = t_start + warmup
        while time.monotonic() < deadline:
            time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
            msgs, _, readings = standin.counters()
            print(f"warm-up   {time.monotonic() - t_start:5.1f} s: {readings} readings, "
                  f"{msgs} messages, {len(standin.health)} meters reported health, "
                  f"gateway RSS {status(pid)['VmRSS']}")  # fmt: skip
        sim_pid = sim.proc.pid if sim is not None else pid
        sim_cpu0 = cpu_seconds(sim_pid)
        cpu0, wall0 = cpu_seconds(pid), time.time()
        threads0 = thread_cpu(pid)
        msgs0, bytes0, readings0 = standin.counters()
        with standin.lock:
            standin.latencies_ms.clear()
        if args.profile:
            threading.Thread(target=profile, args=(pid, args.seconds, args.profile), daemon=True).start()
        time.sleep(args.seconds)
        cpu1, wall1 = cpu_seconds(pid), time.time()
        threads1 = thread_cpu(pid)
        msgs1, bytes1, readings1 = standin.counters()
        sim_cpu1 = cpu_seconds(sim_pid)
        st = status(pid)
        load = os.getloadavg()[0]  # others' work on this machine skews every figure
        # Health published up to the window's end arrives a moment later.
        time.sleep(1.0)
        elapsed = wall1 - wall0
        share, cycles, on, meters = on_time(standin.health, wall0 * 1000, wall1 * 1000)
        if sim is not None and not meters:
            print("on time   no meter published health both before and during the window: "
                  "make --seconds at least --health-period-ms / 1000")  # fmt: skip
        with standin.lock:
            latencies = list(standin.latencies_ms)
            timeline = [t for t in standin.timeline if wall0 * 1000 <= t[0] <= wall1 * 1000]
            bursts = [a for a in standin.health_arrivals if wall0 * 1000 <= a <= wall1 * 1000]
        stats = {} if sim is None else standin.gateway_rpc("dlms_statistics", timeout=30)
        expected = args.count * elapsed * 1000 / args.period_ms
        rss_mb = int(st["VmRSS"].split()[0]) / 1024
        cpu_pct = 100 * (cpu1 - cpu0) / elapsed
        print(f"on time   {share:.2f} % of {cycles} cycles ({on} on time; {meters} meters with "
              f"health before and in the window)  target >= 99 %")  # fmt: skip
        sim_pct = 100 * (sim_cpu1 - sim_cpu0) / elapsed
        print(f"cpu       gateway {cpu_pct:.1f} % of one core  target < 60 %"
              + ("" if sim is None else f"; simulator {sim_pct:.1f} %")
              + f"; machine load average {load:.2f}")  # fmt: skip
        names = thread_names(pid)
        busy = sorted(((t - threads0.get(k, 0.0), names.get(k[0], f"{k[1]} {k[0]}"))
                       for k, t in threads1.items()), reverse=True)
        print("threads   busiest, % of one core: " + ", ".join(
            f"{name} {100 * t / elapsed:.1f}" for t, name in busy[:6]))
        print(f"memory    gateway RSS {rss_mb:.0f} MB (peak {st['VmHWM']})  target < 200 MB; "
              f"{st['Threads']} threads")  # fmt: skip
        print(f"readings  {(readings1 - readings0) / elapsed:.0f}/s received of "
              f"{expected / elapsed:.0f}/s polled ({100 * (readings1 - readings0) / expected:.1f} "
              f"%); {(msgs1 - msgs0) / elapsed:.1f} MQTT messages/s, "
              f"{(bytes1 - bytes0) / elapsed / 1024:.0f} KiB/s")  # fmt: skip
        print(f"latency   read -> stand-in p50 {pct(latencies, 0.5):.0f} ms, p99 "
              f"{pct(latencies, 0.99):.0f} ms, max {max(latencies, default=float('nan')):.0f} ms "
              f"({len(latencies)} sampled)")  # fmt: skip
        # Where the slow moments are: worst latency per 5 s, and when health messages came.
        buckets: dict[int, float] = {}
        for arrived, latency in timeline:
            b = int((arrived / 1000 - wall0) // 5)
            buckets[b] = max(buckets.get(b, 0.0), latency)
        health_buckets = {int((a / 1000 - wall0) // 5) for a in bursts}
        print(
            "timeline  worst latency per 5 s (ms; * = health messages arrived): "
            + " ".join(
                f"{b * 5}s:{v:.0f}{'*' if b in health_buckets else ''}" for b, v in sorted(buckets.items())
            )
        )
        keys = ("meters", "total_reads", "successful_reads", "failed_reads", "reconnects",
                "MessagesSent")  # fmt: skip
        if stats:
            print(f"connector {json.dumps({k: stats.get(k) for k in keys})}")
    finally:
        t0 = time.monotonic()
        code = gw.stop(grace=30)
        print(f"stopped   gateway (exit {code}) in {time.monotonic() - t0:.1f} s"
              + (f"; work dir kept: {gw.workdir}" if args.keep else ""))  # fmt: skip
        standin.stop()
        broker.stop()
        if sim is not None:
            print(f"stopped   {sim.stop()}")
    return 0


if __name__ == "__main__":
    # A SIGTERM (kill, pkill) unwinds like Ctrl-C, so the gateway, simulator and broker this run
    # started are stopped by their context managers instead of running on, orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
