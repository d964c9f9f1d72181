"""How ``tb-dlms simulate`` serves: one process, or several for fleets larger than one process's
open-file limit (commands/simulate.py parses the flags; the server, lines and figures live here).

Every port costs its process two file descriptors (the listener and the accepted connection), so
10,000 meters need 20,000 and more: over a common ``ulimit -n``. The launcher raises the soft
limit as far as the fleet needs and the hard limit allows (transport/fd_limits.py), then splits
the fleet into contiguous slices, one child process each (a
:class:`~tb_dlms.simulator.server.SimulatorServer` with ``first_index``: meter i keeps index i,
its values, port and HDLC address, whatever the number of processes). The parent prints the
usual readiness line once every child listens, forwards SIGINT/SIGTERM as SIGTERM, stops the
others if one dies, and prints the summed figures when all have stopped. A child whose parent
disappears (SIGKILL) sees its pipe close and stops too: no orphans.
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from ..transport.fd_limits import raise_open_file_limit

__all__ = ["FDS_PER_PORT", "build_server", "plan", "ready_line", "run_fleet", "serve",
           "stopped_line"]

FDS_PER_PORT = 2  # listener + accepted connection
_RESERVE = 64  # interpreter, standard streams, selector, wake pair, pipe to the parent
_MAX_AUTO = 64  # more processes than this: the limit is absurdly low, say so
_UNLIMITED = 1 << 62  # fd_limits' stand-in for RLIM_INFINITY


def _raised_limit(ports: int) -> int | None:
    """Raise the soft RLIMIT_NOFILE (the shared transport/fd_limits.py rule: up to the hard
    limit, never lowered) so all ``ports`` fit one process; the soft limit now (None: no limit
    to plan around). Children inherit it."""
    needed = -(-ports * FDS_PER_PORT * 4 // 3) + _RESERVE  # the inverse of _ports_fitting
    after = raise_open_file_limit(needed).after
    return None if after >= _UNLIMITED else after


def _ports_fitting(limit: int) -> int:
    """Ports one process serves well inside ``limit`` (a quarter kept for reconnections)."""
    return max(0, (limit - _RESERVE) * 3 // 4 // FDS_PER_PORT)


def plan(count: int, meters_per_port: int, processes: int | None, base_port: int,
         limit: int | None = None) -> list[tuple[int, int]]:
    """(first meter, meters) of each process; ``processes`` None: auto. ValueError, saying
    why, when no plan fits. ``limit``: the soft open-file limit (default: raised, then read)."""
    ports = -(-count // meters_per_port)
    if limit is None:
        limit = _raised_limit(ports)
    if processes is None:
        if limit is None:
            processes = 1
        else:
            fit = _ports_fitting(limit)
            processes = -(-ports // fit) if fit else _MAX_AUTO + 1
            if processes > _MAX_AUTO:
                raise ValueError(
                    f"the open-file limit ({limit}, ulimit -n) is too low for {ports} ports "
                    f"even in {_MAX_AUTO} processes: each port needs {FDS_PER_PORT} file "
                    "descriptors; raise ulimit -n")
    if processes > ports:
        raise ValueError(f"--processes {processes} is more than the {ports} ports to serve")
    per = -(-ports // processes)
    if limit is not None and per * FDS_PER_PORT + _RESERVE > limit:
        fit = _ports_fitting(limit)
        hint = f"use --processes {-(-ports // fit)} or more, or " if fit else ""
        raise ValueError(
            f"{processes} process(es) of up to {per} ports need about "
            f"{per * FDS_PER_PORT + _RESERVE} open files each, over the limit of {limit} "
            f"(ulimit -n): {hint}raise ulimit -n")
    if processes > 1 and not base_port:
        raise ValueError("--processes > 1 needs a --base-port (free ports of several "
                         "processes would not be consecutive)")
    slices = []
    start = 0
    for k in range(processes):
        group = ports // processes + (1 if k < ports % processes else 0)
        first = start * meters_per_port
        slices.append((first, min(count, (start + group) * meters_per_port) - first))
        start += group
    return slices


def build_server(args: argparse.Namespace, options: Any, first: int, count: int) -> Any:
    """The started server of meters ``first .. first + count - 1`` of the fleet (global index:
    the values and the HDLC address of meter i do not depend on which process serves it)."""
    from ..simulator.server import SimulatorServer

    return SimulatorServer(
        count,
        args.base_port + first // args.meters_per_port if args.base_port else 0,
        args.host,
        options=options,
        wrapper=args.wrapper,
        physical_base=args.physical_base,
        first_index=first,
        meters_per_port=args.meters_per_port,
    ).start()


def ready_line(args: argparse.Namespace, options: Any, wrapper: bool, ports: tuple[int, int],
               processes: int = 1) -> str:
    """The line callers wait for (benchmarks, tests): printed once every port listens."""
    kind = "wrapper" if wrapper else "HDLC"
    last = args.physical_base + args.count - 1
    address = "wPort 1" if wrapper else f"logical 1, physical {args.physical_base}..{last}"
    if args.meters_per_port > 1:
        address += f", {args.meters_per_port} meters per port"
    if options.model != "poly":
        address += f", {options.model} meters"
    if options.authentication != "lls":  # keys never printed
        address += f", {options.authentication} {options.security or 'plain'}"
    if options.push_to:
        every = f" every {options.push_period_s:g} s" if options.push_period_s else ""
        address += f", pushing to {options.push_to}{every} ({options.push_security or 'plain'})"
    where = f" in {processes} processes" if processes > 1 else ""
    return (
        f"tb-dlms simulate: {args.count} meter(s) on {args.host}:{ports[0]}..{ports[1]} "
        f"({kind}, {address}, max info {options.max_info_field}, "
        f"max PDU {options.max_pdu_size}){where}"
    )


def serve(server: Any) -> dict[str, float]:
    """Serve until SIGTERM/Ctrl-C; the figures of the stopped line."""

    def on_signal(signum: int, frame: Any) -> None:
        server.stop()

    previous = signal.signal(signal.SIGTERM, on_signal)
    cpu0 = time.process_time()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.close()
    secured = [m.security for m in server.meters if m.security is not None]
    try:
        import resource  # Unix only

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except ImportError:
        rss = -1.0
    return {
        "requests": server.requests, "accepted": server.accepted,
        "cpu": time.process_time() - cpu0, "rss_mib": rss, "secured": len(secured),
        "replays": sum(s.replays for s in secured),
        "refused": sum(s.refused + s.hls_refused for s in secured),
        "dedicated": sum(s.dedicated for s in secured),
        **{f"push_{k}": v for k, v in server.pusher.stats.items()},
    }


def stopped_line(stats: dict[str, float]) -> str:
    served, cpu = int(stats["requests"]), stats["cpu"]
    per = f", {cpu / served * 1e6:.1f} us CPU per request" if served else ""
    rss = f", peak RSS {int(stats['rss_mib'])} MiB" if stats["rss_mib"] >= 0 else ""
    refused = (f", {int(stats['replays'])} replayed and {int(stats['refused'])} other ciphered "
               f"requests refused, {int(stats['dedicated'])} associations with a dedicated "
               "key") if stats["secured"] else ""
    pushed = (f", {int(stats['push_pushes'])} pushes ({int(stats['push_sent'])} sent, "
              f"{int(stats['push_dropped'])} dropped)") if stats.get("push_pushes") else ""
    return (
        f"tb-dlms simulate: stopped; {served} requests served, {int(stats['accepted'])} "
        f"connections, {cpu:.2f} s CPU{per}{rss}{refused}{pushed}"
    )


def _child(args: argparse.Namespace, options: Any, first: int, count: int,
           conn: Connection) -> None:
    """One slice of the fleet, in a child process: ("ready", ports) or ("error", text), then
    ("stopped", figures) on SIGTERM or when the parent's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent forwards Ctrl-C as SIGTERM
    from ..protocol.errors import DlmsError

    try:
        server = build_server(args, options, first, count)
    except (DlmsError, ValueError, OSError) as exc:
        conn.send(("error", str(exc)))
        sys.exit(2)
    conn.send(("ready", (server.ports[0], server.ports[-1]), server.wrapper))

    def watch_parent() -> None:
        try:
            conn.recv()  # the parent never sends: this returns when its end closes
        except (EOFError, OSError):
            pass
        server.stop()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    figures = serve(server)
    try:
        conn.send(("stopped", figures))
    except OSError:
        pass  # the parent is gone


class _Fleet:
    """The parent's view of its children."""

    def __init__(self, args: argparse.Namespace, options: Any,
                 slices: list[tuple[int, int]]) -> None:
        self.slices = slices
        self.stopping = False
        self.procs: list[Any] = []
        self.conns: list[Connection] = []
        ctx = multiprocessing.get_context("spawn")  # a child inherits no other child's pipe
        for first, count in slices:
            here, there = ctx.Pipe()
            proc = ctx.Process(target=_child, args=(args, options, first, count, there),
                               name=f"tb-dlms-simulate-{first}")
            proc.start()
            there.close()
            self.procs.append(proc)
            self.conns.append(here)

    def name(self, k: int) -> str:
        first, count = self.slices[k]
        return f"process {k + 1} (meters {first}..{first + count - 1}, pid {self.procs[k].pid})"

    def stop(self) -> None:
        self.stopping = True
        for proc in self.procs:
            if proc.exitcode is None:
                proc.terminate()  # SIGTERM: the child stops its server and reports

    def reap(self) -> None:
        self.stop()
        for proc in self.procs:
            proc.join(15.0)
            if proc.exitcode is None:
                proc.kill()
                proc.join()


def _message(conn: Connection) -> Any:
    try:
        return conn.recv() if conn.poll() else None
    except (EOFError, OSError):
        return None


def run_fleet(args: argparse.Namespace, options: Any, slices: list[tuple[int, int]]) -> int:
    """Serve the fleet from ``len(slices)`` processes until SIGINT/SIGTERM; the exit code."""
    fleet: _Fleet | None = None
    asked: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        asked.append(signum)
        if fleet is not None:
            fleet.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        fleet = _Fleet(args, options, slices)
        if asked:  # a signal while the children started
            fleet.stop()
        ready: dict[int, tuple[int, int]] = {}
        stats: list[dict[str, float]] = []
        wrapper = False
        live = set(range(len(slices)))
        while live:
            waiting = [fleet.conns[k] for k in live] + [fleet.procs[k].sentinel for k in live]
            wait(waiting)
            for k in sorted(live):
                exited = fleet.procs[k].exitcode is not None  # before the drain: no message lost
                msg = _message(fleet.conns[k])
                while msg is not None:
                    if msg[0] == "ready":
                        ready[k], wrapper = msg[1], msg[2]
                        if len(ready) == len(slices):
                            ports = (ready[0][0], ready[len(slices) - 1][1])
                            print(ready_line(args, options, wrapper, ports, len(slices)),
                                  flush=True)
                    elif msg[0] == "error":
                        print(f"tb-dlms simulate: {fleet.name(k)}: {msg[1]}", file=sys.stderr)
                        code = code or 2
                        fleet.stop()
                    else:
                        stats.append(msg[1])
                    msg = _message(fleet.conns[k])
                if exited:
                    live.discard(k)
                    if not fleet.stopping:
                        print(f"tb-dlms simulate: {fleet.name(k)} exited with code "
                              f"{fleet.procs[k].exitcode}; stopping the others", file=sys.stderr)
                        code = code or 1
                        fleet.stop()
    finally:
        if fleet is not None:
            fleet.reap()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stats:
        total = {key: sum(s[key] for s in stats) for key in stats[0]}
        print(stopped_line(total) + f" ({len(stats)} processes)", flush=True)
    return code
