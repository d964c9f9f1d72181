"""The ``tb-dlms`` command itself: ``--version`` and option defaults shown in ``--help``."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata

import pytest
from tb_dlms.cli import build_parser
from tb_dlms.commands import COMMANDS


def test_version_is_the_installed_distributions() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from tb_dlms.cli import main; sys.exit(main())",
         "--version"],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"tb-dlms {metadata.version('tb-dlms-connector')}"


def _sub(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize("name", COMMANDS)
def test_help_shows_every_default(name: str) -> None:
    command = _sub(name)
    text = " ".join(command.format_help().split())  # unwrap the help columns
    for action in command._actions:
        default = action.default
        if not action.option_strings or default is None or default is False:
            continue
        if default == argparse.SUPPRESS:
            continue
        option = action.option_strings[-1]
        shown = re.search(re.escape(option) + r"[^-]*?default\b", text)
        assert shown and str(default).rstrip("0").rstrip(".") in text, (name, option, default)


def test_implicit_defaults_are_said_in_words() -> None:
    simulate = " ".join(_sub("simulate").format_help().split())
    assert "default 128" in simulate and "default 1024" in simulate
    assert "port of meter 0 (default: 3333)" in simulate
    read = " ".join(_sub("read").format_help().split())
    assert "server logical address (default: 1)" in read
