"""An APDU the plain decoder does not take is named right in its error (the Green Book's
service-specific ciphering tags: requests 0xC8.., responses 0xCC.., dedicated 0xD0..)."""

from __future__ import annotations

import pytest
from tb_dlms.protocol.apdu import decode_apdu
from tb_dlms.protocol.errors import DecodeError
from tb_dlms.protocol.security.apdu import KeyKind, ciphered_tag


@pytest.mark.parametrize(("tag", "name"), [
    (0xC8, "glo-get-request"), (0xCC, "glo-get-response"), (0xCF, "glo-action-response"),
    (0xD0, "ded-get-request"), (0xD4, "ded-get-response"), (0xDB, "general-glo-ciphering"),
])
def test_ciphered_tags_are_named_in_the_error(tag: int, name: str) -> None:
    with pytest.raises(DecodeError, match=f"^{name} is not decoded here"):
        decode_apdu(bytes((tag, 0x00)))


def test_the_names_agree_with_the_security_layer_tag_table() -> None:
    assert ciphered_tag(0xC0) == 0xC8  # get-request
    assert ciphered_tag(0xC4, KeyKind.DEDICATED) == 0xD4  # get-response
