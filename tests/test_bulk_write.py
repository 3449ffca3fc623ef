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
from servicegraph.graph.records import CI, Batch, Relationship
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
