"""Import and export of the interchange formats (9.1: a CMDB export usable offline).

JSON: ``{"cis": [{"id", "class", "name", "attributes"}], "relationships": [{"source", "type",
"target", "attributes"}]}``. CSV: a CI file (columns ``id,class,name`` then one column per attribute)
and a relationship file (``source,type,target`` then attribute columns); cells are typed by the model,
an empty cell is an absent attribute, ``string_list`` cells hold a JSON array. Reading collects every
problem of every file before anything is written; the write is one transaction.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from servicegraph.errors import Problem, StoreBusy, ValidationFailed
from servicegraph.graph.atomic_file import atomic_write
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.model import AttributeSpec, Model
from servicegraph.graph.records import CI, Batch, Relationship, WriteResult
from servicegraph.graph.store import GraphStore
from servicegraph.graph.validation import check_batch
from servicegraph.graph.values import MAX_JSON_BYTES

__all__ = [
    "csv_escape",
    "csv_unescape",
    "export_csv",
    "export_json",
    "import_files",
    "read_batch",
    "snapshot",
]

CI_KEYS = {"id", "class", "name", "attributes"}
REL_KEYS = {"source", "type", "target", "attributes"}


def import_files(
    store: GraphStore,
    paths: Iterable[str | Path],
    actor: str = "import",
    progress: Callable[[int, int], None] | None = None,
    replace: bool = False,
) -> WriteResult:
    """Read, validate and write files (JSON, CSV, or a folder holding cis.csv/relationships.csv),
    all or nothing (:meth:`GraphStore.bulk_write`).

    Records that exist are merged (``replace``: the file's attributes become the whole record)."""
    batch = read_batch(store.model, paths)
    batch.replace = replace
    return store.bulk_write(batch, actor, progress=progress)


def read_batch(model: Model, paths: Iterable[str | Path]) -> Batch:
    """Parse files into one batch; every parse problem of every file is raised together."""
    batch, problems = Batch(), []
    # One string object for each id and type, however often the files name it: a relationship's
    # ends were otherwise strings of their own (~0.75 GB for a million-CI file)
    texts: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        files = [path / "cis.csv", path / "relationships.csv"] if path.is_dir() else [path]
        for f in files:
            if not f.exists():
                problems.append(Problem(str(f), "file", "does not exist"))
            elif f.suffix.lower() == ".csv":
                problems += _read_csv(model, f, batch, texts)
            elif f.suffix.lower() == ".json":
                problems += _read_json(f, batch, texts)
            else:
                problems.append(
                    Problem(str(f), "file", "unknown format; use .json, .csv or a folder")
                )
    if problems:
        # One pass: what did not parse, and everything else the model refuses in what did.
        raise ValidationFailed(problems + check_batch(model, batch))
    return batch


def snapshot(store: GraphStore) -> dict[str, list[dict[str, Any]]]:
    """The whole graph in the JSON interchange shape, ordered for stable diffs."""
    return {
        "cis": [ci.to_dict(with_version=False) for ci in store.iter_cis()],
        "relationships": [rel.to_dict() for rel in store.iter_relationships()],
    }


def export_json(store: GraphStore, path: str | Path) -> dict[str, int]:
    """Write the graph in :func:`snapshot`'s shape, item by item, indented by two spaces: memory
    stays that of one item (a million-CI store: 7.9 GB peak and 90 s when the whole snapshot was
    built and indented by the json module first). Written under a temporary name and renamed,
    so a failed export leaves no half-written file."""
    counts = {"cis": 0, "relationships": 0}
    with atomic_write(Path(path)) as fh:
        sections = (
            ("cis", (ci.to_dict(with_version=False) for ci in store.iter_cis())),
            ("relationships", (rel.to_dict() for rel in store.iter_relationships())),
        )
        fh.write(b"{")
        for n, (section, items) in enumerate(sections):
            fh.write(b'%s\n  "%s": [' % (b"," if n else b"", section.encode()))
            for item in items:
                text = orjson.dumps(item, option=orjson.OPT_INDENT_2).replace(b"\n", b"\n    ")
                fh.write(b"%s\n    %s" % (b"," if counts[section] else b"", text))
                counts[section] += 1
            fh.write(b"\n  ]" if counts[section] else b"]")
        fh.write(b"\n}\n")
    return counts


def export_csv(store: GraphStore, folder: str | Path) -> dict[str, int]:
    """Write ``cis.csv`` and ``relationships.csv`` into ``folder``, a record at a time.

    Two passes over the store: the first finds the attribute columns, the second writes (memory
    that of one record, not of the graph). A record written meanwhile with an attribute the
    first pass did not see cannot get its column: the export stops with an error to run again,
    rather than leave a value out. Each file is written under a temporary name and renamed."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    model = store.model
    ci_cols = sorted({k for ci in store.iter_cis() for k in ci.attributes})
    rel_cols = sorted({k for r in store.iter_relationships() for k in r.attributes})

    def ci_rows() -> Iterator[list[str]]:
        for ci in store.iter_cis():
            _same_columns(ci.attributes, ci_cols, ci.id)
            specs = model.classes[ci.cls].attributes
            cells = [_cell(specs.get(c), ci.attributes.get(c)) for c in ci_cols]
            yield [csv_escape(ci.id), ci.cls, csv_escape(ci.name), *cells]

    def rel_rows() -> Iterator[list[str]]:
        for r in store.iter_relationships():
            _same_columns(r.attributes, rel_cols, r.entity)
            specs = model.relationship_types[r.type].attributes
            cells = [_cell(specs.get(c), r.attributes.get(c)) for c in rel_cols]
            yield [csv_escape(r.source), r.type, csv_escape(r.target), *cells]

    return {
        "cis": _write_csv(out / "cis.csv", ["id", "class", "name", *ci_cols], ci_rows()),
        "relationships": _write_csv(
            out / "relationships.csv", ["source", "type", "target", *rel_cols], rel_rows()
        ),
    }


def _same_columns(attributes: dict[str, Any], columns: list[str], entity: str) -> None:
    if not attributes.keys() <= set(columns):
        extra = sorted(attributes.keys() - set(columns))
        raise StoreBusy(
            f"{entity} gained attribute(s) {extra} while the CSV export ran (a write during the "
            "export); run the export again"
        )


def _write_csv(path: Path, header: list[str], rows: Iterator[list[str]]) -> int:
    count = 0
    with atomic_write(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _cell(spec: AttributeSpec | None, value: Any) -> str:
    if value is None:
        return ""
    text = str(value) if spec is None else spec.format_text(value)
    return csv_escape(text) if spec is None or spec.type in _TEXT_TYPES else text


# Cells a spreadsheet would run as a formula (OWASP "CSV injection"): they are exported with a
# leading apostrophe, which spreadsheets show as text and the importer removes again. A value
# that itself starts with apostrophes before such a character gets one more, so the round trip
# is exact for every value.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
_TEXT_TYPES = frozenset({"string", "enum", "date", "datetime"})


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


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(path: Path) -> Any:
    """The document in the file ``path``, as the JSON standard reads it.

    Parsed by the standard library: as fast as orjson on import files, and at its peak it holds
    a third of the memory (measured on the demo estate: 618 against 1,911 bytes an item, 3.8
    times what orjson returns; 9 GB for a million-CI file). What it accepts beyond the standard
    (NaN, Infinity, text that is not UTF-8) is refused here, and whatever it refuses is parsed
    again by orjson, whose error names line and column; validation then checks every value (lone
    surrogates, numbers beyond 64 bits), as it does for every entrance."""
    try:
        text = path.read_bytes().decode("utf-8")  # the bytes are gone once decoded
        with paused_gc():  # a container per record: the collector would scan them again and again
            return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return orjson.loads(path.read_bytes())


def _read_json(path: Path, batch: Batch, texts: dict[str, str]) -> list[Problem]:
    try:
        data = _load_json(path)
    except orjson.JSONDecodeError as exc:
        reason = "not UTF-8 text" if "UTF-8" in exc.msg else exc.msg
        return [
            Problem(
                str(path), "json", f"malformed at line {exc.lineno} column {exc.colno}: {reason}"
            )
        ]
    if not isinstance(data, dict) or not set(data) <= {"cis", "relationships"}:
        return [
            Problem(str(path), "json", 'expected an object {"cis": [...], "relationships": [...]}')
        ]
    problems: list[Problem] = []
    for section, keys in (("cis", CI_KEYS), ("relationships", REL_KEYS)):
        items = data.get(section, [])
        if not isinstance(items, list):
            problems.append(Problem(str(path), section, "expected a list"))
            continue
        head = f"{path.name}: {section}["
        for i, item in enumerate(items):
            items[i] = None  # the parsed object is freed as its record is made
            if not isinstance(item, dict):
                problems.append(Problem(f"{head}{i}]", section, "expected an object"))
                continue
            if extra := set(item) - keys:
                problems.append(
                    Problem(
                        f"{head}{i}]",
                        ", ".join(sorted(extra)),
                        f"unknown key(s); allowed: {sorted(keys)}",
                    )
                )
                continue
            item_any: Any = item  # field types are checked by validation, with locations
            if section == "cis":
                ci = CI(
                    _shared(texts, item_any.get("id")),
                    _shared(texts, item_any.get("class")),
                    item_any.get("name"),
                    item_any.get("attributes", {}),
                )
                batch.add_ci(ci, (head, i, "]"))
            else:
                rel = Relationship(
                    _shared(texts, item_any.get("source")),
                    _shared(texts, item_any.get("type")),
                    _shared(texts, item_any.get("target")),
                    item_any.get("attributes", {}),
                )
                batch.add_relationship(rel, (head, i, "]"))
    return problems


def _shared(texts: dict[str, str], value: Any) -> Any:
    """``value``, or the equal text seen before (one object however often a file names it)."""
    return texts.setdefault(value, value) if type(value) is str else value


def _read_csv(model: Model, path: Path, batch: Batch, texts: dict[str, str]) -> list[Problem]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            # a cell may hold the largest JSON value the store takes, its quotes doubled
            csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_JSON_BYTES))
            # row by row: the file's rows are not held beside the records made of them
            return _read_rows(model, path, csv.reader(fh, strict=True), batch, texts)
    except UnicodeDecodeError as exc:
        return [Problem(str(path), "file", f"not UTF-8 text ({exc.reason})")]
    except csv.Error as exc:
        return [Problem(str(path), "csv", f"malformed CSV: {exc}")]


def _read_rows(
    model: Model, path: Path, rows: Iterator[list[str]], batch: Batch, texts: dict[str, str]
) -> list[Problem]:
    first = next(rows, None)
    if first is None:
        return [Problem(str(path), "csv", "empty file; expected a header row")]
    header = [h.strip() for h in first]
    if header[:3] == ["id", "class", "name"]:
        kind = "ci"
    elif header[:3] == ["source", "type", "target"]:
        kind = "relationship"
    else:
        return [
            Problem(
                str(path),
                "header",
                "must start with id,class,name (CIs) or source,type,target (relationships)",
            )
        ]
    problems: list[Problem] = []
    attr_cols = header[3:]
    head = f"{path.name}: row "
    for line, row in enumerate(rows, start=2):
        where = f"{head}{line}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            problems.append(
                Problem(where, "row", f"has {len(row)} cells, the header has {len(header)}")
            )
            continue
        a, b = _shared(texts, csv_unescape(row[0])), _shared(texts, row[1])
        c = _shared(texts, csv_unescape(row[2])) if kind == "relationship" else csv_unescape(row[2])
        if kind == "ci":
            cls = model.classes.get(b)
            specs = cls.attributes if cls else {}
        else:
            rel_type = model.relationship_types.get(b)
            specs = rel_type.attributes if rel_type else {}
        attributes: dict[str, Any] = {}
        for col, text in zip(attr_cols, row[3:], strict=True):
            if text == "":
                continue
            spec = specs.get(col)
            try:
                attributes[col] = _parse_cell(spec, text)
            except ValueError as exc:
                problems.append(Problem(where, f"attributes.{col}", str(exc)))
        if kind == "ci":
            batch.add_ci(CI(a, b, c, attributes), (head, line, ""))
        else:
            batch.add_relationship(Relationship(a, b, c, attributes), (head, line, ""))
    return problems


def _parse_cell(spec: AttributeSpec | None, text: str) -> Any:
    if spec is None or spec.type in _TEXT_TYPES:
        text = csv_unescape(text)
    if spec is None:
        return text  # reported as an unknown attribute by validation, with the class's known ones
    try:
        return spec.parse_text(text)
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid {spec.type}") from exc
