"""The GraphStore contract and the write path both stores share.

A write is one transaction: lock the journal, read what the batch touches, validate against the model
and the graph, plan the mutations (skipping unchanged records, checking versions), apply them and append
one journal entry per mutation. Only the primitives (:class:`WriteTx`) and the read queries differ
between SQLite and Neo4j, so both stores give the same answers by construction, and one contract test
suite checks it.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dc_replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from servicegraph.errors import Problem, StaleVersion, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.model import Model
from servicegraph.graph.records import (
    CI,
    SORTS,
    AttributeColumns,
    AttributePath,
    Batch,
    JournalEntry,
    JournalFilter,
    Page,
    RangeChange,
    Relationship,
    RelKey,
    StoreDump,
    TokenRecord,
    WriteResult,
    is_text_key,
    new_ci,
    relationship_entity,
    slot_setter,
)
from servicegraph.graph.streamed import CHUNK, ChunkCheck, Source, stream_write
from servicegraph.graph.validation import (
    check_against_store,
    check_batch,
    check_write_names,
)
from servicegraph.graph.values import text_problem

if TYPE_CHECKING:
    from servicegraph.graph.topology import TopologyColumns

__all__ = [
    "MAX_PAGE_SIZE",
    "UNREADABLE",
    "GraphStore",
    "Mutation",
    "Plan",
    "Progress",
    "ReadTx",
    "TopologyNode",
    "WriteTx",
]

T = TypeVar("T")
MAX_PAGE_SIZE = 1000
Progress = Callable[[int, int], None]
TopologyNode = tuple[str, str, str | None, Any, str]  # id, class, status, min_up, name
# In place of min_up: the node's stored attributes could not be read (written by an older version).
UNREADABLE = "<unreadable attributes>"


def _no_progress(done: int, total: int) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Mutation:
    """One planned change, as the journal records it.

    Its ``after`` is the record it writes, as a dict, made when the journal entry is written:
    an import plans millions of mutations and holding a dict for each doubled the memory of the
    plan (measured: 492 bytes an item)."""

    op: str  # create_ci | update_ci | retire_ci | delete_ci | {create,update,delete}_relationship
    before: dict[str, Any] | None
    # What the store writes for it: the CI or relationship upserted (its ``after``), the key or
    # id deleted (``after`` None). A plan cut into slices (:func:`servicegraph.graph.bulk.slices`)
    # rebuilds its lists from it.
    record: CI | Relationship | RelKey | str

    @property
    def entity(self) -> str:
        """What the journal names: a CI's id, a relationship's ``source -[TYPE]-> target``.

        Made when asked for, from the record: held for each relationship of an import it was
        ~120 bytes an item."""
        record = self.record
        if isinstance(record, CI):
            return record.id
        if isinstance(record, Relationship):
            return record.entity
        return record if isinstance(record, str) else relationship_entity(record)

    @property
    def after(self) -> dict[str, Any] | None:
        """The record as the journal keeps it after this change (None for a delete)."""
        record = self.record
        return record.to_dict() if isinstance(record, (CI, Relationship)) else None


_new = object.__new__
_mutation_op, _mutation_before, _mutation_record = (
    slot_setter(Mutation, name) for name in ("op", "before", "record")
)


def new_mutation(
    op: str, before: dict[str, Any] | None, record: CI | Relationship | RelKey | str
) -> Mutation:
    """``Mutation(op, before, record)``, made faster (see ``records.slot_setter``)."""
    mutation = _new(Mutation)
    _mutation_op(mutation, op)
    _mutation_before(mutation, before)
    _mutation_record(mutation, record)
    return mutation


@dataclass
class Plan:
    ci_upserts: list[CI] = field(default_factory=list)
    ci_deletes: list[str] = field(default_factory=list)
    rel_upserts: list[Relationship] = field(default_factory=list)
    rel_deletes: list[RelKey] = field(default_factory=list)
    mutations: list[Mutation] = field(default_factory=list)
    unchanged: int = 0

    def result(self, first: int | None, last: int | None) -> WriteResult:
        """What writing this plan did, journaled as ``first``..``last``."""
        ops = [m.op.split("_")[0] for m in self.mutations]
        return WriteResult(
            created=ops.count("create"),
            updated=ops.count("update") + ops.count("retire"),
            deleted=ops.count("delete"),
            unchanged=self.unchanged,
            first_seq=first if self.mutations else None,
            last_seq=last if self.mutations else None,
        )


class ReadTx(Protocol):
    """What planning a write reads, inside the transaction that writes it (or under a lease)."""

    def fetch_cis(self, ids: Collection[str]) -> dict[str, CI]: ...

    def fetch_relationships(self, keys: Collection[RelKey]) -> dict[RelKey, Relationship]: ...

    def relationships_touching(self, ids: Collection[str]) -> list[Relationship]: ...


class WriteTx(ReadTx, Protocol):
    """What a store offers inside one write transaction."""

    def apply(
        self, plan: Plan, actor: str, at: str, progress: Progress, reason: str | None
    ) -> tuple[int, int]:
        """Write the plan and its journal entries; return the first and last journal seq."""
        ...


class GraphStore(ABC):
    """A property graph of CIs and relationships with a journal; SQLite and Neo4j implement it."""

    uri: str
    stream_chunk = CHUNK  # items a streamed write reads, checks and plans at a time
    # Reads answered in this process without waiting on a server (SQLite's WAL readers never
    # block): the GraphQL server then answers small queries one after another, not side by side.
    local_reads: bool = False

    def __init__(self, model: Model) -> None:
        self.model = model

    # -- writes ---------------------------------------------------------------------------------
    def write(
        self,
        batch: Batch,
        actor: str = "system",
        progress: Progress | None = None,
        reason: str | None = None,
        at: str | None = None,
    ) -> WriteResult:
        """Apply ``batch`` atomically, or raise and write nothing.

        ``progress(done, total)`` is called as the mutations are applied (for progress bars);
        ``reason`` is journaled with every entry of the write. ``at`` journals the write at an
        earlier time (loading history from another tool, the demo's year): never before the
        journal's newest entry, so the journal stays in time order."""
        if not len(batch):
            return WriteResult()
        with paused_gc():  # checking and planning a large batch builds objects by the million
            problems = check_write_names(actor, reason)
            stamp = self._journal_time(at, problems) if at is not None else None
            problems += check_batch(self.model, batch)  # the store's checks add theirs: one list
            return self._run_write(
                lambda tx: self._write_in(tx, batch, actor, progress, problems, reason, stamp)
            )

    def _journal_time(self, at: str, problems: list[Problem]) -> str | None:
        try:
            when = dt.datetime.fromisoformat(at)
        except (TypeError, ValueError):
            problems.append(Problem("write", "at", "an ISO 8601 time"))
            return None
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        stamp = when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        newest = self.journal(since=max(0, self.head_seq() - 1))
        if newest and stamp < newest[-1].at:
            problems.append(Problem("write", "at", f"{stamp} is before the journal's newest "
                                    f"entry ({newest[-1].at}): history goes in time order"))  # fmt: skip
        elif stamp > utc_now():
            problems.append(Problem("write", "at", f"{stamp} is in the future"))
        return stamp

    def upsert(
        self,
        cis: Sequence[CI] = (),
        relationships: Sequence[Relationship] = (),
        actor: str = "system",
        replace: bool = False,
    ) -> WriteResult:
        """Create or update records; updates merge unless ``replace`` (see :class:`Batch`)."""
        batch = Batch(replace=replace)
        for ci in cis:
            batch.add_ci(ci)
        for rel in relationships:
            batch.add_relationship(rel)
        return self.write(batch, actor)

    def retire(self, ids: list[str], actor: str = "system") -> WriteResult:
        return self.write(Batch(retire=list(ids)), actor)

    def delete(self, ids: list[str], actor: str = "system") -> WriteResult:
        """Delete CIs and every relationship touching them (history stays in the journal)."""
        return self.write(Batch(delete_cis=list(ids)), actor)

    def delete_relationships(self, keys: list[RelKey], actor: str = "system") -> WriteResult:
        return self.write(Batch(delete_relationships=list(keys)), actor)

    def _write_in(
        self,
        tx: WriteTx,
        batch: Batch,
        actor: str,
        progress: Progress | None,
        problems: list[Problem],
        reason: str | None = None,
        stamp: str | None = None,
    ) -> WriteResult:
        plan = self._prepare(tx, batch, problems)
        if not plan.mutations:
            return WriteResult(unchanged=plan.unchanged)
        at = stamp or utc_now()
        first, last = tx.apply(plan, actor, at, progress or _no_progress, reason)
        return plan.result(first, last)

    def _prepare(
        self,
        tx: ReadTx,
        batch: Batch,
        problems: list[Problem],
        earlier: dict[str, str] | None = None,
    ) -> Plan:
        """Read what ``batch`` touches, check it against the model and the graph (raising
        every problem together, ``problems`` first) and plan its mutations.

        ``earlier``: for one chunk of a streamed write (:mod:`servicegraph.graph.streamed`), the
        id and class of each CI the write creates in its other chunks: not looked up (they were
        not in the store before the write, so no stored relationship ends at them either).
        This chunk's new CIs are added to it."""
        named = [ci.id for ci in batch.cis] + batch.retire + batch.delete_cis
        named += [end for r in batch.relationships for end in (r.source, r.target)]
        named += [k[i] for k in batch.delete_relationships if len(k) == 3 for i in (0, 2)]
        # Ids that check_batch refused (e.g. not valid Unicode) cannot be stored: not looked up.
        texts = {i for i in named if isinstance(i, str)}
        # (not ``texts -= earlier.keys()``: that walks all of ``earlier``, a chunk at a time)
        known = earlier or {}
        stored = tx.fetch_cis({i for i in texts if i not in known and _storable(i)})
        if earlier is not None:
            for ci in batch.cis:
                if type(ci.id) is str and type(ci.cls) is str and ci.id not in stored:
                    earlier.setdefault(ci.id, ci.cls)
        # A relationship can be stored only between stored CIs: an import of new CIs looks up
        # none of its relationships.
        keys = [
            k
            for k in [r.key for r in batch.relationships] + list(batch.delete_relationships)
            if is_text_key(k) and k[0] in stored and k[2] in stored and _storable(k[1])
        ] if stored else []  # fmt: skip
        stored_rels = tx.fetch_relationships(keys)
        if not batch.replace:
            batch = merged(batch, stored, stored_rels)
        problems = problems + check_against_store(self.model, batch, stored, earlier)
        for i, key in enumerate(batch.delete_relationships):
            if key not in stored_rels:
                problems.append(
                    Problem(
                        f"delete_relationships[{i}]",
                        "relationship",
                        f"no {relationship_entity(key)}",
                    )
                )
        if problems:
            raise ValidationFailed(problems)
        touching = tx.relationships_touching(batch.delete_cis) if batch.delete_cis else []
        return _plan(batch, stored, stored_rels, touching)

    def bulk_write(
        self,
        batch: Batch,
        actor: str = "system",
        progress: Progress | None = None,
        reason: str | None = None,
    ) -> WriteResult:
        """Write a large batch (an import) with the same all-or-nothing outcome as :meth:`write`.

        This default is :meth:`write`: one transaction (SQLite holds any batch in one). A store
        whose transactions must stay small (Neo4j) writes it in slices and undoes them on
        failure, see :mod:`servicegraph.graph.bulk`."""
        return self.write(batch, actor, progress=progress, reason=reason)

    def write_stream(
        self,
        source: Source,
        actor: str = "system",
        progress: Progress | None = None,
        reason: str | None = None,
        check: ChunkCheck | None = None,
    ) -> WriteResult:
        """Write what ``source`` yields, a chunk at a time, all or nothing (an import too large
        to hold: see :mod:`servicegraph.graph.streamed`). ``check`` is called with each chunk
        before it is planned and may raise to stop the write. ``progress(done, total)`` counts
        in the source's units (a file's bytes).

        This default writes every chunk in one transaction (SQLite holds any size in one)."""
        return stream_write(self, source, actor, progress, reason, check, utc_now())

    def recover_import(self, actor: str = "system", force: bool = False) -> WriteResult | None:
        """Roll back a bulk write that was interrupted (its process died) and free the store
        for writers; None when there is none. A store whose writes are single transactions
        (SQLite) never has one."""
        return None

    # -- store-specific ---------------------------------------------------------------------------
    @abstractmethod
    def _run_write(self, work: Callable[[WriteTx], T], bulk: bool = False) -> T:
        """Run ``work`` in one exclusive write transaction (commit on return, roll back on raise).
        ``bulk``: an import read a chunk at a time, which a store may write its own way."""

    @abstractmethod
    def get_cis(self, ids: Collection[str]) -> dict[str, CI]:
        """The stored CIs among ``ids`` (one round trip, for DataLoaders)."""

    def get_ci(self, ident: str) -> CI | None:
        return self.get_cis([ident]).get(ident)

    @abstractmethod
    def labels(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """``id: (class, name)`` of the stored CIs among ``ids``: one round trip and no attributes
        decoded, for answers that list thousands of CIs by name."""

    @abstractmethod
    def find_cis(
        self,
        classes: Collection[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        first: int = 100,
        after: str | None = None,
        text: str | None = None,
        sort: str = "id",
        descending: bool = False,
    ) -> Page:
        """CIs filtered by class (any of), attribute equality and ``text`` (a case-insensitive
        substring of the id or the name, served by an index on both stores), ordered by ``sort``
        (id, name or class; then id), a page at a time."""

    @abstractmethod
    def count_cis(
        self,
        classes: Collection[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        text: str | None = None,
    ) -> int:
        """How many CIs :meth:`find_cis` would list with these filters."""

    @abstractmethod
    def find_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
        first: int = 100,
        after: str | None = None,
    ) -> Page:
        """Relationships ordered by (source, type, target), filtered by endpoint and type."""

    @abstractmethod
    def count_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
    ) -> int:
        """How many relationships :meth:`find_relationships` would list with these filters."""

    @abstractmethod
    def relationships_of(self, ids: Collection[str]) -> list[Relationship]:
        """Every relationship with an endpoint among ``ids`` (one round trip)."""

    def seq_at(self, at: str) -> int:
        """The seq of the last journal entry written at or before ``at`` (journal time format,
        :func:`utc_now`); 0 when none was. This default reads the journal up to ``at``."""
        entries = self.journal(where=JournalFilter(until_at=at + "\uffff"))
        return entries[-1].seq if entries else 0

    def latest_entries(self, seq: int) -> list[JournalEntry]:
        """For every entity the journal knows, its last entry at or before ``seq`` (by seq):
        replaying their ``after`` gives the graph as it was (a store may leave ``before`` out).
        This default reads the journal up to ``seq``."""
        last: dict[str, JournalEntry] = {}
        for entry in self.journal(where=JournalFilter(until=seq)):
            last[entry.entity] = entry
        return sorted(last.values(), key=lambda e: e.seq)

    def range_changes(self, start: int, end: int) -> dict[str, RangeChange]:
        """Per CI and relationship entity with journal entries after ``start`` up to ``end``:
        what it was before them, what it became, and the entries (without their records: a
        diff needs two records per entity, and a store may read no more — SQLite does). This
        default reads the range."""
        out: dict[str, RangeChange] = {}
        for e in self.journal(where=JournalFilter(since=start, until=end)):
            kind = "ci" if e.op.endswith("_ci") else "relationship"
            if not e.op.endswith(("_ci", "_relationship")):
                continue
            was = out.get(e.entity)
            entries = was.entries if was is not None else []
            entries.append((e.seq, e.at, e.actor, e.op, e.reason))
            before = was.before if was is not None else e.before
            out[e.entity] = RangeChange(kind, before, e.after, entries)
        return out

    def attribute_columns(self, cls: str, paths: Sequence[str]) -> AttributeColumns:
        """Every record of exactly class ``cls``, by id, as columns: ids, names and the value at
        each attribute path (see :class:`AttributePath`), without building a record per row
        (analyses over 100k incidents read the fields they need). Stores read it their fastest
        way; this default pages through :meth:`find_cis`."""
        parsed = {p: AttributePath.parse(p) for p in paths}
        ids: list[str] = []
        names: list[str] = []
        columns: dict[str, list[Any]] = {p: [] for p in paths}
        after = None
        while True:
            page = self.find_cis([cls], first=1000, after=after)
            for ci in page.items:
                ids.append(ci.id)
                names.append(ci.name)
                for text, path in parsed.items():
                    columns[text].append(path.read(ci.attributes))
            if not page.has_next:
                return AttributeColumns(ids, names, columns)
            after = page.end_cursor

    @abstractmethod
    def iter_cis(self, chunk: int = 10_000) -> Iterator[CI]:
        """Every CI, ordered by id."""

    @abstractmethod
    def iter_relationships(self, chunk: int = 10_000) -> Iterator[Relationship]:
        """Every relationship, ordered by (source, type, target)."""

    @abstractmethod
    def topology(self) -> tuple[list[TopologyNode], list[RelKey], int]:
        """Every node as (id, class, status, min_up, name), every relationship key, and the
        journal seq they are consistent with (one snapshot, for the topology engine)."""

    def topology_columns(self) -> TopologyColumns:
        """``topology`` as columns, endpoints as node positions (what the engine builds from);
        a store that can read them without a Python object per row overrides this."""
        from servicegraph.graph import topology  # numpy and numba: not for quick commands

        return topology.from_rows(*self.topology())

    @abstractmethod
    def journal(
        self,
        entity: str | None = None,
        since: int = 0,
        limit: int | None = None,
        where: JournalFilter | None = None,
    ) -> list[JournalEntry]:
        """Journal entries with ``seq > since``, oldest first, optionally for one entity only;
        ``where`` filters further (and then its own ``since``/``entity`` are used)."""

    @abstractmethod
    def head_seq(self) -> int:
        """The seq of the newest journal entry (0 when empty)."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Number of CIs per class, plus ``relationships`` (total)."""

    # -- API tokens (only hashes are stored; every replica reads the same table) ----------------
    @abstractmethod
    def add_token(
        self, token_hash: str, user: str, role: str, actor: str, expires_at: str | None = None
    ) -> None:
        """Store an API token's hash for ``user`` with ``role`` (journaled, without the hash)."""

    @abstractmethod
    def find_token(self, token_hash: str) -> TokenRecord | None:
        """The stored token with this hash (revoked and expired ones included), or None."""

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""

    @abstractmethod
    def revoke_tokens(self, hashes: Collection[str], actor: str, at: str) -> int:
        """Mark these tokens revoked (journaled); return how many were live."""

    @abstractmethod
    def touch_token(self, token_hash: str, at: str) -> None:
        """Record a token's last use (best effort, not journaled: never fails a request)."""

    # -- backup and restore ---------------------------------------------------------------------
    @abstractmethod
    def dump(self) -> StoreDump:
        """Everything the store holds, exactly: CIs with versions, relationships, the whole
        journal and the tokens (one consistent snapshot)."""

    @abstractmethod
    def load_dump(self, dump: StoreDump, replace: bool = False) -> None:
        """Put a dump into this store, which must be empty unless ``replace`` (then what it holds
        is discarded first), in one transaction (the journal is copied as it is)."""

    def is_empty(self) -> bool:
        counts = self.counts()
        return not counts.pop("relationships") and not counts and self.head_seq() == 0

    def integrity_problems(self) -> list[str]:
        """What the store's own consistency check finds (empty: healthy)."""
        return []

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merged(
    batch: Batch, stored: Mapping[str, CI], stored_rels: Mapping[RelKey, Relationship]
) -> Batch:
    """``batch`` with every update merged into the stored record: given attributes change,
    absent ones stay, ``None`` removes one (and a new record simply drops its ``None``s)."""
    out = dc_replace(batch, cis=[], relationships=[])  # the same places: the order is kept
    for ci in batch.cis:
        old = stored.get(ci.id) if isinstance(ci.id, str) else None
        base = old.attributes if old is not None and old.cls == ci.cls else None
        attributes = _merge(base, ci.attributes)
        if attributes is not ci.attributes:
            ci = CI(ci.id, ci.cls, ci.name, attributes, ci.version)
        out.cis.append(ci)
    for rel in batch.relationships:
        key = rel.key
        old_rel = stored_rels.get(key) if is_text_key(key) else None  # else refused
        attributes = _merge(old_rel.attributes if old_rel is not None else None, rel.attributes)
        if attributes is not rel.attributes:
            rel = Relationship(rel.source, rel.type, rel.target, attributes)
        out.relationships.append(rel)
    return out


def _merge(base: Mapping[str, Any] | None, given: Any) -> Any:
    """``given`` merged into ``base``; ``given`` itself when there is nothing to merge."""
    if not isinstance(given, dict):
        return given  # refused by validation, with its location
    if not base and None not in given.values():
        return given  # a new record (or nothing stored to keep): as written
    result = dict(base or {})
    for name, value in given.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = value
    return result


def _storable(text: str) -> bool:
    return text_problem(text) is None


def utc_now() -> str:
    """The journal's timestamp format: ISO 8601, UTC, microseconds, ``Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def check_sort(sort: str) -> None:
    if sort not in SORTS:
        raise ValidationFailed(
            [Problem("arguments", "sort", f"{sort!r}: sort by one of {', '.join(SORTS)}")],
            wrote=False,
        )


def check_page_size(first: int) -> None:
    if not 1 <= first <= MAX_PAGE_SIZE:
        raise ValidationFailed(
            [Problem("page", "first", f"must be between 1 and {MAX_PAGE_SIZE}, got {first}")],
            wrote=False,
        )


def _plan(
    batch: Batch,
    stored: Mapping[str, CI],
    stored_rels: Mapping[RelKey, Relationship],
    touching: list[Relationship],
) -> Plan:
    plan = Plan()
    for ci in batch.cis:
        old = stored.get(ci.id)
        current = old.version if old else 0
        if ci.version is not None and ci.version != current:
            raise StaleVersion(ci.id, ci.version, old.version if old else None)
        if old is not None and old.name == ci.name and old.attributes == ci.attributes:
            plan.unchanged += 1
            continue
        # The batch's attribute dict, not a copy: a plan lives as long as its write, and a
        # million copies were a fifth of an import's memory.
        new = new_ci(ci.id, ci.cls, ci.name, ci.attributes, (current or 0) + 1)
        plan.ci_upserts.append(new)
        op = "create_ci" if old is None else "update_ci"
        plan.mutations.append(new_mutation(op, old.to_dict() if old else None, new))
    for ident in dict.fromkeys(batch.retire):
        old = stored[ident]
        if old.status == "retired":
            plan.unchanged += 1
            continue
        assert old.version is not None
        new = CI(
            old.id, old.cls, old.name, {**old.attributes, "status": "retired"}, old.version + 1
        )
        plan.ci_upserts.append(new)
        plan.mutations.append(Mutation("retire_ci", old.to_dict(), new))
    for rel in batch.relationships:
        key = rel.key
        old_rel = stored_rels.get(key) if stored_rels else None
        if old_rel is not None and old_rel.attributes == rel.attributes:
            plan.unchanged += 1
            continue
        plan.rel_upserts.append(rel)
        op = "create_relationship" if old_rel is None else "update_relationship"
        before = old_rel.to_dict() if old_rel else None
        plan.mutations.append(new_mutation(op, before, rel))
    gone: dict[RelKey, Relationship] = {k: stored_rels[k] for k in batch.delete_relationships}
    gone.update({r.key: r for r in touching})
    for key, old_rel in gone.items():
        plan.rel_deletes.append(key)
        plan.mutations.append(Mutation("delete_relationship", old_rel.to_dict(), key))
    for ident in dict.fromkeys(batch.delete_cis):
        plan.ci_deletes.append(ident)
        plan.mutations.append(Mutation("delete_ci", stored[ident].to_dict(), ident))
    return plan
