"""The Neo4j bulk write: a large import in slices of transactions, with one transaction's outcome.

Small slices (``bulk_slice``) make a few hundred items take many transactions, so every path of
the real thing runs here against the real server: slices written side by side, a failure in the
middle rolled back from the journal, other writers refused while the import holds the store, and
an import whose process is killed recovered by ``servicegraph recover``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from servicegraph.errors import StoreBusy, ValidationFailed
from servicegraph.graph.model import Model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.graph.records import CI, Batch, JournalFilter, Relationship, dump_json
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.demo import generate_estate

pytestmark = pytest.mark.neo4j
SLICE = 60


def content(store: Any) -> tuple[dict[str, tuple[str, str, dict[str, Any]]], set[Any]]:
    """What a user reads back: every CI's class, name and attributes, every relationship."""
    cis = {c.id: (c.cls, c.name, c.attributes) for c in store.iter_cis()}
    rels = {(r.key, tuple(sorted(r.attributes.items()))) for r in store.iter_relationships()}
    return cis, rels


def estate_with_changes(store: Neo4jStore) -> Batch:
    """An estate written normally, then a batch renaming every second CI of it and adding a
    larger estate under new ids: updates, creates and relationships, many slices of each."""
    base = generate_estate(100)
    store.write(base, "setup")
    batch = Batch()
    for i, ci in enumerate(base.cis):
        batch.add_ci(CI(ci.id, ci.cls, f"{ci.name} (renamed)" if i % 2 else ci.name, {}))
    more = generate_estate(400)
    for ci in more.cis:
        batch.add_ci(CI(f"new-{ci.id}", ci.cls, ci.name, dict(ci.attributes)))
    for r in more.relationships:
        batch.add_relationship(
            Relationship(f"new-{r.source}", r.type, f"new-{r.target}", dict(r.attributes))
        )
    return batch


@pytest.fixture
def bulk_store(neo4j_store: Neo4jStore) -> Neo4jStore:
    neo4j_store.bulk_slice = SLICE
    neo4j_store.journal_block = 10  # slices journal as blocks, as at full size
    return neo4j_store


def test_a_bulk_write_stores_what_one_transaction_stores(
    bulk_store: Neo4jStore, tmp_path: Path, model: Model
) -> None:
    batch = generate_estate(400)
    seen: list[tuple[int, int]] = []
    result = bulk_store.bulk_write(batch, "importer", progress=lambda d, t: seen.append((d, t)))
    with SqliteStore(tmp_path / "one.db", model) as sqlite:
        sqlite.write(batch, "importer")
        assert content(bulk_store) == content(sqlite)
    total = len(batch)
    assert result.created == total and result.first_seq == 1 and result.last_seq == total
    assert len(seen) == -(-total // SLICE) and seen[-1] == (total, total)  # a tick per slice
    journal = bulk_store.journal()
    assert [e.seq for e in journal] == list(range(1, total + 1))
    assert {e.entity for e in journal} == {c.id for c in batch.cis} | {
        r.entity for r in batch.relationships
    }
    assert all(e.actor == "importer" for e in journal)
    # Every entry names the import that wrote it (its slices have their own times).
    assert len({e.reason for e in journal}) == 1
    assert journal[0].reason is not None and journal[0].reason.startswith("bulk write import-")
    # Entries are in time order although slices were written side by side.
    assert [e.at for e in journal] == sorted(e.at for e in journal)
    # The store is free again and the re-import finds nothing to change.
    assert bulk_store.bulk_write(batch, "importer").unchanged == total
    bulk_store.upsert([CI("late", "host", "late")], actor="someone")


def odd(ident: str) -> str:
    """An id full of what a full-text query language treats specially."""
    return f'{ident} "q" \\ *:(OR) ~a?'


def test_the_journal_reads_the_same_from_blocks_as_from_entries(
    bulk_store: Neo4jStore, tmp_path: Path, model: Model, neo4j_driver: Any
) -> None:
    """A bulk write journals each slice as one block node (its entries as lists); every way
    of reading the journal gives what SQLite, which has one row per entry, gives."""
    estate = generate_estate(300)
    small = Batch()
    for ci in estate.cis[:5]:
        small.add_ci(CI(odd(ci.id), ci.cls, ci.name, dict(ci.attributes)))
    big = Batch()
    for ci in estate.cis[5:]:
        big.add_ci(CI(odd(ci.id), ci.cls, ci.name, dict(ci.attributes)))
    for r in estate.relationships:
        big.add_relationship(Relationship(odd(r.source), r.type, odd(r.target), dict(r.attributes)))
    hub = max({r.source for r in big.relationships}, key=lambda i: sum(
        r.source == i or r.target == i for r in big.relationships))  # fmt: skip
    rel = big.relationships[len(big.relationships) // 2]
    later = Batch()
    for ci in big.cis[::40]:
        later.add_ci(CI(ci.id, ci.cls, f"{ci.name} (renamed)", dict(ci.attributes)))
    with SqliteStore(tmp_path / "rows.db", model) as sqlite:
        for store in (bulk_store, sqlite):
            store.write(small, "setup")
            store.bulk_write(big, "bulk")
            store.write(later, "later")
            store.write(Batch(delete_relationships=[rel.key]), "later")
        blocks = neo4j_driver.execute_query("MATCH (b:JournalBlock) RETURN count(b) AS n")
        assert blocks.records[0]["n"] == -(-len(big) // SLICE)  # one per slice, none for the rest

        # The whole journal holds what SQLite's does (a bulk write orders relationships by
        # type, so seqs differ), and reading it a page at a time gives the same entries.
        def row(e: Any) -> tuple[Any, ...]:
            return (e.actor, e.op, e.entity, dump_json(e.before), dump_json(e.after))

        full = bulk_store.journal()
        assert sorted(map(row, full)) == sorted(map(row, sqlite.journal()))
        head = bulk_store.head_seq()
        assert [e.seq for e in full] == list(range(1, head + 1))
        paged: list[Any] = []
        while len(paged) < head:
            paged += bulk_store.journal(since=len(paged), limit=SLICE - 7)
        assert paged == full

    def same(expected: list[Any], **kwargs: Any) -> int:
        assert bulk_store.journal(**kwargs) == expected, kwargs
        return len(expected)

    def entity_of(ident: str) -> list[Any]:
        return [e for e in full if e.entity == ident]

    def touching(ident: str) -> list[Any]:
        return [e for e in full if ident in (e.entity, *e.entity.split(" -[")[:1],
                                             *e.entity.split("]-> ")[1:])]  # fmt: skip

    for since, limit in [(0, 1), (3, 4), (SLICE - 2, 5), (7, 3 * SLICE), (head - 2, 10)]:
        assert same(full[since : since + limit], since=since, limit=limit) == min(
            limit, head - since
        )
    assert same(entity_of(hub), entity=hub) == 1
    assert same(entity_of(rel.entity), entity=rel.entity) == 2  # created in a block, deleted
    assert same(entity_of(big.cis[40].id), entity=big.cis[40].id) == 2
    assert same([], entity=odd("nothing")) == 0
    assert same([], entity=hub, since=head) == 0
    assert same(entity_of(hub)[:1], entity=hub, limit=1) == 1
    assert same(touching(hub), where=JournalFilter(entity=hub, related=True)) > 3
    ends = [e for e in touching(rel.target) if e.seq <= head - 1]
    assert same(ends, where=JournalFilter(entity=rel.target, related=True, until=head - 1)) >= 2
    # The deletion is an entry node: found by the relationship id's start and end alike.
    for end in (rel.source, rel.target):
        assert touching(end)[-1].op == "delete_relationship"
        assert same(touching(end), where=JournalFilter(entity=end, related=True)) >= 2
    first = SLICE + 5
    assert same(full[first : first + SLICE + 7], where=JournalFilter(
        since=first, until=first + SLICE + 7)) == SLICE + 7  # fmt: skip
    created = [e for e in full if e.op == "create_relationship"]
    assert same(created, where=JournalFilter(ops=("create_relationship",))) == len(
        big.relationships
    )
    late = [e for e in full if e.actor == "bulk" and e.seq > head - 20]
    assert same(late, where=JournalFilter(actor="bulk", since=head - 20)) > 0
    bulk = [e for e in full if e.actor == "bulk"]
    assert same(bulk[5:], where=JournalFilter(actor="bulk", since=bulk[4].seq)) == len(big) - 5
    assert same(full, where=JournalFilter(since_at=full[0].at)) == head


def test_a_failure_midway_undoes_every_slice_written(bulk_store: Neo4jStore) -> None:
    batch = estate_with_changes(bulk_store)
    before = content(bulk_store)
    head = bulk_store.head_seq()

    def interrupt(done: int, total: int) -> None:
        if done >= 3 * SLICE:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the import

    with pytest.raises(KeyboardInterrupt) as caught:
        bulk_store.bulk_write(batch, "importer", progress=interrupt)
    assert any("were rolled back" in note for note in caught.value.__notes__)
    assert content(bulk_store) == before
    # The journal keeps both: what the slices wrote and the rollback, never reusing a seq.
    written = bulk_store.journal(since=head)
    rollback = [e for e in written if e.reason and e.reason.startswith("rollback of bulk write")]
    assert rollback and "KeyboardInterrupt" in rollback[0].reason  # type: ignore[operator]
    import_id = written[0].reason.removeprefix("bulk write ")  # type: ignore[union-attr]
    assert rollback[0].reason.startswith(f"rollback of bulk write {import_id},")  # type: ignore[union-attr]
    assert {e.entity for e in rollback} == {e.entity for e in written if e not in rollback}
    assert [e.seq for e in written] == list(range(head + 1, head + len(written) + 1))
    # A restored CI has a new version: a client holding one read during the import is refused.
    renamed = next(e for e in written if e.op == "update_ci" and e not in rollback)
    restored = bulk_store.get_ci(renamed.entity)
    assert restored is not None and restored.version == renamed.after["version"] + 1  # type: ignore[index]
    # Nothing holds the store: the same import, run again without interruption, goes through.
    result = bulk_store.bulk_write(batch, "importer")
    assert result.created + result.updated > 0
    last = bulk_store.get_ci(batch.cis[-1].id)
    assert last is not None and last.name == batch.cis[-1].name


def test_writers_wait_for_a_bulk_write_but_tokens_do_not(
    bulk_store: Neo4jStore, neo4j_uri: str, model: Model
) -> None:
    batch = generate_estate(400)
    refused: list[str] = []
    with Neo4jStore(neo4j_uri, model) as other:

        def meanwhile(done: int, total: int) -> None:
            if done == SLICE:
                with pytest.raises(StoreBusy) as busy:
                    other.upsert([CI("sneaky", "host", "sneaky")], actor="other")
                refused.append(str(busy.value))
                # Revoking or creating a token is never held up by an import.
                other.add_token("f" * 64, "ops", "viewer", actor="admin")

        bulk_store.bulk_write(batch, "importer", progress=meanwhile)
        assert refused and "holds the store" in refused[0] and "'importer'" in refused[0]
        assert other.get_ci("sneaky") is None
        assert other.find_token("f" * 64) is not None
        other.upsert([CI("sneaky", "host", "sneaky")], actor="other")  # free again


def test_a_bulk_write_checks_everything_before_it_writes(bulk_store: Neo4jStore) -> None:
    batch = generate_estate(400)
    batch.add_ci(CI("odd", "no_such_class", "odd"))
    batch.add_relationship(Relationship(batch.cis[0].id, "DEPENDS_ON", "nowhere"))
    with pytest.raises(ValidationFailed) as caught:
        bulk_store.bulk_write(batch, "importer")
    text = str(caught.value)
    assert "no_such_class" in text and "nowhere" in text  # model and graph problems together
    assert bulk_store.head_seq() == 0 and bulk_store.counts() == {"relationships": 0}
    with pytest.raises(ValidationFailed, match="actor"):  # refused before the store is held
        bulk_store.bulk_write(generate_estate(400), "\ud800")
    bulk_store.upsert([CI("after", "host", "after")])  # no lease was left behind


KILLED_IMPORT = textwrap.dedent(
    """
    import os, signal, sys
    from servicegraph.graph.model import load_model
    from servicegraph.graph.neo4j_store import Neo4jStore
    from servicegraph.processes.demo import generate_estate

    store = Neo4jStore(sys.argv[1], load_model())
    store.bulk_slice = int(sys.argv[2])

    def die(done, total):
        if done >= 3 * store.bulk_slice:
            os.kill(os.getpid(), signal.SIGKILL)  # no rollback: the process is gone

    store.bulk_write(generate_estate(400), "doomed", progress=die)
    """
)


def test_an_import_whose_process_died_is_rolled_back_by_recover(
    bulk_store: Neo4jStore, neo4j_uri: str, neo4j_driver: Any
) -> None:
    bulk_store.write(generate_estate(100), "setup")
    before = content(bulk_store)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_IMPORT, neo4j_uri, str(SLICE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stderr
    assert content(bulk_store) != before  # its first slices are in the graph
    with pytest.raises(StoreBusy, match="holds the store"):
        bulk_store.upsert([CI("x", "host", "x")])
    recent = cli("recover", "--db", neo4j_uri)
    assert recent.returncode == 3 and "holds the store" in recent.stderr
    # Its heartbeat goes quiet: five minutes later writers are told how to recover.
    neo4j_driver.execute_query(
        "MATCH (h:JournalHead) SET h.import_heartbeat = '2026-01-01T00:00:00.000000Z'"
    )
    with pytest.raises(StoreBusy, match=r"was interrupted.*servicegraph recover"):
        bulk_store.upsert([CI("x", "host", "x")])
    done = cli("recover", "--db", neo4j_uri)
    assert done.returncode == 0, done.stderr
    assert "rolled back the interrupted import" in done.stdout
    assert content(bulk_store) == before
    assert cli("recover", "--db", neo4j_uri).stdout.startswith("nothing to recover")
    bulk_store.upsert([CI("x", "host", "x")])


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from servicegraph.api.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
