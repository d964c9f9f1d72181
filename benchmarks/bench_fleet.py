"""Fleet benchmark: thousands of simulated meters through the REAL gateway, from a cold start.

What a user with a fleet sees, measured: N meters x 9 registers at ``--period-ms`` (default
10,000 meters at 10 s), the simulators in their own processes, a private mosquitto, a
ThingsBoard stand-in, ``python -m thingsboard_gateway.tb_gateway`` with our connector installed
by ``tb-dlms install``. With ``--gateways K`` the same dlms.json is given to K gateways, gateway
i with ``TB_DLMS_SHARD_INDEX=i`` and ``TB_DLMS_SHARD_COUNT=K`` (each polls its slice).

Figures printed, nothing asserted:

- start-up: seconds from the gateways' start until 50/90/99/100 % of the meters have published
  a reading, and until ThingsBoard has seen each device's ``connect``; target: every meter
  within 180 s;
- after start-up, over ``--seconds``: cycles started on time (the connector's health telemetry),
  target >= 99 %; each gateway's CPU (% of one core, target < 80 %), RSS (target < 500 MB),
  open sockets and threads; readings received per second against those polled;
- with ``--restart``: the same gateway stopped and started again on its work dir (devices
  already known to the gateway), time until every meter publishes again.

Run: python benchmarks/bench_fleet.py [--count 10000] [--period-ms 10000] [--seconds 120]
     [--gateways 1] [--restart] [--startup-limit 600] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

import gateway_patch
from bench_gateway import (
    STUB_IMPORTS,
    STUB_METHODS,
    CountingStandIn,
    cpu_seconds,
    dlms_json,
    on_time,
    ports_free,
    status,
)
from tb_dlms.commands.install import connector_entry
from tb_dlms.sandbox import Broker, GatewayProcess
from tb_dlms.sandbox.gateway import gateway_package_dir

DEVICE = re.compile(rb'"(Meter-\d+)":')
CONNECTED = re.compile(rb'"device":\s*"([^"]+)"')


class FleetStandIn(CountingStandIn):
    """The counting stand-in, plus when each device first published and first connected."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host, port)
        self.first_reading: dict[bytes, float] = {}
        self.first_connect: dict[str, float] = {}

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        now = time.monotonic()
        if msg.topic == "v1/gateway/telemetry" and b'"active_energy"' in msg.payload:
            for name in DEVICE.findall(msg.payload):
                self.first_reading.setdefault(name, now)
        elif msg.topic == "v1/gateway/connect":
            found = CONNECTED.search(msg.payload)
            if found:
                self.first_connect.setdefault(found.group(1).decode(), now)
            return  # nothing else to answer or record
        super()._on_message(client, userdata, msg)

    def reset_startup(self) -> None:
        with self.lock:
            self.first_reading = {}
            self.first_connect = {}


class Simulators:
    """``tb-dlms simulate`` for the whole fleet: its launcher spreads the meters over processes
    when one process's open-file limit cannot hold them."""

    def __init__(self, count: int) -> None:
        base = next(b for b in range(12000, 32000 - count, 1000) if ports_free(b, count))
        cmd = [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", str(count),
               "--base-port", str(base)]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)  # fmt: skip
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise SystemExit(f"simulator failed to start: {err[-2000:]}")
        self.ports = [base + i for i in range(count)]

    def pids(self) -> list[int]:
        """The launcher and its children (their CPU is the simulators')."""
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()] or [self.proc.pid]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


# The gateway alone: no DLMS, a stub connector doing with the gateway what ours does (devices
# registered by four threads, each device then publishing nine registers every period, and the
# same health and alarm keys as ours every health period), so the gateway's own cost of 10,000
# devices is measured on the same machine in the same way.
FLEET_STUB = STUB_IMPORTS + """
import collections, heapq

REGISTERS = %r
HEALTH = %r


class BenchFleetConnector(Connector):
    def __init__(self, gateway, config, connector_type):
        super().__init__()
        self.statistics = {"MessagesReceived": 0, "MessagesSent": 0}
        self._gateway, self._config, self._type = gateway, config, connector_type
        self.name = config.get("name", "Fleet")
        self._count = int(config["count"])
        self._period, self._health = config["periodMs"] / 1000.0, config["healthMs"] / 1000.0
        strategy = ReportStrategyConfig({"type": "ON_RECEIVED"})
        self._registers = [DatapointKey(k, strategy) for k in REGISTERS]
        self._health_keys = [DatapointKey(k, strategy) for k in HEALTH]
        self._pending = collections.deque("Meter-%%d" %% (i + 1) for i in range(self._count))
        self._ready = {}  # name -> registered at (insertion order: the order of registration)
        self._stop = threading.Event()
        self._stopped = False

    def open(self):
        for _ in range(4):
            threading.Thread(target=self._register, daemon=True).start()
        threading.Thread(target=self._run, daemon=True, name="fleet stub").start()

    def _register(self):
        while not self._stop.is_set():
            try:
                name = self._pending.popleft()
            except IndexError:
                return
            while self._gateway.add_device(name, {"connector": self}, device_type="DLMS Meter") is False:
                if self._stop.wait(0.2):
                    return
            self._send(name, self._health_keys)
            self._ready[name] = time.monotonic()

    def _send(self, name, keys):
        data = ConvertedData(name, "DLMS Meter")
        data.add_to_telemetry(TelemetryEntry({k: 1.0 + j for j, k in enumerate(keys)},
                                             ts=int(time.time() * 1000)))
        self._gateway.send_to_storage(self.name, self._config.get("id"), data)

    def _run(self):
        # A timer heap, as the engine has: (due, kind, name); a device joins once registered.
        heap, joined = [], 0
        while not self._stop.wait(0.01):
            ready = list(self._ready.items())
            for name, at in ready[joined:]:
                i = int(name.split("-")[1]) - 1
                heapq.heappush(heap, (at + self._period * i / self._count, 0, name))
                heapq.heappush(heap, (at + self._health, 1, name))
            joined = len(ready)
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                due, kind, name = heapq.heappop(heap)
                self._send(name, self._health_keys if kind else self._registers)
                heapq.heappush(heap, (due + (self._health if kind else self._period), kind, name))
""" + STUB_METHODS


def fleet_stub_keys() -> tuple[list[str], list[str]]:
    from tb_dlms.connector.alarms import MeterStatus
    from tb_dlms.engine.health import MeterHealth
    from tb_dlms.sandbox.meters import REGISTERS

    health = sorted(set(MeterHealth().snapshot()) | set(MeterStatus(10).snapshot()))
    return [key for key, _ in REGISTERS], health


def baseline_gateway(broker: Any, args: argparse.Namespace) -> GatewayProcess:
    entry = {"type": "benchfleet", "name": "Fleet", "class": "BenchFleetConnector",
             "configuration": "fleet.json"}  # fmt: skip
    gw = GatewayProcess(broker.host, broker.port, connectors=[entry], keep=True,
                        connector_files={"fleet.json": {"count": args.count,
                                                        "periodMs": args.period_ms,
                                                        "healthMs": args.health_period_ms}})
    folder = gw.extensions_dir / "benchfleet"
    folder.mkdir()
    (folder / "bench_fleet_connector.py").write_text(FLEET_STUB % fleet_stub_keys(), "utf-8")
    return gw


def sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return n


def wait_startup(standin: FleetStandIn, gws: list[GatewayProcess], count: int, limit: float,
                 t0: float) -> dict[float, float]:
    """Seconds from t0 until each share of the meters published a reading (nan: never)."""
    marks = {0.5: float("nan"), 0.9: float("nan"), 0.99: float("nan"), 1.0: float("nan")}
    next_print = t0
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        with standin.lock:
            firsts = sorted(standin.first_reading.values())
            connects = len(standin.first_connect)
        for share in marks:
            need = max(1, int(share * count + 0.5)) if share < 1 else count
            if marks[share] != marks[share] and len(firsts) >= need:
                marks[share] = firsts[need - 1] - t0
        now = time.monotonic()
        if now >= next_print or len(firsts) >= count:
            next_print = now + 10
            rss = " ".join(status(g.pid)["VmRSS"].replace(" kB", "k") for g in gws if g.pid)
            print(f"start-up  {now - t0:5.1f} s: {len(firsts)} meters published, {connects} "
                  f"connected; RSS {rss}", flush=True)  # fmt: skip
        if len(firsts) >= count:
            break
    return marks


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=10_000, help="meters in dlms.json")
    p.add_argument("--period-ms", type=int, default=10_000, help="pollPeriod (default 10000)")
    p.add_argument("--seconds", type=float, default=120.0, help="measured window after start-up")
    p.add_argument("--warmup", type=float, default=None,
                   help="seconds between start-up and the window (default: health period + 10 s, "
                   "so that every meter has health snapshots on both sides of the window)")
    p.add_argument("--health-period-ms", type=int, default=60_000, help="healthPeriod")
    p.add_argument("--gateways", type=int, default=1, help="gateways sharing dlms.json (shards)")
    p.add_argument("--startup-limit", type=float, default=600.0, help="give up start-up after")
    p.add_argument("--restart", action="store_true", help="also time a restart on the same dirs")
    p.add_argument("--keep", action="store_true", help="keep the gateways' work dirs")
    p.add_argument("--baseline", action="store_true",
                   help="no DLMS: a stub connector registers and feeds the same devices and "
                   "keys (the gateway's own cost; no simulator, no on-time figure)")
    p.add_argument("--patched-gateway", action="store_true",
                   help="experiment: the gateway with gateway_patch.py's upstream change")
    args = p.parse_args(argv)
    args.report_strategy = "ON_RECEIVED"

    print(f"bench     {args.count} meters x 9 registers every {args.period_ms} ms, "
          f"{args.gateways} gateway(s){' PATCHED' if args.patched_gateway else ''}, health every "
          f"{args.health_period_ms} ms; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    sims = None if args.baseline else Simulators(args.count)
    broker = Broker().start()
    standin = FleetStandIn(broker.host, broker.port).start()
    config = dlms_json(sims.ports, args) if sims is not None else {}
    gws = [baseline_gateway(broker, args)] if sims is None else []
    for i in range(args.gateways if sims is not None else 0):
        env = ({"TB_DLMS_SHARD_INDEX": str(i), "TB_DLMS_SHARD_COUNT": str(args.gateways)}
               if args.gateways > 1 else {})  # fmt: skip
        gw = GatewayProcess(broker.host, broker.port, connectors=[connector_entry("dlms")],
                            connector_files={"dlms.json": config}, keep=True, extra_env=env)
        gw.install_connector("dlms")
        gws.append(gw)
    if args.patched_gateway:
        for gw in gws:
            gateway_patch.apply(gw.workdir / "pkg" / "thingsboard_gateway", gateway_package_dir())
    try:
        for attempt in ("cold start", "restart")[: 2 if args.restart else 1]:
            if attempt == "restart":
                for gw in gws:
                    gw.stop(grace=60)
                standin.reset_startup()
            t0 = time.monotonic()
            for gw in gws:
                gw.start()
            marks = wait_startup(standin, gws, args.count, args.startup_limit, t0)
            print(f"{attempt:<9} meters publishing after " + ", ".join(
                f"{int(s * 100)} %: {v:.1f} s" for s, v in marks.items()) + "  target 100 % <= 180 s",
                flush=True)  # fmt: skip
        warmup = args.warmup if args.warmup is not None else args.health_period_ms / 1000 + 10
        time.sleep(warmup)
        # The window: on time, CPU, memory, sockets.
        pids = [gw.pid for gw in gws if gw.pid]
        sim_pids = sims.pids() if sims is not None else []
        cpu0 = [cpu_seconds(pid) for pid in pids]
        sim0 = sum(cpu_seconds(pid) for pid in sim_pids)
        _, _, readings0 = standin.counters()
        wall0 = time.time()
        time.sleep(args.seconds)
        wall1 = time.time()
        cpu1 = [cpu_seconds(pid) for pid in pids]
        sim1 = sum(cpu_seconds(pid) for pid in sim_pids)
        _, _, readings1 = standin.counters()
        time.sleep(1.0)
        elapsed = wall1 - wall0
        share, cycles, on, meters = on_time(standin.health, wall0 * 1000, wall1 * 1000)
        print(f"on time   {share:.2f} % of {cycles} cycles ({on} on time; {meters} meters with "
              f"health before and in the window)  target >= 99 %")  # fmt: skip
        for i, pid in enumerate(pids):
            st = status(pid)
            print(f"gateway {i} CPU {100 * (cpu1[i] - cpu0[i]) / elapsed:.1f} % of one core "
                  f"(target < 80 %), RSS {int(st['VmRSS'].split()[0]) / 1024:.0f} MB (peak "
                  f"{int(st['VmHWM'].split()[0]) / 1024:.0f} MB, target < 500 MB), "
                  f"{sockets(pid)} sockets, {st['Threads']} threads")  # fmt: skip
        polled = args.count * elapsed * 1000 / args.period_ms
        print(f"readings  {(readings1 - readings0) / elapsed:.0f}/s received of "
              f"{polled / elapsed:.0f}/s polled ({100 * (readings1 - readings0) / polled:.1f} %); "
              f"simulators {100 * (sim1 - sim0) / elapsed:.1f} % of one core "
              f"({len(sim_pids)} processes); load {os.getloadavg()[0]:.2f}")  # fmt: skip
    finally:
        for gw in gws:
            gw.keep = args.keep
            gw.stop(grace=60)
        standin.stop()
        broker.stop()
        if sims is not None:
            sims.stop()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
