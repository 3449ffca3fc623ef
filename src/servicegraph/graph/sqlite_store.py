"""The embedded store: one SQLite file in WAL mode (readers never wait for the writer).

Tables: ``cis`` (attributes as JSON), ``relationships`` (keyed by source, type, target),
``journal`` and ``api_tokens``. Writes run under ``BEGIN IMMEDIATE`` on one writer connection, so
the journal's seq order is the commit order; each thread reads on a connection of its own, so reads
keep answering while a write waits for the lock. A write that cannot get the lock within the write
timeout (``SERVICEGRAPH_WRITE_TIMEOUT`` seconds, default 10) raises :class:`StoreBusy`; a damaged
file raises :class:`StoreCorrupt` (``servicegraph check`` runs SQLite's integrity check).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from servicegraph.errors import (
    Problem,
    StoreBusy,
    StoreCorrupt,
    StoreUnavailable,
    ValidationFailed,
)
from servicegraph.graph.model import Model
from servicegraph.graph.records import (
    CI,
    AttributeColumns,
    AttributePath,
    JournalEntry,
    JournalFilter,
    Page,
    RangeChange,
    Relationship,
    RelKey,
    StoreDump,
    TokenRecord,
    ci_page,
    decode_sort_cursor,
    dump_json,
    load_json,
    make_page,
    rel_cursor,
)
from servicegraph.graph.store import (
    UNREADABLE,
    GraphStore,
    Mutation,
    Plan,
    Progress,
    TopologyNode,
    check_page_size,
    check_sort,
    utc_now,
)
from servicegraph.graph.values import text_problem
from servicegraph.graph.wal_mark import WalMark

__all__ = ["SqliteStore", "write_timeout"]

T = TypeVar("T")
if TYPE_CHECKING:
    from servicegraph.graph.topology import TopologyColumns

_CHUNK = 900  # stays under SQLite's bound-parameter limit
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cis (
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    name TEXT NOT NULL,
    attributes TEXT NOT NULL,
    version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS relationships (
    source TEXT NOT NULL REFERENCES cis(id),
    type TEXT NOT NULL,
    target TEXT NOT NULL REFERENCES cis(id),
    attributes TEXT NOT NULL,
    PRIMARY KEY (source, type, target)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    op TEXT NOT NULL,
    entity TEXT NOT NULL,
    before TEXT,
    after TEXT,
    reason TEXT
);
{bulk_indexes}
-- Search by id or name: a case-insensitive trigram index (substrings of 3+ characters), kept in
-- step with `cis` by triggers, so every write path (upserts, deletes, restores) maintains it.
CREATE TABLE IF NOT EXISTS cis_names (
    rid INTEGER PRIMARY KEY,
    id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS cis_search USING fts5(
    id, name, content='cis_names', content_rowid='rid', tokenize='trigram'
);
{search_triggers}
CREATE TABLE IF NOT EXISTS api_tokens (
    hash TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
"""
# cis_names follows cis row by row (its rid is the search index's rowid).
_NAME_TRIGGERS = {
    "cis_ai": """AFTER INSERT ON cis BEGIN
    INSERT INTO cis_names(id, name) VALUES (new.id, new.name);
END""",
    "cis_ad": """AFTER DELETE ON cis BEGIN
    DELETE FROM cis_names WHERE id = old.id;
END""",
    "cis_au": """AFTER UPDATE OF name ON cis WHEN old.name IS NOT new.name BEGIN
    UPDATE cis_names SET name = new.name WHERE id = new.id;
END""",
}
# The search index follows cis_names row by row; a write that changes a large share of the CIs
# drops these triggers inside its transaction and rebuilds the index once instead (measured:
# 97k new CIs took 3.3 s with the triggers, 1.2 s with a rebuild).
_SEARCH_TRIGGERS = {
    "cis_names_ai": """AFTER INSERT ON cis_names BEGIN
    INSERT INTO cis_search(rowid, id, name) VALUES (new.rid, new.id, new.name);
END""",
    "cis_names_ad": """AFTER DELETE ON cis_names BEGIN
    INSERT INTO cis_search(cis_search, rowid, id, name) VALUES ('delete', old.rid, old.id, old.name);
END""",
    "cis_names_au": """AFTER UPDATE ON cis_names BEGIN
    INSERT INTO cis_search(cis_search, rowid, id, name) VALUES ('delete', old.rid, old.id, old.name);
    INSERT INTO cis_search(rowid, id, name) VALUES (new.rid, new.id, new.name);
END""",
}
# A write that changes a large share of the CIs drops both kinds of trigger inside its
# transaction and fills cis_names and the index once at its end (measured on 97k new CIs: the
# names trigger alone took 0.9 s of 1.2 s inserting them).
_TRIGGERS = {**_SEARCH_TRIGGERS, **_NAME_TRIGGERS}
# Secondary indexes a large write builds once at its end instead of row by row (see
# _SqliteWriteTx._drop_indexes): by name, the statement that creates each.
_BULK_INDEXES = {
    name: f"CREATE INDEX IF NOT EXISTS {name} ON {on}"
    for name, on in {
        "cis_class": "cis(class, id)",
        "cis_name": "cis(name, id)",
        "relationships_target": "relationships(target, type, source)",
        "journal_entity": "journal(entity, seq)",
    }.items()
}
_CI_INDEXES = ("cis_class", "cis_name")  # of _BULK_INDEXES, those only CIs' writes change
_SCHEMA = _SCHEMA.format(
    search_triggers="\n".join(
        f"CREATE TRIGGER IF NOT EXISTS {name} {body};" for name, body in _TRIGGERS.items()
    ),
    bulk_indexes="\n".join(f"{body};" for body in _BULK_INDEXES.values()),
)
_SORT_THREADS = min(4, os.cpu_count() or 1)
_KEPT_TOKENS = 1_024  # known tokens kept between commits (SqliteStore.find_token)
_PART = 10_000  # rows one statement writes (a JSON array SQLite unpacks)
_REBUILD_SEARCH_AT = 10_000  # CIs written at once before a rebuild of the index can pay off
# Columns added after the first release: (table, column, declaration), added when missing.
_ADDED_COLUMNS = (
    ("journal", "reason", "TEXT"),
    ("api_tokens", "expires_at", "TEXT"),
    ("api_tokens", "last_used_at", "TEXT"),
    ("api_tokens", "revoked_at", "TEXT"),
)
_TOKEN_COLUMNS = "hash, user, role, created_at, expires_at, last_used_at, revoked_at"
_JOURNAL_COLUMNS = "seq, at, actor, op, entity, before, after, reason"
# The topology as NUL-joined texts (graph/topology.py): CIs in id order (the table's own), with a
# digit per CI (1: retired, +2: min_up set or attributes unreadable) and, for the CIs with 2 or 3,
# [id, min_up as stored]; relationships in the order of their target index.
_FLAG = """CASE WHEN NOT json_valid(attributes) THEN '2'
    WHEN json_type(attributes, '$.min_up') IS NOT NULL
    THEN iif(attributes ->> '$.status' IS 'retired', '3', '2')
    ELSE iif(attributes ->> '$.status' IS 'retired', '1', '0') END"""
_TOPOLOGY_NODES = f"""
SELECT count(*), CAST(group_concat(id, char(0)) AS BLOB), CAST(group_concat(name, char(0)) AS BLOB),
    CAST(group_concat(class, char(0)) AS BLOB), CAST(group_concat(flag, '') AS BLOB),
    '[' || group_concat(iif(flag >= '2', json_array(id, iif(json_valid(attributes),
        attributes -> '$.min_up', ?)), NULL), ',') || ']'
FROM (SELECT id, name, class, attributes, {_FLAG} AS flag FROM cis)"""
_TOPOLOGY_EDGES = """
SELECT count(*), CAST(group_concat(source, char(0)) AS BLOB),
    CAST(group_concat(type, char(0)) AS BLOB), CAST(group_concat(target, char(0)) AS BLOB)
FROM relationships INDEXED BY relationships_target"""


def write_timeout() -> float:
    """Seconds a write waits for the store's write lock (``SERVICEGRAPH_WRITE_TIMEOUT``)."""
    try:
        return max(0.0, float(os.environ.get("SERVICEGRAPH_WRITE_TIMEOUT", "10")))
    except ValueError:
        return 10.0


class SqliteStore(GraphStore):
    """GraphStore on a SQLite file; safe to share between threads."""

    local_reads = True

    def __init__(
        self,
        path: str | Path,
        model: Model,
        timeout: float | None = None,
        create: bool = True,
    ) -> None:
        super().__init__(model)
        self.path = Path(path)
        self.uri = f"sqlite:{self.path}"
        self.timeout = write_timeout() if timeout is None else timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        # values that change only by commits, kept with the WAL mark read before them
        self._mark = WalMark(self.path)
        self._head: tuple[bytes, int] | None = None
        self._tokens: tuple[bytes, dict[str, TokenRecord]] | None = None
        if not create and not self.path.exists():
            raise StoreUnavailable(
                f"there is no store at {self.path}: check --db (or SERVICEGRAPH_DB); "
                "`servicegraph demo`, `import` or `restore` create one, other commands take "
                "--create where an empty store makes sense"
            )
        if self.path.parent and not self.path.parent.exists():
            raise StoreUnavailable(
                f"cannot open the embedded store at {self.path}: directory {self.path.parent} "
                "does not exist; pass --db PATH (or SERVICEGRAPH_DB) naming a writable SQLite file"
            )
        with self._errors("open"):
            self._writer = self._connect(self.timeout)
            self._writer.execute("PRAGMA journal_mode=WAL")
            self._writer.executescript(_SCHEMA)
            self._add_missing_columns()
            self._created_in_sql = _journals_like_dump_json(self._writer)

    def _connect(self, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=timeout
        )
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        # helper threads for SQLite's sorts (an index built whole after a large import): the
        # 1M-CI estate's journal entity index 2.9 -> 1.7 s, the relationships' 1.6 -> 1.3 s
        db.execute(f"PRAGMA threads={_SORT_THREADS}")
        with self._connections_lock:
            self._connections.append(db)
        return db

    def _add_missing_columns(self) -> None:
        for table, column, decl in _ADDED_COLUMNS:
            have = {r[1] for r in self._writer.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                self._writer.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
        # A store from before the search index: index what it holds, once.
        db = self._writer
        if (
            db.execute("SELECT 1 FROM cis LIMIT 1").fetchone()
            and not db.execute("SELECT 1 FROM cis_names LIMIT 1").fetchone()
        ):
            db.execute("INSERT INTO cis_names(id, name) SELECT id, name FROM cis")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite's errors as the store's: busy, corrupt, or unavailable (never a traceback)."""
        try:
            yield
        except UnicodeEncodeError as exc:  # a lone surrogate in a look-up: nothing can match it
            raise ValidationFailed(
                [Problem("arguments", "text", "is not valid Unicode (a lone surrogate)")],
                wrote=False,
            ) from exc
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise StoreBusy(
                    f"the store {self.path} is busy: another writer held its write lock for more "
                    f"than {self.timeout:g} s ({doing}); nothing was written, try again "
                    "(SERVICEGRAPH_WRITE_TIMEOUT sets the wait)"
                ) from exc
            if "malformed" in text or "not a database" in text:
                raise self._corrupt(exc) from exc
            raise StoreUnavailable(
                f"the embedded store at {self.path} failed ({doing}): {text}; check the file's "
                "permissions and free disk space"
            ) from exc
        except sqlite3.DatabaseError as exc:  # malformed image, not a database, …
            raise self._corrupt(exc) from exc

    def _corrupt(self, exc: Exception) -> StoreCorrupt:
        return StoreCorrupt(
            f"the embedded store at {self.path} is damaged ({exc}); run `servicegraph check "
            f"--db {self.path}` and restore the latest backup (`servicegraph restore`)"
        )

    @property
    def _db(self) -> sqlite3.Connection:
        """This thread's read connection (WAL: it sees the last commit and never blocks)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect(timeout=30)
        return db

    def _read(self, doing: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._errors(doing):
            return work(self._db)

    # -- writes ---------------------------------------------------------------------------------
    def _run_write(self, work: Callable[[Any], T], bulk: bool = False) -> T:
        if not self._write_lock.acquire(timeout=self.timeout if self.timeout > 0 else -1):
            raise StoreBusy(
                f"the store {self.path} is busy: another write in this process held it for more "
                f"than {self.timeout:g} s; nothing was written, try again"
            )
        direct = False
        try:
            with self._errors("write"):
                direct = bulk and self._leave_wal()
                self._writer.execute("BEGIN IMMEDIATE")
            try:
                with self._errors("write"):
                    tx = _SqliteWriteTx(self._writer, self._created_in_sql)
                    result = work(tx)
                    tx.finish()
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.execute("ROLLBACK")
                raise
            with self._errors("commit"):
                self._writer.execute("COMMIT")
            return result
        finally:
            if direct:
                with contextlib.suppress(sqlite3.Error):  # else the next open sets WAL again
                    self._writer.execute("PRAGMA journal_mode=WAL")
                self._marks_on()
            self._write_lock.release()

    def _leave_wal(self) -> bool:
        """Switch the writer to a rollback journal for a bulk write (an import read a chunk at a
        time, ``write_stream``) when the store is empty and no other connection has it open.
        WAL writes every page twice — into the log,
        then, at the checkpoint after the commit, into the file: for the 1M-CI import, 2.2 GB
        and 11 s of its ~62. A rollback journal writes pages added to the file once and keeps
        only the few pages the file held before, so all-or-nothing holds (a failure rolls back;
        after a crash the next open does). While it runs, another process opening the store
        waits for it (a busy store) rather than reading the empty one; a connection of another
        thread of this process counts as another connection."""
        db = self._writer
        if db.execute("SELECT EXISTS (SELECT 1 FROM cis) OR EXISTS (SELECT 1 FROM journal)"
                      ).fetchone()[0]:  # fmt: skip
            return False
        mine = getattr(self._local, "db", None)  # this thread's reader is idle: let it go
        if mine is not None:
            with self._connections_lock:
                self._connections.remove(mine)
            mine.close()
            self._local.db = None
        db.execute("PRAGMA busy_timeout = 0")  # another connection has it open: do not wait
        self._mark.off()  # SQLite deletes the -shm file when it leaves WAL, makes one on return
        switched = False
        try:
            switched = db.execute("PRAGMA journal_mode=DELETE").fetchone()[0] == "delete"
        except sqlite3.OperationalError:  # "database is locked"
            pass
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            if not switched:
                self._marks_on()
        return switched

    def _marks_on(self) -> None:
        self._head = self._tokens = None
        self._mark.on()

    # -- reads ----------------------------------------------------------------------------------
    def get_cis(self, ids: Collection[str]) -> dict[str, CI]:
        return self._read("read CIs", lambda db: _fetch_cis(db, ids))

    def labels(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        ids = sorted(ids)  # in key order the B-tree pages are read once each (~40% faster)
        rows = self._read(
            "read CIs",
            lambda db: _select_in(db, "SELECT id, class, name FROM cis WHERE id IN ({ids})", ids),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

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
        where, params = _filters(classes, attributes, text)
        start = decode_sort_cursor(after, sort, descending)
        if start is not None:
            where.append(f"({sort}, id) {'<' if descending else '>'} (?, ?)")
            params.extend(start)
        order = "DESC" if descending else "ASC"
        sql = (
            f"SELECT * FROM cis WHERE {' AND '.join(where) or '1'} "
            f"ORDER BY {sort} {order}, id {order} LIMIT ?"
        )
        rows = self._read("find CIs", lambda db: db.execute(sql, [*params, first + 1]).fetchall())
        items = [_ci(r) for r in rows[:first]]
        return ci_page(items, len(rows) > first, sort, descending)

    def count_cis(
        self,
        classes: Collection[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
        text: str | None = None,
    ) -> int:
        where, params = _filters(classes, attributes, text)
        sql = f"SELECT count(*) FROM cis WHERE {' AND '.join(where) or '1'}"
        return int(self._read("count CIs", lambda db: db.execute(sql, params).fetchone()[0]))

    def find_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
        first: int = 100,
        after: str | None = None,
    ) -> Page:
        check_page_size(first)
        where, params = _rel_filters(source, target, types)
        where.append("(source, type, target) > (?, ?, ?)")
        params.extend(rel_cursor(after))
        sql = (
            f"SELECT * FROM relationships WHERE {' AND '.join(where)} "
            "ORDER BY source, type, target LIMIT ?"
        )
        rows = self._read(
            "find relationships", lambda db: db.execute(sql, [*params, first + 1]).fetchall()
        )
        items = [_rel(r) for r in rows[:first]]
        return make_page(items, len(rows) > first, lambda r: "\0".join(r.key))

    def count_relationships(
        self,
        source: str | None = None,
        target: str | None = None,
        types: Collection[str] | None = None,
    ) -> int:
        where, params = _rel_filters(source, target, types)
        sql = f"SELECT count(*) FROM relationships WHERE {' AND '.join(where) or '1'}"
        return int(
            self._read("count relationships", lambda db: db.execute(sql, params).fetchone()[0])
        )

    def relationships_of(self, ids: Collection[str]) -> list[Relationship]:
        return self._read("read relationships", lambda db: _touching(db, ids))

    def attribute_columns(self, cls: str, paths: Sequence[str]) -> AttributeColumns:
        """One query; SQLite's JSON functions pick the paths out, so no row's whole attributes
        are parsed in Python (an incident's impact snapshot is most of it)."""
        parsed = [AttributePath.parse(p) for p in paths]  # identifiers only: safe in SQL text
        plain = [(t, p) for t, p in zip(paths, parsed, strict=True) if p.item is None]
        listed = [(t, p) for t, p in zip(paths, parsed, strict=True) if p.item is not None]
        selects = []
        if plain:  # one json_extract of every path: a JSON array per row, parsed once
            spots = ["'$." + ".".join(p.head) + "'" for _, p in plain]
            selects.append(f"json_extract(a, {', '.join(spots * (2 if len(spots) == 1 else 1))})")
        for _, path in listed:
            head, item = "$." + ".".join(path.head), "$." + ".".join(path.item or ())
            selects.append(
                f"CASE json_type(a, '{head}') WHEN 'array' THEN (SELECT "
                f"json_group_array(json(j.value -> '{item}')) FROM json_each(a, '{head}') j) END"
            )
        sql = (
            f"SELECT id, name{''.join(', ' + x for x in selects)} FROM (SELECT id, name, "
            "iif(json_valid(attributes), attributes, '{}') AS a FROM cis WHERE class = ?) "
            "ORDER BY id"
        )
        rows = self._read("read attribute columns", lambda db: db.execute(sql, [cls]).fetchall())
        ids = [r[0] for r in rows]
        names = [r[1] for r in rows]
        columns: dict[str, list[Any]] = {}
        if plain:
            values = [orjson.loads(r[2]) for r in rows]
            for n, (text, _) in enumerate(plain):
                columns[text] = [v[n] for v in values]
        for n, (text, _) in enumerate(listed, 3 if plain else 2):
            columns[text] = [None if r[n] is None else orjson.loads(r[n]) for r in rows]
        columns = {t: columns[t] for t in paths}
        return AttributeColumns(ids, names, columns)

    def iter_cis(self, chunk: int = 10_000) -> Iterator[CI]:
        last = ""
        sql = "SELECT * FROM cis WHERE id > ? ORDER BY id LIMIT ?"
        while True:
            rows = self._read("read CIs", partial(_rows, sql=sql, params=(last, chunk)))
            yield from (_ci(r) for r in rows)
            if len(rows) < chunk:
                return
            last = rows[-1][0]

    def iter_relationships(self, chunk: int = 10_000) -> Iterator[Relationship]:
        last: tuple[str, str, str] = ("", "", "")
        sql = (
            "SELECT * FROM relationships WHERE (source, type, target) > (?, ?, ?) "
            "ORDER BY source, type, target LIMIT ?"
        )
        while True:
            rows = self._read("read relationships", partial(_rows, sql=sql, params=(*last, chunk)))
            yield from (_rel(r) for r in rows)
            if len(rows) < chunk:
                return
            last = (rows[-1][0], rows[-1][1], rows[-1][2])

    def topology(self) -> tuple[list[TopologyNode], list[RelKey], int]:
        def read(db: sqlite3.Connection) -> tuple[list[TopologyNode], list[RelKey], int]:
            db.execute("BEGIN")  # one snapshot for nodes, edges and seq
            try:
                # A row whose attributes are not valid JSON (NaN written by an older version)
                # is reported by the engine, not allowed to fail the whole projection.
                nodes = db.execute(
                    "SELECT id, class, CASE WHEN json_valid(attributes) THEN "
                    "json_extract(attributes, '$.status') END, CASE WHEN json_valid(attributes) "
                    "THEN json_extract(attributes, '$.min_up') ELSE ? END, name FROM cis",
                    (UNREADABLE,),
                ).fetchall()
                edges = db.execute("SELECT source, type, target FROM relationships").fetchall()
                seq = db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
            finally:
                db.execute("COMMIT")
            return nodes, edges, int(seq)

        return self._read("read the topology", read)

    def topology_columns(self) -> TopologyColumns:
        """The topology as one NUL-joined text per column (see ``graph/topology.py``): four
        million relationships without a Python object each. Rows as ``topology`` reads them
        where a value holds a NUL byte, or a column is beyond SQLite's 1 GB text limit."""
        from servicegraph.graph import topology  # numpy and numba: not for quick commands

        def read(db: sqlite3.Connection) -> tuple[Any, Any, int] | None:
            db.execute("BEGIN")  # one snapshot for nodes, edges and seq
            try:
                nodes = db.execute(_TOPOLOGY_NODES, (UNREADABLE,)).fetchone()
                edges = db.execute(_TOPOLOGY_EDGES).fetchone()
                seq = db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0]
            except sqlite3.DataError:  # "string or blob too big": beyond SQLITE_MAX_LENGTH
                return None
            finally:
                db.execute("COMMIT")
            return nodes, edges, int(seq)

        found = self._read("read the topology", read)
        columns = None
        if found is not None:
            nodes, edges, seq = found
            columns = topology.from_joined(
                nodes[:5], edges, json.loads(nodes[5] or "[]"), sorted(self.model.classes),
                sorted(self.model.relationship_types), seq,
            )  # fmt: skip
        return columns if columns is not None else topology.from_rows(*self.topology())

    def journal(
        self,
        entity: str | None = None,
        since: int = 0,
        limit: int | None = None,
        where: JournalFilter | None = None,
    ) -> list[JournalEntry]:
        f = where or JournalFilter(since=since, entity=entity)
        clauses: list[str] = ["seq > ?"]
        params: list[Any] = [f.since]
        bounds = (("seq <=", f.until), ("at >=", f.since_at), ("at <", f.until_at),
                  ("actor =", f.actor))  # fmt: skip
        for test, value in bounds:
            if value is not None:
                clauses.append(f"{test} ?")
                params.append(value)
        if f.ops is not None:
            clauses.append(f"op IN ({','.join('?' * len(f.ops))})")
            params.extend(f.ops)
        if f.entity is not None:
            if f.related:  # relationship entities read "a -[TYPE]-> b"
                clauses.append("(entity = ? OR entity GLOB ? OR entity GLOB ?)")
                quoted = _glob_literal(f.entity)
                params.extend([f.entity, f"{quoted} -[[]*", f"*]-> {quoted}"])
            else:
                clauses.append("entity = ?")
                params.append(f.entity)
        sql = f"SELECT {_JOURNAL_COLUMNS} FROM journal WHERE {' AND '.join(clauses)} "
        sql += "ORDER BY seq LIMIT ?"
        params.append(-1 if limit is None else limit)
        rows = self._read("read the journal", lambda db: db.execute(sql, params).fetchall())
        return [_entry(r) for r in rows]

    def seq_at(self, at: str) -> int:
        row = self._read("read the journal", lambda db: db.execute(
            "SELECT max(seq) FROM journal WHERE at <= ?", (at + "\uffff",)).fetchone())  # fmt: skip
        return int(row[0] or 0)

    def latest_entries(self, seq: int) -> list[JournalEntry]:
        # replay needs only what each entity became: its ``before`` is not decoded
        sql = ("SELECT seq, at, actor, op, entity, NULL, after, reason FROM journal WHERE seq IN "
               "(SELECT max(seq) FROM journal WHERE seq <= ? GROUP BY entity) ORDER BY seq")  # fmt: skip
        rows = self._read("read the journal", lambda db: db.execute(sql, (seq,)).fetchall())
        return [_entry(r) for r in rows]

    def range_changes(self, start: int, end: int) -> dict[str, RangeChange]:
        # the entries without their records, then per entity the two records a diff needs
        # (found by the (entity, seq) index): a year's range decodes two records per entity
        meta = ("SELECT seq, at, actor, op, entity, reason FROM journal WHERE seq > ? AND "
                "seq <= ? AND (op GLOB '*_ci' OR op GLOB '*_relationship') ORDER BY seq")  # fmt: skip
        ends = ("SELECT f.entity, f.op, f.before, l.after FROM (SELECT entity, min(seq) AS s, "
                "max(seq) AS e FROM journal WHERE seq > ? AND seq <= ? GROUP BY entity) AS r "
                "JOIN journal AS f ON f.seq = r.s JOIN journal AS l ON l.seq = r.e")  # fmt: skip

        def read(db: sqlite3.Connection) -> tuple[list[Any], list[Any]]:
            return db.execute(meta, (start, end)).fetchall(), db.execute(
                ends, (start, end)
            ).fetchall()

        rows, records = self._read("read the journal", read)
        entries: dict[str, list[tuple[int, str, str, str, str | None]]] = {}
        for seq, at, actor, op, entity, reason in rows:
            got = entries.get(entity)
            if got is None:
                got = entries[entity] = []
            got.append((seq, at, actor, op, reason))
        out: dict[str, RangeChange] = {}
        for entity, op, before, after in records:
            if entity in entries:  # not a token's or another non-graph entry
                kind = "ci" if op.endswith("_ci") else "relationship"
                out[entity] = RangeChange(
                    kind, load_json(before), load_json(after), entries[entity]
                )
        return out

    def head_seq(self) -> int:
        mark = self._mark.read()  # before the read: a commit in between makes it differ
        kept = self._head
        if mark is not None and kept is not None and kept[0] == mark:
            return kept[1]

        def read(db: sqlite3.Connection) -> tuple[int, bool]:
            row = db.execute("SELECT max(seq) FROM journal").fetchone()
            return int(row[0] or 0), db.in_transaction  # a read transaction's may be older

        head, older = self._read("read the journal", read)
        if mark is not None and not older:
            self._head = (mark, head)
        return head

    def counts(self) -> dict[str, int]:
        def read(db: sqlite3.Connection) -> dict[str, int]:
            out = dict(db.execute("SELECT class, count(*) FROM cis GROUP BY class").fetchall())
            out["relationships"] = db.execute("SELECT count(*) FROM relationships").fetchone()[0]
            return out

        return self._read("count", read)

    # -- tokens ---------------------------------------------------------------------------------
    def add_token(
        self, token_hash: str, user: str, role: str, actor: str, expires_at: str | None = None
    ) -> None:
        at = utc_now()
        entry = {"user": user, "role": role, "expires_at": expires_at}

        def work(tx: _SqliteWriteTx) -> None:
            tx.db.execute(
                "INSERT INTO api_tokens(hash, user, role, created_at, expires_at) "
                "VALUES (?,?,?,?,?)",
                (token_hash, user, role, at, expires_at),
            )
            tx.journal(at, actor, "create_token", f"token:{token_hash[:12]}", None, entry)

        self._run_write(work)

    def find_token(self, token_hash: str) -> TokenRecord | None:
        """The token, read again after any commit (creating or revoking a token commits); known
        tokens are kept meanwhile, up to _KEPT_TOKENS (unknown ones are always looked up)."""
        mark = self._mark.read()  # before the read: a commit in between makes it differ
        kept = self._tokens
        if mark is not None and kept is not None and kept[0] == mark:
            record = kept[1].get(token_hash)
            if record is not None:
                return record

        def read(db: sqlite3.Connection) -> tuple[Any, bool]:
            row = db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?", (token_hash,)
            ).fetchone()
            return row, db.in_transaction

        row, older = self._read("read tokens", read)
        if row is None:
            return None
        record = TokenRecord(*row)
        if mark is not None and not older:
            if kept is None or kept[0] != mark or len(kept[1]) >= _KEPT_TOKENS:
                self._tokens = kept = (mark, {})
            kept[1][token_hash] = record
        return record

    def list_tokens(self) -> list[TokenRecord]:
        rows = self._read(
            "read tokens",
            lambda db: db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, hash"
            ).fetchall(),
        )
        return [TokenRecord(*r) for r in rows]

    def revoke_tokens(self, hashes: Collection[str], actor: str, at: str) -> int:
        def work(tx: _SqliteWriteTx) -> int:
            live = [
                TokenRecord(*r)
                for r in _select_in(
                    tx.db,
                    f"SELECT {_TOKEN_COLUMNS} FROM api_tokens WHERE hash IN ({{ids}}) "
                    "AND revoked_at IS NULL",
                    sorted(hashes),
                )
            ]
            for token in live:
                tx.db.execute(
                    "UPDATE api_tokens SET revoked_at = ? WHERE hash = ?", (at, token.hash)
                )
                before = {"user": token.user, "role": token.role}
                tx.journal(at, actor, "revoke_token", f"token:{token.id}", before, None)
            return len(live)

        return self._run_write(work)

    def touch_token(self, token_hash: str, at: str) -> None:
        # Its own short-lived connection and a zero wait: a busy store skips the update.
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            try:
                db.execute(
                    "UPDATE api_tokens SET last_used_at = ? WHERE hash = ?", (at, token_hash)
                )
            finally:
                db.close()
        except sqlite3.Error:
            return

    # -- backup and restore ---------------------------------------------------------------------
    def dump(self) -> StoreDump:
        def read(db: sqlite3.Connection) -> StoreDump:
            db.execute("BEGIN")
            try:
                cis = [_ci(r) for r in db.execute("SELECT * FROM cis ORDER BY id")]
                rels = [
                    _rel(r)
                    for r in db.execute("SELECT * FROM relationships ORDER BY source, type, target")
                ]
                journal = [
                    _entry(r)
                    for r in db.execute(f"SELECT {_JOURNAL_COLUMNS} FROM journal ORDER BY seq")
                ]
                tokens = [
                    TokenRecord(*r)
                    for r in db.execute(f"SELECT {_TOKEN_COLUMNS} FROM api_tokens ORDER BY hash")
                ]
            finally:
                db.execute("COMMIT")
            return StoreDump(cis, rels, journal, tokens)

        return self._read("dump", read)

    def load_dump(self, dump: StoreDump, replace: bool = False) -> None:
        def work(tx: _SqliteWriteTx) -> None:
            db = tx.db
            if replace:  # the same transaction: a failed restore leaves the old store intact
                for table in ("relationships", "cis", "journal", "api_tokens"):
                    db.execute(f"DELETE FROM {table}")
            _require_empty(db, self.uri)
            db.executemany(
                "INSERT INTO cis(id, class, name, attributes, version) VALUES (?,?,?,?,?)",
                [(c.id, c.cls, c.name, dump_json(c.attributes), c.version) for c in dump.cis],
            )
            db.executemany(
                "INSERT INTO relationships(source, type, target, attributes) VALUES (?,?,?,?)",
                [(r.source, r.type, r.target, dump_json(r.attributes)) for r in dump.relationships],
            )
            db.executemany(
                f"INSERT INTO journal({_JOURNAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (e.seq, e.at, e.actor, e.op, e.entity, dump_json(e.before),
                     dump_json(e.after), e.reason)
                    for e in dump.journal
                ],
            )  # fmt: skip
            db.executemany(
                f"INSERT INTO api_tokens({_TOKEN_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                [
                    (t.hash, t.user, t.role, t.created_at, t.expires_at, t.last_used_at,
                     t.revoked_at)
                    for t in dump.tokens
                ],
            )  # fmt: skip

        self._run_write(work)

    def backup_to(self, path: str | Path) -> None:
        """A consistent copy of this store into a new SQLite file (SQLite's online backup API:
        safe while the server writes)."""
        with self._errors("backup"):
            target = sqlite3.connect(path)
            try:
                self._db.backup(target)
            finally:
                target.close()

    def integrity_problems(self) -> list[str]:
        def check(db: sqlite3.Connection) -> list[str]:
            found = [r[0] for r in db.execute("PRAGMA integrity_check")]
            problems = [] if found == ["ok"] else found
            for row in db.execute("PRAGMA foreign_key_check"):
                problems.append(f"table {row[0]} row {row[1]} points at a missing {row[2]} row")
            return problems

        return self._read("check integrity", check)

    def close(self) -> None:
        self._mark.off()
        with self._connections_lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()


class _SqliteWriteTx:
    def __init__(self, db: sqlite3.Connection, created_in_sql: bool = False) -> None:
        self.db = db
        # journal entries of created records made by SQLite from the rows (see _CREATED)
        self._created_in_sql = created_in_sql
        # A large write builds the journal's entity index and the search index once at its end
        # instead of row by row (see apply). Decided as it goes: a streamed write applies many
        # plans in one transaction and crosses the threshold in one of them.
        self._head: int | None = None  # the journal head when the transaction first wrote
        self._stored: int | None = None  # the CIs stored when first asked
        self._mutations = 0  # applied so far in this transaction
        self._ci_changes = 0
        # the bulk indexes dropped and not built again yet (None: none dropped)
        self._unbuilt: set[str] | None = None
        self._search_dropped = False

    def fetch_cis(self, ids: Collection[str]) -> dict[str, CI]:
        return _fetch_cis(self.db, ids)

    def fetch_relationships(self, keys: Collection[RelKey]) -> dict[RelKey, Relationship]:
        # By source (the primary key's prefix, an index seek), then keep the asked-for keys:
        # a row-value IN (VALUES …) would scan the whole table.
        wanted = set(keys)
        sources = sorted({k[0] for k in wanted})
        rows = _select_in(self.db, "SELECT * FROM relationships WHERE source IN ({ids})", sources)
        return {r.key: r for r in map(_rel, rows) if r.key in wanted}

    def relationships_touching(self, ids: Collection[str]) -> list[Relationship]:
        return _touching(self.db, ids)

    def journal(
        self,
        at: str,
        actor: str,
        op: str,
        entity: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        self.db.execute(
            "INSERT INTO journal(at, actor, op, entity, before, after) VALUES (?,?,?,?,?,?)",
            (at, actor, op, entity, dump_json(before), dump_json(after)),
        )

    def apply(
        self, plan: Plan, actor: str, at: str, progress: Progress, reason: str | None
    ) -> tuple[int, int]:
        db = self.db
        total, done = len(plan.mutations), 0

        def run(sql: str, rows: Iterable[Sequence[Any]]) -> None:
            nonlocal done
            items = iter(rows)  # made 10,000 at a time, not all at once
            while part := list(islice(items, 10_000)):
                db.executemany(sql, part)
                done += len(part)
                progress(min(done, total), total)

        def run_json(sql: str, rows: Iterable[Sequence[Any]], journal: str | None = None,
                     seq: int = 0) -> None:  # fmt: skip
            """The rows in parts; with ``journal``, each part's journal entries too, numbered
            from ``seq``, made by SQLite from the same rows."""
            nonlocal done
            items = iter(rows)
            while part := list(islice(items, _PART)):
                rows_json = _json_rows(part)
                db.execute(sql, (rows_json,))
                if journal is not None:
                    db.execute(journal, (seq, at, actor, reason, rows_json))
                    seq += len(part)
                done += len(part)
                progress(min(done, total), total)

        head = int(db.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()[0])
        self._head = head if self._head is None else self._head
        self._mutations += total
        self._ci_changes += len(plan.ci_upserts) + len(plan.ci_deletes)
        self._drop_indexes()
        if not plan.ci_upserts and not plan.ci_deletes:
            # An import reads every CI first: at its first chunk without CIs, this thread builds
            # the search index and the CIs' indexes while the reading thread reads on, instead
            # of after the last chunk (a CI written later is indexed row by row, or by another
            # build of the search index at the end). The 1M-CI import's tail: 0.5 s less.
            if self._search_dropped:
                self._build_search()
            self._build(_CI_INDEXES)
        first = head + 1
        mutations = plan.mutations
        # The mutations are the CIs upserted, then the relationships upserted, then the deletes,
        # in the order of those lists. Where every CI (every relationship) is created, SQLite
        # journals them from the rows it writes; the rest are journaled from Python below.
        cis_end = len(plan.ci_upserts)
        rels_end = cis_end + len(plan.rel_upserts)
        in_sql = self._created_in_sql
        cis_in_sql = in_sql and _creates(mutations, 0, plan.ci_upserts, "create_ci")
        rels_in_sql = in_sql and _creates(mutations, cis_end, plan.rel_upserts,
                                          "create_relationship")  # fmt: skip
        run_json(
            "INSERT INTO cis(id, class, name, attributes, version) SELECT value->>0, value->>1, "
            "value->>2, value->>3, value->>4 FROM json_each(?) WHERE true "
            "ON CONFLICT(id) DO UPDATE SET class=excluded.class, name=excluded.name, "
            "attributes=excluded.attributes, version=excluded.version",
            ((c.id, c.cls, c.name, dump_json(c.attributes), c.version) for c in plan.ci_upserts),
            _CREATED["ci"] if cis_in_sql else None,
            first,
        )
        run("DELETE FROM relationships WHERE source=? AND type=? AND target=?", plan.rel_deletes)
        run("DELETE FROM cis WHERE id=?", ((i,) for i in plan.ci_deletes))
        run_json(
            "INSERT INTO relationships(source, type, target, attributes) SELECT value->>0, "
            "value->>1, value->>2, value->>3 FROM json_each(?) WHERE true "
            "ON CONFLICT(source, type, target) DO UPDATE SET attributes=excluded.attributes",
            ((r.source, r.type, r.target, dump_json(r.attributes)) for r in plan.rel_upserts),
            _CREATED["relationship"] if rels_in_sql else None,
            first + cis_end,
        )
        from_python = [(0, cis_end)] if not cis_in_sql else []
        from_python += [(cis_end, rels_end)] if not rels_in_sql else []
        from_python += [(rels_end, total)]
        for begin, end in from_python:
            for start in range(begin, end, _PART):
                db.execute(
                    f"INSERT INTO journal({_JOURNAL_COLUMNS}) SELECT ?1 + key, ?2, ?3, "
                    "value->>0, value->>1, value->>2, value->>3, ?4 FROM json_each(?5)",
                    (first + start, at, actor, reason, _json_rows(
                        [(m.op, m.entity, dump_json(m.before), dump_json(m.after))
                         for m in mutations[start:min(start + _PART, end)]])),
                )  # fmt: skip
        return first, first + total - 1

    def _drop_indexes(self) -> None:
        """Stop maintaining an index row by row once this transaction's writes make building
        it once at the end cheaper: the secondary indexes of CIs, relationships and the journal
        (_BULK_INDEXES) when the write at least doubles the journal, and so the rows of CIs and
        relationships, every one of which a journal entry wrote (a sorted build: 0.25 s
        against ~0.6 s of insertions for the journal's entity index of the 100k-CI estate's
        484,353 entries; the import of that estate 7.3 -> 6.5 s with all four); the search index
        when 10,000 CIs or more, and at least a ninth of the store, change (see
        _SEARCH_TRIGGERS). :meth:`finish` builds them."""
        db = self.db
        assert self._head is not None
        if self._unbuilt is None and self._mutations >= max(self._head, _REBUILD_SEARCH_AT):
            for name in _BULK_INDEXES:
                db.execute(f"DROP INDEX {name}")
            self._unbuilt = set(_BULK_INDEXES)
        if not self._search_dropped and self._ci_changes >= _REBUILD_SEARCH_AT:
            if self._stored is None:
                self._stored = int(db.execute("SELECT count(*) FROM cis").fetchone()[0])
            if 9 * self._ci_changes >= self._stored:
                for name in _TRIGGERS:
                    db.execute(f"DROP TRIGGER {name}")
                self._search_dropped = True

    def _build_search(self) -> None:
        """The names table and the search index from the CIs, and their triggers back."""
        db = self.db
        db.execute("DELETE FROM cis_names")
        db.execute("INSERT INTO cis_names(id, name) SELECT id, name FROM cis")
        for name, body in _TRIGGERS.items():
            db.execute(f"CREATE TRIGGER {name} {body}")
        db.execute("INSERT INTO cis_search(cis_search) VALUES ('rebuild')")
        self._search_dropped = False
        self._ci_changes, self._stored = 0, None  # counted again from here

    def finish(self) -> None:
        """Build what :meth:`_drop_indexes` dropped; before the commit, in the transaction (a
        failure leaves the triggers and indexes as they were)."""
        if self._search_dropped:
            self._build_search()
        self._build(_BULK_INDEXES)

    def _build(self, names: Iterable[str]) -> None:
        """Build those of the dropped bulk indexes ``names`` names."""
        for name in names:
            if self._unbuilt is not None and name in self._unbuilt:
                self.db.execute(_BULK_INDEXES[name])
                self._unbuilt.discard(name)


# The journal entries of created records, made by SQLite from the rows it writes (the JSON of
# ``_SqliteWriteTx.apply``'s parts: CIs [id, class, name, attributes, version], relationships
# [source, type, target, attributes], attributes as stored JSON text): no Python object per
# entry, so the writing thread holds the interpreter lock less while the next chunk is read
# (the 100k-CI import in-process 4.61-4.84 -> 4.26-4.48 s). Used only where
# ``_journals_like_dump_json`` finds this SQLite's JSON text the same as ``dump_json``'s, byte
# for byte.
# Each row's fields are taken from its JSON once (a MATERIALIZED row set: SQLite would otherwise
# parse the row again for every use of a field, seven times for a relationship's entry; the 1M-CI
# import's relationship entries took 12.2 s).
_CREATED_FIELDS = {
    "ci": "key AS k, value->>0 AS i, value->>1 AS c, value->>2 AS n, value->>3 AS a, "
    "value->>4 AS v",
    "relationship": "key AS k, value->>0 AS s, value->>1 AS t, value->>2 AS g, value->>3 AS a",
}
_CREATED_AFTER = {
    "ci": "json_object('attributes', json(a), 'class', c, 'id', i, 'name', n, 'version', v)",
    "relationship": "json_object('attributes', json(a), 'source', s, 'target', g, 'type', t)",
}
_CREATED_ENTITY = {"ci": "i", "relationship": "s || ' -[' || t || ']-> ' || g"}


def _created(kind: str, select: str, rows: str) -> str:
    """A statement over the created records of ``kind`` in the JSON array ``rows``."""
    return (
        f"WITH r AS MATERIALIZED (SELECT {_CREATED_FIELDS[kind]} FROM json_each({rows})) {select}"
    )


_CREATED = {
    kind: _created(
        kind,
        f"INSERT INTO journal({_JOURNAL_COLUMNS}) SELECT ?1 + k, ?2, ?3, 'create_{kind}', "
        f"{_CREATED_ENTITY[kind]}, NULL, {_CREATED_AFTER[kind]}, ?4 FROM r",
        "?5",
    )
    for kind in ("ci", "relationship")
}


def _creates(mutations: list[Mutation], begin: int, records: Sequence[Any], op: str) -> bool:
    """Whether the mutations from ``begin`` on create ``records``, in their order (the rows a
    statement writes, then journaled by SQLite: see _CREATED)."""
    end = begin + len(records)
    return len(mutations) >= end and all(
        m.op == op and m.before is None and m.record is r
        for m, r in zip(mutations[begin:end], records, strict=True)
    )


def _journals_like_dump_json(db: sqlite3.Connection) -> bool:
    """Whether this SQLite makes a created CI's and relationship's journal entity and JSON
    exactly as ``Mutation.entity`` and ``dump_json`` do, on texts that escape differently from
    one JSON writer to another (quotes, backslashes, control characters, non-ASCII, emoji) and
    numbers of every kind. Decided once a store is opened: another SQLite may render JSON
    otherwise, and then the entries are made in Python."""
    texts = [
        "plain",
        'q"uote \\ back\\slash /',
        "\t\n\r\b\f \x01\x1f\x7f",
        "é 漢字 😀 \u2028\u2029",
        "",
    ]
    values: list[Any] = [1, -2, 2.5, -0.0, 1e-7, 1.5e300, 2**70, -(2**64), True, False, None]
    attributes = [{}, {"z": values, "a": {"n": {"m": []}}, "s": texts}]
    cis = [CI(t + "i", "c" + t, t, a, 7) for t in texts for a in attributes]
    rels = [Relationship(t + "s", "T" + t, t + "d", a) for t in texts for a in attributes]
    rows: dict[str, list[Sequence[Any]]] = {
        "ci": [(c.id, c.cls, c.name, dump_json(c.attributes), c.version) for c in cis],
        "relationship": [(r.source, r.type, r.target, dump_json(r.attributes)) for r in rels],
    }
    want = {
        "ci": [(c.id, dump_json(c.to_dict())) for c in cis],
        "relationship": [(r.entity, dump_json(r.to_dict())) for r in rels],
    }
    try:
        for kind, made in rows.items():
            select = f"SELECT {_CREATED_ENTITY[kind]}, {_CREATED_AFTER[kind]} FROM r ORDER BY k"
            got = db.execute(_created(kind, select, "?"), (_json_rows(made),)).fetchall()
            if [tuple(r) for r in got] != want[kind]:
                return False
    except sqlite3.Error:
        return False
    return True


def _json_rows(rows: list[Sequence[Any]]) -> bytes:
    """Rows as one JSON array for ``json_each``: SQLite unpacks and writes them in a single
    statement, the interpreter lock released throughout (``executemany`` takes it back for
    every row). Texts the rows hold are valid Unicode (checked) and JSON columns are text."""
    return orjson.dumps(rows)


def _require_empty(db: sqlite3.Connection, uri: str) -> None:
    for table in ("cis", "relationships", "journal", "api_tokens"):
        if db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            from servicegraph.errors import RuleViolation

            raise RuleViolation(
                "restore_into_empty_store",
                f"{uri} is not empty (its {table} table holds rows); restore into a new store, "
                "or pass --replace to discard what it holds",
            )


def _glob_literal(text: str) -> str:
    """``text`` matched literally by GLOB (its wildcards bracketed)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _rel_filters(
    source: str | None, target: str | None, types: Collection[str] | None
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if source is not None:
        where.append("source = ?")
        params.append(source)
    if target is not None:
        where.append("target = ?")
        params.append(target)
    if types is not None:
        where.append(f"type IN ({','.join('?' * len(types))})")
        params.extend(types)
    return where, params


def _filters(
    classes: Collection[str] | None, attributes: Mapping[str, Any] | None, text: str | None
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if classes is not None:
        where.append(f"class IN ({','.join('?' * len(classes))})")
        params.extend(classes)
    for name, value in (attributes or {}).items():
        # json_valid first: one unreadable row must not fail the whole listing
        where.append(
            "CASE WHEN json_valid(attributes) THEN json_extract(attributes, ?) END "
            "= json_extract(?, '$')"
        )
        params.extend([f'$."{name}"', json.dumps(value)])
    if text:
        if len(text) >= 3:  # the trigram index: a phrase query on either column
            where.append("id IN (SELECT id FROM cis_search WHERE cis_search MATCH ?)")
            params.append('{id name} : "' + text.replace('"', '""') + '"')
        else:  # too short for trigrams: a scan, still case-insensitive
            where.append("(instr(lower(id), ?) > 0 OR instr(lower(name), ?) > 0)")
            params.extend([text.lower(), text.lower()])
    return where, params


def _rows(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return db.execute(sql, params).fetchall()


def _select_in(db: sqlite3.Connection, sql: str, ids: Collection[str]) -> list[Any]:
    """Rows of ``sql`` whose every ``{ids}`` is an ``IN`` list of ``ids``, in chunks that stay
    under SQLite's bound-parameter limit."""
    ids = [i for i in ids if text_problem(i) is None]  # what cannot be encoded was never stored
    uses = sql.count("{ids}")
    rows: list[Any] = []
    for i in range(0, len(ids), _CHUNK):
        part = ids[i : i + _CHUNK]
        rows += db.execute(sql.format(ids=",".join("?" * len(part))), part * uses).fetchall()
    return rows


def _fetch_cis(db: sqlite3.Connection, ids: Collection[str]) -> dict[str, CI]:
    return {r[0]: _ci(r) for r in _select_in(db, "SELECT * FROM cis WHERE id IN ({ids})", ids)}


def _touching(db: sqlite3.Connection, ids: Collection[str]) -> list[Relationship]:
    sql = (
        "SELECT * FROM relationships WHERE source IN ({ids}) "
        "UNION SELECT * FROM relationships WHERE target IN ({ids})"
    )
    found = {r.key: r for r in map(_rel, _select_in(db, sql, ids))}
    return sorted(found.values(), key=lambda r: r.key)


def _ci(row: tuple[Any, ...]) -> CI:
    return CI(row[0], row[1], row[2], load_json(row[3]), row[4])


def _rel(row: tuple[Any, ...]) -> Relationship:
    return Relationship(row[0], row[1], row[2], load_json(row[3]))


def _entry(r: tuple[Any, ...]) -> JournalEntry:
    return JournalEntry(r[0], r[1], r[2], r[3], r[4], load_json(r[5]), load_json(r[6]), r[7])
