"""The session's pure parts: settings validation, trace masking, refs, rendering, read plans."""

from __future__ import annotations

import logging

import pytest
from tb_dlms.engine.spec import ObjectRef
from tb_dlms.protocol.apdu import DataAccessResult
from tb_dlms.protocol.association import Association, AssociationSettings, Authentication, Role
from tb_dlms.protocol.errors import ConfigError, DataAccessError, LocalProtocolError
from tb_dlms.protocol.hdlc import NEED_DATA, HdlcAddress, HdlcConnection, LinkParameters
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.units import ScalerUnit
from tb_dlms.session import (
    FrameTrace,
    HdlcChannel,
    Ref,
    ScalerCache,
    SessionSettings,
    WrapperChannel,
    render_value,
)
from tb_dlms.session.read_plan import DescriptorCache, ReadPlan
from tb_dlms.session.trace import secret_span

V1 = Obis.parse("1-1:32.7.0")


# ---- settings -----------------------------------------------------------------------------------
def test_settings_defaults_and_addresses():
    s = SessionSettings()
    assert (s.client, s.server_address, s.authentication) == (16, HdlcAddress(1), "none")
    assert SessionSettings(server_physical=17).server_address == HdlcAddress(1, 17, 2)
    assert SessionSettings(server_physical=300).server_address == HdlcAddress(1, 300, 4)
    assert SessionSettings(server_physical=5, address_size=4).server_address.size == 4
    w = SessionSettings(
        wrapper=True, client=1, server_logical=1, authentication="lls", password="x"
    )
    assert (w.client_wport, w.server_wport) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"address_size": 3}, "address_size"),
        ({"address_size": 1, "server_physical": 5}, "server_physical"),
        ({"address_size": 2}, "server_physical"),
        ({"address_size": 2, "server_physical": 200}, "server_physical"),
        ({"client": 200}, "client"),
        ({"authentication": "hls"}, "authentication"),
        ({"authentication": "lls"}, "password"),
        ({"response_timeout": 0}, "response_timeout"),
        ({"retries": -1}, "retries"),
        ({"max_info_tx": 20}, "max_info_tx"),
        ({"window_rx": 8}, "window_rx"),
        ({"deviation_sign": 0}, "deviation_sign"),
        ({"keepalive_margin": 200}, "keepalive_margin"),
        ({"wrapper": True, "server_physical": 3}, "server_physical"),
    ],
)
def test_settings_refuse_bad_values_naming_meter_and_field(kwargs, field):
    with pytest.raises(ConfigError, match=f"meter 'm1': {field}"):
        SessionSettings(name="m1", **kwargs)


def test_password_never_in_repr():
    s = SessionSettings(client=1, authentication="lls", password=b"22222222")
    assert "22222222" not in repr(s) and "22222222" not in str(s)
    assert s.password == b"22222222" and "password='***'" in repr(s)


# ---- trace --------------------------------------------------------------------------------------
def test_trace_keeps_the_last_frames_and_masks(caplog):
    trace = FrameTrace(size=3, clock=lambda: 0.0)
    for i in range(5):
        trace.record("tx", bytes([i, 0xAA, 0xBB]))
    trace.record("rx", b"\x01\x32\x32\x02", [(1, 3)])
    assert [e.data[0] for e in trace.entries()] == [3, 4, 1]
    assert trace.entries()[-1].hex == "01 ** ** 02"
    assert trace.entries()[-1].data == b"\x01\x00\x00\x02"  # the secret is not even stored
    with caplog.at_level(logging.WARNING):
        trace.dump(logging.getLogger("t"), "boom")
    assert "00:00:00.000Z rx 01 ** ** 02" in caplog.text


def _aarq(password: bytes) -> bytes:
    client = Association(Role.CLIENT, AssociationSettings(Authentication.LLS, password))
    return client.associate()


def _drain(link) -> None:
    while link.next_event() is not NEED_DATA:
        pass


@pytest.mark.parametrize(("max_info", "repeat"), [(32, 1), (128, 1), (32, 8), (40, 8)])
def test_hdlc_secret_spans_cover_the_password_across_segments(max_info, repeat):
    # repeat 8: over 8 segments, so N(S) wraps while the password is still being sent
    password = b"22222222-a-longer-secret-that-spans-segments" * repeat
    aarq = _aarq(password)
    start, end = secret_span(aarq, password)
    assert aarq[start:end] == password
    channel = HdlcChannel(SessionSettings(max_info_tx=max_info, max_info_rx=max_info))
    meter = HdlcConnection(
        Role.SERVER, HdlcAddress(16), HdlcAddress(1), LinkParameters(max_info, max_info)
    )
    meter.receive_data(channel.connect())
    _drain(meter)
    channel.receive_data(meter.data_to_send())
    _drain(channel.link)
    frames = [channel.send(aarq)]
    while True:  # segment, RR, next segment...
        meter.receive_data(frames[-1])
        _drain(meter)
        rr = meter.data_to_send()
        if not rr:
            break
        channel.receive_data(rr)
        _drain(channel.link)
        frames.append(channel.data_to_send())
    assert len(frames) == -(-(len(aarq) + 3) // max_info)
    shown = b"".join(f[a:b] for f in frames for a, b in channel.secret_spans(f, start, end))
    assert shown == password


def test_wrappersecret_span():
    aarq = _aarq(b"abc")
    start, end = secret_span(aarq, b"abc")
    channel = WrapperChannel(SessionSettings(wrapper=True))
    pdu = channel.send(aarq)
    ((a, b),) = channel.secret_spans(pdu, start, end)
    assert pdu[a:b] == b"abc"


# ---- refs, rendering, plans ---------------------------------------------------------------------
def test_ref_of_accepts_tuples_text_and_engine_objects():
    assert Ref.of((3, "1-1:32.7.0", 2)) == Ref(3, V1, 2)
    assert Ref.of(ObjectRef(3, V1, 2)) == Ref(3, V1, 2)
    assert Ref.of(Ref(3, V1, 2)).is_register_value
    with pytest.raises(LocalProtocolError):
        Ref.of((3, "1-1:32.7.0"))


def test_clock_rendering_with_the_deviation_sign_quirk():
    # 2024-05-01 10:00:00, deviation -120 (Blue Book: local = UTC + 2 h), status 0x80 (DST)
    raw = bytes.fromhex("07e80501030a000000ff8880")
    assert render_value(8, 2, raw) == "2024-05-01T10:00:00+02:00"
    assert render_value(8, 2, raw, deviation_sign=1) == "2024-05-01T10:00:00-02:00"
    assert render_value(1, 2, raw) == raw.hex()  # not a date-time attribute: plain octets
    assert render_value(1, 2, b"SIM1") == "SIM1"


def test_plan_reads_scalers_with_the_first_values_then_values_only():
    refs = [Ref(3, V1, 2), Ref(3, V1, 2), Ref(1, Obis.parse("0-0:96.1.0"), 2)]
    scalers = ScalerCache()
    plan = ReadPlan(refs, scalers, DescriptorCache(), True, 1024, 0xFFFF, None)
    ((_, args),) = plan.batches
    assert [(d.class_id, d.attribute) for d, _ in args] == [(3, 3), (3, 2), (3, 2), (1, 2)]
    scalers.put(3, V1, ScalerUnit(-1, 35))
    plan = ReadPlan(refs, scalers, DescriptorCache(), True, 1024, 0xFFFF, None)
    assert len(plan.batches[0][1]) == 3
    out = plan.readings(
        [2301, DataAccessResult.READ_WRITE_DENIED, b"S1"], [5, 5, 5], {}, scalers, -1
    )
    assert (out[0].value, out[0].unit, out[0].scaler, out[0].raw) == (230.1, "V", -1, 2301)
    assert isinstance(out[1], DataAccessError) and out[1].name == "read-write-denied"
    assert out[2].value == "S1" and out[2].scaler is None
    single = ReadPlan(refs, scalers, DescriptorCache(), False, 1024, 0xFFFF, None)
    assert [len(a) for _, a in single.batches] == [1, 1, 1]


def test_register_without_scaler_fails_with_the_scalers_result():
    refs = [Ref(3, V1, 2)]
    plan = ReadPlan(refs, ScalerCache(), DescriptorCache(), True, 1024, 0xFFFF, None)
    (out,) = plan.readings([2301], [1], {0: DataAccessResult.OBJECT_UNAVAILABLE}, ScalerCache(), -1)
    assert isinstance(out, DataAccessError) and out.name == "object-unavailable"
