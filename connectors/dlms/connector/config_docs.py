"""Generate config/dlms.schema.json and the key tables of config/README.md from config_fields.

    python -m tb_dlms.connector.config_docs --check   # exit 1 when a committed file is stale
    python -m tb_dlms.connector.config_docs --write   # rewrite them

The README keeps its prose; only the blocks between ``<!-- fields:NAME -->`` and
``<!-- /fields:NAME -->`` are generated. The schema's cross-field rules (one source per secret,
the secrets an authentication needs, address sizes, RPC kinds) are written here, next to the
table they refer to.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from .config_fields import AXDR_TYPE_NAMES, SECRET_SOURCES, STRATEGY_FIELDS, TABLES, Field, by_key
from .field_readers import num
from .push_fields import PUSH_FIELDS, PUSH_LISTENER_FIELDS, PUSH_METER_FIELDS, PUSH_OBJECT_FIELDS
from .security_entry import HASH_MECHANISMS

__all__ = ["readme", "schema", "main"]

# The README's tables: dlms.json's own, then the push sections' (push_fields.py).
DOC_TABLES: dict[str, tuple[Field, ...]] = {
    **TABLES, "push": PUSH_FIELDS, "pushListener": PUSH_LISTENER_FIELDS,
    "pushMeter": PUSH_METER_FIELDS, "pushObject": PUSH_OBJECT_FIELDS,
}

# config/ (installed as tb_dlms.config, package data only): the files generated here.
CONFIG_DIR = Path(str(importlib.import_module("..config", __package__).__file__)).resolve().parent
SCHEMA_PATH = CONFIG_DIR / "dlms.schema.json"
README_PATH = CONFIG_DIR / "README.md"

_OBIS_PATTERN = (r"^\s*(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}([.*&]\d{1,3})?"
                 r"|\d{1,3}(\.\d{1,3}){4,5}|[0-9A-Fa-f]{12})\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def _plain(text: str) -> str:
    """README markdown as a schema description: links to their words, no backticks or bold."""
    return _LINK.sub(r"\1", text).replace("`", "").replace("**", "")


def _property(f: Field) -> dict[str, Any]:
    if f.schema is not None:
        out = dict(f.schema)
    elif f.choices is not None:
        out = {"enum": list(f.choices)}
    elif f.kind == "string":
        out = {"type": "string", "minLength": 1}
    elif f.kind == "bool":
        out = {"type": "boolean"}
    else:
        out = {"type": "integer" if f.kind == "int" else "number"}
        if f.lo is not None:
            out["minimum"] = f.lo
        if f.hi is not None:
            out["maximum"] = f.hi
        if f.zero_off:
            out = {"anyOf": [{"const": 0}, out]}
    if f.meaning and "description" not in out and "$ref" not in out:
        out["description"] = _plain(f.meaning)
    if f.default is not None and f.default != []:
        out["default"] = f.default
    return out


def _object(fields: tuple[Field, ...], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object"}
    required = [f.key for f in fields if f.required]
    if required:
        out["required"] = required
    out["additionalProperties"] = False
    out["properties"] = {f.key: _property(f) for f in fields}
    out.update(extra)
    return out


def schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of dlms.json."""
    strategy = by_key(STRATEGY_FIELDS)
    periodic = [t for t in strategy["type"].choices or () if t.endswith("REPORT_PERIOD")]
    top = _object(TABLES["top"])
    top.pop("type")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "DLMS/COSEM connector configuration (dlms.json) for the ThingsBoard IoT Gateway",
        "description": "Generated from connectors/dlms/connector/config_fields.py; every key is "
                       "explained in config/README.md. Times are milliseconds unless the name "
                       "ends in S (seconds). The connector's own loader checks the same rules and "
                       "names the meter and the field of every error.",
        "type": "object",
        **top,
        "$defs": {
            "obis": {"type": "string", "description": _plain(TABLES["point"][1].meaning),
                     "pattern": _OBIS_PATTERN},
            "axdrType": {"enum": list(AXDR_TYPE_NAMES)},
            "reportStrategy": _object(STRATEGY_FIELDS, **{
                "if": {"properties": {"type": {"enum": periodic}}},
                "then": {"required": ["type", "reportPeriod"]}}),
            "point": _object(TABLES["point"]),
            "profile": _object(TABLES["profile"]),
            "profileColumn": _object(TABLES["profileColumn"]),
            "attributeUpdate": _object(TABLES["attributeUpdate"]),
            "rpc": _object(TABLES["rpc"], allOf=[
                {"if": {"properties": {"type": {"const": "action"}}},
                 "then": {"required": ["methodIndex"]}, "else": {"required": ["attribute"]}},
                {"if": {"properties": {"type": {"const": "set"}}},
                 "then": {"required": ["valueType"]}},
                {"if": {"required": ["value"], "properties": {"type": {"enum": ["set", "action"]}}},
                 "then": {"required": ["valueType"]}},
            ]),
            "tcp": _object(TABLES["tcp"]),
            "serial": _object(TABLES["serial"]),
            "template": _loose(required=[], drop=("deviceName", "template")),
            "templatedMeter": _loose(required=["deviceName", "template"], drop=()),
            "push": _object(DOC_TABLES["push"]),
            "pushListener": _object(DOC_TABLES["pushListener"]),
            "pushMeter": _object(DOC_TABLES["pushMeter"], allOf=[
                *(_at_most_one_source(key) for key in ("blockCipherKey", "authenticationKey")),
                {"anyOf": [{"required": [k]} for k in ("systemTitle", "address", "identity")]}]),
            "pushObject": _object(DOC_TABLES["pushObject"]),
            "meter": _meter(allOf=[
                {"anyOf": [{"required": ["connection"]}, {"required": ["push"]}]},
                *(_at_most_one_source(key) for key in SECRET_SOURCES),
                _when_authentication(["lls", *HASH_MECHANISMS], _one_source("password")),
                _when_authentication(["hls-gmac", *HASH_MECHANISMS], {"allOf": [
                    {"required": ["systemTitle"]}, _one_source("blockCipherKey"),
                    _one_source("authenticationKey")]}),
                {"if": {"properties": {"serverAddressSize": {"enum": [2, 4]}},
                        "required": ["serverAddressSize"]},
                 "then": {"required": ["serverPhysicalAddress"]}},
                {"if": {"properties": {"serverAddressSize": {"const": 1}},
                        "required": ["serverAddressSize"]},
                 "then": {"not": {"required": ["serverPhysicalAddress"]}}},
            ]),
        },
    }


def _meter(**extra: Any) -> dict[str, Any]:
    """A meter: ``connection`` is required unless the meter only pushes (``push``)."""
    out = _object(TABLES["meter"], **extra)
    out["required"] = [k for k in out.get("required", ()) if k != "connection"]
    return out


def _loose(required: list[str], drop: tuple[str, ...]) -> dict[str, Any]:
    """A template, or a meter that names one: any subset of the meter's fields (the rules
    between fields apply to the merged meter, which only the loader sees); ``connection`` may
    be partial (the template gives type and port, the meter its host)."""
    out = _object(tuple(f for f in TABLES["meter"] if f.key not in drop))
    out.pop("required", None)
    if required:
        out["required"] = required
    props = dict(out["properties"])
    props["connection"] = _partial_connection()
    out["properties"] = props
    return out


def _partial_connection() -> dict[str, Any]:
    """Any keys of a TCP or serial connection, each checked as there (``port`` is a number for
    TCP, a name for serial); merged key by key with the template's."""
    tcp, serial = (_object(TABLES[k])["properties"] for k in ("tcp", "serial"))
    props = {**serial, **tcp, "type": {"enum": ["tcp", "serial"]},
             "port": {"anyOf": [tcp["port"], serial["port"]]}}
    return {"type": "object", "additionalProperties": False, "properties": props,
            "description": "merged key by key over the template's connection"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


def _sources(key: str) -> list[str]:
    return [key, f"{key}Env", f"{key}File"]


def _one_source(key: str) -> dict[str, Any]:
    return {"anyOf": [{"required": [k]} for k in _sources(key)]}


def _at_most_one_source(key: str) -> dict[str, Any]:
    a, b, c = _sources(key)
    return {"not": {"anyOf": [{"required": pair} for pair in ([a, b], [a, c], [b, c])]}}


def _when_authentication(values: list[str], then: dict[str, Any]) -> dict[str, Any]:
    return {"if": {"properties": {"authentication": {"enum": values}},
                   "required": ["authentication"]}, "then": then}


def _doc_type(f: Field) -> str:
    if f.doc_type:
        return f.doc_type
    if f.unit:
        return f.unit
    if f.choices is not None and f.kind != "string" and len(f.choices) <= 4:
        return ", ".join(num(c) for c in f.choices)
    return {"int": "int", "number": "number", "bool": "bool"}.get(f.kind, f.kind)


def _doc_default(f: Field) -> str:
    if f.required:
        return "required"
    if f.doc_default:
        return f.doc_default
    if f.default is None:
        return "none"
    if isinstance(f.default, bool):
        return f"`{str(f.default).lower()}`"
    if isinstance(f.default, str):
        return f'`"{f.default}"`'
    if isinstance(f.default, list):
        return "`[]`"
    return f"`{num(f.default)}`"


def table(fields: tuple[Field, ...]) -> str:
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{f.key}` | {_doc_type(f)} | {_doc_default(f)} | {f.meaning} |".replace("  |", " |")
              for f in fields if not f.hidden]
    return "\n".join(lines)


def readme(text: str) -> str:
    """``text`` (config/README.md) with every generated block replaced by the table's."""
    for name, fields in DOC_TABLES.items():
        begin, end = f"<!-- fields:{name} -->", f"<!-- /fields:{name} -->"
        found = re.search(re.escape(begin) + r".*?" + re.escape(end), text, re.S)
        if found is None:
            raise ValueError(f"config/README.md has no {begin} ... {end} block")
        text = f"{text[:found.start()]}{begin}\n{table(fields)}\n{end}{text[found.end():]}"
    return text


def _dump(value: Any, indent: str = "", lead: int = 0) -> str:
    """JSON with two-space indents, each object or list on one line when it fits in 100 columns
    (the schema stays as readable as it was when written by hand). ``lead``: the characters
    before the value on its first line (its key)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(indent) + lead + len(flat) <= 100 or not isinstance(value, (dict, list)) or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, list):
        items = [inner + _dump(v, inner) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    entries = []
    for k, v in value.items():
        key = json.dumps(k, ensure_ascii=False) + ": "
        entries.append(inner + key + _dump(v, inner, len(key)))
    return "{\n" + ",\n".join(entries) + "\n" + indent + "}"


def schema_text() -> str:
    return _dump(schema()) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite the generated files")
    mode.add_argument("--check", action="store_true", help="exit 1 if a generated file is stale")
    args = parser.parse_args(argv)
    wanted = {SCHEMA_PATH: schema_text(), README_PATH: readme(README_PATH.read_text("utf-8"))}
    stale = [p for p, text in wanted.items() if p.read_text("utf-8") != text]
    if args.write:
        for path in stale:
            path.write_text(wanted[path], encoding="utf-8")
            print(f"wrote {path}")
        return 0
    for path in stale:
        print(f"{path} is stale: run python -m tb_dlms.connector.config_docs --write")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
