"""Plain records the stores read and write: CIs, relationships, journal entries, write batches.

``CI.version`` is the stored version when read; in a write it is the version the writer expects to
replace (``None``: no check; ``0``: the CI must not exist yet).
"""

from __future__ import annotations

import base64
import json
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from servicegraph.errors import Problem, ValidationFailed

__all__ = [
    "CI",
    "SORTS",
    "Batch",
    "JournalEntry",
    "JournalFilter",
    "Page",
    "Places",
    "RelKey",
    "Relationship",
    "StoreDump",
    "TokenRecord",
    "WriteResult",
    "ci_cursor",
    "ci_page",
    "decode_cursor",
    "decode_sort_cursor",
    "dump_json",
    "encode_cursor",
    "is_text_key",
    "load_json",
    "make_page",
    "rel_cursor",
    "sort_cursor",
]

RelKey = tuple[str, str, str]  # (source, type, target)


@dataclass(frozen=True, slots=True)  # no __dict__: millions of them in an import
class CI:
    """A node of the graph: a configuration item or a record, of a class from the model."""

    id: str
    cls: str
    name: str
    attributes: dict[str, Any] = field(default_factory=dict)
    version: int | None = None

    @property
    def status(self) -> str:
        return str(self.attributes.get("status", "active"))

    def to_dict(self, with_version: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "class": self.cls, "name": self.name}
        out["attributes"] = dict(self.attributes)
        if with_version:
            out["version"] = self.version
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CI:
        return cls(
            id=data["id"],
            cls=data["class"],
            name=data["name"],
            attributes=dict(data.get("attributes") or {}),
            version=data.get("version"),
        )


@dataclass(frozen=True, slots=True)  # no __dict__: millions of them in an import
class Relationship:
    """A typed edge from the dependent (``source``) to what it depends on (``target``)."""

    source: str
    type: str
    target: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> RelKey:
        return (self.source, self.type, self.target)

    @property
    def entity(self) -> str:
        """The journal's name for this relationship."""
        return relationship_entity(self.key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "type": self.type,
            "target": self.target,
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Relationship:
        return cls(data["source"], data["type"], data["target"], dict(data.get("attributes") or {}))


# Made millions of times by an import: a frozen dataclass's __init__ sets each field through
# object.__setattr__ (480 ns a relationship); these set the slots directly (280 ns) and make the
# same objects. The 1M-CI CLI import, alternated: 42.7-42.8 -> 41.8-42.2 s (with new_mutation).
def slot_setter(cls: type, name: str) -> Callable[[object, Any], None]:
    """The setter of the slot ``name`` of ``cls`` (a frozen dataclass's field)."""
    setter: Callable[[object, Any], None] = getattr(cls, name).__set__
    return setter


_new = object.__new__
_ci_id, _ci_cls, _ci_name, _ci_attributes, _ci_version = (
    slot_setter(CI, name) for name in ("id", "cls", "name", "attributes", "version")
)
_rel_source, _rel_type, _rel_target, _rel_attributes = (
    slot_setter(Relationship, name) for name in ("source", "type", "target", "attributes")
)


def new_ci(ident: str, cls: str, name: str, attributes: dict[str, Any], version: int | None) -> CI:
    """``CI(ident, cls, name, attributes, version)``, made faster."""
    ci = _new(CI)
    _ci_id(ci, ident)
    _ci_cls(ci, cls)
    _ci_name(ci, name)
    _ci_attributes(ci, attributes)
    _ci_version(ci, version)
    return ci


def new_relationship(
    source: str, rel_type: str, target: str, attributes: dict[str, Any]
) -> Relationship:
    """``Relationship(source, rel_type, target, attributes)``, made faster."""
    rel = _new(Relationship)
    _rel_source(rel, source)
    _rel_type(rel, rel_type)
    _rel_target(rel, target)
    _rel_attributes(rel, attributes)
    return rel


def is_text_key(key: tuple[object, ...]) -> bool:
    """Whether every part of a relationship key is text (a file may give a list or a number:
    validation names it; nothing else may hash or look it up)."""
    for part in key:  # noqa: SIM110 (all() over a generator: twice the time, called per relationship)
        if not isinstance(part, str):
            return False
    return True


def relationship_entity(key: RelKey) -> str:
    source, rel_type, target = key
    return f"{source} -[{rel_type}]-> {target}"


@dataclass(frozen=True, slots=True)  # no __dict__: millions of them in an import
class JournalEntry:
    """One mutation: written in the same transaction as the change it records."""

    seq: int
    at: str
    actor: str
    op: str
    entity: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None = None  # why, when the writer said so (a forced retirement, an undelete …)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "op": self.op,
            "entity": self.entity,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


class RangeChange(NamedTuple):
    """One entity's change over a journal range: its record before the range's first entry
    touching it and after the last (None: absent), and those entries as ``(seq, at, actor, op,
    reason)`` tuples (who, when, how), in seq order."""

    kind: str  # "ci" or "relationship"
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    entries: list[tuple[int, str, str, str, str | None]]


@dataclass(frozen=True)
class JournalFilter:
    """Which journal entries to read: seq range (``since`` < seq ≤ ``until``), time range
    (``since_at`` ≤ at < ``until_at``, ISO text), actor, operations, and an entity — with
    ``related``, also the relationships that touch it (a CI's whole history)."""

    since: int = 0
    until: int | None = None
    since_at: str | None = None
    until_at: str | None = None
    actor: str | None = None
    ops: tuple[str, ...] | None = None
    entity: str | None = None
    related: bool = False

    @property
    def simple(self) -> bool:
        """Only entity and since: the indexed reads the engine's refresh does."""
        return (self.until, self.since_at, self.until_at, self.actor, self.ops) == (
            None, None, None, None, None,
        ) and not self.related  # fmt: skip


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: never the token itself, only its SHA-256 (``hash``).

    ``id`` (the hash's first 12 hex digits) names the token in listings and revocations."""

    hash: str
    user: str
    role: str
    created_at: str
    expires_at: str | None = None
    last_used_at: str | None = None
    revoked_at: str | None = None

    @property
    def id(self) -> str:
        return self.hash[:12]

    def to_dict(self, with_hash: bool = False) -> dict[str, Any]:
        out = {
            "id": self.id,
            "user": self.user,
            "role": self.role,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }
        return {"hash": self.hash, **out} if with_hash else out


@dataclass
class StoreDump:
    """Everything a store holds, exactly (versions, journal, tokens): what backups carry."""

    cis: list[CI]
    relationships: list[Relationship]
    journal: list[JournalEntry]
    tokens: list[TokenRecord]


class Places(Sequence[str]):
    """Where each item of a batch came from (``"estate.json: cis[41]"``), for its problems.

    Held as runs of numbered places — a head, the first number, how many, a tail — and spelled
    out only when read: an import names millions of items and a string for each was a sixth of
    its memory (82 bytes an item). A place given as text is a run of one."""

    __slots__ = ("_len", "_runs", "_starts")

    def __init__(self, places: Iterable[str] = ()) -> None:
        self._runs: list[
            list[Any]
        ] = []  # [head, first number (None: the head is the place), count, tail]
        self._starts: list[int] = []  # the index of each run's first place
        self._len = 0
        for place in places:
            self.append(place)

    def append(self, place: str) -> None:
        self._add([place, None, 1, ""])

    def number(self, head: str, n: int, tail: str = "") -> None:
        """Add the place ``f"{head}{n}{tail}"``: the next of the last run when it follows it."""
        if self._runs:
            last = self._runs[-1]
            if (
                last[1] is not None
                and last[1] + last[2] == n
                and last[0] == head
                and last[3] == tail
            ):
                last[2] += 1
                self._len += 1
                return
        self._add([head, n, 1, tail])

    def extend(self, other: Places) -> None:
        """Add ``other``'s places after these (a run that follows the last one joins it)."""
        for head, first, count, tail in other._runs:
            if first is None:
                self.append(head)
                continue
            self.number(head, first, tail)
            self._runs[-1][2] += count - 1
            self._len += count - 1

    def _add(self, run: list[Any]) -> None:
        self._runs.append(run)
        self._starts.append(self._len)
        self._len += 1

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> str:  # type: ignore[override]  # no slices
        if not -self._len <= index < self._len:
            raise IndexError(index)
        index %= self._len
        at = bisect_right(self._starts, index) - 1
        head, first, _, tail = self._runs[at]
        return head if first is None else f"{head}{first + index - self._starts[at]}{tail}"

    def __iter__(self) -> Iterator[str]:
        for head, first, count, tail in self._runs:
            if first is None:
                yield head
            else:
                for n in range(first, first + count):
                    yield f"{head}{n}{tail}"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"Places({list(self)!r})"


# A numbered place: head, number, tail (``("estate.json: cis[", 41, "]")``).
Place = tuple[str, int, str]


@dataclass
class Batch:
    """Everything one transaction writes. ``*_where`` say where each item came from, for errors.

    By default an update **merges**: the attributes given change, absent ones stay, and an
    attribute given as ``None`` (JSON ``null``) is removed. ``replace=True`` makes the given
    attributes the whole set (for re-importing an export, or a process that owns the record)."""

    cis: list[CI] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    retire: list[str] = field(default_factory=list)
    delete_cis: list[str] = field(default_factory=list)
    delete_relationships: list[RelKey] = field(default_factory=list)
    ci_where: Places = field(default_factory=Places)
    rel_where: Places = field(default_factory=Places)
    replace: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.ci_where, Places):  # given as a list of texts
            self.ci_where = Places(self.ci_where)
        if not isinstance(self.rel_where, Places):
            self.rel_where = Places(self.rel_where)
        # items given without places are named by their index (``cis[3]``)
        for n in range(len(self.ci_where), len(self.cis)):
            self.ci_where.number("cis[", n, "]")
        for n in range(len(self.rel_where), len(self.relationships)):
            self.rel_where.number("relationships[", n, "]")

    def add_ci(self, ci: CI, where: str | Place | None = None) -> None:
        _place(self.ci_where, where, "cis[", len(self.cis))
        self.cis.append(ci)

    def add_relationship(self, rel: Relationship, where: str | Place | None = None) -> None:
        _place(self.rel_where, where, "relationships[", len(self.relationships))
        self.relationships.append(rel)

    def __len__(self) -> int:
        return (
            len(self.cis)
            + len(self.relationships)
            + len(self.retire)
            + len(self.delete_cis)
            + len(self.delete_relationships)
        )


def _place(places: Places, where: str | Place | None, head: str, n: int) -> None:
    if where is None:
        places.number(head, n, "]")
    elif isinstance(where, str):
        places.append(where)
    else:
        places.number(*where)


@dataclass(frozen=True)
class WriteResult:
    """What a write did; ``first_seq``/``last_seq`` are its journal range (None when it did nothing)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    first_seq: int | None = None
    last_seq: int | None = None

    def then(self, later: WriteResult) -> WriteResult:
        """This result followed by ``later``'s, as one (the chunks of a streamed write)."""
        return WriteResult(
            self.created + later.created,
            self.updated + later.updated,
            self.deleted + later.deleted,
            self.unchanged + later.unchanged,
            self.first_seq if self.first_seq is not None else later.first_seq,
            later.last_seq if later.last_seq is not None else self.last_seq,
        )


_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class AttributePath:
    """A path into a record's attributes: ``a``, ``a.b.c`` or ``a.b[].c`` (the ``c`` of every item
    of the list ``a.b``). Parts are identifiers, so a path is safe to put in a store's query."""

    head: tuple[str, ...]
    item: tuple[str, ...] | None  # after ``[]``: the path inside each list item

    @classmethod
    def parse(cls, text: str) -> AttributePath:
        head_text, sep, item_text = text.partition("[].")
        head = tuple(head_text.split("."))
        item = tuple(item_text.split(".")) if sep else None
        if not all(_PATH_PART.fullmatch(p) for p in head + (item or ())):
            raise ValidationFailed(
                [Problem("path", text, "attribute names joined by '.', with '[].' after a list")],
                wrote=False,
            )
        return cls(head, item)

    def read(self, attributes: dict[str, Any]) -> Any:
        """The value at this path (None where it is missing; a list for an item path)."""
        value = _walk(attributes, self.head)
        if self.item is None:
            return value
        if not isinstance(value, list):
            return None
        return [_walk(v, self.item) for v in value]


def _walk(value: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


@dataclass(frozen=True)
class AttributeColumns:
    """Records of one class as columns: ids, names and one list of values per attribute path."""

    ids: list[str]
    names: list[str]
    columns: dict[str, list[Any]]


@dataclass(frozen=True)
class Page:
    """One page of a cursor-paginated listing."""

    items: list[Any]
    end_cursor: str | None
    has_next: bool


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def decode_cursor(cursor: str | None) -> str | None:
    """The key after which the next page starts; a malformed cursor is a ValueError."""
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_cursor(cursor) from exc


SORTS = ("id", "name", "class")


def sort_cursor(sort: str, descending: bool, key: str, ident: str) -> str:
    """A cursor for a listing ordered by ``sort`` (then id): it carries the ordering it belongs to."""
    if sort == "id" and not descending:
        return encode_cursor(ident)  # the plain id cursor, as before
    return encode_cursor(json.dumps([sort, descending, key, ident]))


def ci_cursor(ci: CI, sort: str, descending: bool) -> str:
    """The cursor that continues a listing of CIs in this ordering after ``ci``."""
    key = {"id": ci.id, "name": ci.name, "class": ci.cls}[sort]
    return sort_cursor(sort, descending, key, ci.id)


def ci_page(items: list[CI], has_next: bool, sort: str, descending: bool) -> Page:
    """A page of CIs whose end cursor continues the same ordering."""
    return Page(items, ci_cursor(items[-1], sort, descending) if items else None, has_next)


def decode_sort_cursor(cursor: str | None, sort: str, descending: bool) -> tuple[str, str] | None:
    """(sort key, id) after which the next page starts, for the same ordering."""
    text = decode_cursor(cursor)
    if text is None:
        return None
    if sort == "id" and not descending:
        return (text, text)
    try:
        got = json.loads(text)
        valid = isinstance(got, list) and len(got) == 4 and all(isinstance(x, str) for x in got[2:])
    except ValueError:
        valid = False
    if not valid or got[0] != sort or got[1] != descending:
        raise ValidationFailed(
            [
                Problem(
                    "page",
                    "after",
                    "the cursor belongs to another ordering (or is not one this server issued); "
                    "start again without `after` when you change the sort",
                )
            ],
            wrote=False,
        )
    return (got[2], got[3])


def make_page(items: list[Any], has_next: bool, key: Callable[[Any], str]) -> Page:
    return Page(items, encode_cursor(key(items[-1])) if items else None, has_next)


def rel_cursor(cursor: str | None) -> tuple[str, str, str]:
    """The (source, type, target) after which a relationship page starts."""
    key = decode_cursor(cursor)
    if key is None:
        return ("", "", "")
    parts = key.split("\0")
    if len(parts) != 3:
        raise _bad_cursor(cursor)
    return (parts[0], parts[1], parts[2])


def _bad_cursor(cursor: str | None) -> ValidationFailed:
    reason = (
        f"cursor {cursor!r} is not one this server issued; pass an endCursor from a previous page"
    )
    return ValidationFailed([Problem("page", "after", reason)], wrote=False)


def dump_json(value: Any) -> str | None:
    """Stored JSON text (keys sorted, compact, UTF-8); None stays None. orjson (4x the standard
    library on a large import); the standard library for what orjson refuses (integers beyond 64
    bits, lone surrogates), writing text as orjson does — UTF-8, not ``\\u`` escapes — unless it
    holds a lone surrogate (the SQLite store journals created records with SQLite's own JSON
    functions where they write the same bytes as this). Values are checked before they get here
    (``values.json_problem`` refuses NaN and ±Infinity, which SQLite's JSON functions cannot
    read back)."""
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:
        pass
    # as orjson writes text (UTF-8, not \u escapes) where the text can be stored so
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False,
                      ensure_ascii=False)  # fmt: skip
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: escaped
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return text


def load_json(text: str | None) -> Any:
    """Stored JSON text back to values: orjson (4x the standard library on journal replay), the
    standard library for what orjson refuses (integers beyond 64 bits)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
