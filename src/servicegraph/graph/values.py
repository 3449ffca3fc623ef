"""What any value must be before a store accepts it, whatever door it came through.

Every entrance (JSON and CSV import, GraphQL variables and literals, the Python API, change fields)
reaches the store through :meth:`GraphStore.write`, whose validation calls these checks, so one
set of rules keeps the store readable by every analysis:

* numbers are finite (NaN and ±Infinity are refused: SQLite's JSON functions cannot read them back)
  and integers stay within ±(2**53 - 1) unless the model bounds them tighter (JavaScript clients and
  float64 columns read them exactly, and the engine's int32 arrays are bounded by the model);
* text is valid Unicode without NUL and lone surrogates (they cannot be encoded as UTF-8), and ids,
  names and actors carry no control characters at all;
* JSON values nest at most :data:`MAX_JSON_DEPTH` levels and stay under :data:`MAX_JSON_BYTES`.

>>> text_problem("db\\x00-1", single_line=True)
'contains the control character U+0000; remove it'
>>> json_problem({"a": [1.5, float("nan")]})
'a[1]: NaN is not a finite number; give a finite value or leave the attribute out'
>>> integer_problem(2**60) is not None
True
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_LIST_ITEMS",
    "MAX_NAME_LENGTH",
    "MAX_SAFE_INTEGER",
    "MAX_TEXT_LENGTH",
    "integer_problem",
    "json_problem",
    "number_problem",
    "strip_controls",
    "text_problem",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1 << 20
MAX_TEXT_LENGTH = 65_536
MAX_NAME_LENGTH = 1_000
MAX_LIST_ITEMS = 10_000

# C0 and C1 control characters, DEL, and the bidirectional overrides that can make a terminal or a
# review tool show text other than what is stored ("Trojan Source").
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def text_problem(value: str, single_line: bool = False) -> str | None:
    """Why ``value`` cannot be stored as text, or None.

    ``single_line`` (ids, names, actors) also refuses every control character; other text may hold
    tabs and line breaks but never NUL."""
    if value.isascii() and value.isprintable():  # the common case, decided in C
        return None
    if _SURROGATE.search(value):
        return "contains a lone surrogate (not valid Unicode, cannot be stored as UTF-8)"
    if single_line:
        found = _CONTROLS.search(value)
        if found:
            return f"contains the control character U+{ord(found.group()):04X}; remove it"
    elif "\x00" in value:
        return "contains the NUL character U+0000; remove it"
    return None


def integer_problem(value: int) -> str | None:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return None
    return (
        f"{value} is outside ±{MAX_SAFE_INTEGER:,} (2**53 - 1), the range every client reads "
        "exactly; store it as a string if it is an identifier"
    )


def number_problem(value: int | float) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return (
                f"{_show(value)} is not a finite number; give a finite value or leave the "
                "attribute out"
            )
        return None
    return integer_problem(value)


def json_problem(value: Any) -> str | None:
    """Why ``value`` is not a storable JSON value (depth, non-finite numbers, bad text), or None."""
    problem = _json_walk(value, "", 0)
    if problem is not None:
        return problem
    import orjson  # bytes, not characters: what the store will hold

    size = len(orjson.dumps(value))
    if size > MAX_JSON_BYTES:
        return f"is {size:,} bytes of JSON, more than {MAX_JSON_BYTES:,}"
    return None


def _json_walk(value: Any, where: str, depth: int) -> str | None:
    if depth > MAX_JSON_DEPTH:
        return f"{where or 'the value'} nests deeper than {MAX_JSON_DEPTH} levels"
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        problem = number_problem(value)
        return f"{where}: {problem}" if problem and where else problem
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{where or 'text'}: {problem}" if problem else None
    if isinstance(value, list):
        for i, item in enumerate(value):
            if problem := _json_walk(item, f"{where}[{i}]", depth + 1):
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where or 'the value'}: object keys must be strings"
            if problem := text_problem(key, single_line=True):
                return f"{where or 'the value'}: key {key!r} {problem}"
            if problem := _json_walk(item, f"{where}.{key}" if where else key, depth + 1):
                return problem
        return None
    return f"{where or 'the value'}: {type(value).__name__} is not a JSON value"


def strip_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters and bidi overrides removed (for terminals and logs);
    ``keep_newlines`` keeps line breaks (multi-line messages)."""
    if keep_newlines:
        return "\n".join(_CONTROLS.sub("", line) for line in text.split("\n"))
    return _CONTROLS.sub("", text)


def _show(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
