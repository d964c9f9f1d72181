"""GET-with-list planning: as few requests per cycle as the meter and we can take.

The original system sent two GETs per register every cycle. A cycle of N registers fits in one
``Get-Request-With-List`` as long as the request fits the server's max receive PDU size, the
response fits ours (so no block transfer is needed), and the meter's item cap is respected.

Sizes (xDLMS, LN referencing; Green Book GET service, A-XDR encoding):

- ``Get-Request-Normal`` = 3 (tag C0, choice 01, invoke-id-and-priority) + the item;
  ``Get-Request-With-List`` = 3 (C0 03 iid) + A-XDR quantity of items + the items. A plain
  item (``Cosem-Attribute-Descriptor-With-Selection``) is class-id 2 + OBIS 6 + attribute 1 = 9
  bytes, plus 1 byte for "no selective access": 10 bytes.
- ``Get-Response-Normal`` = 3 (C4 01 iid) + one ``Get-Data-Result``;
  ``Get-Response-With-List`` = 3 (C4 03 iid) + quantity + the results. A ``Get-Data-Result`` is
  1 choice byte plus the encoded Data (a double-long-unsigned register value: 1 + 1 + 4 = 6) or
  plus a one-byte data-access-result.

A batch of one item is sent as a plain GET normal. Greedy packing in order is optimal here: any
sub-range of a batch that fits also fits, so filling each batch as far as it goes gives the
fewest batches (the usual exchange argument).

The HDLC max information field length does not limit the APDU (HDLC segments it), but every
extra window costs a round trip: ``round_trips`` estimates them for the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..protocol.errors import LocalProtocolError

__all__ = [
    "REQUEST_ITEM_SIZE",
    "ItemSize",
    "WithListSupport",
    "plan_batches",
    "request_apdu_size",
    "response_apdu_size",
    "round_trips",
]

REQUEST_ITEM_SIZE = 10  # class-id 2 + OBIS 6 + attribute-id 1 + access-selection flag 1
_GET_HEADER = 3  # tag, choice (normal / with-list), invoke-id-and-priority
_LLC_HEADER = 3  # E6 E6 00 (request) / E6 E7 00 (response) ahead of the APDU in HDLC


@dataclass(frozen=True)
class ItemSize:
    """Estimated encoded sizes of one attribute reference in a GET request and its response."""

    request: int = REQUEST_ITEM_SIZE  # Cosem-Attribute-Descriptor-With-Selection
    response: int = 6  # Get-Data-Result: choice byte + Data (6 = a double-long-unsigned value)

    def __post_init__(self) -> None:
        if self.request < 1 or self.response < 1:
            raise LocalProtocolError(f"item sizes must be positive, got {self!r}")


def _quantity_len(n: int) -> int:
    """Bytes of an A-XDR length/quantity: one byte below 128, else 0x8k + k bytes."""
    return 1 if n < 0x80 else 1 + (n.bit_length() + 7) // 8


def request_apdu_size(items: Sequence[ItemSize], overhead: int = 0) -> int:
    """Encoded size of the GET request for ``items`` (normal for one item, with-list else)."""
    if len(items) == 1:
        return _GET_HEADER + items[0].request + overhead
    return _GET_HEADER + _quantity_len(len(items)) + sum(i.request for i in items) + overhead


def response_apdu_size(items: Sequence[ItemSize], overhead: int = 0) -> int:
    """Encoded size of the GET response for ``items`` (normal for one item, with-list else)."""
    if len(items) == 1:
        return _GET_HEADER + items[0].response + overhead
    return _GET_HEADER + _quantity_len(len(items)) + sum(i.response for i in items) + overhead


def plan_batches(
    items: Sequence[ItemSize],
    server_max_pdu: int,
    client_max_pdu: int,
    max_items: int | None = None,
    overhead: int = 0,
) -> list[list[int]]:
    """Split ``items`` into the fewest in-order batches (lists of indices) that fit the limits.

    Every batch of two or more items fits ``server_max_pdu`` (request), ``client_max_pdu``
    (response) and ``max_items``. An item too large even alone gets a batch of its own (block
    transfer is then unavoidable). ``overhead`` is added to every APDU, e.g. about 21 bytes for
    a ciphered APDU (tag, length, security control, frame counter, 12-byte tag).
    """
    if server_max_pdu < 1 or client_max_pdu < 1:
        raise LocalProtocolError("max PDU sizes must be positive")
    if max_items is not None and max_items < 1:
        raise LocalProtocolError(f"max_items must be >= 1, got {max_items!r}")
    if overhead < 0:
        raise LocalProtocolError(f"overhead must not be negative, got {overhead!r}")
    cap = len(items) if max_items is None else max_items
    req_room = server_max_pdu - _GET_HEADER - overhead
    resp_room = client_max_pdu - _GET_HEADER - overhead
    batches: list[list[int]] = []
    current: list[int] = []
    req_sum = resp_sum = 0
    for index, item in enumerate(items):
        if current:
            n = len(current) + 1
            q = _quantity_len(n)
            if (
                n <= cap
                and req_sum + item.request + q <= req_room
                and resp_sum + item.response + q <= resp_room
            ):
                current.append(index)
                req_sum += item.request
                resp_sum += item.response
                continue
            batches.append(current)
        current = [index]
        req_sum, resp_sum = item.request, item.response
    if current:
        batches.append(current)
    return batches


def round_trips(
    request_len: int,
    response_len: int,
    max_info_tx: int,
    max_info_rx: int,
    window: int = 1,
    window_rx: int | None = None,
) -> int:
    """HDLC exchanges needed for one request APDU and its response APDU.

    ``request_len`` / ``response_len`` are APDU sizes (the 3-byte LLC header is added here);
    ``max_info_tx`` / ``max_info_rx`` the negotiated max information field lengths for frames
    we send / receive; ``window`` the number of I-frames sent before an acknowledgement
    (``window_rx`` for the meter's frames, the same as ``window`` unless given).

    A segmented request needs one exchange per window (the meter acknowledges with RR); the last
    window is answered by the first response window; every further response window costs one
    RR from us: ``ceil(tx_segments / window) + ceil(rx_segments / window_rx) - 1``.
    """
    if request_len < 0 or response_len < 0:
        raise LocalProtocolError("APDU lengths must not be negative")
    rx_window = window if window_rx is None else window_rx
    if min(max_info_tx, max_info_rx, window, rx_window) < 1:
        raise LocalProtocolError("max info lengths and windows must be >= 1")
    tx_segments = -(-(request_len + _LLC_HEADER) // max_info_tx)
    rx_segments = -(-(response_len + _LLC_HEADER) // max_info_rx)
    return -(-tx_segments // window) + -(-rx_segments // rx_window) - 1


class WithListSupport:
    """Per-meter memory of whether GET-with-list may be used.

    - ``associated(granted, conformance)`` after every association: with-list is off while the
      negotiated conformance lacks multiple-references.
    - ``failed()`` when the meter refused or botched a with-list request (exception response,
      service error, no answer): after ``failure_limit`` such failures in a row, the meter is
      polled with single GETs and that is remembered across reconnects.
    - A remembered failure is retried when a later association negotiates a different
      conformance block (new firmware, other client), or after ``reset()``.

    ``conformance`` is taken as an opaque int: only a change matters here.
    """

    __slots__ = (
        "_conformance",
        "_failed_conformance",
        "_failed_flag",
        "_granted",
        "failure_limit",
        "failures",
    )

    def __init__(self, failure_limit: int = 1) -> None:
        if failure_limit < 1:
            raise LocalProtocolError(f"failure_limit must be >= 1, got {failure_limit!r}")
        self.failure_limit = failure_limit
        self.failures = 0  # consecutive with-list failures
        self._granted: bool | None = None  # unknown before the first association
        self._conformance: int | None = None
        self._failed_conformance: int | None = None
        self._failed_flag = False

    @property
    def usable(self) -> bool:
        return self._granted is not False and not self._failed_flag

    @property
    def reason(self) -> str:
        """Why with-list is off: "", "not-granted" or "failed"."""
        if self._granted is False:
            return "not-granted"
        return "failed" if self._failed_flag else ""

    def associated(self, granted: bool, conformance: int | None = None) -> bool:
        """A new association negotiated ``conformance``; returns ``usable``."""
        self._granted = bool(granted)
        if (
            self._failed_flag
            and conformance is not None
            and conformance != self._failed_conformance
        ):
            self._failed_flag = False  # the meter now offers something else: try again
            self.failures = 0
        self._conformance = conformance
        return self.usable

    def failed(self) -> bool:
        """The meter failed a with-list request; returns ``usable`` afterwards."""
        self.failures += 1
        if self.failures >= self.failure_limit and not self._failed_flag:
            self._failed_flag = True
            self._failed_conformance = self._conformance
        return self.usable

    def succeeded(self) -> None:
        """A with-list request was answered: isolated failures do not add up."""
        self.failures = 0

    def reset(self) -> None:
        """Forget a remembered failure (e.g. on an operator's request)."""
        self._failed_flag = False
        self._failed_conformance = None
        self.failures = 0
