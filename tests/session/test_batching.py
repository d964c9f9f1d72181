"""GET-with-list batch planning, WithListSupport memory and HDLC round-trip estimates."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.session.batching import (
    REQUEST_ITEM_SIZE,
    ItemSize,
    WithListSupport,
    plan_batches,
    request_apdu_size,
    response_apdu_size,
    round_trips,
)

REG = ItemSize(request=10, response=6)  # class 3 attribute 2, a double-long-unsigned value

# --- sizes ---------------------------------------------------------------------------------------


def test_request_sizes_follow_the_get_encoding():
    # Get-Request-Normal: C0 01 C1 | 00 03 | 01 01 20 07 00 FF | 02 | 00 -> 13 bytes
    assert request_apdu_size([REG]) == 13
    # Get-Request-With-List of 3: C0 03 C1 03 + 3 x 10 bytes -> 34 bytes
    assert request_apdu_size([REG] * 3) == 34
    # 128 items: the A-XDR quantity takes two bytes (81 80)
    assert request_apdu_size([REG] * 128) == 3 + 2 + 1280
    assert request_apdu_size([REG] * 2, overhead=21) == 3 + 1 + 20 + 21


def test_response_sizes_follow_the_get_encoding():
    # Get-Response-Normal: C4 01 C1 | 00 (data) 06 00 00 00 E6 -> 9 bytes
    single = bytes.fromhex("C401C10006000000E6")
    assert response_apdu_size([REG]) == len(single)
    # Get-Response-With-List of two results: C4 03 C1 02 | 00 06 xx xx xx xx | 00 06 xx xx xx xx
    pair = bytes.fromhex("C403C1020006000000E6000600000102")
    assert response_apdu_size([REG, REG]) == len(pair)


@pytest.mark.interop
def test_request_size_matches_gurux_read_list():
    """Cross-check: a GET-with-list built by Gurux (TCP wrapper, 8-byte header stripped)."""
    gurux = pytest.importorskip("gurux_dlms")
    from gurux_dlms.enums import Authentication, Conformance, InterfaceType
    from gurux_dlms.objects import GXDLMSRegister

    client = gurux.GXDLMSClient(True, 16, 1, Authentication.NONE, None, InterfaceType.WRAPPER)
    client.negotiatedConformance |= Conformance.MULTIPLE_REFERENCES
    obis = ["1.1.32.7.0.255", "1.1.52.7.0.255", "1.1.72.7.0.255", "1.1.14.7.0.255"]
    [[frame]] = client.readList([(GXDLMSRegister(o), 2) for o in obis])  # messages of frames
    apdu = bytes(frame[8:])
    assert apdu[:2] == b"\xc0\x03"
    assert len(apdu) == request_apdu_size([REG] * len(obis))


# --- plan_batches --------------------------------------------------------------------------------


def test_microstar_cycle_fits_one_request():
    # The 9 registers of the original system's table in one with-list instead of 18 GETs.
    assert plan_batches([REG] * 9, server_max_pdu=256, client_max_pdu=1024) == [list(range(9))]


def test_split_on_server_request_limit():
    # With-list of n plain items: 4 + 10 n bytes; 44 bytes hold 4 items.
    assert plan_batches([REG] * 10, server_max_pdu=44, client_max_pdu=65535) == [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
    ]


def test_split_on_client_response_limit():
    big = ItemSize(response=100)  # e.g. an octet-string of ~98 bytes
    # Response of n items: 4 + 100 n; 220 bytes hold 2.
    assert plan_batches([big] * 5, server_max_pdu=65535, client_max_pdu=220) == [
        [0, 1],
        [2, 3],
        [4],
    ]


def test_split_on_item_cap():
    assert plan_batches([REG] * 7, 65535, 65535, max_items=3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_quantity_length_growth_at_128_items():
    # 127 items: 3 + 1 + 1270 = 1274; 128 items would be 3 + 2 + 1280 = 1285 > 1284.
    plan = plan_batches([REG] * 200, server_max_pdu=1284, client_max_pdu=65535)
    assert [len(b) for b in plan] == [127, 73]


def test_oversized_item_gets_its_own_batch():
    huge = ItemSize(response=5000)  # a profile buffer: block transfer cannot be avoided
    plan = plan_batches([REG, REG, huge, REG], server_max_pdu=512, client_max_pdu=1024)
    assert plan == [[0, 1], [2], [3]]


def test_single_item_uses_normal_get_sizes():
    # 13 bytes fit a GET normal; two items with-list would need 24.
    assert plan_batches([REG, REG], server_max_pdu=13, client_max_pdu=1024) == [[0], [1]]


def test_ciphering_overhead_is_counted():
    assert plan_batches([REG] * 4, 44, 65535) == [[0, 1, 2, 3]]
    assert plan_batches([REG] * 4, 44, 65535, overhead=10) == [[0, 1, 2], [3]]


def test_empty_cycle_plans_nothing():
    assert plan_batches([], 256, 256) == []


@pytest.mark.parametrize(
    "args",
    [
        {"server_max_pdu": 0, "client_max_pdu": 100},
        {"server_max_pdu": 100, "client_max_pdu": -1},
        {"server_max_pdu": 100, "client_max_pdu": 100, "max_items": 0},
        {"server_max_pdu": 100, "client_max_pdu": 100, "overhead": -1},
    ],
)
def test_bad_limits_are_refused(args):
    with pytest.raises(LocalProtocolError):
        plan_batches([REG], **args)


def test_bad_item_size_is_refused():
    with pytest.raises(LocalProtocolError):
        ItemSize(request=0)
    assert ItemSize().request == REQUEST_ITEM_SIZE == 10


def _fits(batch, server, client, cap):
    return len(batch) == 1 or (
        len(batch) <= cap
        and request_apdu_size(batch) <= server
        and response_apdu_size(batch) <= client
    )


def _optimum(items, server, client, cap):
    """Fewest contiguous batches, by dynamic programming over every split."""
    best = [0] + [len(items) + 1] * len(items)
    for j in range(1, len(items) + 1):
        for i in range(j):
            if _fits(items[i:j], server, client, cap):
                best[j] = min(best[j], best[i] + 1)
    return best[-1]


ITEMS = st.lists(
    st.builds(ItemSize, request=st.integers(1, 40), response=st.integers(1, 300)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    items=ITEMS,
    server=st.integers(12, 400),
    client=st.integers(12, 1200),
    cap=st.none() | st.integers(1, 12),
)
def test_plan_respects_limits_keeps_order_and_is_minimal(items, server, client, cap):
    plan = plan_batches(items, server, client, cap)
    flat = [i for batch in plan for i in batch]
    assert flat == list(range(len(items)))  # every item exactly once, in order
    limit = len(items) if cap is None else cap
    for batch in plan:
        assert batch
        sized = [items[i] for i in batch]
        if len(batch) > 1:
            assert len(batch) <= limit
            assert request_apdu_size(sized) <= server
            assert response_apdu_size(sized) <= client
    if len(items) <= 20:  # the DP is quadratic: keep it on the small cases
        assert len(plan) == _optimum(items, server, client, limit)


# --- WithListSupport -----------------------------------------------------------------------------


def test_with_list_usable_by_default_and_when_granted():
    w = WithListSupport()
    assert w.usable and w.reason == ""
    assert w.associated(True, 0x00601D)
    assert w.usable


def test_with_list_off_when_not_granted_back_when_granted():
    w = WithListSupport()
    assert not w.associated(False, 0x00401D)
    assert w.reason == "not-granted"
    assert w.associated(True, 0x00601D)  # re-association negotiated multiple-references


def test_with_list_failure_is_remembered_across_reconnects():
    w = WithListSupport()
    w.associated(True, 0x00601D)
    assert not w.failed()
    assert w.reason == "failed"
    assert not w.associated(True, 0x00601D)  # same conformance: still single GETs


def test_with_list_retried_when_conformance_changes():
    w = WithListSupport()
    w.associated(True, 0x00601D)
    w.failed()
    assert w.associated(True, 0x00701D)  # new firmware, new conformance: try again
    assert w.failures == 0


def test_with_list_failure_limit_and_success_resets_count():
    w = WithListSupport(failure_limit=2)
    w.associated(True, 1)
    assert w.failed()  # one failure tolerated
    w.succeeded()
    assert w.failed()  # the count restarted
    assert not w.failed()
    w.reset()
    assert w.usable and w.failures == 0


def test_with_list_rejects_bad_limit():
    with pytest.raises(LocalProtocolError):
        WithListSupport(failure_limit=0)


# --- round_trips ---------------------------------------------------------------------------------


def test_round_trips_unsegmented_is_one():
    assert round_trips(34, 58, max_info_tx=128, max_info_rx=128) == 1


def test_round_trips_segmented_response_needs_rr_per_window():
    # 500-byte response + 3 LLC bytes with 128-byte info fields: 4 segments.
    assert round_trips(34, 500, 128, 128, window=1) == 4  # request, then 3 RR
    assert round_trips(34, 500, 128, 128, window=4) == 1  # one window carries it all
    assert round_trips(34, 500, 128, 128, window=1, window_rx=2) == 2


def test_round_trips_segmented_request():
    # 300-byte request + 3 = 3 segments of 128: two RR-acknowledged frames, then the answer.
    assert round_trips(300, 10, 128, 128) == 3
    assert round_trips(300, 10, 128, 128, window=3) == 1


def test_round_trips_llc_header_counts():
    assert round_trips(125, 10, 128, 128) == 1  # 128 bytes: one frame
    assert round_trips(126, 10, 128, 128) == 2  # 129 bytes: two frames


def test_round_trips_rejects_bad_arguments():
    with pytest.raises(LocalProtocolError):
        round_trips(10, 10, 0, 128)
    with pytest.raises(LocalProtocolError):
        round_trips(-1, 10, 128, 128)
