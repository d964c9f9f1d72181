"""Ciphering benchmark (issue 10): encrypt + decrypt of one typical 9-register GET-with-list answer.

The APDU is the get-response-with-list of a steady poll cycle (9 double-long-unsigned values,
~60 octets). For each protection level, and for each implementation -- ours
(tb_dlms.protocol.security) and gurux-dlms's GXDLMSChippering (test-only peer) -- it times one
encrypt (as the meter would) plus one decrypt (as the client does), in microseconds per APDU, and
checks on every iteration that the plaintext came back. Each side deciphers its own output, so
both pay the same work.

Prints figures, asserts nothing. Run: python benchmarks/bench_cipher.py [iterations]
"""

from __future__ import annotations

import contextlib
import io
import platform
import statistics
import sys
import time
from collections.abc import Callable

from tb_dlms.protocol.apdu import GetResponseWithList
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.security import GcmKey, Policy, SecurityContext, SecurityControl

EK = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
AK = bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
SERVER = bytes.fromhex("4D4D4D0000BC614E")
PLAIN = GetResponseWithList(1, tuple(
    Typed(DataType.DOUBLE_LONG_UNSIGNED, 2301 + 7 * i) for i in range(9))).encode()


def ours(policy: Policy) -> Callable[[int], bytes]:
    ctx, control = SecurityContext(GcmKey(EK, AK)), SecurityControl(policy)

    def cycle(counter: int) -> bytes:
        apdu = ctx.encrypt(PLAIN, control, SERVER, counter)
        return ctx.decrypt(apdu, SERVER, required=policy).apdu

    return cycle


def gurux(policy: Policy) -> Callable[[int], bytes] | None:
    try:
        from gurux_dlms import GXByteBuffer
        from gurux_dlms.AesGcmParameter import AesGcmParameter
        from gurux_dlms.enums import Command, Security
        from gurux_dlms.GXDLMSChippering import GXDLMSChippering
    except ImportError:
        return None
    security = {Policy.AUTHENTICATION: Security.AUTHENTICATION,
                Policy.ENCRYPTION: Security.ENCRYPTION,
                Policy.AUTHENTICATED_ENCRYPTION: Security.AUTHENTICATION_ENCRYPTION}[policy]

    def cycle(counter: int) -> bytes:
        p = AesGcmParameter(Command.GLO_GET_RESPONSE, SERVER, EK, AK)
        p.security, p.invocationCounter = security, counter
        apdu = GXDLMSChippering.encryptAesGcm(p, PLAIN)
        q = AesGcmParameter(0, SERVER, EK, AK)
        return bytes(GXDLMSChippering.decryptAesGcm(None, q, GXByteBuffer(apdu)))

    return cycle


def measure(cycle: Callable[[int], bytes], iterations: int) -> float:
    """Median over 5 runs of the mean µs per APDU (encrypt + decrypt)."""
    runs = []
    counter = 1
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iterations):
            if cycle(counter) != PLAIN:
                raise SystemExit("round trip failed")
            counter += 1
        runs.append((time.perf_counter() - start) * 1e6 / iterations)
    return statistics.median(runs)


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"python {platform.python_version()} on {platform.machine()}; "
          f"APDU: get-response-with-list, 9 registers, {len(PLAIN)} octets plain; "
          f"{iterations} iterations x 5 runs, median")
    print(f"{'protection':<10} {'ours µs':>9} {'gurux µs':>9} {'ratio':>7}")
    for policy in Policy:
        mine = measure(ours(policy), iterations)
        peer = gurux(policy)
        # Gurux's pure-Python AES is slow: fewer iterations give the same median.
        with contextlib.redirect_stdout(io.StringIO()):  # Gurux prints on every decrypt
            theirs = measure(peer, max(20, iterations // 50)) if peer else None
        ratio = f"{theirs / mine:6.1f}x" if theirs else "-"
        shown = theirs if theirs else float("nan")
        print(f"{policy.label:<10} {mine:9.1f} {shown:9.1f} {ratio:>7}")
    print("(one encrypt by the meter side + one decrypt by the client side, per APDU)")


if __name__ == "__main__":
    main()
