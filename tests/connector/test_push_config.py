"""dlms.json push sections: listeners, a meter's push section, push-only meters, clashes."""

from __future__ import annotations

from typing import Any

from tb_dlms.connector.config import load_config
from tb_dlms.protocol.security.control import Policy

KEY, AUTH = "000102030405060708090A0B0C0D0E0F", "D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
OBJECTS = [{"classId": 1, "obis": "0-0:96.1.0.255", "identity": True},
           {"classId": 3, "obis": "1-0:1.8.0.255", "key": "energy", "scaler": -3}]
LISTEN = {"listeners": [{"type": "tcp", "port": 4059}]}


def push_meter(name: str = "P1", **push: Any) -> dict[str, Any]:
    section = {"objects": OBJECTS, "identity": "SER1", **push}
    return {"deviceName": name, "push": section}


def test_a_push_only_meter_is_not_polled_and_keeps_its_fields() -> None:
    cfg = load_config({"push": LISTEN, "meters": [push_meter()]})
    assert cfg.errors == () and cfg.meters == ()
    (meter,) = cfg.push_meters
    assert (meter.name, meter.identity, meter.identity_index, meter.required) == \
        ("P1", "SER1", 0, None)
    assert meter.objects[1].key == "energy" and meter.objects[1].scaler == -3
    (endpoint,) = cfg.push.endpoints
    assert (endpoint.kind, endpoint.framing, endpoint.host, endpoint.port) == \
        ("tcp", "wrapper", "0.0.0.0", 4059)


def test_keys_make_auth_enc_the_floor_and_are_never_echoed(monkeypatch: Any) -> None:
    meter = push_meter(systemTitle="5442440000000001", blockCipherKeyEnv="EK",
                       authenticationKeyEnv="AK")
    cfg = load_config({"push": LISTEN, "meters": [meter]}, environ={"EK": KEY, "AK": AUTH})
    (pm,) = cfg.push_meters
    assert pm.required is Policy.AUTHENTICATED_ENCRYPTION and pm.keys is not None
    assert KEY not in repr(pm) and KEY.lower() not in repr(pm)
    bad = push_meter(systemTitle="5442440000000001", blockCipherKey="00" * 15,
                     authenticationKey=AUTH)
    cfg = load_config({"push": LISTEN, "meters": [bad]})
    assert cfg.push_meters == ()
    assert any("push.blockCipherKey: must be 32 hex digits" in e for e in cfg.errors)
    assert not any("00" * 15 in e for e in cfg.errors)


def test_encryption_only_needs_no_authentication_key() -> None:
    meter = push_meter(systemTitle="5442440000000001", security="enc", blockCipherKey=KEY)
    (pm,) = load_config({"push": LISTEN, "meters": [meter]}).push_meters
    assert pm.required is Policy.ENCRYPTION
    meter = push_meter(systemTitle="5442440000000001", blockCipherKey=KEY)
    cfg = load_config({"push": LISTEN, "meters": [meter]})
    assert any("push.authenticationKey" in e and "'auth-enc'" in e for e in cfg.errors)


def test_errors_name_the_meter_and_the_field() -> None:
    meter = {"deviceName": "P9", "push": {"objects": [{"obis": "nope", "key": "a"},
                                                      {"obis": "1-0:1.8.0", "key": "a"}],
                                          "address": 70000}}
    cfg = load_config({"push": {"listeners": [{"type": "tcp", "port": 0}]}, "meters": [meter]})
    text = "\n".join(cfg.errors)
    assert "meter 'P9': push.objects[0].obis: 'nope' is not an OBIS code" in text
    assert "meter 'P9': push.objects[1].key: 'a' is already used by objects[0]" in text
    assert "meter 'P9': push.address: 70000 is out of range 0..65535" in text
    assert "dlms.json: push.listeners[0].port: 0 is out of range 1..65535" in text


def test_senders_that_cannot_be_told_apart_are_refused() -> None:
    same_title = [push_meter("A", systemTitle="5442440000000001", security="enc",
                             blockCipherKey=KEY),
                  push_meter("B", systemTitle="5442440000000001", security="enc",
                             blockCipherKey=KEY, identity="SER2")]
    cfg = load_config({"push": LISTEN, "meters": same_title})
    assert [m.name for m in cfg.push_meters] == ["A"]
    assert any("meter 'B'" in e and "already the title of meter 'A'" in e for e in cfg.errors)
    same_identity = [push_meter("A"), push_meter("B")]
    cfg = load_config({"push": LISTEN, "meters": same_identity})
    assert [m.name for m in cfg.push_meters] == ["A"]


def test_a_polled_meter_may_push_too_and_keeps_its_polling() -> None:
    polled = {"deviceName": "M1", "connection": {"type": "tcp", "host": "h", "port": 1},
              "timeseries": [{"key": "v", "obis": "1-0:32.7.0"}],
              "push": {"objects": OBJECTS[1:], "address": 5}}
    cfg = load_config({"push": LISTEN, "meters": [polled]})
    assert [m.name for m in cfg.meters] == ["M1"] and [m.name for m in cfg.push_meters] == ["M1"]


def test_a_template_can_carry_the_object_list() -> None:
    data = {"push": LISTEN, "templates": {"sim": {"push": {"objects": OBJECTS}}},
            "meters": [{"deviceName": "A", "template": "sim", "push": {"identity": "S1"}},
                       {"deviceName": "B", "template": "sim", "push": {"identity": "S2"}}]}
    cfg = load_config(data)
    assert cfg.errors == ()
    assert [(m.name, m.identity, len(m.objects)) for m in cfg.push_meters] == \
        [("A", "S1", 2), ("B", "S2", 2)]


def test_push_meters_without_listeners_are_warned_about() -> None:
    cfg = load_config({"meters": [push_meter()]})
    assert any("no top-level push section" in w for w in cfg.warnings)


def test_the_address_meters_are_pointed_at() -> None:
    def address(push: dict[str, Any]) -> Any:
        cfg = load_config({"push": push, "meters": [push_meter()]})
        return cfg.push.address if cfg.push is not None else cfg.errors

    assert address(LISTEN) is None  # 0.0.0.0: which of the machine's addresses is not known
    assert address({"listeners": [{"host": "10.1.2.3", "port": 4059}]}) == "10.1.2.3:4059"
    assert address({**LISTEN, "address": "gw.example.net:4059"}) == "gw.example.net:4059"
    assert any("push.address" in e and "not in 1..65535" in e
               for e in address({**LISTEN, "address": "gw:0"}))


def test_other_push_setups_get_their_own_object_lists() -> None:
    alarm = [{"classId": 40, "obis": "0-4:25.9.0.255", "attribute": 1},
             {"classId": 1, "obis": "0-0:97.98.0.255", "key": "alarm_register"}]
    meter = push_meter(setups={"0-4:25.9.0.255": alarm})
    (pm,) = load_config({"push": LISTEN, "meters": [meter]}).push_meters
    alarm_ln = bytes((0, 0x04, 25, 9, 0, 255))
    assert [o.key for o in pm.objects_for((alarm_ln, 5))] == [None, "alarm_register"]
    assert pm.objects_for((b"SER1", 5)) == pm.objects  # any other body: the regular list
    bad = push_meter(setups={"0-4:25.9.0": [{"obis": "x"}], "nonsense": alarm})
    errors = "\n".join(load_config({"push": LISTEN, "meters": [bad]}).errors)
    assert "meter 'P1': push.setups['0-4:25.9.0'].objects[0].obis: 'x' is not an OBIS code" in errors
    assert "meter 'P1': push.setups['nonsense']: is not an OBIS code" in errors


def test_an_obis_that_is_not_a_string_is_an_error_not_a_missing_object() -> None:
    meter = push_meter(objects=[{"obis": 1080255, "key": "e"}], identity=None, address=3)
    meter["push"].pop("identity")
    errors = load_config({"push": LISTEN, "meters": [meter]}).errors
    assert any("push.objects[0].obis: 1080255 is not an OBIS code" in e for e in errors)


def test_a_plain_and_a_ciphered_meter_may_not_share_an_address_and_plain_needs_one() -> None:
    objects = OBJECTS[1:]
    ciphered = {"deviceName": "C", "push": {"objects": objects, "address": 5, "security": "enc",
                                            "systemTitle": "5442440000000001",
                                            "blockCipherKey": KEY}}
    plain = {"deviceName": "P", "push": {"objects": objects, "address": 5}}
    cfg = load_config({"push": LISTEN, "meters": [ciphered, plain]})
    assert [m.name for m in cfg.push_meters] == ["C"]
    assert any("meter 'P'" in e and "push.address: 5 already recognises meter 'C'" in e
               for e in cfg.errors)
    title_only = {"deviceName": "T", "push": {"objects": objects,
                                              "systemTitle": "5442440000000002"}}
    errors = load_config({"push": LISTEN, "meters": [title_only]}).errors
    assert any("meter 'T': push.systemTitle: only ciphered notifications carry" in e
               for e in errors)
