"""A Docker Compose file checker that needs no Docker engine: interpolation, then the schema.

Interpolation follows the Compose Specification ("Interpolation" section): ``$$`` is a literal
``$``; ``$VAR`` and ``${VAR}`` substitute (unset: empty); ``${VAR:-d}`` / ``${VAR-d}`` default when
unset or empty / unset; ``${VAR:?e}`` / ``${VAR?e}`` are errors when unset or empty / unset;
``${VAR:+r}`` / ``${VAR+r}`` replace when set and non-empty / set. Defaults may hold further
interpolation. Only values are interpolated, not keys.

The schema is the Compose Specification's JSON schema (compose-spec/compose-spec,
``schema/compose-spec.json``, Apache-2.0) as vendored by the ``check-jsonschema`` package
(``check_jsonschema/builtin_schemas/vendor/compose-spec.json``): used from the installed package,
not copied here.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from jsonschema.validators import validator_for

_NAME = r"[_A-Za-z][_A-Za-z0-9]*"
_UNBRACED = re.compile(rf"\$({_NAME})")


class ComposeError(Exception):
    """What ``docker compose`` would refuse the file for (interpolation or schema)."""


def interpolate(text: str, env: Mapping[str, str], where: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        nxt = text[i + 1 : i + 2]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "{":
            end = _closing(text, i + 2, where)
            out.append(_braced(text[i + 2 : end], env, where))
            i = end + 1
        else:
            m = _UNBRACED.match(text, i)
            if m is None:
                raise ComposeError(f"{where}: invalid interpolation format in {text!r}")
            out.append(env.get(m.group(1), ""))
            i = m.end()
    return "".join(out)


def _closing(text: str, start: int, where: str) -> int:
    depth = 1
    for j in range(start, len(text)):
        if text[j] == "{" and text[j - 1] == "$":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    raise ComposeError(f"{where}: unclosed ${{ in {text!r}")


def _braced(body: str, env: Mapping[str, str], where: str) -> str:
    m = re.match(rf"({_NAME})(:?[-?+])?(.*)\Z", body, re.S)
    if m is None or (m.group(2) is None and m.group(3)):
        raise ComposeError(f"{where}: invalid interpolation format ${{{body}}}")
    name, op, arg = m.group(1), m.group(2), m.group(3)
    value = env.get(name)
    empty_counts = op is not None and op.startswith(":")
    missing = value is None or (empty_counts and value == "")
    if op is None:
        return value or ""
    kind = op[-1]
    if kind == "-":
        return interpolate(arg, env, where) if missing else value  # type: ignore[return-value]
    if kind == "?":
        if missing:
            raise ComposeError(f"{where}: required variable {name} is missing a value: {arg}")
        return value  # type: ignore[return-value]
    return "" if missing else interpolate(arg, env, where)  # "+"


def _walk(node: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(node, str):
        return interpolate(node, env, where)
    if isinstance(node, list):
        return [_walk(v, env, f"{where}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: _walk(v, env, f"{where}.{k}" if where else str(k)) for k, v in node.items()}
    return node


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text("utf-8"))
    return schema


def check_compose(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file as ``docker compose config`` would see it with ``env`` (``.env`` not read);
    raises ComposeError for a YAML, interpolation or schema error."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ComposeError(f"{path.name}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ComposeError(f"{path.name}: top level is not a mapping")
    doc: dict[str, Any] = _walk(raw, env, "")
    schema = compose_schema()
    validator = validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]
        raise ComposeError(f"{path.name}: " + "; ".join(lines))
    return doc
