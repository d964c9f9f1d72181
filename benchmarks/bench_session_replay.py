"""Session cost of one steady cycle, warm and without I/O: what the engine pays per meter per
cycle in ``SessionMachine`` alone (request out, answer in, readings built).

A simulated meter (sans-IO, in process) answers 32 cycles; the answers are recorded, then the same
machine is driven again with the recorded answers replayed (the invoke id and HDLC sequence
numbers repeat every 16 and 8 cycles, so the recording fits every later cycle). Prints CPU per
cycle and per register for the express path and for the full path (``express=False``).

Run: python benchmarks/bench_session_replay.py [--cycles 200000]
"""

from __future__ import annotations

import argparse
import time

from tb_dlms.session import SessionSettings
from tb_dlms.session.machine import SessionMachine
from tb_dlms.session.reading import Ref
from tb_dlms.simulator.connection import ServerSession as SimSession
from tb_dlms.simulator.connection import SimulatedMeter
from tb_dlms.simulator.model import MeterModel
from tb_dlms.simulator.values import REGISTERS

REFS = tuple(Ref(3, r.obis, 2) for r in REGISTERS)


def exchange(machine: SessionMachine, peer: SimSession) -> None:
    while machine.busy:
        out = machine.data_to_send()
        if out:
            machine.receive_data(peer.receive(out), 0.0)
        else:
            machine.check_timeout(1e9)


def measure(express: bool, cycles: int) -> tuple[float, int, int]:
    model = MeterModel(0, clock=lambda: 1.7e9)
    peer = SimSession(SimulatedMeter(model, 1))
    machine = SessionMachine(SessionSettings(express=express), wall_clock=time.time)
    machine.connect(0.0)
    exchange(machine, peer)
    machine.result()
    for _ in range(2):  # scalers (may take segments), then the answer the express path learns
        machine.read(REFS, 0.0)
        exchange(machine, peer)
        machine.result()
    replay = []
    for _ in range(16):  # the invoke ids' period, a multiple of the HDLC sequence's
        machine.read(REFS, 0.0)
        replay.append(peer.receive(machine.data_to_send()))
        machine.receive_data(replay[-1], 0.0)
        if machine.busy:
            raise SystemExit("a steady cycle took more than one frame each way")
        machine.result()
    read, send, receive, result = (machine.read, machine.data_to_send, machine.receive_data,
                                   machine.result)
    start = time.process_time()
    for i in range(cycles):
        read(REFS, 0.0)
        send()
        receive(replay[i & 15], 0.0)
        result()
    cpu = time.process_time() - start
    return cpu / cycles, machine.express_cycles, machine.express_fallbacks


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cycles", type=int, default=100_000)
    args = p.parse_args()
    n = len(REFS)
    for express in (True, False):
        per_cycle, hits, misses = measure(express, args.cycles)
        label = "express path" if express else "full path   "
        print(f"{label}: {1e6 * per_cycle:6.1f} us per cycle of {n} registers, "
              f"{1e6 * per_cycle / n:5.2f} us per register (express answers {hits}, "
              f"fallbacks {misses})")


if __name__ == "__main__":
    main()
