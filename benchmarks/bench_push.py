"""Push benchmark: thousands of simulated meters pushing ciphered notifications into ONE gateway.

N meters (default 5,000) of ``tb-dlms simulate --push-to ... --push-period 15 --push-security
auth-enc`` keep one TCP connection each to the connector's push listener (IEC 62056-47 wrapper)
and push their regular notification (serial, clock, nine registers; general-glo-ciphering with
their own system title) every ``--period`` seconds, spread over the period. The real gateway
(``python -m thingsboard_gateway.tb_gateway``, our connector installed by ``tb-dlms install``), a
private mosquitto and a ThingsBoard stand-in that counts what arrives.

Figures printed, nothing asserted:

- start-up: seconds until every meter's first notification reached ThingsBoard;
- over ``--seconds``: notifications per second reaching ThingsBoard against those the meters
  push (N / period), and the loss: notifications the simulators sent whole that never arrived
  (counted after the simulators stop, from their own counters); the gateway's CPU (% of one
  core; target < 60 %), RSS (target < 300 MB), sockets and threads; the simulators' CPU.
- ``--baseline``: the peer in the same conditions: the gateway alone, a stub connector
  registering the same N devices and publishing the same keys at the same rate, no DLMS.

Run: python benchmarks/bench_push.py [--count 5000] [--period 15] [--seconds 120] [--baseline]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import time

import gateway_patch
from bench_fleet import FleetStandIn, baseline_gateway, sockets
from bench_gateway import cpu_seconds, ports_free, status
from tb_dlms.commands.install import connector_entry
from tb_dlms.sandbox import Broker, GatewayProcess
from tb_dlms.sandbox.gateway import gateway_package_dir
from tb_dlms.sandbox.push_meters import simulator_push_config
from tb_dlms.testing.ports import free_port_range

SENT = re.compile(r"(\d+) pushes \((\d+) sent, (\d+) dropped\)")


class PushSimulators:
    """``tb-dlms simulate`` for the whole fleet, pushing to ``target``."""

    def __init__(self, count: int, target: str, period: float) -> None:
        base = next(b for b in range(12000, 60000 - count, 1000) if ports_free(b, count))
        cmd = [sys.executable, "-m", "tb_dlms.cli", "simulate", "--count", str(count),
               "--base-port", str(base), "--wrapper", "--push-to", target,
               "--push-period", str(period), "--push-security", "auth-enc"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, start_new_session=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise SystemExit(f"simulator failed to start: {err[-2000:]}")

    def pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()] or [self.proc.pid]

    def stop(self) -> tuple[int, int, int]:
        """Stop; (pushes made, sent whole, dropped) summed over the processes' final lines."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        totals = [0, 0, 0]
        for found in SENT.finditer(out + err):
            for i in range(3):
                totals[i] += int(found.group(i + 1))
        return totals[0], totals[1], totals[2]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=5000, help="pushing meters (default 5000)")
    p.add_argument("--period", type=float, default=15.0, help="seconds between pushes")
    p.add_argument("--seconds", type=float, default=120.0, help="measured window")
    p.add_argument("--startup-limit", type=float, default=300.0)
    p.add_argument("--patched-gateway", action="store_true",
                   help="the gateway with gateway_patch.py's upstream change (its device save "
                   "is quadratic: 5,000 new devices take minutes otherwise)")
    p.add_argument("--keep", action="store_true", help="keep the gateway's work dir")
    p.add_argument("--baseline", action="store_true",
                   help="the peer: the gateway alone, a stub connector publishing the same "
                   "devices and keys at the same rate (no DLMS, no simulator)")
    args = p.parse_args(argv)
    rate = args.count / args.period
    print(f"bench     {args.count} meters pushing every {args.period:g} s (ciphered, wrapper): "
          f"{rate:.0f} notifications/s{' BASELINE' if args.baseline else ''}"
          f"{' PATCHED gateway' if args.patched_gateway else ''}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}", flush=True)
    broker = Broker().start()
    standin = FleetStandIn(broker.host, broker.port).start()
    port = free_port_range(1)
    if args.baseline:
        args.period_ms, args.health_period_ms = int(args.period * 1000), 3_600_000
        gw = baseline_gateway(broker, args)
        names = [f"Meter-{i + 1}" for i in range(args.count)]
    else:
        config = simulator_push_config(args.count, port, name_prefix="Meter-")
        gw = GatewayProcess(broker.host, broker.port, connectors=[connector_entry("dlms")],
                            connector_files={"dlms.json": config}, keep=True)
        gw.install_connector("dlms")
        names = [m["deviceName"] for m in config["meters"]]
    if args.patched_gateway:
        gateway_patch.apply(gw.workdir / "pkg" / "thingsboard_gateway", gateway_package_dir())
    sims = None
    try:
        t0 = time.monotonic()
        gw.start()
        if not args.baseline:
            gw.wait_for_output("push: listening on", timeout=120)
            sims = PushSimulators(args.count, f"127.0.0.1:{port}", args.period)
        while time.monotonic() - t0 < args.startup_limit:
            time.sleep(1.0)
            with standin.lock:
                seen = len(standin.first_reading)
            if seen >= len(names):
                break
        print(f"start-up  {seen} of {len(names)} meters published after "
              f"{time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(args.period)  # every meter past its first push: a steady state
        pid = gw.pid or 0
        sim_pids = sims.pids() if sims is not None else []
        cpu0, sim0 = cpu_seconds(pid), sum(cpu_seconds(q) for q in sim_pids)
        _, _, got0 = standin.counters()
        w0 = time.monotonic()
        time.sleep(args.seconds)
        elapsed = time.monotonic() - w0
        cpu1, sim1 = cpu_seconds(pid), sum(cpu_seconds(q) for q in sim_pids)
        _, _, got1 = standin.counters()
        st = status(pid)
        print(f"window    {(got1 - got0) / elapsed:.1f} notifications/s reached ThingsBoard of "
              f"{rate:.1f}/s pushed ({100 * (got1 - got0) / (rate * elapsed):.1f} %)")
        print(f"gateway   CPU {100 * (cpu1 - cpu0) / elapsed:.1f} % of one core (target < 60 %), "
              f"RSS {int(st['VmRSS'].split()[0]) / 1024:.0f} MB (peak "
              f"{int(st['VmHWM'].split()[0]) / 1024:.0f} MB, target < 300 MB), "
              f"{sockets(pid)} sockets, {st['Threads']} threads")
        if sims is not None:
            print(f"simulators {100 * (sim1 - sim0) / elapsed:.1f} % of one core "
                  f"({len(sim_pids)} processes)")
            made, sent, dropped = sims.stop()
            sims = None
            total, still = standin.counters()[2], 0.0
            while still < 10.0:  # what the gateway still holds in its storage goes out first
                time.sleep(2.0)
                now = standin.counters()[2]
                still = still + 2.0 if now == total else 0.0
                total = now
            lost = sent - total
            print(f"loss      {sent} notifications sent whole ({made} made, {dropped} dropped "
                  f"by the simulators' buffers), {total} reached ThingsBoard: "
                  f"{max(0, lost)} lost ({100 * max(0, lost) / max(1, sent):.3f} %; target 0)")
            try:
                stats = standin.gateway_rpc("dlms_push", timeout=20)
            except Exception as exc:  # noqa: BLE001 - a figure, not the benchmark
                stats = repr(exc)
            print(f"connector {stats}")
            errors = [line.split(" - ", 5)[-1] for line in gw.output().splitlines()
                      if "|ERROR|" in line]
            kinds = collections.Counter(re.sub(r"\d+", "N", e)[:120] for e in errors)
            print(f"gateway   {len(errors)} ERROR lines" + "".join(
                f"\n          {n} x {kind}" for kind, n in kinds.most_common(6)))
            exceptions = collections.Counter(
                line for line in gw.output().splitlines() if re.match(r"^\w+(Error|Exception):", line))
            for kind, n in exceptions.most_common(4):
                print(f"          {n} x {kind[:150]}")
        print(f"load      {os.getloadavg()[0]:.2f}", flush=True)
    finally:
        if sims is not None:
            sims.stop()
        gw.keep = args.keep
        gw.stop(grace=60)
        if args.keep:
            print(f"kept      {gw.workdir}")
        standin.stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.exit(main())
