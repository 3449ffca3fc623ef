"""Identification and reconciliation of discovery feeds, history journaled at its dates, and
health over time (9.1), on both stores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import ValidationFailed
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import create_token
from servicegraph.processes.times import iso
from tests.test_cli import run
from tests.test_graphql import codes, gql


def cmdb(store: GraphStore) -> None:
    store.upsert(
        [
            CI("host-a", "host", "esx-a", {"serial_number": "SN1", "os": "ESXi 8"}),
            CI("host-b", "host", "esx-b", {"serial_number": "SN2", "os": "ESXi 8",
                                           "source": "vcenter"}),
            CI("vm-a", "vm", "app-a", {"fqdn": "a.example", "ip_address": "10.0.0.1"}),
            CI("vm-b", "vm", "app-b", {"fqdn": "b.example"}),
            CI("vm-c", "vm", "app-c", {"ip_address": "10.0.0.3"}),
            CI("vm-d", "vm", "twin", {"ip_address": "10.0.0.9"}),
            CI("vm-e", "vm", "twin", {"ip_address": "10.0.0.9"}),
        ],
    )  # fmt: skip


FEED = {"records": [
    {"id": "d1", "class": "host", "name": "esx-a-renamed", "attributes": {"serial_number": "SN1"}},
    {"id": "d2", "class": "host", "name": "esx-b", "attributes": {"serial_number": "SN2",
                                                                 "os": "ESXi 9"}},
    {"id": "d3", "class": "vm", "name": "app-a", "attributes": {"fqdn": "a.example",
                                                              "ip_address": "10.9.9.9"}},
    {"id": "d4", "class": "vm", "name": "app-c", "attributes": {"ip_address": "10.0.0.3"}},
    {"id": "d5", "class": "vm", "name": "twin", "attributes": {"ip_address": "10.0.0.9"}},
    {"id": "d6", "class": "host", "name": "esx-new", "attributes": {"serial_number": "SN7"}},
]}  # fmt: skip


def test_identification_by_rules_not_ids(store: GraphStore) -> None:
    cmdb(store)
    sg = ServiceGraph(store)
    seq = store.head_seq()
    report = sg.reconcile(FEED, "discovery")
    assert store.head_seq() == seq  # a dry run writes nothing
    assert {(m["feed_id"], m["ci"]) for m in report["matched"]} == {
        ("d1", "host-a"), ("d2", "host-b"), ("d3", "vm-a"), ("d4", "vm-c")}  # fmt: skip
    assert next(m for m in report["matched"] if m["feed_id"] == "d4")["rule"] == (
        "compute: ip_address + name"  # no fqdn: the second rule
    )
    assert report["ambiguous"] == [{"feed_id": "d5", "rule": "compute: ip_address + name",
                                    "cis": ["vm-d", "vm-e"]}]  # fmt: skip
    assert report["new"] == ["d6"]
    assert report["missing"] == ["vm-b", "vm-d", "vm-e"]
    drift = {(d["ci"], d["attribute"]): (d["cmdb"], d["discovered"]) for d in report["drift"]}
    assert drift == {("host-a", "name"): ("esx-a", "esx-a-renamed"),
                     ("host-b", "os"): ("ESXi 8", "ESXi 9"),
                     ("vm-a", "ip_address"): ("10.0.0.1", "10.9.9.9")}  # fmt: skip


def test_apply_writes_what_the_rules_allow_in_one_transaction(store: GraphStore) -> None:
    cmdb(store)
    sg = ServiceGraph(store)
    seq = store.head_seq()
    applied = sg.reconcile(FEED, "discovery", apply=True)["applied"]
    # discovery owns compute names and addresses; host-b's os was set by vcenter (higher priority)
    assert {(u["ci"], u["attribute"]) for u in applied["updated"]} == {
        ("host-a", "name"), ("vm-a", "ip_address")}  # fmt: skip
    assert applied["kept"] == [{"ci": "host-b", "attribute": "os", "by": "vcenter"}]
    assert applied["created"] == [{"feed_id": "d6", "ci": "discovery-d6"}]
    entries = store.journal(since=seq)
    assert {e.actor for e in entries} == {"discovery"}
    assert len({e.at for e in entries}) == 1  # one transaction
    assert store.get_ci("vm-a").attributes["source"] == "discovery"
    assert store.get_ci("host-b").attributes["source"] == "vcenter"
    assert store.get_ci("vm-a").attributes["last_seen"]
    # what it may not create, and an id already taken, are said, not silently dropped
    again = sg.reconcile({"records": [
        {"id": "D6", "class": "host", "name": "other", "attributes": {"serial_number": "SN8"}},
        {"id": "db1", "class": "database_instance", "name": "orders-db"}]}, "discovery",
        apply=True)["applied"]  # fmt: skip
    assert again["created"] == []
    assert {s["feed_id"]: s["why"] for s in again["not_created"]} == {
        "D6": "the id discovery-d6 is taken",
        "db1": "discovery may not create a database_instance (reconciliation.discovery.create)"}  # fmt: skip
    with pytest.raises(ValidationFailed, match="known sources"):
        sg.reconcile(FEED, "spreadsheet")
    with pytest.raises(ValidationFailed) as bad:
        sg.reconcile({"records": [{"id": "x", "class": "spaceship"}, 5]}, "discovery")
    assert {p.field for p in bad.value.problems} == {"class", "record"}


def one(ci: CI) -> Batch:
    batch = Batch()
    batch.add_ci(ci)
    return batch


def test_history_is_journaled_at_its_dates_and_health_follows_it(store: GraphStore) -> None:
    now = dt.datetime.now(dt.UTC)
    year_ago, half = now - dt.timedelta(days=365), now - dt.timedelta(days=180)
    first = one(CI("vm-1", "vm", "v1", {"environment": "production", "last_seen": iso(year_ago)}))
    first.add_ci(CI("host-1", "host", "h1"))
    first.add_relationship(Relationship("vm-1", "HOSTED_ON", "host-1"))
    store.write(first, "import", at=iso(year_ago))
    store.write(one(CI("vm-1", "vm", "v1", {"support_group": "ops", "owner": "o"})),
                "cmdb.team", at=iso(half))  # fmt: skip
    with pytest.raises(ValidationFailed, match="time order"):
        store.write(one(CI("vm-2", "vm", "v2")), "late", at=iso(year_ago))
    with pytest.raises(ValidationFailed, match="future"):
        store.write(one(CI("vm-2", "vm", "v2")), "seer", at=iso(now + dt.timedelta(days=9)))
    sg = ServiceGraph(store)
    points = [iso(year_ago + dt.timedelta(days=1)), iso(now)]
    trend = sg.health_trend(points)
    assert list(trend["compliance"]) == [0.0, 100.0]
    assert trend["completeness"].iloc[0] < trend["completeness"].iloc[1]
    # each point is judged at its own time: vm-1 seen a day before the first, stale by now
    assert list(trend["correctness"]) == [100.0, 50.0]
    backwards = sg.health_trend(points[::-1])  # rows in the order asked, from one replay
    assert list(backwards["point"]) == points[::-1]
    assert list(backwards["score"]) == list(trend["score"])[::-1]


def test_reconcile_from_the_cli(tmp_path: Path, sqlite_store: GraphStore) -> None:
    cmdb(sqlite_store)
    feed = tmp_path / "feed.json"
    feed.write_text(json.dumps(FEED))
    db = str(sqlite_store.path)  # type: ignore[attr-defined]
    dry = run("reconcile", str(feed), "--source", "discovery", "--format", "json", "--db", db)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["counts"]["matched"] == 4 and "applied" not in dry.stdout
    table = run("reconcile", str(feed), "--source", "discovery", "--apply", "--db", db)
    assert "2 attribute updates, 1 new CIs, 1 kept" in table.stdout
    feed.write_text("{not json")
    assert run("reconcile", str(feed), "--source", "discovery", "--db", db).returncode == 1


RECONCILE = """mutation($feed: JSON!, $apply: Boolean!, $first: Int!) {
    reconcile(feed: $feed, source: "discovery", apply: $apply, first: $first) {
        records counts { matched new missing drift ambiguous }
        matched { feedId ci rule } new missing drift { ci attribute cmdb discovered }
        ambiguous { feedId rule cis }
        applied { seen updated { ci attribute from to } kept { ci attribute by }
                  created { feedId ci } notCreated { feedId why } } } }"""


def test_reconcile_over_graphql_is_typed_bounded_and_needs_the_editor(
    sqlite_store: GraphStore,
) -> None:
    cmdb(sqlite_store)
    viewer = create_token(sqlite_store, "auditor", "viewer")
    editor = create_token(sqlite_store, "cmdb.team", "cmdb_editor")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        dry = gql(client, RECONCILE, viewer, feed=FEED, apply=False, first=1)["data"]["reconcile"]
        assert dry["counts"] == {"matched": 4, "new": 1, "missing": 3, "drift": 3, "ambiguous": 1}
        assert len(dry["matched"]) == 1 and len(dry["drift"]) == 1  # the first `first`
        assert dry["ambiguous"] == [{"feedId": "d5", "rule": "compute: ip_address + name",
                                     "cis": ["vm-d", "vm-e"]}]  # fmt: skip
        assert dry["applied"] is None
        seq = sqlite_store.head_seq()
        assert codes(gql(client, RECONCILE, viewer, feed=FEED, apply=True, first=10)) == [
            "FORBIDDEN"
        ]
        assert codes(gql(client, RECONCILE, editor, feed=FEED, apply=True, first=10_001)) == [
            "VALIDATION_FAILED"
        ]
        assert sqlite_store.head_seq() == seq  # refused: nothing written
        body = gql(client, RECONCILE, editor, feed=FEED, apply=True, first=10)["data"]["reconcile"]
    applied = body["applied"]
    assert applied["seen"] == 4 and applied["created"] == [{"feedId": "d6", "ci": "discovery-d6"}]
    assert applied["kept"] == [{"ci": "host-b", "attribute": "os", "by": "vcenter"}]
    assert {"ci": "vm-a", "attribute": "ip_address", "from": "10.0.0.1", "to": "10.9.9.9"} in (
        applied["updated"]
    )
    assert {e.actor for e in sqlite_store.journal(since=seq)} == {"discovery"}
