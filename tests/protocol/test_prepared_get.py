"""PreparedGetWithList: the poll cycle's GET-with-list encoded once per invoke id must be the
very bytes GetRequestWithList encodes, and Association must treat it like the item list."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.apdu import AttributeDescriptor, GetRequestWithList, SelectiveAccess
from tb_dlms.protocol.apdu.get import PreparedGetWithList
from tb_dlms.protocol.apdu.xdlms import Conformance
from tb_dlms.protocol.association import (
    NEED_DATA,
    Association,
    AssociationSettings,
    GetRequested,
    GetResult,
    Role,
)
from tb_dlms.protocol.axdr import DataType, Typed
from tb_dlms.protocol.errors import LocalProtocolError
from tb_dlms.protocol.obis import Obis

# The nine registers of the seed document's poll (3 V, 3 A, Hz, W, Wh).
CODES = ("1-1:32.7.0", "1-1:52.7.0", "1-1:72.7.0", "1-1:31.7.0", "1-1:51.7.0", "1-1:71.7.0",
         "1-1:14.7.0", "1-1:1.7.0", "1-1:1.8.0")
ITEMS = [(AttributeDescriptor(3, Obis.parse(c), 2), None) for c in CODES]


@pytest.mark.parametrize("high_priority", [True, False])
@pytest.mark.parametrize("confirmed", [True, False])
def test_same_bytes_as_the_dataclass_for_every_invoke_id(high_priority, confirmed) -> None:
    prepared = PreparedGetWithList(ITEMS)
    for iid in range(16):
        expected = GetRequestWithList(iid, tuple(ITEMS), high_priority, confirmed).encode()
        assert prepared.encode(iid, high_priority, confirmed) == expected
        assert prepared.encode(iid, high_priority, confirmed) is prepared.encode(
            iid, high_priority, confirmed)  # cached, not rebuilt


def test_selective_access_and_sequence_view() -> None:
    access = SelectiveAccess(2, Typed(DataType.DOUBLE_LONG_UNSIGNED, 1))
    items = [ITEMS[0], (AttributeDescriptor(7, Obis.parse("1-0:99.1.0"), 2), access)]
    prepared = PreparedGetWithList(items)
    assert prepared.selective and len(prepared) == 2 and list(prepared) == items
    assert prepared.encode(3) == GetRequestWithList(3, tuple(items)).encode()
    with pytest.raises(LocalProtocolError):
        PreparedGetWithList([])
    with pytest.raises(LocalProtocolError):
        prepared.encode(16)


def _pair(conformance: Conformance) -> tuple[Association, Association]:
    cli = Association(Role.CLIENT)
    srv = Association(Role.SERVER, AssociationSettings(conformance=conformance))
    srv.receive_data(cli.associate())
    srv.next_event()
    cli.receive_data(srv.data_to_send())
    cli.next_event()
    return cli, srv


def test_association_sends_it_like_the_list_and_matches_the_answer() -> None:
    full = Conformance(0x00701F) | Conformance.MULTIPLE_REFERENCES
    cli, srv = _pair(full)
    prepared = PreparedGetWithList(ITEMS)
    ids = []
    for _ in range(17):  # wraps the invoke id around
        iid, raw = cli.get_with_list(prepared)
        assert raw == GetRequestWithList(iid, tuple(ITEMS)).encode()
        srv.receive_data(raw)
        request = srv.next_event()
        assert isinstance(request, GetRequested) and request.invoke_id == iid
        cli.receive_data(srv.respond_get(iid, [Typed(DataType.DOUBLE_LONG_UNSIGNED, 7)] * 9))
        result = cli.next_event()
        assert isinstance(result, GetResult) and result.invoke_id == iid
        assert cli.next_event() is NEED_DATA
        ids.append(iid)
    assert ids[:2] == [1, 2] and ids[15] == 0
    # The service checks still apply: the same request is refused without multiple-references.
    cli2, _ = _pair(Conformance(0x00701F))
    with pytest.raises(LocalProtocolError, match="get-with-list"):
        cli2.get_with_list(prepared)
