"""The compose files under docker/ as Docker Compose would read them, without a Docker engine.

The README's first step (``docker compose up -d postgres``) runs before a gateway token exists,
with no docker/.env: every compose command must work then, so no variable may be required.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from compose_check import ComposeError, check_compose, interpolate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = sorted((ROOT / "docker").glob("*compose*.y*ml"))

pytestmark = pytest.mark.integration


# service -> the variable its token comes from, per file
GATEWAYS = {
    "docker-compose.yml": {"tb-gateway": "TB_GW_ACCESS_TOKEN"},
    "docker-compose.shards.yml": {f"tb-gateway-{i}": f"TB_GW_ACCESS_TOKEN_{i}" for i in range(3)},
}


def test_there_is_a_compose_file_to_check() -> None:
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.shards.yml", "docker-compose.yml"]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_is_valid_on_a_first_run_with_no_variables_set(path: Path) -> None:
    doc = check_compose(path, env={})
    gateways = GATEWAYS[path.name]
    assert {"postgres", "thingsboard", "dlms-simulator", *gateways} == set(doc["services"])
    for name in gateways:
        # No token yet: the gateway gets an empty value, which the gateway ignores (the token in
        # tb_gateway.json, or the start script's message, decides).
        assert doc["services"][name]["environment"]["TB_GW_ACCESS_TOKEN"] == ""
        assert doc["services"][name]["stop_signal"] == "SIGINT"


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_passes_the_token_and_version_through(path: Path) -> None:
    gateways = GATEWAYS[path.name]
    doc = check_compose(path, env={**{var: f"tok-{var}" for var in gateways.values()},
                                   "TB_VERSION": "4.0"})
    for name, var in gateways.items():
        assert doc["services"][name]["environment"]["TB_GW_ACCESS_TOKEN"] == f"tok-{var}"
    assert doc["services"]["thingsboard"]["image"] == "thingsboard/tb-node:4.0"


def test_the_shards_variant_runs_three_gateways_that_split_the_meters() -> None:
    from tb_dlms.connector.config import load_config
    from tb_dlms.connector.shards import select

    doc = check_compose(ROOT / "docker" / "docker-compose.shards.yml", env={})
    services = [doc["services"][f"tb-gateway-{i}"] for i in range(3)]
    assert {s["image"] for s in services} == {"tb-gateway-dlms:latest"}  # one image...
    envs = [s["environment"] for s in services]
    assert [(e["TB_DLMS_SHARD_INDEX"], e["TB_DLMS_SHARD_COUNT"]) for e in envs] == [
        ("0", "3"), ("1", "3"), ("2", "3")]
    assert all(e["TB_GW_HOST"] == "thingsboard" for e in envs)
    volumes = [v.split(":")[0] for s in services for v in s["volumes"]]
    assert len(volumes) == len(set(volumes)) == 12  # ...each gateway its own volumes
    assert set(volumes) <= set(doc["volumes"])
    for s in services:
        assert {v.split(":")[1] for v in s["volumes"]} == {
            "/thingsboard_gateway/config", "/thingsboard_gateway/logs",
            "/thingsboard_gateway/extensions", "/thingsboard_gateway/data"}
    # ...and the one dlms.json of the image: every meter polled by exactly one of them
    data = json.loads((ROOT / "docker" / "config" / "dlms.json").read_text(encoding="utf-8"))
    polled = [m.name for e in envs for m in select(load_config(data, e)).meters]
    assert sorted(polled) == ["Meter-1", "Meter-2", "Meter-3"]


def test_the_checker_refuses_what_compose_refuses(tmp_path: Path) -> None:
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("a$$b ${SET} $SET ${NOPE:-d} ${EMPTY-e}|", env, "t") == "a$b x x d |"
    assert interpolate("${EMPTY:-${SET}} ${SET:+r} ${NOPE+r}.", env, "t") == "x r ."
    with pytest.raises(ComposeError, match="required variable NOPE is missing a value: why"):
        interpolate("${NOPE:?why}", env, "t")
    with pytest.raises(ComposeError, match="invalid interpolation"):
        interpolate("${SET x}", env, "t")
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  a:\n    image: x\n    ports: 8080\n    bogus: 1\n")
    with pytest.raises(ComposeError, match="bogus") as info:
        check_compose(bad, env={})
    assert "ports" in str(info.value)
    bad.write_text("services:\n  a:\n    environment:\n      T: ${T:?set T}\n")
    with pytest.raises(ComposeError, match="required variable T"):
        check_compose(bad, env={})
