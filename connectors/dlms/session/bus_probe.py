"""Which HDLC physical addresses answer on one line (an RS-485 bus, a concentrator's TCP port).

For each address: one SNRM, and the answer waited for ``timeout`` seconds. A UA (the meter
accepts the link; it is closed again at once with DISC) or a DM (the meter is there but refuses
a link now) counts as an answer; silence, or frames for other stations, does not. The whole
probe is bounded: addresses x (timeout + a DISC of at most ``timeout``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..protocol.errors import DlmsError
from ..protocol.hdlc import (
    NEED_DATA,
    Connected,
    Disconnected,
    HdlcAddress,
    HdlcConnection,
    LinkState,
    Role,
)
from ..transport.base import Transport

__all__ = ["ProbeAnswer", "probe_bus"]


@dataclass(frozen=True)
class ProbeAnswer:
    physical: int
    answer: str  # "UA" or "DM"
    round_trip_ms: float


def _wait(link: HdlcConnection, transport: Transport, until: float,
          clock: Callable[[], float]) -> Connected | Disconnected | None:
    """The link's next Connected / Disconnected event, or None at ``until``."""
    while True:
        event = link.next_event()
        if isinstance(event, (Connected, Disconnected)):
            return event
        if event is not NEED_DATA:
            continue  # an unexpected or rejected frame: keep listening until the deadline
        left = until - clock()
        if left <= 0:
            return None
        chunk = transport.read(left)
        if chunk:
            link.receive_data(chunk)


def probe_bus(
    transport: Transport,
    addresses: Iterable[int],
    *,
    client: int = 16,
    logical: int = 1,
    address_size: int | None = None,
    timeout: float = 0.3,
    clock: Callable[[], float] = time.monotonic,
) -> list[ProbeAnswer]:
    """Probe each physical address on an open ``transport`` (see the module doc)."""
    found = []
    for physical in addresses:
        server = (HdlcAddress(logical, physical, address_size) if address_size
                  else HdlcAddress.server(logical, physical))
        link = HdlcConnection(Role.CLIENT, HdlcAddress(client), server)
        transport.discard_input()
        start = clock()
        transport.write(link.connect())
        try:
            event = _wait(link, transport, start + timeout, clock)
        except DlmsError:
            event = None  # garbage on the line is no answer
        if event is None:
            continue
        elapsed = (clock() - start) * 1000.0
        if isinstance(event, Connected):
            found.append(ProbeAnswer(physical, "UA", round(elapsed, 1)))
            transport.write(link.disconnect())
            try:
                _wait(link, transport, clock() + timeout, clock)
            except DlmsError:
                pass
        elif link.state is LinkState.DISCONNECTED and "DM" in event.reason:
            found.append(ProbeAnswer(physical, "DM", round(elapsed, 1)))
    return found
