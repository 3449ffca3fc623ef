"""CSV cells of the interchange format: typed by the model, and safe to open in a spreadsheet."""

from __future__ import annotations

import re
from typing import Any

from servicegraph.graph.model import AttributeSpec

__all__ = ["TEXT_TYPES", "cell", "csv_escape", "csv_unescape", "parse_cell"]

# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): they are exported with a
# leading apostrophe, which spreadsheets show as text and the importer removes again. A value
# that itself starts with apostrophes before such a character gets one more, so the round trip
# is exact for every value.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
TEXT_TYPES = frozenset({"string", "enum", "date", "datetime"})


def csv_escape(text: str) -> str:
    """``text`` made safe to open in a spreadsheet (reversed by :func:`csv_unescape`).

    >>> csv_escape("=cmd|' /C calc'!A0"), csv_escape("plain"), csv_escape("'=x")
    ("'=cmd|' /C calc'!A0", 'plain', "''=x")
    """
    return "'" + text if _FORMULA.match(text) else text


def csv_unescape(text: str) -> str:
    """The value :func:`csv_escape` was given.

    >>> all(csv_unescape(csv_escape(t)) == t for t in ["=1+1", "'=x", "''@a", "'x", "-", "a"])
    True
    """
    return text[1:] if text.startswith("'") and _FORMULA.match(text) else text


def cell(spec: AttributeSpec | None, value: Any) -> str:
    """The cell for ``value`` of an attribute of type ``spec`` (empty: absent)."""
    if value is None:
        return ""
    text = str(value) if spec is None else spec.format_text(value)
    return csv_escape(text) if spec is None or spec.type in TEXT_TYPES else text


def parse_cell(spec: AttributeSpec | None, text: str) -> Any:
    """The value of a cell of an attribute of type ``spec`` (raises ValueError naming it)."""
    if spec is None or spec.type in TEXT_TYPES:
        text = csv_unescape(text)
    if spec is None:
        return text  # reported as an unknown attribute by validation, with the class's known ones
    try:
        return spec.parse_text(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid {spec.type}") from exc
