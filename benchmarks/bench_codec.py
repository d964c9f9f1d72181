"""Codec benchmark (issue: protocol core): one 9-register GET-with-list cycle, HDLC included.

For each client implementation -- ours (HdlcConnection + Association, client role) and gurux-dlms
(GXDLMSClient) -- it measures the microseconds spent by the CLIENT to encode the request frame and
to decode the response frame into values. The meter side is our own server-role core (untimed), so
every loop is also a live interoperability check: values are verified on each iteration.

Prints figures, asserts nothing. Run: python benchmarks/bench_codec.py [iterations]
"""

from __future__ import annotations

import platform
import statistics
import sys
import time

from tb_dlms.protocol.apdu import AttributeDescriptor
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.association import (
    NEED_DATA,
    Association,
    AssociationSettings,
    GetRequested,
    GetResult,
    Role,
)
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.hdlc import DataReceived, HdlcAddress, HdlcConnection, LinkParameters
from tb_dlms.protocol.obis import Obis

CODES = ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0", "1-1:31.7.0", "1-1:51.7.0", "1-1:71.7.0",
         "1-1:14.7.0", "1-1:1.7.0", "1-1:1.8.0")
VALUES = tuple(Typed(DataType.DOUBLE_LONG_UNSIGNED, 2301 + 7 * i) for i in range(9))
EXPECTED = [v.value for v in VALUES]
PARAMS = LinkParameters(max_info_tx=1024, max_info_rx=1024)


class Meter:
    """Our server-role core: answers every GET-with-list with VALUES."""

    def __init__(self) -> None:
        self.link = HdlcConnection(Role.SERVER, HdlcAddress(16), HdlcAddress(1), PARAMS)
        conformance = Conformance(0x00701F) | Conformance.MULTIPLE_REFERENCES
        self.assoc = Association(Role.SERVER, AssociationSettings(conformance=conformance))

    def handle(self, data: bytes) -> bytes:
        self.link.receive_data(data)
        out = [self.link.data_to_send()]
        while (event := self.link.next_event()) is not NEED_DATA:
            if not isinstance(event, DataReceived):
                continue
            self.assoc.receive_data(event.apdu)
            while (request := self.assoc.next_event()) is not NEED_DATA:
                if isinstance(request, GetRequested):
                    reply = self.assoc.respond_get(request.invoke_id, VALUES[: len(request.items)])
                    out.append(self.link.send_data(reply))
            answer = self.assoc.data_to_send()
            if answer:
                out.append(self.link.send_data(answer))
        out.append(self.link.data_to_send())
        return b"".join(out)


def ours(iterations: int) -> tuple[list[float], list[float]]:
    meter = Meter()
    link = HdlcConnection(Role.CLIENT, HdlcAddress(16), HdlcAddress(1), PARAMS)
    assoc = Association(Role.CLIENT, AssociationSettings())

    def exchange(frames: bytes) -> list:
        link.receive_data(meter.handle(frames))
        apdus = []
        while (event := link.next_event()) is not NEED_DATA:
            if isinstance(event, DataReceived):
                apdus.append(event.apdu)
        return apdus

    exchange(link.connect())
    for apdu in exchange(link.send_data(assoc.associate())):
        assoc.receive_data(apdu)
        assoc.next_event()
    items = [(AttributeDescriptor(3, Obis.parse(c), 2), None) for c in CODES]
    enc, dec = [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        _, apdu = assoc.get_with_list(items)
        request = link.send_data(apdu)
        t1 = time.perf_counter()
        response = meter.handle(request)
        t2 = time.perf_counter()
        link.receive_data(response)
        result = None
        while (event := link.next_event()) is not NEED_DATA:
            if isinstance(event, DataReceived):
                assoc.receive_data(event.apdu)
                result = assoc.next_event()
        t3 = time.perf_counter()
        assert isinstance(result, GetResult) and list(result.results) == EXPECTED
        enc.append(t1 - t0)
        dec.append(t3 - t2)
    return enc, dec


def gurux(iterations: int) -> tuple[list[float], list[float]] | None:
    try:
        from gurux_dlms import GXByteBuffer, GXDLMSClient, GXReplyData
        from gurux_dlms.enums import Authentication, InterfaceType
        from gurux_dlms.enums import Conformance as GxConformance
        from gurux_dlms.objects import GXDLMSRegister
    except ImportError:
        return None
    meter = Meter()
    client = GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.HDLC)
    client.hdlcSettings.maxInfoTX = client.hdlcSettings.maxInfoRX = 1024
    reply = GXReplyData()
    client.getData(GXByteBuffer(meter.handle(bytes(client.snrmRequest()))), reply)
    client.parseUAResponse(reply.data)
    reply = GXReplyData()
    client.getData(GXByteBuffer(meter.handle(bytes(client.aarqRequest()[0]))), reply)
    client.parseAareResponse(reply.data)
    client.negotiatedConformance |= GxConformance.MULTIPLE_REFERENCES
    registers = [GXDLMSRegister(Obis.parse(c).dotted()) for c in CODES]
    pairs = [(r, 2) for r in registers]
    enc, dec = [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        frames = client.readList(pairs)
        t1 = time.perf_counter()
        response = meter.handle(bytes(frames[0][0]))  # readList: one list of frames per request
        t2 = time.perf_counter()
        reply = GXReplyData()
        client.getData(GXByteBuffer(response), reply)
        client.updateValues(pairs, reply.value)
        t3 = time.perf_counter()
        assert [r.value for r in registers] == EXPECTED, [r.value for r in registers]
        enc.append(t1 - t0)
        dec.append(t3 - t2)
    return enc, dec


def line(name: str, enc: list[float], dec: list[float]) -> str:
    e, d = statistics.median(enc) * 1e6, statistics.median(dec) * 1e6
    return f"{name:<12} {e:>10.1f} {d:>10.1f} {e + d:>10.1f} {(e + d) / 9:>13.2f}"


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    print(f"9-register GET-with-list, HDLC included, median of {iterations} cycles, "
          f"Python {platform.python_version()} on {platform.machine()}")
    print(f"{'client':<12} {'encode µs':>10} {'decode µs':>10} {'total µs':>10} {'µs/register':>13}")
    enc, dec = ours(iterations)
    print(line("tb_dlms", enc, dec))
    result = gurux(iterations)
    if result is None:
        print("gurux-dlms  not installed (pip install gurux-dlms)")
    else:
        print(line("gurux-dlms", *result))
        ours_total = statistics.median(enc) + statistics.median(dec)
        gurux_total = statistics.median(result[0]) + statistics.median(result[1])
        print(f"gurux / tb_dlms: {gurux_total / ours_total:.1f}x")


if __name__ == "__main__":
    main()
