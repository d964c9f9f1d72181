"""IEC 62056-47 wrapper framing over TCP."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.protocol.errors import DecodeError, DlmsError, LocalProtocolError
from tb_dlms.protocol.wrapper import WrapperFramer, WrapperPdu, encode_wrapper

# Any APDU will do: the wrapper does not look inside. These are the first bytes of an AARQ
# (tag 0x60, application-context-name LN) as a public client (wPort 16) sends it to the
# management logical device (wPort 1). The wrapper header is checked against Gurux in
# tests/interop/test_gurux_hdlc.py.
AARQ = bytes.fromhex("60 1D A1 09 06 07 60 85 74 05 08 01 01 BE 10 04 0E 01 00 00 00 06 5F 1F 04")


def test_header_layout():
    raw = encode_wrapper(AARQ, 16, 1)
    assert raw[:8] == bytes.fromhex("00 01 00 10 00 01") + len(AARQ).to_bytes(2, "big")
    assert raw[8:] == AARQ
    assert WrapperPdu(16, 1, AARQ).encode() == raw


def _feed(data: bytes, mode: str) -> list[WrapperPdu]:
    framer = WrapperFramer()
    out = []
    step = {"whole": len(data) or 1, "halves": len(data) // 2 + 1, "bytes": 1}[mode]
    for i in range(0, len(data), step):
        framer.feed(data[i : i + step])
        while (pdu := framer.next_pdu()) is not None:
            out.append(pdu)
    assert framer.buffered == 0
    return out


@pytest.mark.parametrize("mode", ["whole", "halves", "bytes"])
def test_stream_of_pdus(mode):
    pdus = [WrapperPdu(16, 1, AARQ), WrapperPdu(1, 16, b""), WrapperPdu(0x1234, 0xFFFF, bytes(300))]
    data = b"".join(p.encode() for p in pdus)
    assert _feed(data, mode) == pdus


def test_bad_version_fails_for_good():
    framer = WrapperFramer()
    framer.feed(bytes.fromhex("00 02 00 10 00 01 00 01 C0"))
    with pytest.raises(DecodeError, match="version") as info:
        framer.next_pdu()
    assert info.value.offset == 0
    # No resync on TCP: later good bytes do not help until the session reconnects.
    framer.feed(encode_wrapper(b"\xc0", 16, 1))
    with pytest.raises(DecodeError, match="reconnect"):
        framer.next_pdu()
    assert framer.failed and framer.buffered == 0
    framer.clear()
    framer.feed(encode_wrapper(b"\xc0", 16, 1))
    assert framer.next_pdu() == WrapperPdu(16, 1, b"\xc0")


def test_length_limit():
    framer = WrapperFramer(max_length=100)
    framer.feed(encode_wrapper(bytes(101), 1, 16)[:8])
    with pytest.raises(DecodeError, match="exceeds the limit 100") as info:
        framer.next_pdu()
    assert info.value.offset == 6


@pytest.mark.parametrize(
    "args",
    [(b"", -1, 1), (b"", 1, 0x10000), (bytes(0x10000), 1, 1)],
)
def test_encode_validation(args):
    with pytest.raises(LocalProtocolError):
        encode_wrapper(*args)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            WrapperPdu, st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.binary(max_size=200)
        ),
        max_size=5,
    )
)
def test_round_trip(pdus):
    data = b"".join(p.encode() for p in pdus)
    assert _feed(data, "bytes" if len(data) < 200 else "halves") == pdus


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_fuzz_only_dlms_errors(noise):
    framer = WrapperFramer()
    framer.feed(noise)
    try:
        while framer.next_pdu() is not None:
            pass
    except DlmsError:
        assert framer.failed
