"""Session modules talk through public methods: none reads or calls another object's private
attribute (``machine._read_op``, ``machine._require_ready``...), so each one's private state can
change without breaking the others. ``self``/``cls`` are the module's own business."""

from __future__ import annotations

import ast
from pathlib import Path

import tb_dlms.session

SESSION = Path(tb_dlms.session.__file__).parent


def private_reaches(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__"):
            continue
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            continue
        found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_session_module_reaches_into_private_state():
    assert [hit for p in sorted(SESSION.rglob("*.py")) for hit in private_reaches(p)] == []
