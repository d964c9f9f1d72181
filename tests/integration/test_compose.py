"""The compose files under docker/ as Docker Compose would read them, without a Docker engine.

The README's first step (``docker compose up -d postgres``) runs before a gateway token exists,
with no docker/.env: every compose command must work then, so no variable may be required.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from compose_check import ComposeError, check_compose, interpolate

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = sorted((ROOT / "docker").glob("*compose*.y*ml"))

pytestmark = pytest.mark.integration


def test_there_is_a_compose_file_to_check() -> None:
    assert [p.name for p in COMPOSE_FILES] == ["docker-compose.yml"]


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_is_valid_on_a_first_run_with_no_variables_set(path: Path) -> None:
    doc = check_compose(path, env={})
    assert {"postgres", "thingsboard", "dlms-simulator", "tb-gateway"} <= set(doc["services"])
    # No token yet: the gateway gets an empty value, which the gateway ignores (the token in
    # tb_gateway.json, or the start script's message, decides).
    assert doc["services"]["tb-gateway"]["environment"]["TB_GW_ACCESS_TOKEN"] == ""


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_file_passes_the_token_and_version_through(path: Path) -> None:
    doc = check_compose(path, env={"TB_GW_ACCESS_TOKEN": "tok", "TB_VERSION": "4.0"})
    assert doc["services"]["tb-gateway"]["environment"]["TB_GW_ACCESS_TOKEN"] == "tok"
    assert doc["services"]["thingsboard"]["image"] == "thingsboard/tb-node:4.0"


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
