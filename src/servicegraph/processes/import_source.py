"""Import files read a chunk at a time: the :class:`~servicegraph.graph.streamed.Source` of
``servicegraph import``.

JSON is read as text in blocks of :data:`BLOCK` characters and decoded an item at a time by the
standard library's decoder (``scan_once``, the C scanner ``json.loads`` runs), so memory holds a
block and a chunk, never the document: the 1M-CI file (770 MB) was 3.2 GB of objects read whole.
The decoder is the standard one on purpose: what it returns is what ``json.loads`` returned
(lone surrogates, integers of any size — refused by validation with the field named), where the
C parsers that stream (yajl through ijson) replace a lone surrogate by ``?`` without a word.
The document's own shape — an object of ``"cis"`` and ``"relationships"`` lists — is walked by
hand around the items.

CIs come before relationships (a chunk's relationships need their CIs planned first): a single
JSON file whose ``cis`` come first (as ``servicegraph export`` writes them) is read once; any
other set of files is read in two passes, CIs then relationships. CSV files are read row by row.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from servicegraph.errors import Problem
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Batch, Relationship, new_ci, new_relationship
from servicegraph.graph.streamed import Chunk
from servicegraph.graph.values import MAX_JSON_BYTES
from servicegraph.processes.csv_cells import csv_unescape, parse_cell

__all__ = ["BLOCK", "FileSource"]

BLOCK = 4 << 20  # characters of JSON text decoded at a time
# An item longer than this is refused anyway (an attribute map holds at most MAX_JSON_BYTES):
# a decode that still fails with this much text after it is the file's error, not the block's end.
ITEM_MAX = 4 * MAX_JSON_BYTES
_AHEAD = 1 << 16  # characters kept ahead of the position while items are read
SECTIONS = ("cis", "relationships")
KEYS = {
    "cis": frozenset({"id", "class", "name", "attributes"}),
    "relationships": frozenset({"source", "type", "target", "attributes"}),
}
SHAPE = 'expected an object {"cis": [...], "relationships": [...]}'
_SPACE = re.compile(r"[ \t\n\r]*")
_SEPARATOR = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")

# What reading the files yields: an item (its section, its record, its place) or a problem —
# one that stops nothing (an item that is not an object) or ends the file (malformed JSON).
Found = tuple[str, CI | Relationship, tuple[str, int, str]] | Problem


class FileSource:
    """The items of import files (JSON, CSV, or folders holding cis.csv and relationships.csv),
    a chunk at a time, every CI before any relationship. Each call of :meth:`chunks` reads the
    files again; ``counts`` says how many CIs and relationships the last one read."""

    def __init__(self, model: Model, paths: Iterable[str | Path], replace: bool = False) -> None:
        self.model, self.replace = model, replace
        self.files: list[Path] = []
        self.missing: list[Problem] = []
        for raw in paths:
            path = Path(raw)
            for f in [path / "cis.csv", path / "relationships.csv"] if path.is_dir() else [path]:
                if not f.exists():
                    self.missing.append(Problem(str(f), "file", "does not exist"))
                elif f.suffix.lower() not in (".csv", ".json"):
                    self.missing.append(
                        Problem(str(f), "file", "unknown format; use .json, .csv or a folder")
                    )
                else:
                    self.files.append(f)
        # bytes the passes over the files read (for progress; a JSON file may be read twice)
        self.total = sum(f.stat().st_size for f in self.files)
        self.counts = {"cis": 0, "relationships": 0}
        self._passed = 0  # bytes of the passes finished
        self._text: _Text | None = None  # the JSON file being read
        self._texts: dict[str, str] = {}

    def chunks(self, size: int) -> Iterator[Chunk]:
        """Chunks of up to ``size`` items; a chunk's problems are those met reading it."""
        self._texts, self.counts = {}, {"cis": 0, "relationships": 0}
        batch, problems, n = Batch(replace=self.replace), list(self.missing), 0
        counts = self.counts
        for found in self._found():
            if isinstance(found, Problem):
                problems.append(found)
                continue
            section, record, (head, index, tail) = found
            counts[section] += 1
            if isinstance(record, CI):  # the batch's lists filled here: a call less an item
                batch.cis.append(record)
                batch.ci_where.number(head, index, tail)
            else:
                batch.relationships.append(record)
                batch.rel_where.number(head, index, tail)
            n += 1
            if n >= size:
                yield Chunk(batch, problems, min(self._done(), self.total))
                batch, problems, n = Batch(replace=self.replace), [], 0
        yield Chunk(batch, problems, self.total)

    def _done(self) -> int:
        return self._passed + (self._text.consumed if self._text is not None else 0)

    def _found(self) -> Iterator[Found]:
        """Every item as (section, record, place), CIs first, and the problems met."""
        kinds: dict[Path, str] = {}
        for f in self.files:
            kind = "json" if f.suffix.lower() == ".json" else _csv_kind(f)
            if isinstance(kind, Problem):
                yield kind
            else:
                kinds[f] = kind
        sizes = {f: f.stat().st_size for f in kinds}
        self._passed = 0
        if list(kinds.values()) == ["json"]:  # one JSON file: one pass when its CIs come first
            (path,) = kinds
            self.total = sizes[path]
            passes: list[tuple[Path, tuple[str, ...]]] = [(path, SECTIONS)]
        else:  # the CIs of every file, then the relationships of every file
            self.total = sum(sizes.values()) + sum(
                n for f, n in sizes.items() if kinds[f] == "json"
            )
            passes = [(f, ("cis",)) for f in kinds if kinds[f] in ("json", "ci")]
            passes += [
                (f, ("relationships",)) for f in kinds if kinds[f] in ("json", "relationship")
            ]
        for path, wanted in passes:
            if kinds[path] != "json":
                yield from csv_records(self.model, path, self._texts)
            elif (yield from self._json(path, wanted)):  # its relationships came first
                self._passed += sizes[path]
                self.total += sizes[path]
                yield from self._json(path, ("relationships",))
            self._passed += sizes[path]

    def _json(self, path: Path, wanted: tuple[str, ...]) -> Generator[Found, None, bool]:
        """One pass over a JSON file: the items of the ``wanted`` sections and the problems
        (those of the document's shape by the pass that reads its CIs). Relationships met
        before the CIs are passed over when both are wanted: returns True when it did so."""
        passed_over, started = False, set[str]()
        heads = {section: f"{path.name}: {section}[" for section in SECTIONS}
        with path.open("rb") as fh:
            self._text = text = _Text(fh, path)
            try:
                for found in _document(text, "cis" in wanted, started):
                    if isinstance(found, Problem):
                        yield found
                        continue
                    section, index, value = found
                    if section not in wanted:
                        continue
                    if section == "relationships" and "cis" in wanted and "cis" not in started:
                        passed_over = True
                    elif type(value) is not dict or not KEYS[section].issuperset(value):
                        yield _item_problem(path.name, section, index, value)
                    else:
                        record = _record(section, value, self._texts)
                        yield section, record, (heads[section], index, "]")
            except _Malformed as exc:
                yield Problem(str(path), "json", str(exc))
            finally:
                self._text = None
        return passed_over


def _record(section: str, item: Any, texts: dict[str, str]) -> CI | Relationship:
    """The record of a JSON item (its field types are checked by validation, with its place);
    ids and types are the strings of ``texts`` (one object however often the files name one)."""
    shared = texts.setdefault
    if section == "cis":
        ident, cls = item.get("id"), item.get("class")
        ident = shared(ident, ident) if type(ident) is str else ident
        cls = shared(cls, cls) if type(cls) is str else cls
        return new_ci(ident, cls, item.get("name"), item.get("attributes", {}), None)
    source, rel_type, target = item.get("source"), item.get("type"), item.get("target")
    source = shared(source, source) if type(source) is str else source
    rel_type = shared(rel_type, rel_type) if type(rel_type) is str else rel_type
    target = shared(target, target) if type(target) is str else target
    return new_relationship(source, rel_type, target, item.get("attributes", {}))


def csv_records(model: Model, path: Path, texts: dict[str, str]) -> Iterator[Found]:
    """The records of a CSV file (CIs or relationships, by its header), row by row, cells typed
    by the model, and the problems met."""
    section = "cis"
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            # a cell may hold the largest JSON value the store takes, its quotes doubled
            csv.field_size_limit(max(csv.field_size_limit(), 4 * MAX_JSON_BYTES))
            rows = csv.reader(fh, strict=True)
            first = next(rows, None)
            if first is None:
                yield Problem(str(path), "csv", "empty file; expected a header row")
                return
            header = [h.strip() for h in first]
            kind = _kind(header)
            if kind is None:
                yield Problem(str(path), "header", HEADER)
                return
            section = "cis" if kind == "ci" else "relationships"
            yield from _rows(model, path, rows, header, section, texts)
    except UnicodeDecodeError as exc:
        yield Problem(str(path), "file", f"not UTF-8 text ({exc.reason})")
    except csv.Error as exc:
        yield Problem(str(path), "csv", f"malformed CSV: {exc}")


def _rows(
    model: Model,
    path: Path,
    rows: Iterator[list[str]],
    header: list[str],
    section: str,
    texts: dict[str, str],
) -> Iterator[Found]:
    attr_cols = header[3:]
    head = f"{path.name}: row "
    for line, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield Problem(
                f"{head}{line}", "row", f"has {len(row)} cells, the header has {len(header)}"
            )
            continue
        a, b = _shared(texts, csv_unescape(row[0])), _shared(texts, row[1])
        if section == "cis":
            cls = model.classes.get(b)
            specs = cls.attributes if cls else {}
            c = csv_unescape(row[2])
        else:
            rel_type = model.relationship_types.get(b)
            specs = rel_type.attributes if rel_type else {}
            c = _shared(texts, csv_unescape(row[2]))
        attributes: dict[str, Any] = {}
        for col, text in zip(attr_cols, row[3:], strict=True):
            if text == "":
                continue
            try:
                attributes[col] = parse_cell(specs.get(col), text)
            except ValueError as exc:
                yield Problem(f"{head}{line}", f"attributes.{col}", str(exc))
        record = CI(a, b, c, attributes) if section == "cis" else Relationship(a, b, c, attributes)
        yield section, record, (head, line, "")


def _shared(texts: dict[str, str], value: Any) -> Any:
    """``value``, or the equal text seen before (one object however often the files name it)."""
    return texts.setdefault(value, value) if type(value) is str else value


def _item_problem(name: str, section: str, index: int, value: Any) -> Problem:
    """What is wrong with an item that is not an object of the section's keys."""
    where = f"{name}: {section}[{index}]"
    if not isinstance(value, dict):
        return Problem(where, section, "expected an object")
    keys = KEYS[section]
    extra = set(value) - keys
    return Problem(where, ", ".join(sorted(extra)), f"unknown key(s); allowed: {sorted(keys)}")


HEADER = "must start with id,class,name (CIs) or source,type,target (relationships)"


def _kind(header: list[str]) -> str | None:
    first = "\t".join(h.strip() for h in header[:3])
    return {"id\tclass\tname": "ci", "source\ttype\ttarget": "relationship"}.get(first)


def _csv_kind(path: Path) -> str | Problem:
    """``ci`` or ``relationship``, from the header row (or the problem reading it)."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), None)
    except UnicodeDecodeError as exc:
        return Problem(str(path), "file", f"not UTF-8 text ({exc.reason})")
    except csv.Error as exc:
        return Problem(str(path), "csv", f"malformed CSV: {exc}")
    if header is None:
        return Problem(str(path), "csv", "empty file; expected a header row")
    return _kind(header) or Problem(str(path), "header", HEADER)


class _Malformed(Exception):
    """The JSON text cannot be read on: its message names line and column."""


def _refuse_constant(name: str) -> Any:
    raise _Constant(name)


class _Constant(ValueError):
    pass


# its scan_once: the C scanner json.loads runs, one value at a time
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_constant=_refuse_constant
).scan_once


class _Text:
    """A JSON file's text, a block at a time, with a position in it."""

    def __init__(self, fh: BinaryIO, path: Path) -> None:
        self.fh, self.path = fh, path
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos, self.eof = "", 0, False
        self.consumed = 0  # bytes read from the file so far (for progress)
        self._lines = 0  # newlines in the text dropped before ``buf``
        self._column = 0  # characters after the last of them

    def more(self) -> bool:
        """Append the next block (dropping what was read); False at the end of the file."""
        if self.eof:
            return False
        data = self.fh.read(BLOCK)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise _Malformed("not UTF-8 text") from exc
        self.consumed += len(data)
        dropped = self.buf[: self.pos]
        newlines = dropped.count("\n")
        self._lines += newlines
        self._column = (
            len(dropped) - dropped.rfind("\n") - 1 if newlines else self._column + len(dropped)
        )
        self.buf, self.pos = self.buf[self.pos :] + text, 0
        self.eof = not data
        return True

    def peek(self) -> str:
        """The next character that is not white space ('' at the end)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def expect(self, chars: str, what: str) -> str:
        found = self.peek()
        if not found or found not in chars:
            raise self.error(f"expecting {what}", self.pos)
        self.pos += 1
        return found

    def value(self) -> Any:
        """The JSON value at the position (read over as many blocks as it spans)."""
        self.peek()
        while True:
            try:
                value, end = _SCAN(self.buf, self.pos)
            except StopIteration as exc:
                failed: tuple[str, int] | None = ("expecting a value", exc.value)
            except json.JSONDecodeError as exc:
                failed = (exc.msg, exc.pos)
            except _Constant as exc:
                where = self.buf.find(str(exc), self.pos)
                raise self.error(f"{exc} is not JSON", where) from None
            except RecursionError:
                raise self.error("nested beyond the depth limit", self.pos) from None
            else:
                if end < len(self.buf) or self.eof:  # a number may go on in the next block
                    self.pos = end
                    return value
                failed = None
            if len(self.buf) - self.pos > ITEM_MAX or not self.more():
                assert failed is not None
                raise self.error(failed[0], failed[1])

    def items(self) -> Iterator[Any]:
        """The values of the list whose ``[`` was just read, up to its ``]``.

        Each decoded where it is, then the separator after it matched: the way through
        :meth:`value` and :meth:`expect` is taken only near the end of a block or for a
        problem (a fifth of the time of reading the 100k-CI estate's file went to it)."""
        if self.peek() == "]":
            self.pos += 1
            return
        scan, separator = _SCAN, _SEPARATOR.match
        while True:
            buf = self.buf
            if len(buf) - self.pos < _AHEAD and self.more():
                continue  # the next block first: a decode cut by the end costs an exception
            try:
                value, end = scan(buf, self.pos)
                found = separator(buf, end)
            except (StopIteration, ValueError, RecursionError):
                found = None
            if found is None or found.end() >= len(buf):
                yield self.value()
                if self.expect(",]", "',' or ']'") == "]":
                    return
                self.peek()  # at the next value, as the quick way expects
                continue
            self.pos = found.end()
            yield value
            if found.group(1) == "]":
                return

    def error(self, message: str, at: int) -> _Malformed:
        before = self.buf[:at]
        newlines = before.count("\n")
        line = self._lines + newlines + 1
        column = at - before.rfind("\n") if newlines else self._column + at + 1
        return _Malformed(f"malformed at line {line} column {column}: {message}")


def _document(
    text: _Text, shape: bool, started: set[str]
) -> Iterator[tuple[str, int, Any] | Problem]:
    """The items of ``{"cis": [...], "relationships": [...]}`` in file order, as (section,
    index, value); ``started`` is given each section as it begins. ``shape``: also report what
    is wrong with the document around them (a key that is not a section, a section twice or
    not a list)."""
    path = str(text.path)
    if text.peek() != "{":
        if shape:
            yield Problem(path, "json", SHAPE)
        return
    text.pos += 1
    seen = started
    if text.peek() == "}":
        text.pos += 1
    else:
        while True:
            if text.peek() != '"':
                raise text.error("expecting a property name in double quotes", text.pos)
            key = text.value()
            text.expect(":", "':'")
            if key not in SECTIONS or key in seen:
                text.value()  # read over (a malformed value is the problem to report)
                if shape:
                    why = "is given twice" if key in seen else f"is not a section; {SHAPE}"
                    yield Problem(path, "json", f'"{key}" {why}')
            elif text.peek() != "[":
                seen.add(key)
                text.value()
                if shape:
                    yield Problem(path, key, "expected a list")
            else:
                seen.add(key)
                text.pos += 1
                for index, value in enumerate(text.items()):
                    yield key, index, value
            if text.expect(",}", "',' or '}'") == "}":
                break
    if text.peek():
        raise text.error("extra data after the document", text.pos)
