"""Meter templates of dlms.json: a named set of meter fields that many meters share.

``"templates": {"kaifa-poly": {...}}`` at the top level; a meter says ``"template": "kaifa-poly"``
and gives what differs. The meter's own fields win; ``connection``, ``reportStrategy`` and
``push`` merge one level deep (the template gives type, port, wrapper; the meter its host; or
the template the push objects, the meter its system title); lists (timeseries,
profiles, rpc...) replace as a whole. A secret given by the meter in any form (``password``,
``passwordEnv``, ``passwordFile``) replaces every form of it in the template.

The merge copies only the top-level dict (and the merged dicts), never the template's lists:
10,000 meters of one template share its point lists, which the loader only reads.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from .config_fields import SECRET_SOURCES
from .field_readers import Report, Section, show

__all__ = ["MERGED_DICTS", "Templates", "parse_templates"]

MERGED_DICTS = ("connection", "reportStrategy", "push")  # merged one level deep; the rest replaced
_SOURCES = tuple((key, f"{key}Env", f"{key}File") for key in SECRET_SOURCES)
_NOT_IN_TEMPLATE = ("deviceName", "template")


class Templates:
    """The valid templates by name, the names defined (valid or not), and which were used."""

    def __init__(self) -> None:
        self.valid: dict[str, dict[str, Any]] = {}
        self.defined: list[str] = []
        self.used: set[str] = set()
        self.warned: set[str] = set()  # "template 'x': path: message" lines already said

    def unknown(self, name: Any) -> str:
        """The error for a meter naming a template that is not defined (or not usable)."""
        if isinstance(name, str) and name in self.defined:
            return f"template {show(name)} has errors (reported above): meter not loaded"
        if not isinstance(name, str) or not name.strip():
            return f"must name a template, got {show(name)}"
        if not self.defined:
            return f"{show(name)} is not defined: dlms.json has no \"templates\""
        close = difflib.get_close_matches(name, self.defined, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return (f"{show(name)} is not defined{hint}; templates: "
                f"{', '.join(repr(n) for n in self.defined)}")

    def merged(self, name: str, meter: Mapping[str, Any]) -> dict[str, Any]:
        """``meter`` over template ``name`` (which must be valid)."""
        self.used.add(name)
        template = self.valid[name]
        out = dict(template)
        for forms in _SOURCES:
            if any(f in meter for f in forms):  # the meter's source replaces the template's
                for f in forms:
                    out.pop(f, None)
        for key, value in meter.items():
            if key == "template":
                continue
            below = out.get(key)
            if key in MERGED_DICTS and isinstance(value, dict) and isinstance(below, dict) \
                    and not (key == "connection" and _other_type(below, value)):
                out[key] = {**below, **value}
            else:
                out[key] = value
        return out

    def owns(self, path: str, meter: Mapping[str, Any]) -> bool:
        """Whether the field at ``path`` (``timeseries[3].obis``, ``connection.baud``) came
        from the template rather than from the meter's own entry."""
        head = path.split(".", 1)[0].split("[", 1)[0]
        if not head:
            return False
        if head not in meter:
            return True
        own = meter.get(head)
        if head in MERGED_DICTS and isinstance(own, dict) and "." in path:
            sub = path.split(".", 2)[1].split("[", 1)[0]
            return sub not in own
        return False


def parse_templates(root: Section, meter_keys: tuple[str, ...]) -> Templates:
    """The top-level ``templates`` object; errors and warnings go to ``root.report``: a
    template that is not an object, names a device or another template, and (once per
    template, not per meter) its unknown keys."""
    out = Templates()
    section = root.obj("templates")
    if section is None:
        return out
    allowed = [k for k in meter_keys if k not in _NOT_IN_TEMPLATE]
    for name, body in section.data.items():
        out.defined.append(name)
        where = _path(name)
        if not isinstance(body, dict):
            root.report.error(where, f"must be an object of meter fields, got {show(body)}")
            continue
        bad = [k for k in _NOT_IN_TEMPLATE if k in body]
        for key in bad:
            root.report.error(f"{where}.{key}", "is not allowed in a template (each meter gives "
                                                 "its own deviceName; templates do not nest)")
        t = Section(body, root.report, where)
        t.warn_unknown([*allowed, *_NOT_IN_TEMPLATE])
        if bad:
            continue
        # Unknown keys are said once above; the meters using the template never see them.
        out.valid[name] = {k: v for k, v in body.items() if k in allowed}
    return out


def unused_warnings(templates: Templates, report: Report) -> None:
    for name in templates.defined:
        if name not in templates.used and name in templates.valid:
            report.warn(_path(name), "no meter uses this template")


def _other_type(below: Mapping[str, Any], value: Mapping[str, Any]) -> bool:
    """A meter on another kind of line than its template's (a serial meter over a TCP
    template): its ``connection`` replaces the template's, no host or baud rate carried over."""
    return "type" in value and "type" in below and value["type"] != below["type"]


def _path(name: str) -> str:
    """Where a template is, as messages say it: its name as written when that is plain text,
    else quoted and escaped (a hostile key must not break a log line)."""
    plain = name.isprintable() and "." not in name and 0 < len(name) <= 64
    return f"templates.{name}" if plain else f"templates[{show(name)}]"
