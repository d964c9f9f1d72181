"""The layer contract of ``tb_dlms``, checked on the source with ``ast`` (nothing is imported).

One table (LAYERS) says which modules make up each layer, which layers each may import and which
outside packages it must never import. Every import of a ``tb_dlms`` module counts: ``import
tb_dlms.x``, ``from tb_dlms.x import y``, relative ``from ..x import y``, at module level or inside
a function, under ``TYPE_CHECKING`` or not. Also checked: no import cycle inside a layer, and no
module reads or imports another module's ``_private`` names. (This grew out of the sans-IO test
of the protocol core, whose checks are the protocol row's last column and NEVER_IN_PACKAGE.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tb_dlms
import tb_dlms.converters

# I/O and timing: the protocol core is sans-IO (bytes in, events out).
NO_IO = ("socket", "serial", "threading", "time", "asyncio", "select", "selectors", "subprocess")
# The gateway's API is met in the connector layer only.
GATEWAY = ("thingsboard_gateway", "paho")
ALL_BELOW_TESTING = ("protocol", "transport", "session", "engine", "connector", "commands", "simulator")

# The contract. A module belongs to the row of its longest matching prefix. A layer may import
# itself and the layers of its third column, nothing else of tb_dlms. The product layers are in
# order, each above all before it: protocol < transport < session < engine < connector < commands.
LAYERS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    # layer, its modules, the layers it may import, the outside packages it never imports
    (
        "protocol",  # + capture: the frame decoder of ``tb-dlms decode``, sans-IO too;
        ("tb_dlms", "tb_dlms.protocol", "tb_dlms.capture", "tb_dlms.config"),  # root, config: empty
        (),
        NO_IO + GATEWAY,
    ),
    ("transport", ("tb_dlms.transport",), ("protocol",), GATEWAY),
    ("session", ("tb_dlms.session",), ("protocol", "transport"), GATEWAY),
    ("engine", ("tb_dlms.engine",), ("protocol", "transport", "session"), GATEWAY),
    (
        "connector",  # + the converter beside it and the loader files the gateway imports
        ("tb_dlms.connector", "tb_dlms.converters", "tb_dlms.extension"),
        ("protocol", "transport", "session", "engine"),
        (),
    ),
    (
        "commands",  # the CLI; sandbox: the broker, stand-in and gateway that ``demo`` runs
        ("tb_dlms.commands", "tb_dlms.cli", "tb_dlms.sandbox"),
        ("protocol", "transport", "session", "engine", "connector", "simulator"),
        (),
    ),
    # Beside the product: meters in the server role, on the protocol core only.
    ("simulator", ("tb_dlms.simulator",), ("protocol",), GATEWAY),
    # The test harness may use anything; nothing of the product may use it.
    ("testing", ("tb_dlms.testing",), ALL_BELOW_TESTING, ()),
)
PRODUCT_ORDER = ("protocol", "transport", "session", "engine", "connector", "commands")
NEVER_IN_PACKAGE = ("gurux", "gurux_dlms")  # GPLv2: a test-time interop peer only

# Violations that other branches are removing now: "module -> imported module or name" for a
# layer or private-state violation, "a <-> b <-> c" for a cycle. The lead empties this when
# merging them; test_known_violations_still_occur fails when one no longer occurs, so the list
# cannot go stale.
KNOWN_VIOLATIONS: frozenset[str] = frozenset()

PACKAGE_ROOT = Path(tb_dlms.__file__).parent
SOURCES = {"tb_dlms": PACKAGE_ROOT, "tb_dlms.converters": Path(tb_dlms.converters.__file__).parent}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported tb_dlms module
    line: int
    type_only: bool  # under ``if TYPE_CHECKING:``


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found: dict[str, Path] = {}
    for prefix, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((prefix, *parts))
            found.setdefault(name, path)
    return found


MODULES = module_files()


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk(node: ast.AST, type_only: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                yield stmt, True
                yield from _walk(stmt, True)
            for stmt in child.orelse:
                yield stmt, type_only
                yield from _walk(stmt, type_only)
            continue
        yield child, type_only
        yield from _walk(child, type_only)


def _resolve(base: str, names: list[str]) -> list[str]:
    """``from base import a, b``: the submodules a, b when they are modules, else base itself."""
    targets = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
    if len(targets) < len(names):
        targets.append(base)
    return targets


def _from_base(module: str, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` names, relative levels resolved against ``module``."""
    if not node.level:
        return node.module or ""
    package = module if is_package(module) else module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def imports_of(module: str) -> list[Import]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node, type_only in _walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            targets = _resolve(_from_base(module, node), [a.name for a in node.names])
        for target in targets:
            if target == "tb_dlms" or target.startswith("tb_dlms."):
                assert target in MODULES, f"{module}:{node.lineno} imports unknown {target}"
                found.append(Import(module, target, node.lineno, type_only))
    return found


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


def layer_of(module: str) -> str:
    best, best_len = None, -1
    for layer, prefixes, _, _ in LAYERS:
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = layer, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


ALLOWED = {layer: {layer, *below} for layer, _, below, _ in LAYERS}
NEVER = {layer: set(never) for layer, _, _, never in LAYERS}


def layer_violations() -> dict[str, str]:
    found = {}
    for imp in ALL_IMPORTS:
        a, b = layer_of(imp.source), layer_of(imp.target)
        if b not in ALLOWED[a]:
            key = f"{imp.source} -> {imp.target}"
            found[key] = f"{key} (line {imp.line}: layer {a} may not import layer {b})"
    return found


def test_the_table_is_the_stated_order() -> None:
    for i, layer in enumerate(PRODUCT_ORDER):
        below = set(PRODUCT_ORDER[:i])
        assert ALLOWED[layer] - {"simulator"} == below | {layer}, layer
    assert ALLOWED["simulator"] == {"simulator", "protocol"}
    assert not [layer for layer, *_ in LAYERS if layer != "testing" and "testing" in ALLOWED[layer]]


def test_every_module_has_a_layer() -> None:
    assert len(MODULES) > 50
    for module in MODULES:
        layer_of(module)


def test_relative_and_absolute_imports_are_both_resolved() -> None:
    edges = {(i.source, i.target) for i in ALL_IMPORTS}
    # Both styles must be seen (the package itself imports relatively; see the next test).
    assert ("tb_dlms.capture", "tb_dlms.protocol.obis") in edges
    assert ("tb_dlms.simulator.model", "tb_dlms.protocol.obis") in edges
    # ``from . import values`` names a module, not the package.
    assert ("tb_dlms.simulator.model", "tb_dlms.simulator.values") in edges


# Executed by the gateway from its extensions folder, outside any package: one absolute import.
LOADER_TEMPLATES = {"tb_dlms.extension.dlms_connector", "tb_dlms.extension.dlms_converter"}


def test_one_import_style_inside_the_package() -> None:
    """Modules of the package import each other relatively, so the tree reads the same checked
    out and installed, and the type checker follows the folders as they are (scripts/lint.sh)."""
    absolute = []
    for module, path in MODULES.items():
        if module in LOADER_TEMPLATES:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, _ in _walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            absolute += [f"{module}:{node.lineno} {n}" for n in names
                         if n == "tb_dlms" or n.startswith("tb_dlms.")]
    assert absolute == []


def test_layers_import_only_layers_below() -> None:
    new = sorted(v for k, v in layer_violations().items() if k not in KNOWN_VIOLATIONS)
    assert new == [], "layer contract broken:\n" + "\n".join(new)


def outside_imports(module: str) -> list[tuple[str, int]]:
    """(top-level name, line) of every absolute import of something that is not tb_dlms."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], node.lineno))
    return [(root, line) for root, line in found if root != "tb_dlms"]


def test_layers_never_import_what_they_must_not() -> None:
    found = []
    for module in MODULES:
        never = NEVER[layer_of(module)] | set(NEVER_IN_PACKAGE)
        found += [
            f"{module}:{line} imports {root}" for root, line in outside_imports(module) if root in never
        ]
    assert found == []


def test_the_checks_see_what_they_check() -> None:
    roots = {r for r, _ in outside_imports("tb_dlms.engine.engine")}
    assert "threading" in roots and "threading" in NEVER["protocol"]
    roots = {r for r, _ in outside_imports("tb_dlms.connector.dlms_connector")}
    assert "thingsboard_gateway" in roots and "thingsboard_gateway" in NEVER["engine"]


def _cycles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return sorted(found)


def _same_layer_edges(with_type_only: bool) -> set[tuple[str, str]]:
    return {
        (i.source, i.target)
        for i in ALL_IMPORTS
        if (with_type_only or not i.type_only)
        and i.source != i.target
        and layer_of(i.source) == layer_of(i.target)
    }


def cycles(with_type_only: bool = False) -> set[str]:
    return {" <-> ".join(c) for c in _cycles(_same_layer_edges(with_type_only))}


def test_no_import_cycles_inside_a_layer() -> None:
    # TYPE_CHECKING imports count, so none is left out: a cycle closed only by them (the
    # session one in KNOWN_VIOLATIONS) is still modules that cannot be read apart.
    new = sorted(cycles(with_type_only=True) - KNOWN_VIOLATIONS)
    assert new == [], "import cycles:\n" + "\n".join(new)


def test_cycles_are_found() -> None:
    edges = {("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e"), ("e", "d"), ("f", "a")}
    assert _cycles(edges) == [["a", "b", "c"], ["d", "e"]]


# -- private state ---------------------------------------------------------------------------
# A name that starts with one underscore belongs to the module that defines it: another module
# may neither import it nor read it off an object. Underscore names that are public API elsewhere:
PUBLIC_UNDERSCORE = frozenset({"_replace", "_asdict", "_fields", "_make", "_SubParsersAction"})


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and not name.endswith("_")


def _defined_names(tree: ast.AST) -> set[str]:
    """Names a module defines: functions, classes, assigned names, ``self.x`` and ``__slots__``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                names.add(node.attr)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__slots__" for t in node.targets
        ):
            names.update(
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return names


def private_access() -> dict[str, str]:
    found = {}
    for module, path in MODULES.items():
        if layer_of(module) == "testing":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        own = _defined_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                if node.attr in own or node.attr in PUBLIC_UNDERSCORE:
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue  # an object's own state, wherever its class is written
                key = f"{module} -> {ast.unparse(node)}"
                found[key] = f"{key} (line {node.lineno}: private to another module)"
        for imp in imports_of(module):
            last = imp.target.rpartition(".")[2]
            home = imp.target.rpartition(".")[0]
            if _private(last) and not (module == home or module.startswith(home + ".")):
                key = f"{module} -> {imp.target}"
                found[key] = f"{key} (line {imp.line}: private module of another package)"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    if _private(alias.name) and alias.name not in PUBLIC_UNDERSCORE:
                        src = _from_base(module, node)
                        if f"{src}.{alias.name}" in MODULES:
                            continue  # a private module, checked above
                        key = f"{module} -> {src}.{alias.name}"
                        found[key] = f"{key} (line {node.lineno}: private name of another module)"
    return found


def test_no_module_reaches_into_another_modules_private_state() -> None:
    new = sorted(v for k, v in private_access().items() if k not in KNOWN_VIOLATIONS)
    assert new == [], "private state used from outside:\n" + "\n".join(new)


def test_known_violations_still_occur() -> None:
    now = set(layer_violations()) | cycles(with_type_only=True) | set(private_access())
    gone = sorted(KNOWN_VIOLATIONS - now)
    assert gone == [], "fixed: remove from KNOWN_VIOLATIONS:\n" + "\n".join(gone)
