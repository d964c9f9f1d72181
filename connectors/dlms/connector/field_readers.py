"""Field readers for the dlms.json loader: strict types, range checks, one message per bad field.

A ``Section`` wraps one JSON object (the top level, a meter, a connection, a point) and a
``Report`` shared by one meter. Each reader returns the value, or the default after recording an
error that names the field by its path ("timeseries[3].obis"). No reader clamps or coerces: a
string "1000" where a number belongs is an error, not a number.
"""

from __future__ import annotations

import difflib
import math
import reprlib
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, overload

__all__ = ["MAX_DEPTH", "MISSING", "Report", "Section", "bad_char", "depth_over", "num", "show"]

_MISSING = MISSING = object()  # what get() returns for an absent (or null, reported) key
MAX_DEPTH = 32  # no dlms.json field nests this deep; deeper input is refused, never recursed into

# Bad values are quoted cut short: a 10 kB string or a list nested 900 deep makes no log line.
_SHOW = reprlib.Repr()
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother, _SHOW.maxlong = 3, 60, 60, 40
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 6
_BIG_INT_BITS = 128
_SHOW_MAX = 100  # characters of a quoted value, whatever its shape


def show(value: Any) -> str:
    """``repr(value)`` cut to a readable length, safe for any JSON value (huge ints, deep lists)."""
    if isinstance(value, int) and not isinstance(value, bool) and \
            value.bit_length() > _BIG_INT_BITS:
        # repr of a >4300-digit int raises ValueError; the size is all the user needs anyway
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}<integer of about {digits} digits>"
    try:
        text = _SHOW.repr(value)
    except (ValueError, RecursionError):
        return f"<{type(value).__name__}>"
    return text if len(text) <= _SHOW_MAX else text[:_SHOW_MAX - 3] + "..."


def bad_char(text: str) -> str | None:
    """The first control, line-separator or lone-surrogate character of ``text``, as U+XXXX."""
    for c in text:
        if unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp"):
            return f"U+{ord(c):04X}"
    return None


def depth_over(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists/objects nest deeper than ``limit`` (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (list, dict)):
            if level > limit:
                return True
            stack.extend((child, level + 1)
                         for child in (node.values() if isinstance(node, dict) else node))
    return False


class Report:
    """Errors and warnings of one meter (or of the top level), each already prefixed."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.warning_paths: list[str] = []  # the field of each warning ("" for the meter)

    def _line(self, path: str, message: str) -> str:
        return f"{self.label}: {path}: {message}" if path else f"{self.label}: {message}"

    def error(self, path: str, message: str) -> None:
        self.errors.append(self._line(path, message))

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(self._line(path, message))
        self.warning_paths.append(path)


def num(x: float) -> str:
    """A number as a user wrote it: 86400000, not 8.64e+07; 1.5 stays 1.5."""
    if isinstance(x, int) and not isinstance(x, bool):
        return show(x)  # an int may be too large for float()
    return str(int(x)) if math.isfinite(x) and float(x).is_integer() else repr(float(x))


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class Section:
    """One JSON object being read; ``path`` is its place in the meter ("connection", ...)."""

    def __init__(self, data: Mapping[str, Any], report: Report, path: str = "") -> None:
        self.data = data
        self.report = report
        self.path = path
        self.bad = False  # set by any error in this section

    def where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> None:
        self.bad = True
        self.report.error(self.where(key), message)

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def warn_unknown(self, known: Iterable[str]) -> None:
        known = list(known)
        for key in self.data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.report.warn(self.where(str(key)), f"unknown key ignored{hint}")

    def get(self, key: str, required: bool = False) -> Any:
        """The raw value, or MISSING when absent or null (null and absent-but-required are
        reported here)."""
        return self._get(key, required)

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is None:  # null is a mistake to report, not a quiet request for the default
            self.error(key, "is required, got null" if required
                       else "must not be null (leave the key out to get the default)")
            return _MISSING
        if value is _MISSING:
            if required:
                self.error(key, "is required")
            return _MISSING
        return value

    # ---- scalars ------------------------------------------------------------------------
    @overload
    def string(self, key: str, default: str, required: bool = False,
               choices: Iterable[str] | None = None, lower: bool = False) -> str: ...

    @overload
    def string(self, key: str, default: None = None, required: bool = False,
               choices: Iterable[str] | None = None, lower: bool = False) -> str | None: ...

    def string(self, key: str, default: str | None = None, required: bool = False,
               choices: Iterable[str] | None = None, lower: bool = False) -> str | None:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or not value.strip():
            self.error(key, f"must be a non-empty string, got {_kind(value)} {show(value)}")
            return default
        text = value.strip()
        char = bad_char(text)
        if char is not None:
            self.error(key, f"{show(value)} contains the control character {char}")
            return default
        if lower:
            text = text.lower()
        if choices is not None:
            options = list(choices)
            if text not in options:
                self.error(key, f"{show(value)} is not one of "
                                f"{', '.join(repr(c) for c in options)}")
                return default
        return text

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.error(key, f"must be true or false, got {_kind(value)} {show(value)}")
            return default
        return value

    @overload
    def integer(self, key: str, default: int, lo: int, hi: int,
                required: bool = False) -> int: ...

    @overload
    def integer(self, key: str, default: None, lo: int, hi: int,
                required: bool = False) -> int | None: ...

    def integer(self, key: str, default: int | None, lo: int, hi: int,
                required: bool = False) -> int | None:
        value = self._get(key, required)
        if value is _MISSING:
            return default
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON writers may emit 3.0 for 3: same number, not a coercion
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"must be an integer, got {_kind(value)} {show(value)}")
            return default
        if not lo <= value <= hi:
            self.error(key, f"{num(value)} is out of range {lo}..{hi}")
            return default
        return value

    def number(self, key: str, default: float, lo: float, hi: float,
               allow_zero: bool = False) -> float:
        """A finite number in lo..hi (or exactly 0 when ``allow_zero``: 'off')."""
        value = self._get(key, False)
        if value is _MISSING:
            return float(default)
        # No float(value) before the range check: an int of 10**309 overflows a float.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not math.isfinite(value)
        ):
            self.error(key, f"must be a number, got {_kind(value)} {show(value)}")
            return float(default)
        if allow_zero and value == 0:
            return 0.0
        if not lo <= value <= hi:
            extra = " (or 0 to turn it off)" if allow_zero else ""
            self.error(key, f"{num(value)} is out of range {num(lo)}..{num(hi)}{extra}")
            return float(default)
        return float(value)

    def read(self, f: Any, hi: int | None = None) -> Any:
        """The value of table entry ``f`` (a ``config_fields.Field``): its kind, default, range
        and choices; ``hi`` narrows the range where the context does (addresses, wrapper)."""
        if f.kind == "string":
            return self.string(f.key, f.default, f.required, choices=f.choices, lower=f.lower)
        if f.kind == "bool":
            return self.boolean(f.key, f.default)
        if f.kind == "int":
            lo = min(f.choices) if f.choices else int(f.lo)
            top = hi if hi is not None else max(f.choices) if f.choices else int(f.hi)
            value: Any = self.integer(f.key, f.default, lo, top, f.required)
        elif f.kind == "number" and f.choices:
            value = self.number(f.key, f.default, min(f.choices), max(f.choices))
        elif f.kind == "number":
            value = self.number(f.key, f.default, f.lo, f.hi, allow_zero=f.zero_off)
        else:
            raise TypeError(f"{f.key}: a {f.kind} field is read by the loader's own code")
        if f.choices and value is not None and self.has(f.key) and value not in f.choices:
            self.error(f.key, f"{num(value)} is not one of {', '.join(map(num, f.choices))}")
            return f.default
        return value

    # ---- containers ---------------------------------------------------------------------
    def obj(self, key: str, required: bool = False) -> Section | None:
        value = self._get(key, required)
        if value is _MISSING:
            return None
        if not isinstance(value, dict):
            self.error(key, f"must be an object, got {_kind(value)}")
            return None
        return Section(value, self.report, self.where(key))

    def items(self, key: str) -> list[Section]:
        """The objects of a list field, each as a Section with path ``key[i]``."""
        value = self._get(key, False)
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self.error(key, f"must be a list, got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(item, dict):
                self.error(where, f"must be an object, got {_kind(item)}")
                continue
            out.append(Section(item, self.report, self.where(where)))
        return out
