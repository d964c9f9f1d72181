"""HDLC SNRM/UA parameter negotiation: encoding, decoding, defaults, negotiation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import DecodeError, DlmsError, LocalProtocolError
from tb_dlms.protocol.hdlc.params import (
    LinkParameters,
    decode_parameters,
    encode_parameters,
    negotiate,
)


def test_defaults_are_the_green_book_ones():
    assert LinkParameters() == LinkParameters(128, 128, 1, 1)
    assert decode_parameters(b"") == LinkParameters()


def test_encoding_of_the_defaults():
    # Green Book layout: 81 80 len, then 05/06 (max info TX/RX), 07/08 (window TX/RX, 4 bytes).
    assert encode_parameters(LinkParameters()) == bytes.fromhex(
        "81 80 12 05 01 80 06 01 80 07 04 00 00 00 01 08 04 00 00 00 01"
    )


def test_two_byte_lengths():
    raw = encode_parameters(LinkParameters(max_info_tx=1000, max_info_rx=256, window_tx=7))
    assert raw[3:11] == bytes.fromhex("05 02 03 E8 06 02 01 00")
    assert decode_parameters(raw) == LinkParameters(1000, 256, 7, 1)


def test_decodes_gurux_snrm_field():
    # Information field of the SNRM built by gurux_dlms 1.0.203 with maxInfoTX=32, maxInfoRX=64,
    # windowSizeTX=3: Gurux omits parameters at their default value.
    info = bytes.fromhex("81 80 0C 05 01 20 06 01 40 07 04 00 00 00 03")
    assert decode_parameters(info) == LinkParameters(32, 64, 3, 1)


def test_absent_parameters_take_defaults_and_unknown_ones_are_skipped():
    assert decode_parameters(bytes.fromhex("81 80 03 06 01 40")) == LinkParameters(128, 64, 1, 1)
    assert decode_parameters(bytes.fromhex("81 80 06 09 01 55 05 01 20")) == LinkParameters(32)
    assert decode_parameters(bytes.fromhex("81 80 00")) == LinkParameters()


def test_offers_beyond_the_frame_format_mean_as_much_as_fits():
    info = bytes.fromhex("81 80 0A 05 02 10 00 07 04 00 00 00 0F")
    assert decode_parameters(info) == LinkParameters(max_info_tx=2030, window_tx=7)


@pytest.mark.parametrize(
    "raw,offset",
    [
        ("80", 0),
        ("82 80 00", 0),
        ("81 81 00", 1),
        ("81 80 05 05 01 80", 2),
        ("81 80 02 05 01", 4),
        ("81 80 03 05 00 80", 4),
        ("81 80 03 05 05 80", 4),
        ("81 80 01 05", 3),
        ("81 80 03 05 01 00", 5),
    ],
)
def test_malformed_fields(raw, offset):
    with pytest.raises(DecodeError) as info:
        decode_parameters(bytes.fromhex(raw))
    assert info.value.offset == offset


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"max_info_tx": 0}, "max_info_tx"),
        ({"max_info_rx": 2031}, "max_info_rx"),
        ({"window_tx": 8}, "window_tx"),
        ({"window_rx": 0}, "window_rx"),
    ],
)
def test_local_values_are_validated(kwargs, field):
    with pytest.raises(LocalProtocolError, match=field):
        LinkParameters(**kwargs)


def test_negotiation_swaps_directions():
    client = LinkParameters(max_info_tx=32, max_info_rx=512, window_tx=1, window_rx=3)
    server = LinkParameters(max_info_tx=256, max_info_rx=128, window_tx=7, window_rx=7)
    agreed = negotiate(client, server)
    # Server sends at most what the client receives (min 256, 512), receives at most what the
    # client sends (min 128, 32); window likewise.
    assert agreed == LinkParameters(max_info_tx=256, max_info_rx=32, window_tx=3, window_rx=1)
    assert agreed.swapped() == LinkParameters(32, 256, 1, 3)


parameters = st.builds(
    LinkParameters,
    st.integers(1, 2030),
    st.integers(1, 2030),
    st.integers(1, 7),
    st.integers(1, 7),
)


@settings(max_examples=200, deadline=None)
@given(parameters)
def test_round_trip(p):
    assert decode_parameters(encode_parameters(p)) == p


@settings(max_examples=200, deadline=None)
@given(parameters, parameters)
def test_negotiated_values_fit_both_sides(client, server):
    agreed = negotiate(client, server)
    assert agreed.max_info_tx <= server.max_info_tx and agreed.max_info_tx <= client.max_info_rx
    assert agreed.max_info_rx <= server.max_info_rx and agreed.max_info_rx <= client.max_info_tx
    assert agreed.window_tx <= client.window_rx and agreed.window_rx <= client.window_tx
    assert negotiate(agreed.swapped(), agreed) == agreed


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=30))
def test_fuzz_only_dlms_errors(noise):
    for raw in (noise, b"\x81\x80" + bytes((len(noise),)) + noise):
        try:
            decode_parameters(raw)
        except DlmsError:
            pass
