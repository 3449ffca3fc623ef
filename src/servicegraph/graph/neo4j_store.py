"""The Neo4j store: the official driver, Cypher from ``cypher/``, managed transactions.

Nodes carry the label ``Node`` and the properties ``id``, ``class``, ``name``, ``version`` plus one
property per attribute (the model forbids attributes with those four names). Relationships have the
model's type and their attributes as properties. The ``JournalHead`` node holds the last seq and is
the lock that serialises writers. Journal entries take two shapes, read together
(``journal.cypher``): a ``JournalEntry`` node each, its ``before``/``after`` JSON text, for a
write of fewer than :attr:`Neo4jStore.journal_block` entries; a ``JournalBlock`` node per
:data:`_CHUNK` entries of a larger write (a bulk import's slice), the entries as parallel lists
with seqs ``first..last``. Creating one node and one full-text index document instead of ten
thousand nodes and index entries is what lets a bulk import's journal keep up with its data
(measured in ``bench/import_throughput.py``); a block stays exactly searchable by entity through
a full-text index whose keyword analyzer makes every list element one term, each hit checked
element by element. All retrying lives in the driver's ``execute_write``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import neo4j
from neo4j import GraphDatabase
from neo4j.exceptions import (
    AuthError,
    ConfigurationError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from servicegraph.errors import (
    Problem,
    RuleViolation,
    StoreBusy,
    StoreUnavailable,
    ValidationFailed,
)
from servicegraph.graph import neo4j_bulk
from servicegraph.graph.bulk import SLICE
from servicegraph.graph.cypher import query, statements, typed_query
from servicegraph.graph.model import Model
from servicegraph.graph.records import (
    CI,
    Batch,
    JournalEntry,
    JournalFilter,
    Page,
    Relationship,
    RelKey,
    StoreDump,
    TokenRecord,
    WriteResult,
    ci_page,
    decode_sort_cursor,
    dump_json,
    load_json,
    make_page,
    rel_cursor,
)
from servicegraph.graph.store import (
    GraphStore,
    Mutation,
    Plan,
    Progress,
    TopologyNode,
    check_page_size,
    check_sort,
    utc_now,
)
from servicegraph.graph.streamed import ChunkCheck, Source

__all__ = ["Neo4jStore"]

T = TypeVar("T")
_CHUNK = 10_000
_CORE = ("id", "class", "name", "version", "_search")  # not attributes


class Neo4jStore(GraphStore):
    """GraphStore on a Neo4j 5 server reached over Bolt."""

    bulk_slice = SLICE  # mutations per transaction of a bulk write
    journal_block = 100  # a write of at least this many entries journals them as blocks

    def __init__(
        self,
        uri: str,
        model: Model,
        user: str | None = None,
        password: str | None = None,
        database: str | None = None,
    ) -> None:
        super().__init__(model)
        self.uri = uri
        self.database = database or None
        auth = (user, password or "") if user else None
        try:
            self._driver = GraphDatabase.driver(uri, auth=auth, notifications_min_severity="OFF")
            self._driver.verify_connectivity()
            for stmt in statements("install_schema"):
                self._driver.execute_query(stmt, database_=self.database)
        except (ServiceUnavailable, AuthError, ConfigurationError, ValueError, OSError) as exc:
            raise StoreUnavailable(
                f"cannot reach Neo4j at {uri}: {exc}; check SERVICEGRAPH_NEO4J_URI, "
                "SERVICEGRAPH_NEO4J_USER and SERVICEGRAPH_NEO4J_PASSWORD and that the server runs"
            ) from exc
        except Neo4jError as exc:
            raise StoreUnavailable(
                f"Neo4j at {uri} refused the schema setup: {exc.message}"
            ) from exc

    def _read(self, name: str, **params: Any) -> list[neo4j.Record]:
        return self._read_text(query(name), **params)

    def _read_text(self, cypher: str, /, **params: Any) -> list[neo4j.Record]:
        try:
            records, _, _ = self._driver.execute_query(
                cypher, params, database_=self.database, routing_=neo4j.RoutingControl.READ
            )
        except UnicodeEncodeError as exc:  # a lone surrogate in a look-up: nothing can match it
            raise ValidationFailed(
                [Problem("arguments", "text", "is not valid Unicode (a lone surrogate)")],
                wrote=False,
            ) from exc
        except (ServiceUnavailable, SessionExpired) as exc:
            raise StoreUnavailable(f"lost Neo4j at {self.uri}: {exc}") from exc
        return records

    # -- writes ---------------------------------------------------------------------------------
    def _run_write(
        self,
        work: Callable[[Any], T],
        bulk: bool = False,  # its imports go through graph/bulk.py instead
        lease: str | None = None,
        graph: bool = True,
        late: bool = False,
        state: str = "writing",
    ) -> T:
        """Run ``work`` in one write transaction under the journal lock. A graph write
        (``graph``) is refused while a bulk write holds the store, unless it is that bulk
        write's own (``lease``, its ``state`` recorded with the heartbeat); token bookkeeping
        is not (a token is revoked at once). ``late``: see :class:`_Neo4jWriteTx`."""
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_write(
                    lambda tx: work(
                        _Neo4jWriteTx(tx, self.model, lease, graph, late, state, self.journal_block)
                    )
                )
        except (ServiceUnavailable, SessionExpired) as exc:
            raise StoreUnavailable(f"lost Neo4j at {self.uri}: {exc}; nothing was written") from exc
        except Neo4jError as exc:
            hint = ""
            if "MemoryPoolOutOfMemoryError" in str(exc.code):
                hint = (
                    "; one import is one transaction: raise the server's "
                    "dbms.memory.transaction.total.max (and heap), or import smaller files"
                )
            raise StoreUnavailable(
                f"Neo4j at {self.uri} refused the write ({exc.code}): {exc.message}{hint}; "
                "nothing was written"
            ) from exc

    def _run_read(self, work: Callable[[Any], T]) -> T:
        """Run ``work`` on a :class:`_Neo4jReadTx` in one read transaction."""
        try:
            with self._driver.session(database=self.database) as session:
                return session.execute_read(lambda tx: work(_Neo4jReadTx(tx, self.model)))
        except (ServiceUnavailable, SessionExpired) as exc:
            raise StoreUnavailable(f"lost Neo4j at {self.uri}: {exc}; nothing was written") from exc

    def bulk_write(
        self,
        batch: Batch,
        actor: str = "system",
        progress: Progress | None = None,
        reason: str | None = None,
    ) -> WriteResult:
        """A large batch in slices of transactions, all or nothing: see :mod:`.neo4j_bulk`."""
        return neo4j_bulk.bulk_write(self, batch, actor, progress, reason, self.bulk_slice)

    def write_stream(
        self,
        source: Source,
        actor: str = "system",
        progress: Progress | None = None,
        reason: str | None = None,
        check: ChunkCheck | None = None,
    ) -> WriteResult:
        """In slices under a lease, undone on failure (:func:`neo4j_bulk.bulk_stream`)."""
        return neo4j_bulk.bulk_stream(self, source, actor, progress, reason, check, self.bulk_slice)

    def recover_import(self, actor: str = "system", force: bool = False) -> WriteResult | None:
        return neo4j_bulk.recover(self, actor, force)

    # -- reads ----------------------------------------------------------------------------------
    def get_cis(self, ids: Collection[str]) -> dict[str, CI]:
        rows = self._read("fetch_cis", ids=list(ids))
        return {ci.id: ci for ci in (_ci(r, self.model) for r in rows)}

    def labels(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        rows = self._read("fetch_labels", ids=list(ids))
        return {r["id"]: (r["class"], r["name"]) for r in rows}

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
        check_page_size(first)
        check_sort(sort)
        start = decode_sort_cursor(after, sort, descending)
        records, _, _ = self._driver.execute_query(
            _find_query(sort, descending),
            classes=None if classes is None else list(classes),
            attributes=dict(attributes or {}),
            text=text.lower() if text else None,
            after_key=start[0] if start else None,
            after_id=start[1] if start else None,
            limit=first + 1,
            database_=self.database,
            routing_=neo4j.RoutingControl.READ,
        )
        items = [_ci(r, self.model) for r in records[:first]]
        return ci_page(items, len(records) > first, sort, descending)

    def count_cis(
        self,
        classes: Collection[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        text: str | None = None,
    ) -> int:
        rows = self._read(
            "count_matching_cis",
            classes=None if classes is None else list(classes),
            attributes=dict(attributes or {}),
            text=text.lower() if text else None,
        )
        return int(rows[0]["count"])

    def find_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
        first: int = 100,
        after: str | None = None,
    ) -> Page:
        check_page_size(first)
        rows = self._read(
            "find_relationships",
            source=source,
            target=target,
            types=None if types is None else list(types),
            after=list(rel_cursor(after)),
            limit=first + 1,
        )
        items = [_rel(r) for r in rows[:first]]
        return make_page(items, len(rows) > first, lambda r: "\0".join(r.key))

    def count_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
    ) -> int:
        rows = self._read(
            "count_matching_relationships",
            source=source,
            target=target,
            types=None if types is None else list(types),
        )
        return int(rows[0]["count"])

    def relationships_of(self, ids: Collection[str]) -> list[Relationship]:
        rels = {r.key: r for r in map(_rel, self._read("relationships_touching", ids=list(ids)))}
        return sorted(rels.values(), key=lambda r: r.key)

    def iter_cis(self, chunk: int = 10_000) -> Iterator[CI]:
        return _all_pages(lambda after: self.find_cis(first=min(chunk, 1000), after=after))

    def iter_relationships(self, chunk: int = 10_000) -> Iterator[Relationship]:
        return _all_pages(
            lambda after: self.find_relationships(first=min(chunk, 1000), after=after)
        )

    def topology(self) -> tuple[list[TopologyNode], list[RelKey], int]:
        def read(tx: neo4j.ManagedTransaction) -> tuple[list[TopologyNode], list[RelKey], int]:
            # seq first: whatever commits while nodes and edges are read is replayed from the
            # journal afterwards, and the engine applies entries idempotently.
            seq = tx.run(query("head_seq")).single(strict=True)["seq"]
            nodes = [tuple(r.values()) for r in tx.run(query("topology_nodes"))]
            edges = [tuple(r.values()) for r in tx.run(query("topology_edges"))]
            return nodes, edges, int(seq)

        with self._driver.session(database=self.database) as session:
            return session.execute_read(read)

    def journal(
        self,
        entity: str | None = None,
        since: int = 0,
        limit: int | None = None,
        where: JournalFilter | None = None,
    ) -> list[JournalEntry]:
        cap = 2**62 if limit is None else limit
        if where is None or where.simple:
            f = where or JournalFilter(since=since, entity=entity)
            rows = self._read_text(
                _journal_query("journal", f.entity is not None, False),
                entity=f.entity, since=f.since, limit=cap, lucene=_lucene(f.entity, False),
            )  # fmt: skip
            return [_entry(r) for r in rows]
        rows = self._read_text(
            _journal_query("journal_filtered", where.entity is not None, True),
            lucene=_lucene(where.entity, where.related),
            since=where.since, until=where.until, since_at=where.since_at,
            until_at=where.until_at, actor=where.actor,
            ops=None if where.ops is None else list(where.ops), entity=where.entity,
            related=where.related, prefix=f"{where.entity} -[", suffix=f"]-> {where.entity}",
            limit=cap,
        )  # fmt: skip
        return [_entry(r) for r in rows]

    def head_seq(self) -> int:
        return int(self._read("head_seq")[0]["seq"])

    def counts(self) -> dict[str, int]:
        out = {r["class"]: r["count"] for r in self._read("count_cis")}
        out["relationships"] = self._read("count_relationships")[0]["count"]
        return out

    # -- tokens ---------------------------------------------------------------------------------
    def add_token(
        self, token_hash: str, user: str, role: str, actor: str, expires_at: str | None = None
    ) -> None:
        at = utc_now()
        entry = {"user": user, "role": role, "expires_at": expires_at}

        def work(tx: _Neo4jWriteTx) -> None:
            tx.tx.run(
                query("create_token"),
                hash=token_hash, user=user, role=role, at=at, expires_at=expires_at,
            ).consume()  # fmt: skip
            tx.journal(at, actor, [("create_token", f"token:{token_hash[:12]}", None, entry)])

        self._run_write(work, graph=False)

    def find_token(self, token_hash: str) -> TokenRecord | None:
        rows = self._read("find_token", hash=token_hash)
        return _token(rows[0]) if rows else None

    def list_tokens(self) -> list[TokenRecord]:
        return [_token(r) for r in self._read("list_tokens")]

    def revoke_tokens(self, hashes: Collection[str], actor: str, at: str) -> int:
        def work(tx: _Neo4jWriteTx) -> int:
            rows = list(tx.tx.run(query("revoke_tokens"), hashes=sorted(hashes), at=at))
            entries = [
                ("revoke_token", f"token:{r['hash'][:12]}", {"user": r["user"], "role": r["role"]},
                 None)
                for r in rows
            ]  # fmt: skip
            if entries:
                tx.journal(at, actor, entries)
            return len(rows)

        return self._run_write(work, graph=False)

    def touch_token(self, token_hash: str, at: str) -> None:
        try:
            self._driver.execute_query(
                query("touch_token"), hash=token_hash, at=at, database_=self.database
            )
        except (Neo4jError, ServiceUnavailable, SessionExpired):
            return  # best effort: a request is never refused for its bookkeeping

    # -- backup and restore ---------------------------------------------------------------------
    def dump(self) -> StoreDump:
        def read(tx: neo4j.ManagedTransaction) -> StoreDump:
            cis = [
                _ci(r, self.model)
                for r in tx.run(
                    _find_query("id", False), classes=None, attributes={}, text=None,
                    after_key=None, after_id=None, limit=2**62,
                )
            ]  # fmt: skip
            rels = [
                _rel(r)
                for r in tx.run(
                    query("find_relationships"), source=None, target=None, types=None,
                    after=["", "", ""], limit=2**62,
                )
            ]  # fmt: skip
            journal = [
                _entry(r)
                for r in tx.run(
                    _journal_query("journal", False, False), entity=None, since=0, limit=2**62
                )
            ]
            tokens = sorted((_token(r) for r in tx.run(query("list_tokens"))), key=lambda t: t.hash)
            return StoreDump(cis, rels, journal, tokens)

        with self._driver.session(database=self.database) as session:
            return session.execute_read(read)

    def load_dump(self, dump: StoreDump, replace: bool = False) -> None:
        if replace:  # batched deletes first: Neo4j's --replace is not one transaction
            self.delete_everything()

        def work(tx: _Neo4jWriteTx) -> None:
            if tx.head or not tx.tx.run(query("is_empty")).single(strict=True)["empty"]:
                raise RuleViolation(
                    "restore_into_empty_store",
                    f"{self.uri} is not empty; restore into a new store, or pass --replace to "
                    "discard what it holds",
                )
            rows = [{"id": c.id, "props": _props(c, self.model)} for c in dump.cis]
            for part in _chunks(rows):
                tx.tx.run(query("upsert_cis"), rows=part).consume()
            by_type: dict[str, list[dict[str, Any]]] = {}
            for rel in dump.relationships:
                by_type.setdefault(rel.type, []).append(rel.to_dict())
            for rel_type, rel_rows in by_type.items():
                for part in _chunks(rel_rows):
                    tx.tx.run(typed_query("upsert_relationships", rel_type), rows=part).consume()
            entries = [
                {**e.to_dict(), "before": dump_json(e.before), "after": dump_json(e.after)}
                for e in dump.journal
            ]
            last = dump.journal[-1].seq if dump.journal else 0
            for part in _chunks(entries):
                tx.tx.run(query("load_journal"), entries=part, last=last).consume()
            tokens = [t.to_dict(with_hash=True) for t in dump.tokens]
            for part in _chunks([{k: v for k, v in t.items() if k != "id"} for t in tokens]):
                tx.tx.run(query("load_tokens"), rows=part).consume()

        self._run_write(work)

    def delete_everything(self) -> None:
        """Remove every servicegraph node, in batches (restore --replace)."""
        while True:
            records, _, _ = self._driver.execute_query(
                query("delete_everything"), database_=self.database
            )
            if not records[0]["deleted"]:
                return

    def impact_reference(self, seeds: list[str], max_depth: int | None = None) -> dict[str, int]:
        """The Cypher reference for the engine's impacted set: id -> shortest hop count."""
        types = sorted(t for t, s in self.model.relationship_types.items() if s.impact != "none")
        text = (
            query("impact_reachable")
            .replace("__IMPACT_TYPES__", "|".join(types))
            .replace("__MAX_DEPTH__", "" if max_depth is None else str(int(max_depth)))
        )
        records, _, _ = self._driver.execute_query(text, seeds=seeds, database_=self.database)
        return {r["id"]: r["distance"] for r in records}

    def close(self) -> None:
        self._driver.close()


class _Neo4jReadTx:
    """The reads that plan a write (inside its transaction, or a bulk write's read)."""

    def __init__(self, tx: neo4j.ManagedTransaction, model: Model) -> None:
        self.tx = tx
        self.model = model

    def fetch_cis(self, ids: Collection[str]) -> dict[str, CI]:
        out: dict[str, CI] = {}
        for part in _chunks(list(ids)):
            rows = self.tx.run(query("fetch_cis"), ids=part)
            out.update((c.id, c) for c in (_ci(r, self.model) for r in rows))
        return out

    def fetch_relationships(self, keys: Collection[RelKey]) -> dict[RelKey, Relationship]:
        out: dict[RelKey, Relationship] = {}
        for part in _chunks([list(k) for k in keys]):
            rows = self.tx.run(query("fetch_relationships"), keys=part)
            out.update((r.key, r) for r in map(_rel, rows))
        return out

    def relationships_touching(self, ids: Collection[str]) -> list[Relationship]:
        rels = {
            r.key: r for r in map(_rel, self.tx.run(query("relationships_touching"), ids=list(ids)))
        }
        return sorted(rels.values(), key=lambda r: r.key)


class _Neo4jWriteTx(_Neo4jReadTx):
    """One write transaction under the journal lock (see :meth:`Neo4jStore._run_write`).

    ``late``: the lock is taken only when the journal entries are appended, after the data (a
    bulk write's slice: its lease keeps other writers out, and slices written side by side queue
    only for the lock); the entries are then stamped with the time the lock was taken."""

    def __init__(
        self,
        tx: neo4j.ManagedTransaction,
        model: Model,
        lease: str | None = None,
        graph: bool = True,
        late: bool = False,
        state: str = "writing",
        block: int = Neo4jStore.journal_block,
    ) -> None:
        super().__init__(tx, model)
        self._lease_id, self._graph, self._state = lease, graph, state
        self._block = block
        self.head: int | None = None
        self.lease: neo4j_bulk.ImportLease | None = None
        if not late:
            self._lock()

    def _lock(self) -> int:
        row = self.tx.run(query("lock_journal")).single(strict=True)
        self.head = int(row["seq"])
        self.lease = neo4j_bulk.ImportLease.from_record(row)
        lease = self._lease_id
        if self._graph and self.lease is not None and self.lease.id != lease:
            raise self.lease.busy()
        if lease is not None:
            if self.lease is None or self.lease.id != lease:
                raise StoreBusy(
                    f"bulk write {lease} lost its hold on the store (`servicegraph recover "
                    "--force` rolled it back?); what it wrote is undone or being undone"
                )
            self.tx.run(query("beat_import"), id=lease, now=utc_now(), state=self._state).consume()
        return self.head

    def journal(
        self,
        at: str,
        actor: str,
        entries: Sequence[tuple[str, str, dict[str, Any] | None, dict[str, Any] | None]],
    ) -> None:
        """Append (op, entity, before, after) entries after the head this transaction locked."""
        first = (self._lock() if self.head is None else self.head) + 1
        rows = [
            {"seq": first + i, "op": op, "entity": entity, "before": dump_json(before),
             "after": dump_json(after)}
            for i, (op, entity, before, after) in enumerate(entries)
        ]  # fmt: skip
        last = first + len(rows) - 1
        self.tx.run(
            query("append_journal"), entries=rows, last=last, at=at, actor=actor, reason=None
        ).consume()
        self.head = last

    def apply(
        self, plan: Plan, actor: str, at: str, progress: Progress, reason: str | None
    ) -> tuple[int, int]:
        total, done = len(plan.mutations), 0

        def run(
            name: str, param: str, items: list[Any], text: str | None = None, counted: bool = False
        ) -> None:
            nonlocal done
            for part in _chunks(items):
                result = self.tx.run(text or query(name), {param: part})
                if counted:  # the statement returns how many relationships it wrote
                    written = result.single(strict=True)["written"]
                    if written != len(part):  # an end was missing: never write part of a plan
                        raise StoreUnavailable(
                            f"{len(part) - written} relationship(s) found an end missing while "
                            "written (a concurrent delete?); nothing was written"
                        )
                result.consume()
                done += len(part)
                progress(min(done, total), total)

        # What the plan found absent (its create ops) is created without a look-up, the rest
        # merged.
        created: dict[str, set[str]] = {"create_ci": set(), "create_relationship": set()}
        for m in plan.mutations:
            if m.op in created:
                created[m.op].add(m.entity)
        new_cis: list[dict[str, Any]] = []
        old_cis: list[dict[str, Any]] = []
        for c in plan.ci_upserts:
            (new_cis if c.id in created["create_ci"] else old_cis).append(
                {"id": c.id, "props": _props(c, self.model)}
            )
        run("create_cis", "rows", new_cis)
        run("upsert_cis", "rows", old_cis)
        run("delete_relationships", "keys", [list(k) for k in plan.rel_deletes])
        run("delete_cis", "ids", plan.ci_deletes)
        by_type: dict[tuple[str, bool], list[dict[str, Any]]] = {}
        for rel in plan.rel_upserts:
            new = rel.entity in created["create_relationship"]
            by_type.setdefault((rel.type, new), []).append(rel.to_dict())
        for (rel_type, new), rows in by_type.items():
            name = "create_relationships" if new else "upsert_relationships"
            run(name, "rows", rows, typed_query(name, rel_type), counted=True)
        if self.head is None:  # late: the data is written, now queue for the journal
            self._lock()
            at = utc_now()
        assert self.head is not None
        first = self.head + 1
        last = first + len(plan.mutations) - 1
        if len(plan.mutations) >= self._block:
            for start in range(0, len(plan.mutations), _CHUNK):
                self._append_block(plan.mutations[start : start + _CHUNK], first + start, at,
                                   actor, reason)  # fmt: skip
            return first, last
        entries = [
            {
                "seq": first + i,
                "op": m.op,
                "entity": m.entity,
                "before": dump_json(m.before),
                "after": dump_json(m.after),
            }
            for i, m in enumerate(plan.mutations)
        ]
        for part in _chunks(entries):
            self.tx.run(
                query("append_journal"), entries=part, last=last, at=at, actor=actor, reason=reason
            ).consume()
        return first, last

    def _append_block(
        self, mutations: list[Mutation], first: int, at: str, actor: str, reason: str | None
    ) -> None:
        """One ``JournalBlock`` for ``mutations``, seqs from ``first`` (append_block.cypher)."""
        touches: dict[str, None] = {}
        for m in mutations:
            record = m.record
            if isinstance(record, Relationship):
                touches[record.source] = touches[record.target] = None
            elif isinstance(record, tuple):  # a deleted relationship's key
                touches[record[0]] = touches[record[2]] = None
        self.tx.run(
            query("append_block"),
            first=first,
            last=first + len(mutations) - 1,
            at=at,
            actor=actor,
            reason=reason,
            ops=[m.op for m in mutations],
            entities=[m.entity for m in mutations],
            touches=list(touches),
            befores=[dump_json(m.before) or "" for m in mutations],
            afters=[dump_json(m.after) or "" for m in mutations],
        ).consume()


# An entity's entry nodes, and with $related those of the relationships touching it, each
# through an index (a scan of every entry for the suffix made a CI's history take 0.8 s at 484k
# entries).
_ENTITY_ENTRIES = """CALL {
    MATCH (j:JournalEntry) WHERE j.entity = $entity RETURN j
    UNION
    MATCH (j:JournalEntry) WHERE $related AND j.entity STARTS WITH $prefix RETURN j
    UNION
    MATCH (j:JournalEntry) WHERE $related AND j.entity ENDS WITH $suffix RETURN j
  }
  WITH j"""


def _journal_query(name: str, by_entity: bool, filtered: bool) -> str:
    """``journal`` or ``journal_filtered`` with its placeholders filled: entries of one entity
    through the indexes (``$lucene`` for blocks), else blocks by seq — for ``journal`` only the
    first blocks after ``$since`` holding ``$limit`` entries, found from their seq ranges alone
    (a block holds every seq from ``first`` to ``last``, so its count after ``$since`` is
    exact)."""
    if by_entity:
        blocks = (
            "CALL db.index.fulltext.queryNodes('journal_block_entities', $lucene) YIELD node AS b"
        )
        return (
            query(name)
            .replace("__ENTRIES__", _ENTITY_ENTRIES)
            .replace("__ENTRY_ENTITY__", "AND j.entity = $entity")
            .replace("__BLOCKS__", blocks)
            .replace("__BLOCK_LIMIT__", "")
            .replace("__SPAN__", "b.last - b.first")
        )
    enough = (
        "WITH collect(b) AS bs\n"
        "  WITH bs, reduce(acc = [0, 0], b IN bs | CASE WHEN acc[0] >= $limit THEN acc\n"
        "       ELSE [acc[0] + b.last - CASE WHEN b.first > $since THEN b.first ELSE $since + 1"
        " END + 1, acc[1] + 1] END) AS acc\n"
        "  UNWIND bs[0..acc[1]] AS b"
    )
    span = (
        "CASE WHEN lo + $limit - 1 < b.last - b.first THEN lo + $limit - 1 "
        "ELSE b.last - b.first END"
    )
    return (
        query(name)
        .replace("__ENTRIES__", "MATCH (j:JournalEntry)")
        .replace("__ENTRY_ENTITY__", "")
        .replace("__BLOCKS__", "MATCH (b:JournalBlock)")
        .replace("__BLOCK_LIMIT__", "" if filtered else enough)
        .replace("__SPAN__", span)
    )


def _lucene(entity: str | None, related: bool) -> str | None:
    """The full-text query for the blocks naming ``entity`` (as a relationship's end too, when
    ``related``): a quoted phrase, which the keyword analyzer keeps as one exact term."""
    if entity is None:
        return None
    term = '"' + entity.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"entities:{term} OR touches:{term}" if related else f"entities:{term}"


def _all_pages(fetch: Callable[[str | None], Page]) -> Iterator[Any]:
    after = None
    while True:
        page = fetch(after)
        yield from page.items
        if not page.has_next:
            return
        after = page.end_cursor


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _props(ci: CI, model: Model) -> dict[str, Any]:
    """Node properties: attributes of model type ``json`` are stored as JSON text (Neo4j
    properties hold no maps or nested lists)."""
    specs = model.classes[ci.cls].attributes
    attrs = {
        k: dump_json(v) if k in specs and specs[k].type == "json" else v
        for k, v in ci.attributes.items()
    }
    search = f"{ci.id.lower()}\n{ci.name.lower()}"  # for find_cis(text=…), a TEXT index
    return {
        **attrs, "id": ci.id, "class": ci.cls, "name": ci.name, "version": ci.version,
        "_search": search,
    }  # fmt: skip


def _ci(record: neo4j.Record, model: Model) -> CI:
    props = dict(record["props"])
    cls = props["class"]
    spec = model.classes.get(cls)
    attributes = {}
    for k, v in props.items():
        if k in _CORE:
            continue
        is_json = spec is not None and k in spec.attributes and spec.attributes[k].type == "json"
        attributes[k] = load_json(v) if is_json else v
    return CI(props["id"], cls, props["name"], attributes, props["version"])


def _find_query(sort: str, descending: bool) -> str:
    check_sort(sort)  # the placeholders take only these identifiers
    return (
        query("find_cis")
        .replace("__SORT__", sort)
        .replace("__CMP__", "<" if descending else ">")
        .replace("__DIRECTION__", "DESC" if descending else "ASC")
    )


def _entry(r: neo4j.Record) -> JournalEntry:
    return JournalEntry(
        r["seq"], r["at"], r["actor"], r["op"], r["entity"], load_json(r["before"]),
        load_json(r["after"]), r["reason"],
    )  # fmt: skip


def _token(r: neo4j.Record) -> TokenRecord:
    return TokenRecord(
        r["hash"], r["user"], r["role"], r["created_at"], r["expires_at"], r["last_used_at"],
        r["revoked_at"],
    )  # fmt: skip


def _rel(record: neo4j.Record) -> Relationship:
    return Relationship(
        record["source"], record["type"], record["target"], dict(record["attributes"])
    )
