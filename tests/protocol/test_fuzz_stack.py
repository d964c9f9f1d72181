"""Bounded fuzz over the whole receive path: hostile bytes only ever raise our own errors.

Mutations of real frames (the seed document's Microstar SNRM, a Gurux-built AARQ) and random bytes
go into a client link, a server link + association and the capture decoder of ``tb-dlms decode``.
Every call must return or raise a DlmsError subclass; none may hang (pytest-timeout guards that).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tb_dlms.capture import describe
from tb_dlms.protocol.association import NEED_DATA, Association, AssociationSettings, Role
from tb_dlms.protocol.errors import DlmsError
from tb_dlms.protocol.hdlc import DataReceived, HdlcAddress, HdlcConnection

SEED_SNRM = bytes.fromhex("7EA00703 03938C117E")
GURUX_AARQ = bytes.fromhex(
    "7ea0440303106594e6e6006036a1090607608574050801018a0207808b0760857405080201ac0a80083232323232"
    "323232be10040e01000000065f1f0400401e5dffff09a17e"
)


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    def apply(edits: list[tuple[int, int]]) -> bytes:
        out = bytearray(seed)
        for pos, value in edits:
            out[pos % len(out)] = value
        return bytes(out)

    return st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 255)), max_size=4).map(apply)


payloads = st.one_of(st.binary(max_size=300), mutated(SEED_SNRM), mutated(GURUX_AARQ))


def drive_server(chunks: list[bytes]) -> None:
    link = HdlcConnection(Role.SERVER, HdlcAddress(1), HdlcAddress(1))
    assoc = Association(Role.SERVER, AssociationSettings(authentication="lls", password=b"22222222"))
    for chunk in chunks:
        try:
            link.receive_data(chunk)
            link.data_to_send()
            while (event := link.next_event()) is not NEED_DATA:
                if isinstance(event, DataReceived):
                    assoc.receive_data(event.apdu)
                    while assoc.next_event() is not NEED_DATA:
                        pass
                    assoc.data_to_send()
        except DlmsError:
            pass


@settings(max_examples=300, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=4))
def test_server_side_survives_anything(chunks):
    drive_server(chunks)


@settings(max_examples=300, deadline=None)
@given(st.lists(payloads, min_size=1, max_size=4))
def test_client_link_survives_anything(chunks):
    link = HdlcConnection(Role.CLIENT, HdlcAddress(1), HdlcAddress(1))
    link.connect()
    for chunk in chunks:
        try:
            link.receive_data(chunk)
            while link.next_event() is not NEED_DATA:
                pass
            link.data_to_send()
        except DlmsError:
            pass


@settings(max_examples=300, deadline=None)
@given(payloads.filter(bool))
def test_capture_decoder_only_raises_dlms_errors(data):
    try:
        out = describe(data, show_secrets=True)
    except DlmsError:
        return
    assert isinstance(out, dict)
