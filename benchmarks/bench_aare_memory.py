"""Memory benchmark (issue 8): decoding AAREs whose conformance blocks are random, as a hostile or
broken meter may send them. Python's Flag keeps every composite value it builds; Conformance keeps
only a few, so memory must stay flat however many distinct values come in.

Prints figures, asserts nothing. Run: python benchmarks/bench_aare_memory.py [count]
"""

from __future__ import annotations

import gc
import random
import sys
import tracemalloc

from tb_dlms.protocol.apdu.acse import AARE
from tb_dlms.protocol.apdu.xdlms import Conformance, InitiateResponse


def main(count: int) -> None:
    rng = random.Random(8)
    raws = [AARE(user_information=InitiateResponse(Conformance.NONE, 512)).encode()]
    template = raws[0]
    at = template.find(b"\x5f\x1f\x04\x00") + 4  # where the three conformance octets sit
    cached = len(Conformance._value2member_map_)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(count):
        raw = template[:at] + rng.getrandbits(24).to_bytes(3, "big") + template[at + 3:]
        AARE.decode(raw)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    grown = len(Conformance._value2member_map_) - cached
    print(f"{count} AAREs with random conformance: +{grown} cached values, "
          f"+{(after - before) / 1e6:.2f} MB still allocated")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
