"""The GraphStore contract: every test runs on the embedded SQLite store and on a real Neo4j."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from servicegraph.errors import StaleVersion, ValidationFailed
from servicegraph.graph import sqlite_store as sqlite_module
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Batch, Relationship, dump_json
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import MAX_PAGE_SIZE, GraphStore


def _small(store: GraphStore) -> None:
    store.upsert(
        [
            CI(
                "host-1",
                "host",
                "Host 1",
                {"cpu_cores": 64, "memory_gb": 512.5, "tags": ["rack-a"]},
            ),
            CI("vm-1", "vm", "VM 1", {"status": "active", "criticality": 3}),
            CI("vm-2", "vm", "VM 2"),
            CI("app-1", "application_instance", "App 1", {"port": 8443}),
        ],
        [
            Relationship("vm-1", "HOSTED_ON", "host-1"),
            Relationship("vm-2", "HOSTED_ON", "host-1"),
            Relationship("app-1", "RUNS_ON", "vm-1"),
        ],
        actor="alice",
    )


def test_upsert_then_read_back_every_attribute_type(store: GraphStore) -> None:
    attrs = {
        "cpu_cores": 8,
        "memory_gb": 16.0,
        "tags": ["a", "b"],
        "status": "active",
        "last_seen": "2026-11-01T10:00:00Z",
        "description": "ünïcode ✓",
    }
    result = store.upsert([CI("h", "host", "H", attrs)])
    assert (result.created, result.first_seq, result.last_seq) == (1, 1, 1)
    got = store.get_ci("h")
    assert got == CI("h", "host", "H", attrs, 1)
    assert isinstance(got.attributes["memory_gb"], float)
    assert store.get_ci("missing") is None


def test_labels_give_class_and_name_of_the_known_ids_only(store: GraphStore) -> None:
    _small(store)
    store.upsert([CI("vm-1", "vm", "VM one, renamed", {"status": "active", "criticality": 3})])
    assert store.labels(["vm-1", "app-1", "missing", "vm-1"]) == {
        "vm-1": ("vm", "VM one, renamed"),
        "app-1": ("application_instance", "App 1"),
    }
    assert store.labels([]) == {}


def test_writing_the_same_content_again_changes_and_journals_nothing(store: GraphStore) -> None:
    _small(store)
    head = store.head_seq()
    result = store.upsert([CI("vm-2", "vm", "VM 2")], [Relationship("vm-2", "HOSTED_ON", "host-1")])
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert store.head_seq() == head
    assert store.get_ci("vm-2").version == 1


def test_update_bumps_version_and_journals_before_and_after(store: GraphStore) -> None:
    _small(store)
    store.upsert([CI("vm-1", "vm", "VM 1 renamed", {"criticality": 5})], actor="bob")
    ci = store.get_ci("vm-1")
    assert ci.version == 2 and ci.name == "VM 1 renamed"
    assert ci.attributes == {"status": "active", "criticality": 5}  # updates merge
    history = store.journal(entity="vm-1")
    assert [e.op for e in history] == ["create_ci", "update_ci"]
    assert [e.actor for e in history] == ["alice", "bob"]
    assert history[1].before["attributes"] == {"status": "active", "criticality": 3}
    assert history[1].after["attributes"] == {"status": "active", "criticality": 5}
    assert history[1].after["version"] == 2


def test_a_stale_version_is_rejected_and_nothing_is_written(store: GraphStore) -> None:
    _small(store)
    store.upsert([CI("vm-1", "vm", "VM 1", {"criticality": 4}, version=1)])
    head = store.head_seq()
    with pytest.raises(StaleVersion) as info:
        store.upsert(
            [CI("vm-2", "vm", "VM 2 new"), CI("vm-1", "vm", "VM 1", {"criticality": 1}, version=1)]
        )
    assert (info.value.expected, info.value.actual) == (1, 2)
    assert store.head_seq() == head
    assert store.get_ci("vm-2").name == "VM 2"  # the other CI of the batch was not written either
    with pytest.raises(StaleVersion):  # version 0 means "must not exist yet"
        store.upsert([CI("vm-1", "vm", "again", version=0)])


def test_concurrent_writers_of_the_same_version_one_wins(store: GraphStore) -> None:
    _small(store)
    outcomes: list[str] = []

    def write(name: str) -> None:
        try:
            store.upsert([CI("vm-1", "vm", name, version=1)])
            outcomes.append("ok")
        except StaleVersion:
            outcomes.append("stale")

    threads = [threading.Thread(target=write, args=(f"writer {i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "stale", "stale", "stale"]
    assert store.get_ci("vm-1").version == 2
    assert len(store.journal(entity="vm-1")) == 2


def test_an_invalid_batch_writes_nothing_and_lists_every_problem(store: GraphStore) -> None:
    batch = Batch()
    batch.add_ci(CI("vm-1", "vm", "VM 1"))
    batch.add_ci(CI("x", "spaceship", "X"))
    batch.add_relationship(Relationship("vm-1", "HOSTED_ON", "host-404"))
    with pytest.raises(ValidationFailed) as info:
        store.write(batch)
    fields = {(p.location, p.field) for p in info.value.problems}
    assert fields == {("cis[1]", "class"), ("relationships[0]", "target")}
    assert store.counts() == {"relationships": 0}
    assert store.head_seq() == 0


def test_a_batch_interrupted_while_writing_leaves_no_data_and_no_journal(store: GraphStore) -> None:
    _small(store)
    head, counts = store.head_seq(), store.counts()

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # as if the process were stopped after the first chunk

    cis = [CI(f"vm-x{i}", "vm", f"VM {i}") for i in range(50)]
    rels = [Relationship(f"vm-x{i}", "HOSTED_ON", "host-1") for i in range(50)]
    with pytest.raises(KeyboardInterrupt):
        store.write(
            Batch(cis=cis, relationships=rels, ci_where=[""] * 50, rel_where=[""] * 50),
            progress=interrupt,
        )
    assert store.head_seq() == head
    assert store.counts() == counts
    assert store.get_ci("vm-x0") is None


def test_relationships_must_be_allowed_between_the_classes(store: GraphStore) -> None:
    _small(store)
    with pytest.raises(ValidationFailed) as info:
        store.upsert(relationships=[Relationship("host-1", "HOSTED_ON", "vm-1")])
    (problem,) = info.value.problems
    assert problem.field == "type" and "may not go from host to vm" in problem.reason


def test_a_ci_cannot_change_class(store: GraphStore) -> None:
    _small(store)
    with pytest.raises(ValidationFailed, match="cannot change class"):
        store.upsert([CI("vm-1", "host", "VM 1")])


def test_find_by_class_and_attribute_with_cursor_pagination(store: GraphStore) -> None:
    _small(store)
    store.upsert(
        [CI(f"vm-{i:02d}", "vm", f"VM {i}", {"cpu_cores": i % 2 + 1}) for i in range(10, 25)]
    )
    seen, after = [], None
    while True:
        page = store.find_cis(classes=["vm"], first=4, after=after)
        seen += [ci.id for ci in page.items]
        if not page.has_next:
            break
        after = page.end_cursor
    assert seen == sorted(["vm-1", "vm-2", *[f"vm-{i:02d}" for i in range(10, 25)]])
    twos = store.find_cis(classes=["vm", "host"], attributes={"cpu_cores": 2}, first=100)
    assert [c.id for c in twos.items] == [f"vm-{i:02d}" for i in range(11, 25, 2)]
    assert not twos.has_next
    with pytest.raises(ValidationFailed, match="first"):
        store.find_cis(first=MAX_PAGE_SIZE + 1)
    with pytest.raises(ValidationFailed, match="cursor"):
        store.find_cis(after="not-a-cursor!")


def test_find_relationships_by_endpoint_and_type_with_pagination(store: GraphStore) -> None:
    _small(store)
    into_host = store.find_relationships(target="host-1", first=1)
    assert [r.source for r in into_host.items] == ["vm-1"] and into_host.has_next
    rest = store.find_relationships(target="host-1", first=10, after=into_host.end_cursor)
    assert [r.source for r in rest.items] == ["vm-2"] and not rest.has_next
    runs = store.find_relationships(types=["RUNS_ON"])
    assert [r.key for r in runs.items] == [("app-1", "RUNS_ON", "vm-1")]
    assert {r.key for r in store.relationships_of(["vm-1"])} == {
        ("vm-1", "HOSTED_ON", "host-1"),
        ("app-1", "RUNS_ON", "vm-1"),
    }


def test_retire_keeps_the_ci_and_marks_it(store: GraphStore) -> None:
    _small(store)
    result = store.retire(["vm-2"], actor="carol")
    assert result.updated == 1
    ci = store.get_ci("vm-2")
    assert ci.status == "retired" and ci.version == 2
    assert store.journal(entity="vm-2")[-1].op == "retire_ci"
    assert store.retire(["vm-2"]).unchanged == 1
    with pytest.raises(ValidationFailed, match="no CI 'nope'"):
        store.retire(["nope"])


def test_delete_removes_the_ci_and_its_relationships_and_journals_each(store: GraphStore) -> None:
    _small(store)
    result = store.delete(["vm-1"], actor="dave")
    assert result.deleted == 3  # the CI, its HOSTED_ON and the RUNS_ON into it
    assert store.get_ci("vm-1") is None
    assert store.counts()["relationships"] == 1
    ops = [(e.op, e.entity) for e in store.journal(since=result.first_seq - 1)]
    assert ops == [
        ("delete_relationship", "app-1 -[RUNS_ON]-> vm-1"),
        ("delete_relationship", "vm-1 -[HOSTED_ON]-> host-1"),
        ("delete_ci", "vm-1"),
    ]
    store.delete_relationships([("vm-2", "HOSTED_ON", "host-1")])
    assert store.counts()["relationships"] == 0


def test_journal_since_and_limit(store: GraphStore) -> None:
    _small(store)
    entries = store.journal()
    assert [e.seq for e in entries] == list(range(1, 8))
    assert [e.seq for e in store.journal(since=5)] == [6, 7]
    assert [e.seq for e in store.journal(since=2, limit=2)] == [3, 4]
    assert all(e.at.endswith("Z") for e in entries)


def test_iterating_everything_is_ordered(store: GraphStore) -> None:
    _small(store)
    assert [c.id for c in store.iter_cis(chunk=2)] == ["app-1", "host-1", "vm-1", "vm-2"]
    assert [r.key for r in store.iter_relationships(chunk=2)] == [
        ("app-1", "RUNS_ON", "vm-1"),
        ("vm-1", "HOSTED_ON", "host-1"),
        ("vm-2", "HOSTED_ON", "host-1"),
    ]


def test_json_attributes_round_trip(store: GraphStore) -> None:
    snapshot = {"impact": {"impacted": [{"id": "vm-1", "path": ["h", "vm-1"]}]}, "score": 12.5}
    store.upsert([CI("rfc-1", "change", "RFC", {"state": "draft", "assessment": snapshot})])
    assert store.get_ci("rfc-1").attributes["assessment"] == snapshot
    assert store.journal(entity="rfc-1")[0].after["attributes"]["assessment"] == snapshot
    with pytest.raises(ValidationFailed, match="assessment"):
        store.upsert([CI("rfc-2", "change", "RFC", {"assessment": None})], replace=True)


def test_tokens_are_stored_as_hashes_and_journaled(store: GraphStore) -> None:
    from servicegraph.processes.access import authenticate, create_token

    token = create_token(store, "dana", "change_manager", actor="admin-user")
    actor = authenticate(store, f"Bearer {token}")
    assert (actor.user, actor.role) == ("dana", "change_manager")
    (record,) = store.list_tokens()
    assert (record.user, record.role, record.revoked_at) == ("dana", "change_manager", None)
    entry = store.journal(entity=f"token:{record.id}")[0]
    assert entry.op == "create_token" and entry.actor == "admin-user"
    assert entry.after is not None and entry.after["user"] == "dana"
    assert token not in str(entry.to_dict())
    assert store.find_token(token) is None  # only the hash is stored


def test_updates_merge_null_removes_and_replace_replaces(store: GraphStore) -> None:
    store.upsert([CI("vm-1", "vm", "VM", {"os": "RHEL 9", "environment": "production",
                                            "cpu_cores": 4})])  # fmt: skip
    store.upsert([CI("vm-1", "vm", "VM", {"cpu_cores": 16})], actor="partial")
    assert store.get_ci("vm-1").attributes == {
        "os": "RHEL 9", "environment": "production", "cpu_cores": 16,
    }  # fmt: skip
    store.upsert([CI("vm-1", "vm", "VM", {"os": None})], actor="remover")
    assert store.get_ci("vm-1").attributes == {"environment": "production", "cpu_cores": 16}
    entry = store.journal(entity="vm-1")[-1]
    assert entry.before["attributes"]["os"] == "RHEL 9" and "os" not in entry.after["attributes"]
    store.upsert([CI("vm-1", "vm", "VM", {"cpu_cores": 2})], replace=True)
    assert store.get_ci("vm-1").attributes == {"cpu_cores": 2}
    with pytest.raises(ValidationFailed, match="null removes an attribute only"):
        store.upsert([CI("vm-1", "vm", "VM", {"os": None})], replace=True)
    head = store.head_seq()
    store.upsert([CI("vm-1", "vm", "VM", {})])  # nothing given: nothing changes
    assert store.head_seq() == head


def test_search_sort_and_count(store: GraphStore) -> None:
    store.upsert(
        [
            CI("vm-a1", "vm", "Payments DB primary"),
            CI("vm-b2", "vm", "payments web"),
            CI("host-PAY", "host", "Hypervisor 7"),
            CI("vm-c3", "vm", "Ledger"),
        ]
    )
    found = store.find_cis(text="PAYM")
    assert [c.id for c in found.items] == ["vm-a1", "vm-b2"]  # case-insensitive, name
    assert [c.id for c in store.find_cis(text="pay").items] == ["host-PAY", "vm-a1", "vm-b2"]
    assert [c.id for c in store.find_cis(text="y").items] == ["host-PAY", "vm-a1", "vm-b2"]
    assert store.count_cis(text="pay") == 3 and store.count_cis(classes=["vm"]) == 3
    assert store.count_cis(classes=["vm"], text="pay") == 2
    by_name = store.find_cis(sort="name", first=2)
    assert [c.name for c in by_name.items] == ["Hypervisor 7", "Ledger"]
    rest = store.find_cis(sort="name", first=2, after=by_name.end_cursor)
    assert [c.name for c in rest.items] == ["Payments DB primary", "payments web"]
    assert not rest.has_next
    down = store.find_cis(sort="id", descending=True, first=3)
    assert [c.id for c in down.items] == ["vm-c3", "vm-b2", "vm-a1"]
    more = store.find_cis(sort="id", descending=True, first=3, after=down.end_cursor)
    assert [c.id for c in more.items] == ["host-PAY"]
    with pytest.raises(ValidationFailed, match="another ordering"):
        store.find_cis(sort="class", after=by_name.end_cursor)
    store.upsert([CI("vm-c3", "vm", "Payments ledger")])  # renames are searchable at once
    assert store.count_cis(text="ledger") == 1 and store.count_cis(text="payments l") == 1
    store.delete(["vm-b2"])
    assert store.count_cis(text="pay") == 3


def test_a_large_write_rebuilds_the_search_index_and_search_finds_what_it_wrote(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write of many CIs drops the search triggers in its transaction and rebuilds the index
    once: what it wrote is found, and a write that fails half-way leaves triggers and index as
    they were."""
    monkeypatch.setattr(sqlite_module, "_REBUILD_SEARCH_AT", 50)
    store = sqlite_store
    store.upsert([CI("host-1", "host", "Hypervisor")])
    batch = Batch()
    for i in range(60):
        batch.add_ci(CI(f"vm-{i:02}", "vm", f"Payments node {i}"))
    store.write(batch)
    assert store.count_cis(text="paym") == 60 and store.count_cis(text="hyperv") == 1
    again = Batch(delete_cis=[f"vm-{i:02}" for i in range(50, 60)])
    for i in range(40):
        again.add_ci(CI(f"vm-{i:02}", "vm", f"Ledger node {i}"))
    store.write(again)
    assert (store.count_cis(text="ledger"), store.count_cis(text="paym")) == (40, 10)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    failing = Batch()
    for i in range(60):
        failing.add_ci(CI(f"db-{i:02}", "database", f"Orders {i}"))
    with pytest.raises(KeyboardInterrupt):
        store.write(failing, progress=interrupt)
    assert store.count_cis(text="orders") == 0 and store.get_ci("db-00") is None
    store.upsert([CI("vm-00", "vm", "Renamed alone")])  # row by row again: the triggers are back
    assert store.count_cis(text="renamed alone") == 1 and store.count_cis(text="ledger") == 39
    with sqlite3.connect(store.path) as db:
        db.execute("INSERT INTO cis_search(cis_search) VALUES ('integrity-check')")


def test_a_write_that_doubles_the_journal_rebuilds_the_secondary_indexes(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write at least as large as the journal before it builds the secondary indexes (the
    journal's by entity, CIs' by class and name, relationships' by target) once at its end
    instead of row by row: they are all there after it (and each CI's history reads through
    its index), and a write that fails half-way leaves them as they were."""
    monkeypatch.setattr(sqlite_module, "_REBUILD_SEARCH_AT", 50)
    store = sqlite_store

    def indexed() -> list[str]:
        with sqlite3.connect(store.path) as db:
            plan = db.execute(
                "EXPLAIN QUERY PLAN SELECT seq FROM journal WHERE entity = ?", ("vm-07",)
            ).fetchall()
        return [row[-1] for row in plan]

    def indexes() -> list[tuple[str, str]]:
        with sqlite3.connect(store.path) as db:
            return db.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                "ORDER BY name"
            ).fetchall()

    created = indexes()
    assert {name for name, _ in created} >= {
        "cis_class", "cis_name", "relationships_target", "journal_entity"
    }  # fmt: skip
    store.upsert([CI("host-1", "host", "Hypervisor")])
    batch = Batch()
    for i in range(60):
        batch.add_ci(CI(f"vm-{i:02}", "vm", f"Payments node {i}"))
    for i in range(60):
        batch.add_relationship(Relationship(f"vm-{i:02}", "HOSTED_ON", "host-1"))
    store.write(batch)
    assert indexes() == created
    assert any("journal_entity" in step for step in indexed())
    assert [e.entity for e in store.journal(entity="vm-07")] == ["vm-07"]

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    failing = Batch()
    for i in range(130):  # more entries than the journal holds (121): a rebuild, rolled back
        failing.add_ci(CI(f"db-{i:02}", "database", f"Orders {i}"))
    with pytest.raises(KeyboardInterrupt):
        store.write(failing, progress=interrupt)
    assert indexes() == created
    assert any("journal_entity" in step for step in indexed())
    assert store.head_seq() == 121 and store.get_ci("db-00") is None
    store.upsert([CI("vm-07", "vm", "Renamed")])
    assert [e.seq for e in store.journal(entity="vm-07")] == [9, 122]


def test_attribute_columns_read_paths_alike_on_both_stores(store: GraphStore) -> None:
    snapshot = {"level": "minor", "services": [{"id": "s1", "ok": True}, {"id": "s2"}],
                "targets": {"response_minutes": 30}, "flags": [True, False]}  # fmt: skip
    store.upsert([
        CI("inc-2", "incident", "two", {"state": "new", "major": True, "impact": snapshot,
                                        "priority": 2, "on_hold_minutes": 1.5}),
        CI("inc-1", "incident", "one", {"state": "closed", "major": False}),
        CI("vm-1", "vm", "not an incident", {"os": "linux"}),
    ])  # fmt: skip
    got = store.attribute_columns(
        "incident",
        ["state", "major", "priority", "on_hold_minutes", "impact.targets.response_minutes",
         "impact.services[].id", "impact.services[].ok", "impact.flags", "impact", "nothing"],
    )  # fmt: skip
    assert got.ids == ["inc-1", "inc-2"] and got.names == ["one", "two"]
    c = got.columns
    assert c["state"] == ["closed", "new"] and c["major"] == [False, True]
    assert c["priority"] == [None, 2] and c["on_hold_minutes"] == [None, 1.5]
    assert c["impact.targets.response_minutes"] == [None, 30]
    assert c["impact.services[].id"] == [None, ["s1", "s2"]]
    assert c["impact.services[].ok"] == [None, [True, None]]
    assert c["impact.flags"] == [None, [True, False]] and c["impact"] == [None, snapshot]
    assert c["nothing"] == [None, None]
    with pytest.raises(ValidationFailed):
        store.attribute_columns("incident", ["state'); DROP TABLE cis; --"])


def test_sqlite_stores_text_exactly_as_written(sqlite_store: SqliteStore) -> None:
    """Rows reach SQLite as one JSON array a statement (``json_each``): names, attribute texts
    and journal entries come back character for character — quotes, backslashes, escapes that
    look like JSON, tabs and line breaks, accents, emoji — and the stored text is the same
    compact JSON a row-by-row insert stored."""
    tricky = 'a "quoted" \\ back\\slash \\u0041 \\n not a newline\tTab\nline 2 é 𝄞 🙂 {"x": [1]}'
    name = 'Payments "blue" \\ 𝄞 é'
    batch = Batch()
    batch.add_ci(CI("host-1", "host", name, {"rack": tricky, "status": "active"}))
    batch.add_ci(CI("vm-1", "vm", "vm one", {"hypervisor": "kvm"}))
    batch.add_relationship(Relationship("vm-1", "HOSTED_ON", "host-1"))
    reason = 'for "RFC-7" \\ \\u0041 é 🙂'
    sqlite_store.write(batch, "tester", reason=reason)
    host = sqlite_store.get_ci("host-1")
    assert host is not None and host.name == name and host.attributes["rack"] == tricky
    entries = sqlite_store.journal(entity="host-1")
    assert entries[0].after == host.to_dict() and entries[0].reason == reason
    with sqlite3.connect(sqlite_store.path) as db:
        stored = db.execute("SELECT attributes FROM cis WHERE id = 'host-1'").fetchone()[0]
        after = db.execute("SELECT after FROM journal WHERE entity = 'host-1'").fetchone()[0]
    assert stored == dump_json({"rack": tricky, "status": "active"})
    assert after == dump_json(host.to_dict())


def test_sqlite_journals_created_records_as_python_does(tmp_path: Path, model: Model) -> None:
    """The journal entries of created CIs and relationships, made by SQLite from the rows it
    writes, are byte for byte those the entries made in Python hold (this SQLite is checked for
    it when a store opens; elsewhere Python makes them): texts that escape differently from one
    JSON writer to another, in names, ids and attributes; then a write that updates some CIs and
    creates others and relationships (updates journaled from Python, between the others)."""
    texts = ['q"uote \\ back\\slash /', "tab\there\nline \x7f", "é 漢字 😀 \u2028"]
    first, second = Batch(), Batch()
    for i, text in enumerate(texts):
        name = "".join(c for c in text if c.isprintable())  # names hold no control characters
        first.add_ci(CI(f"host-{i}", "host", name, {"rack": text, "status": "active"}))
        first.add_ci(CI(f"vm-{i}", "vm", f"vm {name}", {"hypervisor": text}))
        first.add_relationship(Relationship(f"vm-{i}", "HOSTED_ON", f"host-{i}"))
        second.add_ci(CI(f"host-{i}", "host", f"{name} renamed", {"rack": text}))
        second.add_ci(CI(f"vm-new-{i}", "vm", name, {"hypervisor": text}))
        second.add_relationship(Relationship(f"vm-new-{i}", "HOSTED_ON", f"host-{i}"))
    journals = []
    for in_sql in (True, False):
        with SqliteStore(tmp_path / f"{in_sql}.db", model) as store:
            assert store._created_in_sql, "this SQLite writes JSON text unlike dump_json"
            store._created_in_sql = in_sql
            store.write(first, "tester", reason='for "RFC-7" é')
            store.write(second, "tester")
            with sqlite3.connect(store.path) as db:
                journals.append(
                    db.execute(
                        "SELECT seq, actor, op, entity, before, after, reason FROM journal "
                        "ORDER BY seq"
                    ).fetchall()
                )
    made_in_sql, made_in_python = journals
    assert made_in_sql == made_in_python
    assert [op for _, _, op, *_ in made_in_sql].count("update_ci") == len(texts)
    assert len(made_in_sql) == 6 * len(texts)  # 3 entries a text in each write
