"""dlms.json security keys: HLS authentication, keys inline / from env / from a file, validated
like every other field, and never echoed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tb_dlms.connector.config import MASK, load_config, masked

BLOCK = "000102030405060708090A0B0C0D0E0F"
AUTH = "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
TITLE = "5442444C4D533031"


def meter(**kw: Any) -> dict[str, Any]:
    entry = {"deviceName": "H1", "connection": {"type": "tcp", "host": "127.0.0.1", "port": 1},
             "clientAddress": 1, "authentication": "hls-gmac", "systemTitle": TITLE,
             "blockCipherKey": BLOCK, "authenticationKey": AUTH,
             "timeseries": [{"key": "v", "obis": "1-0:32.7.0.255"}]}
    entry.update(kw)
    return {k: v for k, v in entry.items() if v is not None}


def session(entry: dict[str, Any], env: dict[str, str] | None = None) -> Any:
    cfg = load_config({"meters": [entry]}, env or {})
    assert not cfg.errors, cfg.errors
    return cfg.meters[0].spec.session


def errors(entry: dict[str, Any], env: dict[str, str] | None = None) -> list[str]:
    return list(load_config({"meters": [entry]}, env or {}).errors)


def test_inline_keys() -> None:
    s = session(meter())
    assert s.authentication == "hls-gmac" and s.security == "auth-enc"
    assert s.block_key == bytes.fromhex(BLOCK) and s.auth_key == bytes.fromhex(AUTH)
    assert s.system_title == bytes.fromhex(TITLE)
    assert s.invocation_counter is None  # unknown: the frame counter or the state file says
    assert str(s.frame_counter) == "0-0:43.1.0.255" and s.public_client == 16


def test_keys_from_environment_variables_and_files(tmp_path: Path) -> None:
    key_file = tmp_path / "gak.hex"
    key_file.write_text(AUTH.lower() + "\n# rotated 2026-12\n")
    s = session(meter(blockCipherKey=None, blockCipherKeyEnv="GUEK", authenticationKey=None,
                      authenticationKeyFile=str(key_file)), {"GUEK": BLOCK})
    assert s.block_key == bytes.fromhex(BLOCK) and s.auth_key == bytes.fromhex(AUTH)


def test_policy_frame_counter_and_public_client() -> None:
    s = session(meter(security="AUTH", frameCounterObis="0-1:43.1.0.255", publicClientAddress=17))
    assert s.security == "auth" and str(s.frame_counter) == "0-1:43.1.0.255"
    assert s.public_client == 17


@pytest.mark.parametrize(("change", "field"), [
    ({"systemTitle": None}, "systemTitle"),
    ({"systemTitle": "ABCD"}, "systemTitle"),
    ({"blockCipherKey": "00" * 15}, "blockCipherKey"),
    ({"blockCipherKey": "zz" * 16}, "blockCipherKey"),
    ({"authenticationKey": None}, "authenticationKey"),
    ({"blockCipherKeyEnv": "GUEK"}, "blockCipherKey"),  # two sources
    ({"blockCipherKey": None, "blockCipherKeyEnv": "NOT_SET"}, "blockCipherKeyEnv"),
    ({"blockCipherKey": None, "blockCipherKeyFile": "/no/such/file"}, "blockCipherKeyFile"),
    ({"security": "paranoid"}, "security"),
    ({"frameCounterObis": "43.1"}, "frameCounterObis"),
    ({"publicClientAddress": 200}, "publicClientAddress"),
    ({"authentication": "hls-sha256"}, "password"),  # mechanism 6 needs its secret
])
def test_each_bad_security_field_is_one_error_naming_meter_and_field(change: dict[str, Any],
                                                                    field: str) -> None:
    found = errors(meter(**change))
    assert len(found) == 1, found
    assert found[0].startswith(f"meter 'H1': {field}"), found[0]
    assert "0001020304" not in found[0] and "D0D1D2" not in found[0]  # never a key


def test_hash_mechanism_takes_password_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-hls\n")
    s = session(meter(authentication="hls-sha256", passwordFile=str(secret)))
    assert s.password == b"s3cr3t-hls"


def test_security_keys_without_hls_are_ignored_with_a_warning() -> None:
    entry = meter(authentication="none", clientAddress=16)
    cfg = load_config({"meters": [entry]}, {})
    assert not cfg.errors and cfg.meters[0].spec.session.block_key == b""
    assert any("systemTitle" in w and "ignored" in w for w in cfg.warnings)


def test_get_config_masks_inline_keys_and_keeps_names_of_variables_and_files() -> None:
    shown = masked({"meters": [meter(blockCipherKey=None, blockCipherKeyEnv="GUEK",
                                     passwordFile="/run/secrets/pw")]})
    entry = shown["meters"][0]
    assert entry["authenticationKey"] == MASK
    assert entry["blockCipherKeyEnv"] == "GUEK" and entry["passwordFile"] == "/run/secrets/pw"
    assert AUTH not in repr(shown)


def test_settings_repr_shows_no_key() -> None:
    text = repr(session(meter()))
    assert BLOCK.lower() not in text.lower() and "d0d1d2" not in text.lower()


def test_dedicated_key_field() -> None:
    assert session(meter()).dedicated_key is False
    s = session(meter(dedicatedKey=True, security="enc"))
    assert s.dedicated_key is True
    sec = s.association_settings().security
    assert sec is not None and sec.dedicated_keys is not None and len(sec.dedicated_keys()) == 16
    found = errors(meter(dedicatedKey=True, security="none"))
    assert len(found) == 1 and found[0].startswith("meter 'H1': dedicatedKey"), found
    assert errors(meter(dedicatedKey="yes"))[0].startswith("meter 'H1': dedicatedKey")
    cfg = load_config({"meters": [meter(authentication="none", clientAddress=16,
                                        systemTitle=None, blockCipherKey=None,
                                        authenticationKey=None, dedicatedKey=True)]}, {})
    assert not cfg.errors and any("dedicatedKey" in w for w in cfg.warnings)
