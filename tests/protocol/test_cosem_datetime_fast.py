"""The quick path for plain stamps says exactly what the general path says, or steps aside."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.cosem_datetime import CosemDateTime, stamp_datetime, stamp_isoformat
from tb_dlms.protocol.errors import DlmsError

_DT = struct.Struct(">HBBBBBBBhB")

# Mostly plausible fields, with every special and out-of-range value mixed in.
stamps = st.builds(
    _DT.pack,
    st.one_of(st.integers(1970, 2100), st.sampled_from([0, 0xFFFF])),
    st.one_of(st.integers(1, 12), st.sampled_from([0, 13, 0xFD, 0xFE, 0xFF])),
    st.one_of(st.integers(1, 31), st.sampled_from([0, 32, 0xFD, 0xFE, 0xFF])),
    st.one_of(st.integers(1, 7), st.sampled_from([0, 8, 0xFF])),
    st.one_of(st.integers(0, 23), st.sampled_from([24, 0xFF])),
    st.one_of(st.integers(0, 59), st.sampled_from([60, 0xFF])),
    st.one_of(st.integers(0, 59), st.sampled_from([60, 0xFF])),
    st.one_of(st.integers(0, 99), st.sampled_from([100, 0xFF])),
    st.one_of(st.integers(-840, 840), st.sampled_from([-0x8000, 900, -900])),
    st.one_of(st.integers(0, 0x8F), st.sampled_from([0xFE, 0xFF])),
)


@settings(max_examples=3000, deadline=None)
@given(stamps, st.sampled_from([-1, 1]))
def test_quick_paths_agree_with_the_general_path(b: bytes, sign: int) -> None:
    try:
        general = CosemDateTime.from_bytes(b)
    except DlmsError:
        general = None
    text = stamp_isoformat(b, sign)
    if text is not None:
        assert general is not None and text == general.isoformat(deviation_sign=sign)
    quick = stamp_datetime(b, sign)
    if quick is not None:
        assert general is not None
        assert quick == (general.to_datetime(deviation_sign=sign), int(general.clock_status or 0))


@pytest.mark.parametrize("b", [
    bytes.fromhex("07EA0C04040C1E0000FF8800"),  # deviation -120, plain
    bytes.fromhex("07EA0C04040C1E0032800000"),  # no deviation: text yes, datetime no
])
def test_plain_stamps_take_the_quick_path(b: bytes) -> None:
    assert stamp_isoformat(b) == CosemDateTime.from_bytes(b).isoformat()
    assert (stamp_datetime(b) is None) == (CosemDateTime.from_bytes(b).deviation is None)
