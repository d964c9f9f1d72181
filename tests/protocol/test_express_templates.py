"""The express path's templates, layer by layer, against what each layer's full encoder produces.

The session's express path (session/express.py) compares a steady answer with templates instead of
decoding it: the link's ``expected_answer``, the wrapper header, the association's
``expected_with_list``, A-XDR's ``FixedRun``; ``Scaling`` scales. Each must be exactly what the
layer's own encoder puts on the wire (the server role encodes the answer here), and taking an answer
the express way must leave a layer in the state decoding it leaves.
"""

from __future__ import annotations

import struct

import pytest
from tb_dlms.protocol.apdu import AttributeDescriptor
from tb_dlms.protocol.apdu.get import GET_DATA_CHOICE, PreparedGetWithList
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.association import NEED_DATA, Association, Role
from tb_dlms.protocol.association_events import AssociationSettings
from tb_dlms.protocol.axdr import (
    DataType,
    Typed,
    compile_fixed,
    decode_data,
    encode_data,
    learn_fixed,
)
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.hdlc import DataReceived, Frame, FrameKind, HdlcAddress, HdlcConnection
from tb_dlms.protocol.hdlc.frame import encode_frame, encode_header
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.units import ScalerUnit, Scaling, apply_scaler
from tb_dlms.protocol.wrapper import encode_wrapper, encode_wrapper_header

CLIENT = HdlcAddress(16)
SERVER = HdlcAddress(1, 17, 2)


def drain(side) -> list:
    events = []
    while (event := side.next_event()) is not NEED_DATA:
        events.append(event)
    return events


def link_pair() -> tuple[HdlcConnection, HdlcConnection]:
    client = HdlcConnection(Role.CLIENT, CLIENT, SERVER)
    server = HdlcConnection(Role.SERVER, CLIENT, SERVER)
    server.receive_data(client.connect())
    drain(server)
    client.receive_data(server.data_to_send())
    drain(client)
    return client, server


# -- HDLC frame and link ----------------------------------------------------------------------

@pytest.mark.parametrize("kind, info", [(FrameKind.I, b"\xe6\xe7\x00" + bytes(40)),
                                        (FrameKind.RR, b""), (FrameKind.UA, b"\x81\x80\x00")])
def test_encode_frame_starts_with_encode_header(kind, info):
    frame = Frame(kind, CLIENT, SERVER, True, 3, 5, False, info)
    raw = encode_frame(frame)
    control = raw[1 + 2 + 1 + 2]  # after flag, format, 1-byte and 2-byte addresses
    assert raw.startswith(encode_header(CLIENT, SERVER, control, len(info)))
    assert len(raw) == len(encode_header(CLIENT, SERVER, control, len(info))) + len(info) + 3


@pytest.mark.parametrize("cache", [True, False], ids=["cached", "ciphered"])
def test_link_templates_equal_the_frames_both_roles_encode_over_the_wrap_around(cache):
    express, server = link_pair()
    full, twin_server = link_pair()
    answer_apdu = bytes.fromhex("c4 03 c1 01 00 06 00 00 30 39".replace(" ", ""))
    for cycle in range(20):  # N(S)/N(R) wrap at 8
        apdu = bytes((0xC0, 3, cycle))
        request = express.express_request(apdu, cache)
        assert request == full.send_data(apdu)  # what the full path sends, byte for byte
        assert express.express_request(apdu, cache) is None  # one frame in flight at a time
        assert bool(express._express_tx) is cache  # a ciphered request's frame is never kept
        server.receive_data(request)
        assert [type(e) for e in drain(server)] == [DataReceived]
        answer = server.send_data(answer_apdu)  # the server role's own encoder
        prefix = express.expected_answer(len(answer_apdu))
        assert prefix is not None and answer.startswith(prefix)
        assert answer[len(prefix):-3] == answer_apdu
        assert express.expected_answer(len(answer_apdu) + 1) != prefix  # the length is in it
        bad = answer[:-3] + bytes((answer[-3] ^ 1,)) + answer[-2:]
        assert not express.accept_answer(bad)  # a wrong FCS: nothing changes
        assert express.accept_answer(answer)
        assert express.expected_answer(len(answer_apdu)) is None  # nothing in flight any more
        twin_server.receive_data(request)
        drain(twin_server)
        full.receive_data(twin_server.send_data(answer_apdu))
        assert [e.apdu for e in drain(full)] == [answer_apdu]


def test_link_hands_out_no_template_when_one_frame_cannot_carry_the_answer():
    client, server = link_pair()
    client.express_request(b"\xc0\x03\x01")
    assert client.expected_answer(client.parameters.max_info_rx) is None  # LLC + APDU too long
    assert client.expected_answer(client.parameters.max_info_rx - 3) is not None
    assert client.express_request(bytes(client.parameters.max_info_tx)) is None
    quiet, _ = link_pair()  # nothing in flight: only the size says no
    too_long = bytes(quiet.parameters.max_info_tx - 2)  # + 3 octets of LLC
    assert quiet.express_request(too_long, cache=False) is None
    assert quiet.express_request(too_long[:-1], cache=False) is not None


def test_wrapper_header_is_what_encode_wrapper_puts_first():
    apdu = bytes(range(30))
    assert encode_wrapper(apdu, 1, 16) == encode_wrapper_header(1, 16, len(apdu)) + apdu


# -- association ------------------------------------------------------------------------------

def test_association_template_equals_the_server_roles_get_response_with_list():
    cli = Association(Role.CLIENT)
    srv = Association(Role.SERVER, AssociationSettings(
        conformance=Conformance(0x00701F) | Conformance.MULTIPLE_REFERENCES))
    srv.receive_data(cli.associate())
    drain(srv)
    cli.receive_data(srv.data_to_send())
    drain(cli)
    items = [(AttributeDescriptor(3, Obis(1, 0, 1, 8, 0, 255), 2), None)] * 3
    request = PreparedGetWithList(items)
    results = [Typed(DataType.DOUBLE_LONG_UNSIGNED, 7), Typed(DataType.LONG, -2),
               Typed(DataType.FLOAT64, 1.5)]
    assert cli.expected_with_list(0xC0) is None  # nothing outstanding
    for _ in range(20):  # invoke ids wrap at 16
        iid, apdu = cli.get_with_list(request)
        srv.receive_data(apdu)
        event = drain(srv)[0]
        answer = srv.respond_get(event.invoke_id, results)
        head = cli.expected_with_list(answer[2] & 0xF0)
        assert head is not None and answer.startswith(head)
        run = compile_fixed([int(r.type) for r in results], GET_DATA_CHOICE)
        assert len(head) + run.size == len(answer)
        assert run.values(answer, len(head)) == (7, -2, 1.5)
        cli.express_answered()
        assert cli.outstanding_invoke_id is None
    iid, apdu = cli.get(items[0][0])
    assert cli.expected_with_list(0xC0) is None  # a GET-normal is outstanding


# -- A-XDR ------------------------------------------------------------------------------------

FIXED = [(DataType.DOUBLE_LONG, -5), (DataType.DOUBLE_LONG_UNSIGNED, 2**32 - 1),
         (DataType.BCD, 0x12), (DataType.INTEGER, -128), (DataType.LONG, -300),
         (DataType.UNSIGNED, 255), (DataType.LONG_UNSIGNED, 65535), (DataType.LONG64, -(2**63)),
         (DataType.LONG64_UNSIGNED, 2**64 - 1), (DataType.ENUM, 7), (DataType.FLOAT32, 0.5),
         (DataType.FLOAT64, 230.1)]


def test_fixed_run_reads_what_decode_data_reads():
    body = b"".join(b"\x00" + encode_data(Typed(t, v)) for t, v in FIXED)
    run = learn_fixed(body, 0, len(FIXED), 0)
    assert run is not None and run.size == len(body)
    expected = []
    pos = 0
    for _ in FIXED:
        value, pos = decode_data(body, pos + 1)
        expected.append(value)
    assert run.values(body, 0) == tuple(expected)
    assert run.tags == tuple(int(t) for t, _ in FIXED)
    assert compile_fixed(run.tags, 0).values(body, 0) == tuple(expected)
    other = bytearray(body)
    other[1] = int(DataType.DOUBLE_LONG_UNSIGNED)  # same size, another type: refused
    assert run.values(bytes(other), 0) is None
    assert run.values(b"\x01" + body[1:], 0) is None  # another lead byte
    assert learn_fixed(body + b"\x00", 0, len(FIXED), 0) is None
    assert learn_fixed(b"\x00" + encode_data(Typed(DataType.OCTET_STRING, b"ab")), 0, 1, 0) is None
    with pytest.raises(LocalProtocolError):
        compile_fixed([int(DataType.OCTET_STRING)], 0)


# -- scaling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("scaler", [-4, -1, 0, 1, 3])
@pytest.mark.parametrize("raw", [0, 7, -2301, 123456789, 2**63 - 1, 0.1, -230.15, 1e300])
def test_scaling_is_apply_scaler(scaler, raw):
    scaling = Scaling.of(ScalerUnit(scaler, 35))
    value = scaling.apply(raw)
    expected = apply_scaler(raw, scaler)
    assert repr(value) == repr(expected)  # same type and same value, bit for bit
    assert (scaling.scaler, scaling.unit) == (scaler, "V")


def test_struct_codes_are_big_endian_like_the_decoder():
    run = compile_fixed([int(DataType.LONG_UNSIGNED)], 0)
    assert run.values(b"\x00\x12" + struct.pack(">H", 0x0102), 0) == (0x0102,)
