"""The README tells the truth: its commands exist and its dlms.json example loads cleanly."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tb_dlms.connector.config import load_config

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_two_commands_exist_and_ci_runs_the_test_one():
    first_screen = README.split("## ", 1)[0]
    assert "./scripts/demo.sh" in first_screen and "./scripts/test.sh" in first_screen
    for script in ("scripts/demo.sh", "scripts/test.sh"):
        assert os.access(ROOT / script, os.X_OK), script
    assert "./scripts/test.sh" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_dlms_json_example_loads_without_errors():
    blocks = re.findall(r"```json\n(.*?)```", README, flags=re.S)
    example = next(json.loads(b) for b in blocks if '"meters"' in b)
    config = load_config(example, environ={"DLMS_MICROSTAR_PASSWORD": "22222222"})
    assert not config.errors and not config.skipped
    (meter,) = config.meters
    assert meter.spec.name == "Microstar-1"
    assert [p.key for p in meter.spec.points] == ["voltage_l1", "active_energy"]


def test_every_tb_dlms_command_in_the_readme_exists():
    from tb_dlms.cli import build_parser

    commands = set(re.findall(r"`tb-dlms (\w+)", README))
    known = set(build_parser()._subparsers._group_actions[0].choices)  # noqa: SLF001
    assert commands and commands <= known
