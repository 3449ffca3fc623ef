"""Baselines, diffs and as-of over the journal on both stores (9.1): the export as of a point
equals the export taken then; diffs say what changed, attribute by attribute, and who."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import NotFound, ValidationFailed
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore, utc_now
from servicegraph.processes import interchange
from servicegraph.processes.access import Actor, create_token
from servicegraph.processes.audit.timetravel import (
    ci_as_of,
    create_baseline,
    export_as_of,
    list_baselines,
    show_baseline,
)
from tests.test_cli import run
from tests.test_graphql import gql

EDITOR = Actor("erin", "cmdb_editor")


def first_state(store: GraphStore) -> None:
    store.upsert(
        [CI("host-1", "host", "h1", {"os": "ESXi 8"}), CI("host-2", "host", "h2"),
         CI("vm-1", "vm", "v1", {"cpu_cores": 2}), CI("vm-2", "vm", "v2"),
         CI("app-1", "application_instance", "a1")],
        [Relationship("vm-1", "HOSTED_ON", "host-1"), Relationship("vm-2", "HOSTED_ON", "host-1"),
         Relationship("app-1", "RUNS_ON", "vm-1")],
        actor="alice",
    )  # fmt: skip


def later_changes(store: GraphStore) -> None:
    store.upsert([CI("vm-1", "vm", "v1 renamed", {"cpu_cores": 8})], actor="bob")
    store.upsert([CI("host-3", "host", "h3")], [Relationship("vm-2", "HOSTED_ON", "host-3")],
                 actor="bob")  # fmt: skip
    store.delete_relationships([("vm-2", "HOSTED_ON", "host-1")], actor="carol")
    store.retire(["host-2"], actor="carol")
    store.delete(["app-1"], actor="carol")


def test_the_export_as_of_a_point_equals_the_export_taken_then(store: GraphStore) -> None:
    first_state(store)
    taken = interchange.snapshot(store)
    seq = store.head_seq()
    time.sleep(0.01)
    stamp = utc_now()
    time.sleep(0.01)
    later_changes(store)
    assert interchange.snapshot(store) != taken
    assert export_as_of(store, seq) == taken
    assert export_as_of(store, stamp) == taken  # by time: the last entry at or before it
    assert export_as_of(store, store.head_seq()) == interchange.snapshot(store)
    past = ci_as_of(store, "vm-1", seq)
    assert past["ci"].name == "v1" and past["ci"].attributes == {"cpu_cores": 2}
    assert {(r.source, r.type, r.target) for r in past["relationships"]} == {
        ("vm-1", "HOSTED_ON", "host-1"), ("app-1", "RUNS_ON", "vm-1")}  # fmt: skip
    with pytest.raises(NotFound):
        ci_as_of(store, "host-3", seq)  # it did not exist yet
    sg = ServiceGraph(store)
    with sg.as_of(seq) as then:
        assert then.impact(["host-1"]).total_impacted == 3  # vm-1, vm-2, app-1
    assert sg.impact(["host-1"]).total_impacted == 1  # vm-1 only: vm-2 moved, app-1 gone


def test_diff_says_what_changed_attribute_by_attribute_and_who(store: GraphStore) -> None:
    first_state(store)
    seq = store.head_seq()
    later_changes(store)
    d = ServiceGraph(store).diff(seq)
    cis = {k: {c["id"]: c for c in v} for k, v in d["cis"].items()}
    assert set(cis["created"]) == {"host-3"} and set(cis["deleted"]) == {"app-1"}
    assert set(cis["retired"]) == {"host-2"} and set(cis["updated"]) == {"vm-1"}
    changes = {c["attribute"]: (c["before"], c["after"]) for c in cis["updated"]["vm-1"]["changes"]}
    assert changes == {"name": ("v1", "v1 renamed"), "attributes.cpu_cores": (2, 8)}
    assert cis["updated"]["vm-1"]["by"][0]["actor"] == "bob"
    assert cis["retired"]["host-2"]["by"][0]["actor"] == "carol"
    added = {(r["source"], r["target"]) for r in d["relationships"]["added"]}
    removed = {(r["source"], r["target"]) for r in d["relationships"]["removed"]}
    assert added == {("vm-2", "host-3")}
    assert removed == {("vm-2", "host-1"), ("app-1", "vm-1")}
    with pytest.raises(ValidationFailed, match="swap"):
        ServiceGraph(store).diff(store.head_seq(), seq)
    with pytest.raises(ValidationFailed, match="journal seq between"):
        ServiceGraph(store).diff(10**9)


def test_baselines_of_ids_classes_and_services(store: GraphStore) -> None:
    first_state(store)
    sg = ServiceGraph(store)
    by_service_like = create_baseline(store, sg.engine, "bl-vm1", "vm-1 stack", EDITOR,
                                      ids=["vm-1", "host-1"])  # fmt: skip
    hosts = create_baseline(store, sg.engine, "bl-hosts", "hosts", EDITOR, cls="host")
    assert hosts.attributes["ci_ids"] == ["host-1", "host-2"]
    with pytest.raises(ValidationFailed, match="exactly one"):
        create_baseline(store, sg.engine, "bl-x", "x", EDITOR)
    later_changes(store)
    shown = show_baseline(store, "bl-vm1")
    assert {c["id"] for c in shown["cis"]} == {"vm-1", "host-1"}
    assert next(c for c in shown["cis"] if c["id"] == "vm-1")["name"] == "v1"
    drift = shown["drift"]
    assert [c["id"] for c in drift["cis"]["updated"]] == ["vm-1"] and drift["members"] == 2
    assert not drift["cis"]["created"]  # host-3 is not a member
    since = sg.diff("bl-hosts")  # from a baseline: its CIs only
    assert [c["id"] for c in since["cis"]["retired"]] == ["host-2"] and not since["cis"]["updated"]
    assert {b["id"] for b in list_baselines(store)} == {"bl-vm1", "bl-hosts"}
    assert by_service_like.attributes["selector"] == {"ids": 2}


def test_as_of_from_the_cli_and_graphql(sqlite_store: GraphStore, tmp_path: Path) -> None:
    first_state(sqlite_store)
    seq = sqlite_store.head_seq()
    later_changes(sqlite_store)
    db = str(sqlite_store.path)  # type: ignore[attr-defined]
    shown = run("show", "vm-1", "--as-of", str(seq), "--json", "--db", db)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ci"]["name"] == "v1"
    path = tmp_path / "then.json"
    assert run("export", str(path), "--as-of", str(seq), "--db", db).returncode == 0
    assert json.loads(path.read_text()) == export_as_of(sqlite_store, seq)
    impact = run("impact", "host-1", "--as-of", str(seq), "--format", "json", "--db", db)
    assert {r["id"] for r in json.loads(impact.stdout)["impacted"]} == {"vm-1", "vm-2", "app-1"}
    diff = run("diff", "--from", str(seq), "--format", "json", "--db", db)
    assert json.loads(diff.stdout)["counts"]["cis_retired"] == 1
    assert run("diff", "--from", "not-a-point", "--db", db).returncode == 4
    token = create_token(sqlite_store, "auditor", "viewer")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        body = gql(client, """query($p: String!) {
            ci(id: "vm-1", asOf: $p) { name attributes relationships { type target { id } } }
            impact(ciIds: ["host-1"], asOf: $p) { totalImpacted impacted { ci { id name } } }
            diff(from: $p) { fromSeq cis { kind id changes { attribute before after } by { actor } }
                             relationships { kind source target } }
            few: diff(from: $p, first: 1) { counts { cisRetired cisDeleted } cis { id } } }""",
                   token, p=str(seq))["data"]  # fmt: skip
    assert body["ci"]["name"] == "v1" and body["ci"]["attributes"] == {"cpu_cores": 2}
    assert body["impact"]["totalImpacted"] == 3
    assert {c["ci"]["id"] for c in body["impact"]["impacted"]} == {"vm-1", "vm-2", "app-1"}
    kinds = {(c["kind"], c["id"]) for c in body["diff"]["cis"]}
    assert ("retired", "host-2") in kinds and ("deleted", "app-1") in kinds
    assert body["few"]["counts"] == {"cisRetired": 1, "cisDeleted": 1}  # totals, and
    assert len(body["few"]["cis"]) == 1  # the first `first` of them
