"""Steady-cycle CPU with ciphering, side by side in one run (issue: fast steady cycle with
ciphering): CPU per register of one 9-register GET-with-list cycle, client side only, for

- ours, plain: ``SessionMachine``'s express path, public client, nothing ciphered;
- ours, auth-enc: the same plan over HLS-GMAC with authenticated encryption (security suite 0),
  express path, and the full path (``express=False``) for reference;
- gurux-dlms, auth-enc: ``GXDLMSSecureClient`` (test-only peer, GPLv2, never imported by the
  package) building the same ciphered GET-with-list (``readList``) and parsing the same ciphered
  answer (``getData`` + ``updateValues``).

The meter is the simulator's sans-IO ``ServerSession`` (frozen clock, HDLC, 128-byte frames).
Ours is measured as in bench_session_replay, on recorded answers, without the meter's CPU: a twin
(same settings, same challenges, so the same bytes) first runs the cycles against the meter and
records every answer, then the measured machine, in the identical state, is fed them: process CPU
of the loop (read, data_to_send, receive_data, result). Every answer is recorded, none repeated:
a ciphered answer carries a counter that is accepted once. Gurux's pure-Python AES is ~100 times
slower: its client calls are timed each cycle (the meter's work between them untimed), median of
the cycles.

Prints figures, asserts nothing. Run: python benchmarks/bench_express_cipher.py [--cycles 20000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import platform
import statistics
import time
from typing import Any

from tb_dlms.session import SessionSettings
from tb_dlms.session.machine import SessionMachine
from tb_dlms.session.reading import Ref
from tb_dlms.simulator.connection import ServerSession, SimulatedMeter
from tb_dlms.simulator.model import (
    GREEN_BOOK_AUTH_KEY,
    GREEN_BOOK_BLOCK_KEY,
    MeterModel,
    MeterOptions,
)
from tb_dlms.simulator.values import REGISTERS

REFS = tuple(Ref(3, r.obis, 2) for r in REGISTERS)
N = len(REFS)
WARM = 3  # scalers, the answer the express path learns, one express cycle


def challenge() -> bytes:
    return bytes(range(16))  # the twins must send the same bytes: no random challenge


def world(security: str, express: bool) -> tuple[SessionMachine, ServerSession]:
    """A connected machine and its meter, warmed to the steady cycle."""
    options = MeterOptions(authentication="hls-gmac", security=security) if security else \
        MeterOptions()
    meter = ServerSession(SimulatedMeter(MeterModel(0, clock=lambda: 1.7e9, options=options), 1))
    if meter.meter.security is not None:
        meter.meter.security.challenge = challenge
    if security:
        settings = SessionSettings(
            client=1, authentication="hls-gmac", security=security, system_title=b"TBDLMS01",
            block_key=GREEN_BOOK_BLOCK_KEY, auth_key=GREEN_BOOK_AUTH_KEY, invocation_counter=1,
            express=express)
    else:
        settings = SessionSettings(express=express)
    machine = SessionMachine(settings, wall_clock=time.time)
    sec = machine.assoc.settings.security
    if sec is not None:
        sec.challenge = challenge
    machine.connect(0.0)
    exchange(machine, meter)
    machine.result()
    for _ in range(WARM):
        machine.read(REFS, 0.0)
        exchange(machine, meter)
        machine.result()
    return machine, meter


def exchange(machine: SessionMachine, meter: ServerSession) -> None:
    while machine.busy:
        out = machine.data_to_send()
        if out:
            machine.receive_data(meter.receive(out), 0.0)
        else:
            machine.check_timeout(1e9)


def ours(security: str, express: bool, cycles: int) -> tuple[float, int, int]:
    """CPU seconds per cycle of our client, express answers and fallbacks."""
    twin, meter = world(security, express)
    answers = []
    for _ in range(cycles):
        twin.read(REFS, 0.0)
        answers.append(meter.receive(twin.data_to_send()))
        twin.receive_data(answers[-1], 0.0)
        if twin.busy:
            raise SystemExit("a steady cycle took more than one frame each way")
        twin.result()
    machine, _ = world(security, express)
    read, send, receive, result = (machine.read, machine.data_to_send, machine.receive_data,
                                   machine.result)
    hits = machine.express_cycles
    start = time.process_time()
    for answer in answers:
        read(REFS, 0.0)
        send()
        receive(answer, 0.0)
        result()
    cpu = time.process_time() - start
    if machine.busy or machine.last_error is not None:
        raise SystemExit("the measured machine did not follow its twin")
    return cpu / cycles, machine.express_cycles - hits, machine.express_fallbacks


def gurux(cycles: int) -> float | None:
    """Seconds per cycle of gurux-dlms's client (median), or None when it is not installed."""
    try:
        from gurux_dlms import GXByteBuffer, GXReplyData
        from gurux_dlms.enums import Authentication, InterfaceType, Security
        from gurux_dlms.objects import GXDLMSRegister
        from gurux_dlms.secure import GXDLMSSecureClient
    except ImportError:
        return None
    options = MeterOptions(authentication="hls-gmac", security="auth-enc")
    meter = ServerSession(SimulatedMeter(MeterModel(0, clock=lambda: 1.7e9, options=options), 1))
    client = GXDLMSSecureClient(True, 1, 1, Authentication.HIGH_GMAC, None, InterfaceType.HDLC)
    client.ciphering.security = Security.AUTHENTICATION_ENCRYPTION
    client.ciphering.systemTitle = bytearray(b"GRX12345")
    client.ciphering.blockCipherKey = bytearray(GREEN_BOOK_BLOCK_KEY)
    client.ciphering.authenticationKey = bytearray(GREEN_BOOK_AUTH_KEY)
    client.ciphering.invocationCounter = 1

    def exchange(frame: Any) -> Any:
        reply = GXReplyData()
        client.getData(GXByteBuffer(meter.receive(bytes(frame))), reply)
        return reply

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):  # Gurux prints on every decrypt
        client.parseUAResponse(exchange(client.snrmRequest()).data)
        client.parseAareResponse(exchange(client.aarqRequest()[0]).data)
        client.parseApplicationAssociationResponse(
            exchange(client.getApplicationAssociationRequest()[0]).data)
        registers = [GXDLMSRegister(r.obis.dotted()) for r in REGISTERS]
        pairs = [(r, 2) for r in registers]
        spent = []
        for _ in range(cycles):
            t0 = time.process_time()
            (request,) = client.readList(pairs)[0]
            t1 = time.process_time()
            answer = meter.receive(bytes(request))
            t2 = time.process_time()
            reply = GXReplyData()
            client.getData(GXByteBuffer(answer), reply)
            client.updateValues(pairs, reply.value)
            t3 = time.process_time()
            spent.append(t1 - t0 + t3 - t2)
            sink.seek(0)
            sink.truncate()
    if any(r.value is None for r in registers):
        raise SystemExit("gurux-dlms read no values")
    return statistics.median(spent)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cycles", type=int, default=20_000)
    args = p.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}; one GET-with-list of {N} "
          f"registers per cycle, HDLC; ours {args.cycles} recorded cycles, gurux "
          f"{max(20, args.cycles // 100)} cycles")
    rows = [("ours, plain, express", "", True), ("ours, auth-enc, express", "auth-enc", True),
            ("ours, auth-enc, full path", "auth-enc", False)]
    figures = {}
    for label, security, express in rows:
        per_cycle, hits, misses = ours(security, express, args.cycles)
        figures[label] = per_cycle
        print(f"{label:<26} {1e6 * per_cycle:7.1f} us per cycle {1e6 * per_cycle / N:6.2f} us per "
              f"register (express answers {hits}, fallbacks {misses})")
    theirs = gurux(max(20, args.cycles // 100))
    if theirs is None:
        print("gurux-dlms not installed (pip install gurux-dlms)")
    else:
        print(f"{'gurux-dlms, auth-enc':<26} {1e6 * theirs:7.1f} us per cycle {1e6 * theirs / N:6.2f}"
              f" us per register")
    plain, ciphered = figures[rows[0][0]], figures[rows[1][0]]
    print(f"auth-enc / plain (ours, express): {ciphered / plain:.2f}x")
    if theirs is not None:
        print(f"gurux / ours (auth-enc): {theirs / ciphered:.0f}x")


if __name__ == "__main__":
    main()
