"""object_list (Association LN attribute 2) decoding: hand-built bytes for both method
access_mode encodings (v0 boolean, v1 enum), the access_mode flags of v3, lax types that real
meters send, and malformed input that must fail with an error naming the entry and field."""

from __future__ import annotations

import re

import pytest
from tb_dlms.protocol.axdr import encode_data
from tb_dlms.protocol.errors import DecodeError
from tb_dlms.protocol.obis import Obis
from tb_dlms.protocol.object_list import decode_object_list, parse_object_list


def association(version: int) -> str:
    # class 15, version, 0-0:40.0.0.255, no attribute or method rights listed
    return f"02 04 12 000F 11 {version:02x} 09 06 0000280000FF 02 02 0100 0100"


REGISTER = (
    "02 04 12 0003 11 00 09 06 0100200700FF"  # class 3 v0, 1-0:32.7.0.255
    " 02 02"
    "  01 03"  # three attributes
    "   02 03 0F 01 16 01 00"  # 1: read-only, no selectors
    "   02 03 0F 02 16 03 01 01 0F 01"  # 2: read-write, selector 1
    "   02 03 0F 03 16 00 00"  # 3: no access
    "  01 01 02 02 0F 01 {method}"  # method 1 (reset)
)


def listed(version: int, method: str) -> bytes:
    text = f"01 02 {association(version)} {REGISTER.format(method=method)}"
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize(("version", "method", "allowed"), [
    (0, "03 00", False), (0, "03 01", True),  # v0: boolean
    (1, "16 00", False), (1, "16 01", True), (1, "16 02", True),  # v1: enum, 2 authenticated
])
def test_both_association_versions_decode_method_access(version: int, method: str,
                                                        allowed: bool) -> None:
    own, register = decode_object_list(listed(version, method))
    assert (own.class_id, own.version, own.obis) == (15, version, Obis(0, 0, 40, 0, 0))
    assert register.class_id == 3 and register.obis == Obis.parse("1-0:32.7.0")
    assert [(a.id, a.readable, a.writable, a.selectors) for a in register.attributes] == [
        (1, True, False, ()), (2, True, True, (1,)), (3, False, False, ())]
    assert register.can_read(2) and not register.can_read(3) and not register.can_read(9)
    assert [(m.id, m.allowed) for m in register.methods] == [(1, allowed)]


def test_version_3_access_modes_are_bit_flags() -> None:
    # v3: 5 = read | authenticated request, 2 = write only, 8 = encrypted request without read
    own = (15, 3, bytes.fromhex("0000280000FF"), ([], []))
    reg = (3, 0, bytes.fromhex("0100200700FF"), ([(1, 2, None), (2, 5, None), (3, 8, None)],
                                                   [(1, 5)]))
    _, register = parse_object_list([own, reg])
    assert [(a.id, a.readable, a.writable) for a in register.attributes] == [
        (1, False, True), (2, True, False), (3, False, False)]
    assert register.methods[0].allowed


def test_the_callers_version_wins_over_the_list() -> None:
    # the list says v0 but the caller knows better: enum 2 counts as authenticated access
    _, register = decode_object_list(listed(0, "16 02"), association_version=1)
    assert register.methods[0].allowed


def test_lax_types_are_taken() -> None:
    # an unsigned access_mode instead of an enum, a boolean method id mistaken for an int, a
    # single selector without its array, method_access left out entirely
    value = [(3, 0, bytes.fromhex("0100010800FF"),
              ([(2, 1, 1), (3, True, None)],))]
    (obj,) = parse_object_list(value)
    assert obj.attributes[0].selectors == (1,) and obj.can_read(2) and obj.can_read(3)
    assert obj.methods == ()


def test_the_simulators_list_round_trips() -> None:
    from tb_dlms.simulator.objects import OBJECT_DEFS, OBJECT_LIST

    objects = decode_object_list(encode_data(OBJECT_LIST))
    assert [(o.class_id, o.obis) for o in objects] == [(d.class_id, d.obis) for d in OBJECT_DEFS]
    for obj, definition in zip(objects, OBJECT_DEFS):
        for attr in definition.attributes:
            assert obj.can_read(attr.id) == (attr.getter is not None), (obj.obis, attr.id)


@pytest.mark.parametrize(("data", "message"), [
    ("0F01", "expected an array"),
    ("01 01 0F 05", "entry 0: expected a structure"),
    ("01 01 02 02 12 0003 11 00", "entry 0: 2 elements, expected 4"),
    ("01 01 02 04 0A 01 41 11 00 09 06 0100200700FF 02 02 0100 0100",
     "entry 0 class_id: expected an integer"),
    ("01 01 02 04 12 0003 11 00 09 03 010020 02 02 0100 0100",
     "entry 0 (class 3) logical_name: expected 6 octets"),
    ("01 01 02 04 12 0003 11 00 09 06 0100200700FF 02 02 01 01 02 02 0F 02 0A 01 41 0100",
     "entry 0 access_rights attribute 0 access_mode: expected an integer"),
    ("01 01 02 04 12 0003 11 00 09 06 0100200700FF 0F 00",
     "entry 0 access_rights: expected a structure"),
    ("01 01 02 04 12 0003 11 00 09 06 0100200700FF 02 02 0100 0100 00",
     "1 bytes after the array"),
    ("01 05 02 04 12 0003", "overruns"),
])
def test_malformed_lists_fail_naming_the_entry_and_field(data: str, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        decode_object_list(bytes.fromhex(data.replace(" ", "")))
