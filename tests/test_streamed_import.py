"""An import read a chunk at a time (servicegraph.graph.streamed): the same outcome as the whole
file written at once, every problem of every chunk reported, and nothing left of it when a
chunk after the first is refused — on SQLite (one transaction) and Neo4j (slices under a lease,
undone from the journal). Small chunks and slices make a few hundred items many of each."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from servicegraph.errors import RuleViolation, StoreUnavailable, ValidationFailed
from servicegraph.graph import sqlite_store as sqlite_module
from servicegraph.graph.model import Model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.graph.packed_keys import PackedKeys
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.graph.streamed import Chunk
from servicegraph.processes import interchange
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.import_source import FileSource
from tests.test_bulk_write import content

CHUNK = 37


@pytest.fixture
def chunked(store: GraphStore) -> GraphStore:
    store.stream_chunk = CHUNK
    if isinstance(store, Neo4jStore):
        store.bulk_slice = 25  # slices of a chunk, two written side by side
    return store


def as_file(path: Path, batch: Batch, first: str = "cis", prefix: str = "") -> Path:
    """``batch`` as an import file (its ids prefixed: another estate than the demo's)."""
    sections = {
        "cis": [{**c.to_dict(with_version=False), "id": prefix + c.id} for c in batch.cis],
        "relationships": [
            {**r.to_dict(), "source": prefix + r.source, "target": prefix + r.target}
            for r in batch.relationships
        ],
    }
    order = [first, "relationships" if first == "cis" else "cis"]
    path.write_bytes(orjson.dumps({k: sections[k] for k in order}, option=orjson.OPT_INDENT_2))
    return path


@pytest.mark.parametrize("first", ["cis", "relationships"])
def test_an_import_in_chunks_stores_what_the_whole_batch_stores(
    chunked: GraphStore, tmp_path: Path, model: Model, first: str
) -> None:
    """Many chunks of CIs, then of relationships between CIs of earlier chunks (not looked up:
    created by the import) — also from a file that lists its relationships first."""
    batch = generate_estate(200)
    path = as_file(tmp_path / "estate.json", batch, first)
    ticks: list[tuple[int, int]] = []
    result = interchange.import_files(chunked, [path], progress=lambda d, t: ticks.append((d, t)))
    with SqliteStore(tmp_path / "whole.db", model) as whole:
        whole.write(batch, "import")
        assert content(chunked) == content(whole)
    total = len(batch)
    assert (result.created, result.first_seq, result.last_seq) == (total, 1, total)
    assert len(ticks) > total // CHUNK and ticks[-1][0] == ticks[-1][1]  # bytes read, to the end
    assert [e.seq for e in chunked.journal(limit=total + 1)] == list(range(1, total + 1))
    # Read again: every record compared with the stored one (looked up this time), none written.
    beats: list[str] = []

    def heartbeat(chunk: Batch) -> None:  # Neo4j: chunks that write nothing beat the lease
        if isinstance(chunked, Neo4jStore):
            lease = chunked._run_write(lambda tx: tx.lease, graph=False)
            beats.append(lease.heartbeat)

    again = interchange.import_files(chunked, [path], check=heartbeat)
    assert (again.unchanged, again.created, again.updated) == (total, 0, 0)
    assert chunked.head_seq() == total
    if isinstance(chunked, Neo4jStore):
        assert len(beats) > 3 and beats == sorted(beats) and len(set(beats)) == len(beats)


def test_every_problem_of_every_chunk_is_reported_and_nothing_of_the_import_remains(
    chunked: GraphStore, tmp_path: Path
) -> None:
    chunked.write(generate_estate(200), "setup")
    before, head = content(chunked), chunked.head_seq()
    data = orjson.loads(
        as_file(tmp_path / "new.json", generate_estate(200), prefix="new-").read_bytes()
    )
    cis, rels = data["cis"], data["relationships"]
    cis.insert(100, dict(cis[2]))  # the same id as a CI three chunks before
    rels.append(dict(rels[0]))  # a relationship of the first relationship chunk, again
    rels.append({"source": cis[0]["id"], "type": "DEPENDS_ON", "target": "nowhere"})
    cis.append({"id": "odd", "class": "no_such_class", "name": "odd"})
    path = tmp_path / "bad.json"
    path.write_bytes(orjson.dumps({"cis": cis, "relationships": rels}))
    with pytest.raises(ValidationFailed) as caught:
        interchange.import_files(chunked, [path])
    found = {(p.location, p.field): p.reason for p in caught.value.problems}
    n = len(rels)
    assert "also at bad.json: cis[2]" in found["bad.json: cis[100]", "id"]
    assert "no_such_class" in found[f"bad.json: cis[{len(cis) - 1}]", "class"]
    assert "also earlier in this import" in found[f"bad.json: relationships[{n - 2}]", "type"]
    assert "'nowhere'" in found[f"bad.json: relationships[{n - 1}]", "target"]
    assert len(found) == 4
    # Chunks before the first problem were written, and undone: the graph is as before.
    assert content(chunked) == before
    if isinstance(chunked, SqliteStore):
        assert chunked.head_seq() == head  # one transaction, rolled back
    else:
        assert any("were rolled back" in note for note in caught.value.__notes__)
    assert interchange.import_files(
        chunked, [as_file(tmp_path / "ok.json", generate_estate(200), prefix="ok-")]
    ).created


def test_a_relationship_between_stored_cis_given_twice_chunks_apart_is_named(
    chunked: GraphStore, tmp_path: Path
) -> None:
    """Relationship keys of earlier chunks are kept as numbers of their ids (PackedKeys): the
    ids of CIs already stored get theirs when a relationship first names them, and a key given
    again three chunks later is still found — the same ends in the other direction is not one."""
    batch = generate_estate(200)
    chunked.write(batch, "setup")
    hosts = [c.id for c in batch.cis if c.cls == "host"][:2]
    twice = {"source": hosts[0], "type": "DEPENDS_ON", "target": hosts[1]}
    rels = [dict(twice), {"source": hosts[1], "type": "DEPENDS_ON", "target": hosts[0]}]
    rels += [
        {"source": c.id, "type": "DEPENDS_ON", "target": hosts[0]}
        for c in batch.cis
        if c.cls == "vm"
    ][: 3 * CHUNK]
    rels.append(dict(twice))
    path = tmp_path / "again.json"
    path.write_bytes(orjson.dumps({"relationships": rels}))
    before = content(chunked)
    with pytest.raises(ValidationFailed) as caught:
        interchange.import_files(chunked, [path])
    assert [(p.location, p.reason) for p in caught.value.problems] == [
        (
            f"again.json: relationships[{len(rels) - 1}]",
            "duplicate relationship (also earlier in this import)",
        )
    ]
    assert content(chunked) == before


def test_packed_keys_hold_what_a_set_of_them_holds() -> None:
    """Keys added a chunk at a time (runs merged as they grow) are found exactly as a set finds
    them, and nothing else is."""
    rng = np.random.default_rng(7)
    keys = PackedKeys()
    held: set[int] = set()
    for size in [1, 5, 0, 300, 17, 1000, 2, 64, 64, 500]:
        parts = [rng.integers(0, 40, size), rng.integers(0, 3, size), rng.integers(0, 40, size)]
        packed = PackedKeys.pack(*parts)
        asked = PackedKeys.pack(*[rng.integers(0, 40, 200), rng.integers(0, 3, 200),
                                  rng.integers(0, 40, 200)])  # fmt: skip
        assert keys.contains(asked).tolist() == [int(k) in held for k in asked]
        keys.add(packed[~keys.contains(packed)])  # what it lacks, as check_batch adds
        held.update(int(k) for k in packed)
        assert len(keys) == len(held) and len(keys.runs) <= 1 + len(held).bit_length()
    with pytest.raises(ValueError, match="distinct values"):
        PackedKeys.pack(np.array([1 << 28]), np.array([0]), np.array([0]))


def test_a_chunk_refused_in_the_middle_undoes_the_chunks_written_before(
    chunked: GraphStore, tmp_path: Path
) -> None:
    """A chunk check that raises (``servicegraph import`` refuses to retire a CI an active
    change holds) stops the import after earlier chunks were written: all of it is undone."""
    chunked.write(generate_estate(200), "setup")
    before = content(chunked)
    seen: list[int] = []

    def refuse_the_fourth(chunk: Batch) -> None:
        seen.append(len(chunk))
        if len(seen) == 4:
            raise RuleViolation("ci_under_active_change", "held by RFC-1")

    path = as_file(tmp_path / "estate.json", generate_estate(200), prefix="new-")
    with pytest.raises(RuleViolation, match="RFC-1"):
        interchange.import_files(chunked, [path], check=refuse_the_fourth)
    assert seen[:3] == [CHUNK] * 3
    assert content(chunked) == before
    # nothing holds the store afterwards: the same import goes through
    assert interchange.import_files(chunked, [path]).created == len(generate_estate(200))


def test_sqlite_an_import_in_chunks_rebuilds_its_indexes_once_and_they_hold(
    sqlite_store: SqliteStore, tmp_path: Path, model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import large enough to drop the search and secondary indexes (here from 50 CIs)
    drops them in its writing thread while the reading thread plans the next chunk on the same
    transaction, and builds them at the end: they are all there, consistent, and searched. So
    does a second import that renames every CI: after each, the search triggers are back, the
    names table is the CIs' names, and searches find what a store written whole finds."""
    monkeypatch.setattr(sqlite_module, "_REBUILD_SEARCH_AT", 50)
    sqlite_store.stream_chunk = CHUNK

    def schema(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
        return db.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('index', 'trigger') "
            "ORDER BY name"
        ).fetchall()

    def searched(store: SqliteStore) -> list[list[str]]:
        return [[ci.id for ci in store.find_cis(text=t, first=500).items] for t in texts]

    with sqlite3.connect(sqlite_store.path) as db:
        before = schema(db)
    batch = generate_estate(200)
    renamed = Batch()
    for c in batch.cis:
        renamed.add_ci(CI(c.id, c.cls, f"{c.name} renamed", c.attributes))
    texts = ["renamed", "vm-0001", batch.cis[len(batch.cis) // 2].name, "host", "zz-none"]
    built: list[int] = []  # the search index is built once per import, whichever thread does
    build = sqlite_module._SqliteWriteTx._build_search

    def counted(tx: Any) -> None:
        built.append(1)
        build(tx)

    monkeypatch.setattr(sqlite_module._SqliteWriteTx, "_build_search", counted)
    with SqliteStore(tmp_path / "whole.db", model) as whole:
        for step in (batch, renamed):  # created, then renamed
            built.clear()
            interchange.import_files(sqlite_store, [as_file(tmp_path / "estate.json", step)])
            assert len(built) == 1
            whole.write(step, "import")
            assert content(sqlite_store) == content(whole)
            assert searched(sqlite_store) == searched(whole) and any(searched(whole))
            with sqlite3.connect(sqlite_store.path) as db:
                assert schema(db) == before
                db.execute("INSERT INTO cis_search(cis_search) VALUES ('integrity-check')")
                assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                assert db.execute("SELECT id, name FROM cis_names ORDER BY id").fetchall() == (
                    db.execute("SELECT id, name FROM cis ORDER BY id").fetchall()
                )


class _Interrupted:
    """A file read as ``servicegraph import`` reads it, and Ctrl-C pressed at its ``at``-th
    chunk (the chunks before it planned and handed to the writing thread)."""

    def __init__(self, source: FileSource, at: int) -> None:
        self.source, self.at, self.total = source, at, source.total

    def chunks(self, size: int) -> Iterator[Chunk]:
        for n, chunk in enumerate(self.source.chunks(size), start=1):
            if n == self.at:
                raise KeyboardInterrupt
            yield chunk


def test_sqlite_ctrl_c_while_chunks_are_written_behind_the_reading_leaves_nothing(
    sqlite_store: SqliteStore, tmp_path: Path, model: Model
) -> None:
    """SQLite writes each chunk in a thread of its own while the next is read: Ctrl-C in the
    reading waits for the statement running, then rolls everything back; the store is free."""
    sqlite_store.stream_chunk = CHUNK
    sqlite_store.write(generate_estate(200), "setup")
    before, head = content(sqlite_store), sqlite_store.head_seq()
    path = as_file(tmp_path / "estate.json", generate_estate(200), prefix="new-")
    with pytest.raises(KeyboardInterrupt):
        sqlite_store.write_stream(_Interrupted(FileSource(model, [path]), at=12), "import")
    assert content(sqlite_store) == before and sqlite_store.head_seq() == head
    assert interchange.import_files(sqlite_store, [path]).created == len(generate_estate(200))


def test_sqlite_a_write_failing_behind_the_reading_stops_the_import_and_undoes_it(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """A statement of the writing thread that fails (here SQLite's own "database or disk is
    full", from a size limit on the file) ends the import with the store's error, naming it;
    nothing of the import remains and the next one goes through."""
    sqlite_store.stream_chunk = CHUNK
    sqlite_store.write(generate_estate(200), "setup")
    before, head = content(sqlite_store), sqlite_store.head_seq()
    path = as_file(tmp_path / "estate.json", generate_estate(200), prefix="new-")
    db = sqlite_store._writer
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 40}")  # room for a few chunks, not all
    with pytest.raises(StoreUnavailable, match="full"):
        interchange.import_files(sqlite_store, [path])
    assert content(sqlite_store) == before and sqlite_store.head_seq() == head
    db.execute("PRAGMA max_page_count = 1073741823")
    assert interchange.import_files(sqlite_store, [path]).created == len(generate_estate(200))


def test_csv_and_json_files_import_together_every_ci_first(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Relationships of one file may join CIs of another file read after it."""
    sqlite_store.stream_chunk = 3
    (tmp_path / "rels.csv").write_text("source,type,target\nvm-1,HOSTED_ON,h-1\n")
    path = tmp_path / "cis.json"
    path.write_text(
        '{"relationships": [{"source": "vm-2", "type": "HOSTED_ON", "target": "h-1"}],'
        ' "cis": [{"id": "vm-1", "class": "vm", "name": "a"}, {"id": "vm-2", "class": "vm",'
        ' "name": "b"}, {"id": "h-1", "class": "host", "name": "h"}]}'
    )
    result = interchange.import_files(sqlite_store, [tmp_path / "rels.csv", path])
    assert result.created == 5
    rels: set[Any] = {r.key for r in sqlite_store.iter_relationships()}
    assert rels == {("vm-1", "HOSTED_ON", "h-1"), ("vm-2", "HOSTED_ON", "h-1")}


def test_json_read_across_blocks_is_read_whole(
    sqlite_store: SqliteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of a few characters: every item, name and number spans blocks, and is read
    exactly; a malformed item is named by line and column however the blocks fall."""
    from servicegraph.processes import import_source

    monkeypatch.setattr(import_source, "BLOCK", 7)
    monkeypatch.setattr(import_source, "_AHEAD", 0)  # decode up to the block's end
    batch = generate_estate(40)
    batch.cis[0].attributes["mtbf_hours"] = 9876543  # a number cut by a block's end
    path = as_file(tmp_path / "estate.json", batch)
    interchange.import_files(sqlite_store, [path])
    assert sqlite_store.get_ci(batch.cis[0].id).attributes["mtbf_hours"] == 9876543  # type: ignore[union-attr]
    bad = tmp_path / "bad.json"
    bad.write_text('{"cis": [\n  {"id": "a", "class": "vm", "name": "a"},\n  {"id": tru}\n]}')
    with pytest.raises(ValidationFailed, match="malformed at line 3 column 10"):
        interchange.import_files(sqlite_store, [bad])


def _journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:  # closed: an open connection keeps WAL on
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])


def test_sqlite_an_import_into_an_empty_store_goes_into_the_file_all_or_nothing(
    tmp_path: Path, model: Model
) -> None:
    """Into an empty store no other connection has open, an import writes the file directly
    (a rollback journal beside it, no WAL): refused in the middle it leaves the store empty,
    and after either outcome the store is back in WAL mode with nothing left beside it.
    With another connection open, the import goes through the WAL as any write does."""
    path = tmp_path / "empty.db"
    journal = Path(f"{path}-journal")
    store = SqliteStore(path, model)
    store.stream_chunk = CHUNK
    estate = as_file(tmp_path / "estate.json", generate_estate(200))
    seen: list[bool] = []  # a rollback journal beside the file (a WAL write never has one)

    def look(refuse_at: int | None) -> Any:
        def check(chunk: Batch) -> None:
            seen.append(journal.exists())
            if len(seen) == refuse_at:
                raise RuleViolation("ci_under_active_change", "held by RFC-2")

        return check

    with pytest.raises(RuleViolation, match="RFC-2"):
        interchange.import_files(store, [estate], check=look(6))
    assert seen[4]  # chunks were written into the file
    assert store.head_seq() == 0 and content(store) == ({}, set())
    assert _journal_mode(path) == "wal" and not journal.exists()

    seen.clear()
    assert interchange.import_files(store, [estate], check=look(None)).created == len(
        generate_estate(200)
    )
    assert seen[4] and _journal_mode(path) == "wal"  # this thread's reads did not stop it
    with SqliteStore(tmp_path / "whole.db", model) as whole:
        whole.write(generate_estate(200), "import")
        expected = content(whole)
    assert content(store) == expected
    seen.clear()  # a store that holds something: readers may come, the WAL lets them read
    interchange.import_files(store, [as_file(tmp_path / "more.json", generate_estate(300))],
                             check=look(None))  # fmt: skip
    assert seen and not any(seen)
    store.close()

    other_path = tmp_path / "shared.db"
    shared = SqliteStore(other_path, model)
    shared.stream_chunk = CHUNK
    journal = Path(f"{other_path}-journal")
    seen.clear()
    with closing(sqlite3.connect(other_path)) as reader:  # another process's, say
        reader.execute("SELECT count(*) FROM cis").fetchone()
        interchange.import_files(shared, [estate], check=look(None))
    assert not any(seen) and Path(f"{other_path}-wal").exists()  # through the WAL
    assert content(shared) == expected
    shared.close()


def test_sqlite_an_import_into_an_empty_store_killed_midway_leaves_it_empty(
    tmp_path: Path, model: Model
) -> None:
    """``servicegraph import`` killed (SIGKILL) while it writes the file directly: the next
    open rolls the file back from its journal — an empty, intact store in WAL mode."""
    path, estate = tmp_path / "killed.db", tmp_path / "estate.json"
    as_file(estate, generate_estate(6000))
    journal = Path(f"{path}-journal")
    child = subprocess.Popen(
        [sys.executable, "-m", "servicegraph.api.cli", "import", str(estate), "--db", str(path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not journal.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        assert journal.exists(), "the import wrote no rollback journal (or finished first)"
        time.sleep(0.2)  # some chunks into the file
        child.kill()
    finally:
        child.wait()
    assert child.returncode == -9
    with SqliteStore(path, model) as reopened:
        assert reopened.head_seq() == 0 and content(reopened) == ({}, set())
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert _journal_mode(path) == "wal" and not journal.exists()


def test_records_made_fast_are_the_records_their_constructors_make() -> None:
    """An import makes its CIs, relationships and mutations without the frozen dataclasses'
    ``__init__`` (records.slot_setter): equal, frozen, printed alike."""
    import dataclasses

    from servicegraph.graph.records import new_ci, new_relationship
    from servicegraph.graph.store import Mutation, new_mutation

    attributes = {"status": "active", "n": [1, {"x": None}]}
    pairs = [
        (new_ci("vm-1", "vm", "vm one", attributes, 3), CI("vm-1", "vm", "vm one", attributes, 3)),
        (new_ci("vm-2", "vm", "", {}, None), CI("vm-2", "vm", "", {})),
        (new_relationship("a", "RUNS_ON", "b", attributes),
         Relationship("a", "RUNS_ON", "b", attributes)),
    ]  # fmt: skip
    rel = pairs[2][1]
    pairs.append((new_mutation("create_relationship", None, rel),
                  Mutation("create_relationship", None, rel)))  # fmt: skip
    for fast, made in pairs:
        assert fast == made and repr(fast) == repr(made) and type(fast) is type(made)
        assert dataclasses.astuple(fast) == dataclasses.astuple(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(fast, dataclasses.fields(fast)[0].name, "other")
    assert pairs[3][0].after == pairs[3][1].after and pairs[3][0].entity == "a -[RUNS_ON]-> b"
