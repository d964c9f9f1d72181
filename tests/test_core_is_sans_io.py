"""The protocol core must stay sans-IO: no module under tb_dlms.protocol may import I/O or timing."""

import ast
from pathlib import Path

import tb_dlms.protocol

FORBIDDEN = {"socket", "serial", "threading", "time", "asyncio", "select", "selectors", "subprocess"}
CORE = Path(tb_dlms.protocol.__file__).parent


def imported_roots(path: Path) -> set:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_has_modules():
    assert list(CORE.rglob("*.py")), "protocol core not found"


def test_no_io_imports_in_core():
    offenders = {
        str(p.relative_to(CORE)): sorted(imported_roots(p) & FORBIDDEN) for p in CORE.rglob("*.py")
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}


def test_package_never_imports_gurux():
    package_root = CORE.parent
    users = [str(p) for p in package_root.rglob("*.py") if "gurux" in " ".join(imported_roots(p))]
    assert users == [], "gurux-dlms is GPLv2: test-time only"
