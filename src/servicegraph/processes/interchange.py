"""Import and export of the interchange formats (9.1: a CMDB export usable offline).

JSON: ``{"cis": [{"id", "class", "name", "attributes"}], "relationships": [{"source", "type",
"target", "attributes"}]}``. CSV: a CI file (columns ``id,class,name`` then one column per attribute)
and a relationship file (``source,type,target`` then attribute columns); cells are typed by the model,
an empty cell is an absent attribute, ``string_list`` cells hold a JSON array. An import reports
every problem of every file and leaves nothing of itself behind when there is one. Files are read
a chunk at a time (:mod:`servicegraph.processes.import_source`), so an import holds a chunk in
memory, not the files; how a write takes the chunks, all or nothing, is
:mod:`servicegraph.graph.streamed`.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from servicegraph.errors import StoreBusy, ValidationFailed
from servicegraph.graph.atomic_file import atomic_write
from servicegraph.graph.model import Model
from servicegraph.graph.records import Batch, WriteResult
from servicegraph.graph.store import GraphStore
from servicegraph.graph.streamed import ChunkCheck
from servicegraph.graph.validation import check_batch
from servicegraph.processes.csv_cells import cell, csv_escape, csv_unescape
from servicegraph.processes.import_source import FileSource

__all__ = [
    "csv_escape",
    "csv_unescape",
    "export_csv",
    "export_json",
    "import_files",
    "read_batch",
    "snapshot",
]


def import_files(
    store: GraphStore,
    paths: Iterable[str | Path],
    actor: str = "import",
    progress: Callable[[int, int], None] | None = None,
    replace: bool = False,
    check: ChunkCheck | None = None,
) -> WriteResult:
    """Read, validate and write files (JSON, CSV, or a folder holding cis.csv/relationships.csv),
    all or nothing, a chunk at a time (:meth:`GraphStore.write_stream`: memory stays that of a
    chunk, whatever the size of the files). ``progress(done, total)`` counts bytes read.

    Records that exist are merged (``replace``: the file's attributes become the whole record).
    ``check`` is called with each chunk before it is written (and may refuse it by raising)."""
    source = FileSource(store.model, paths, replace)
    return store.write_stream(source, actor, progress=progress, check=check)


def read_batch(model: Model, paths: Iterable[str | Path]) -> Batch:
    """Parse files into one batch held whole (for small files); every problem of every file
    — reading them and what the model refuses — is raised together."""
    chunk = next(FileSource(model, paths).chunks(sys.maxsize))
    if problems := chunk.problems + check_batch(model, chunk.batch):
        raise ValidationFailed(problems)
    return chunk.batch


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
            cells = [cell(specs.get(c), ci.attributes.get(c)) for c in ci_cols]
            yield [csv_escape(ci.id), ci.cls, csv_escape(ci.name), *cells]

    def rel_rows() -> Iterator[list[str]]:
        for r in store.iter_relationships():
            _same_columns(r.attributes, rel_cols, r.entity)
            specs = model.relationship_types[r.type].attributes
            cells = [cell(specs.get(c), r.attributes.get(c)) for c in rel_cols]
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
