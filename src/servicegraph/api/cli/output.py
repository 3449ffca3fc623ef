"""How the CLI prints rows: a table on a terminal, plain tab-separated lines when piped (nothing
cut, nothing wrapped), or ``--format json|csv`` for scripts and spreadsheets.

Text is always shown as text (:func:`servicegraph.api.cli.common.safe`); CSV cells that a spreadsheet would run as a
formula are neutralised exactly as the export does.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

from servicegraph.api.cli.common import out, safe
from servicegraph.graph.values import strip_controls
from servicegraph.processes.interchange import csv_escape

__all__ = ["FORMATS", "check_format", "emit"]

FORMATS = ("table", "json", "csv")


def check_format(fmt: str, allowed: Sequence[str] = FORMATS) -> None:
    import typer

    if fmt not in allowed:
        raise typer.BadParameter(f"use one of {', '.join(allowed)}", param_hint="--format")


def write_json(data: Any) -> None:
    """A document on standard output as indented JSON (UTF-8 text; dates and other values as
    their text)."""
    sys.stdout.write(json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n")


def emit(
    rows: Iterable[dict[str, Any]],
    columns: Sequence[str],
    fmt: str = "table",
    title: str | None = None,
) -> None:
    """Print ``rows`` (dicts) with these ``columns`` in ``fmt``."""
    rows = list(rows)
    if fmt == "json":
        write_json(rows)
        return
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row.get(c)) for c in columns])
        return
    if not out.is_terminal:  # piped: one line per row, full values, tab-separated
        if title:
            sys.stdout.write(f"# {strip_controls(title)}\n")
        sys.stdout.write("\t".join(columns) + "\n")
        for row in rows:
            cells = [_plain(row.get(c)) for c in columns]
            sys.stdout.write("\t".join(cells) + "\n")
        return
    table = Table(title=safe(title) if title else None)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(safe(_plain(row.get(c))) for c in columns))
    out.print(table)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        value = json.dumps(value, ensure_ascii=False)
    return strip_controls(str(value)).replace("\t", " ")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return csv_escape(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
