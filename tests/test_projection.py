"""The persisted projection: a process opens the engine's arrays from the file beside the store
instead of rebuilding them, catches up from the journal, and answers exactly as a fresh build —
and a stale, foreign, corrupt or unwritable file costs a rebuild, never a wrong answer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from servicegraph.errors import NotFound, ValidationFailed
from servicegraph.graph import engine as engine_module
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.model import load_model
from servicegraph.graph.projection import projection_path
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes.demo import generate_estate


@pytest.fixture(autouse=True)
def own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "projections"
    monkeypatch.setenv("SERVICEGRAPH_PROJECTION_DIR", str(folder))
    return folder


def answers(engine: TopologyEngine, seeds: list[str]) -> list[object]:
    """What users see: impact (status, distance, cause) and reach, for each seed."""
    out: list[object] = []
    for seed in seeds:
        p = engine.propagate([seed])
        ids = engine.id_array()
        out.append(sorted(zip(ids[p.nodes].tolist(), p.down.tolist(), p.distance.tolist(),
                              ids[p.cause].tolist(), strict=True)))  # fmt: skip
        out.append(sorted(engine.reach([seed], "down").items()))
    out.append(sorted(d.to_dict()["ci"] for d in engine.data_problems.values()))
    return out


def fresh(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> TopologyEngine:
    with monkeypatch.context() as m:
        m.setenv("SERVICEGRAPH_PROJECTION", "off")
        return TopologyEngine(store)


def test_an_engine_opens_the_projection_and_answers_as_a_fresh_build(
    store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write(generate_estate(400, seed=5), "load")
    first = TopologyEngine(store)
    first.wait_saved()  # written in a thread
    assert first.opened_from == "store" and projection_path(store).is_file()  # type: ignore[union-attr]
    # writes after the file was made: the next engine replays them from the journal
    batch = Batch()
    batch.add_ci(CI("vm-new", "vm", "new vm"))
    host = next(i for i in first.ids if i.startswith("host-"))
    batch.add_relationship(Relationship("vm-new", "HOSTED_ON", host))
    store.write(batch, "later")
    renamed = next(i for i in first.ids if i.startswith("application-"))
    rename = Batch()
    rename.add_ci(CI(renamed, "application", "renamed app"))
    store.write(rename, "later")
    store.write(Batch(retire=[next(i for i in first.ids if i.startswith("vm-"))]), "later")
    store.write(
        Batch(delete_cis=[next(i for i in first.ids if i.startswith("document-"))]), "later"
    )
    second = TopologyEngine(store)
    assert second.opened_from == "projection"
    seeds = [host, next(i for i in first.ids if i.startswith("storage-array-")), "vm-new"]
    assert answers(second, seeds) == answers(fresh(store, monkeypatch), seeds)
    assert "vm-new" in second.reach([host], "up")
    # the engine keeps the names (labels without a store read), renames and new CIs included
    ids = [i for i in first.ids if store.get_ci(i) is not None] + ["vm-new"]
    truth = store.labels(ids)
    assert truth[renamed] == ("application", "renamed app") and truth["vm-new"][1] == "new vm"
    for engine in (first, second, fresh(store, monkeypatch)):
        assert engine.labels(ids) == truth


def test_an_opened_engine_finds_cis_by_their_sorted_ids_until_it_builds_the_index(
    sqlite_store: SqliteStore,
) -> None:
    """Opened from the projection, seeds are found by binary search (hashing a million ids took
    a third of a second of every CLI call); the same ids, the same refusals, and writes from the
    journal after that are found too."""
    sqlite_store.write(generate_estate(300, seed=4), "load")
    built = TopologyEngine(sqlite_store)
    opened = TopologyEngine(sqlite_store)
    assert opened.opened_from == "projection" and opened._index is None
    some = [built.ids[0], built.ids[-1], built.ids[len(built.ids) // 2], built.ids[0]]
    assert opened.index_of(some).tolist() == [built.index[i] for i in some]
    assert opened.propagate(some[:2]).nodes.tolist() == built.propagate(some[:2]).nodes.tolist()
    with pytest.raises(NotFound, match="'zzz-none'"):
        opened.index_of([some[0], "zzz-none"])
    with pytest.raises(ValidationFailed) as refused:
        opened.index_of(["", "aaa-none", some[1], "zzz-none"])
    assert [p.field for p in refused.value.problems] == ["", "aaa-none", "zzz-none"]
    assert opened._index is None  # none of that needed the index
    batch = Batch()
    batch.add_ci(CI("aaa-late", "vm", "late"))
    sqlite_store.write(batch, "later")
    assert opened.index_of(["aaa-late", some[2]]).tolist() == [len(built.ids), built.index[some[2]]]


def test_stale_foreign_corrupt_or_unwritable_files_cost_a_rebuild_not_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = load_model()
    store = SqliteStore(tmp_path / "a.db", model)
    store.write(generate_estate(300, seed=3), "load")
    TopologyEngine(store).wait_saved()  # written in a thread
    path = projection_path(store)
    assert path is not None and path.is_file()
    seeds = [i for i in TopologyEngine(store).ids if i.startswith(("host-", "cluster-"))][:3]
    truth = answers(fresh(store, monkeypatch), seeds)

    data = bytearray(path.read_bytes())  # one flipped byte in the arrays
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    rebuilt = TopologyEngine(store)
    assert rebuilt.opened_from == "store" and answers(rebuilt, seeds) == truth
    assert TopologyEngine(store).opened_from == "projection"  # written anew, whole

    path.write_bytes(path.read_bytes()[:5000])  # truncated
    assert TopologyEngine(store).opened_from == "store"

    other = SqliteStore(tmp_path / "b.db", model)  # another store's file under this one's name
    other.write(generate_estate(300, seed=4), "load")
    TopologyEngine(other).wait_saved()
    foreign = projection_path(other)
    assert foreign is not None
    path.write_bytes(foreign.read_bytes())
    opened = TopologyEngine(store)
    assert opened.opened_from == "store" and answers(opened, seeds) == truth

    extended = tmp_path / "extra.yaml"  # another model: other class codes
    extended.write_text("classes:\n  appliance: {extends: compute, description: A box.}\n")
    wider = SqliteStore(tmp_path / "a.db", load_model(extended))
    assert TopologyEngine(wider).opened_from == "store"

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("SERVICEGRAPH_PROJECTION_DIR", str(blocker / "projections"))
    unwritable = TopologyEngine(store)  # the file cannot be written: the engine still works
    assert unwritable.opened_from == "store" and answers(unwritable, seeds) == truth


def test_processes_that_build_at_once_leave_a_whole_file(
    tmp_path: Path, own_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "c.db", load_model())
    store.write(generate_estate(2000, seed=9), "load")
    code = (
        "import sys; from servicegraph.graph.engine import TopologyEngine; "
        "from servicegraph.graph.sqlite_store import SqliteStore; "
        "from servicegraph.graph.model import load_model; "
        "e = TopologyEngine(SqliteStore(sys.argv[1], load_model())); "
        "print(e.opened_from, len(e.reach([e.ids[0]], 'up')))"
    )
    env = {"SERVICEGRAPH_PROJECTION_DIR": str(own_folder), "PATH": "/usr/bin:/bin"}
    runs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "c.db")], env=env,
                             stdout=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    outputs = [r.communicate(timeout=120)[0].split() for r in runs]
    assert all(r.returncode == 0 for r in runs)
    assert len({o[1] for o in outputs}) == 1  # the same answer from each
    again = TopologyEngine(store)
    assert again.opened_from == "projection"
    assert len(again.reach([again.ids[0]], "up")) == int(outputs[0][1])
    assert not [p for p in own_folder.iterdir() if p.suffix == ".tmp"]  # no leftovers
    assert np.array_equal(again.alive[: again.n], fresh(store, monkeypatch).alive[: again.n])


def test_a_store_restored_from_a_backup_is_not_answered_from_a_newer_file(
    store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servicegraph.graph.backup import backup, restore

    store.write(generate_estate(300, seed=6), "load")
    backup(store, tmp_path / "before.db")
    host = next(i for i in TopologyEngine(store).ids if i.startswith("host-"))
    batch = Batch()
    batch.add_ci(CI("vm-after", "vm", "after the backup"))
    batch.add_relationship(Relationship("vm-after", "HOSTED_ON", host))
    store.write(batch, "later")
    newer = TopologyEngine(store)
    newer.rebuild()  # the file now holds the graph after the backup
    assert "vm-after" in newer.reach([host], "up")
    restore(store, tmp_path / "before.db", replace=True)
    restored = TopologyEngine(store)
    assert restored.opened_from == "store"  # the journal no longer has the file's seq
    assert "vm-after" not in restored.reach([host], "up")
    assert answers(restored, [host]) == answers(fresh(store, monkeypatch), [host])


def test_after_a_large_write_one_process_rebuilds_and_the_others_open_its_file(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server processes on one store (two engines here) and an import larger than a replay
    is worth: the first to answer rebuilds from the store and writes the projection; the other
    opens that file and replays the rest instead of reading the whole store again — and both
    answer as a fresh build. The same number of CIs with other ids (deletes, then creates) is
    no trap for the ids either engine hands out."""
    monkeypatch.setattr(engine_module, "_REBUILD_AFTER", 20)
    store = sqlite_store
    store.write(generate_estate(200, seed=6), "load")
    first, second = TopologyEngine(store), TopologyEngine(store)
    assert second.opened_from == "projection"
    first.id_array()
    second.id_array()
    gone = [i for i in first.ids if i.startswith("vm-")][:30]
    store.delete(gone)
    host = next(i for i in first.ids if i.startswith("host-"))
    batch = Batch()
    for i in range(30):
        batch.add_ci(CI(f"vm-import-{i:02}", "vm", f"imported {i}"))
        batch.add_relationship(Relationship(f"vm-import-{i:02}", "HOSTED_ON", host))
    store.write(batch, "import")
    first.refresh()
    assert first.opened_from == "store"
    real = store.topology

    def no_second_read() -> object:
        raise AssertionError("the second process read the whole store again")

    monkeypatch.setattr(store, "topology", no_second_read)
    second.refresh()
    assert second.opened_from == "projection" and second.seq == first.seq
    monkeypatch.setattr(store, "topology", real)
    seeds = [host, next(i for i in first.ids if i.startswith("storage-array-"))]
    expected = answers(fresh(store, monkeypatch), seeds)
    assert answers(first, seeds) == expected and answers(second, seeds) == expected
    assert set(first.id_array().tolist()) == set(fresh(store, monkeypatch).ids)
