"""CMDB health on both stores (9.1): every finding names its rule, scores follow the findings,
rules are data; and the same answer over the CLI and GraphQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import ModelError, ValidationFailed
from servicegraph.graph.history import state_at
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import create_token
from servicegraph.processes.audit.health import cmdb_health, snapshot_health
from servicegraph.processes.audit.policy import load_audit_policy
from servicegraph.processes.times import iso
from tests.test_cli import run
from tests.test_graphql import gql

FULL = {"owner": "ops", "support_group": "ops-team", "environment": "production"}
OLD = iso(dt.datetime.now(dt.UTC) - dt.timedelta(days=100))


def estate(store: GraphStore) -> None:
    store.upsert(
        [
            CI("dc-1", "datacentre", "DC 1", dict(FULL)),
            CI("host-1", "host", "h1", {**FULL, "serial_number": "S1", "os": "ESXi 8"}),
            CI("host-2", "host", "h2", {"serial_number": "S1", "os": "Windows 95",
                                        "environment": "production"}),
            CI("host-old", "host", "old", {**FULL, "status": "retired", "os": "ESXi 8"}),
            CI("vm-1", "vm", "v1", {**FULL, "os": "RHEL 9.4"}),
            CI("vm-2", "vm", "v2", {**FULL, "os": "RHEL 9.4"}),
            CI("vm-3", "vm", "v3", {**FULL, "os": "RHEL 9.4"}),
            CI("vm-4", "vm", "v4", {**FULL, "os": "RHEL 9.4", "last_seen": OLD}),
        ],
        [
            Relationship("host-1", "LOCATED_IN", "dc-1"),
            Relationship("host-old", "LOCATED_IN", "dc-1"),
            Relationship("vm-1", "HOSTED_ON", "host-1"),
            Relationship("vm-3", "HOSTED_ON", "host-old"),
            Relationship("vm-4", "HOSTED_ON", "host-1"),
            Relationship("vm-4", "DEPENDS_ON", "host-1"),
        ],
    )  # fmt: skip


def test_findings_name_their_rule_and_scores_follow(store: GraphStore) -> None:
    estate(store)
    sg = ServiceGraph(store)
    result = sg.health()
    found = {(f["rule"], f["ci"]) for f in result.findings}
    assert {("orphan", "vm-2"), ("orphan", "vm-3"), ("relationship_to_retired", "vm-3"),
            ("stale", "vm-4"), ("parallel_relationships", "vm-4"), ("duplicate", "host-1"),
            ("duplicate", "host-2")} == {x for x in found if x[0] in (
                "orphan", "relationship_to_retired", "stale", "parallel_relationships",
                "duplicate")}  # fmt: skip
    assert ("recommended_relationship", "host-2") in found  # no LOCATED_IN
    assert ("recommended_attribute", "host-2") in found and ("approved_operating_system",
                                                             "host-2") in found  # fmt: skip
    assert ("production_has_support_group", "host-2") in found
    assert not any(f["ci"] == "host-old" for f in result.findings)  # retired: not audited
    assert all(f["fix"] and f["detail"] for f in result.findings)
    # 7 live CIs; host-1, host-2, vm-2, vm-3, vm-4 have a correctness finding
    assert result.cis == 7 and result.scores["correctness"] == pytest.approx(100 * 2 / 7, abs=0.1)
    # compliance: support_group on 7 production CIs (host-2 fails), os on 6 (host-2 fails)
    assert result.scores["compliance"] == pytest.approx(100 * (1 - 2 / 13), abs=0.1)
    assert set(result.by_class) == {"datacentre", "host", "vm"}
    assert len(result.to_frame()) == len(result.findings)
    assert result.figure().data
    vms = sg.health(cls="vm")
    assert vms.cis == 4 and set(vms.by_class) == {"vm"}
    with pytest.raises(ValidationFailed, match="unknown class"):
        sg.health(cls="spaceship")


def test_health_from_the_journal_alone_is_the_live_audit(store: GraphStore) -> None:
    """The health trend's audit (of a picture replayed from the journal, no engine, no store)
    finds at the journal's head exactly what the live audit finds, judged at the same time."""
    estate(store)
    store.upsert([CI("vm-2", "vm", "v2", {"os": "Windows 95"})])  # a later write to replay
    policy = load_audit_policy(store.model)
    now = dt.datetime.now(dt.UTC)
    live = cmdb_health(ServiceGraph(store).engine, store, policy, now=now)
    then = snapshot_health(state_at(store, store.head_seq()), store.model, policy, now)
    assert then.findings == live.findings and live.findings
    assert then.scores == live.scores and then.by_class == live.by_class
    assert {f["rule"] for f in then.findings} >= {"relationship_to_retired", "parallel_relationships",
                                                  "stale", "duplicate", "orphan"}  # fmt: skip


def test_the_audit_policy_is_data_and_checked(store: GraphStore, tmp_path: Path) -> None:
    estate(store)
    sg = ServiceGraph(store)
    custom = tmp_path / "audit.yaml"
    custom.write_text("stale_after_days: 365\nneeds: {}\ncompliance: []\n")
    relaxed = sg.health(policy=str(custom))
    rules = {f["rule"] for f in relaxed.findings}
    assert "stale" not in rules and "orphan" not in rules and relaxed.scores["compliance"] == 100
    custom.write_text(
        "needs: {vm: {types: [FLIES_TO], fix: x}}\nidentification: {host: [[colour]]}\n"
    )
    with pytest.raises(ModelError) as bad:
        sg.health(policy=str(custom))
    assert "FLIES_TO" in str(bad.value) and "colour" in str(bad.value)


def test_health_from_the_cli_and_graphql(tmp_path: Path, sqlite_store: GraphStore) -> None:
    estate(sqlite_store)
    db = str(sqlite_store.path)  # type: ignore[attr-defined]
    cli = run("health", "--format", "json", "--db", db)
    assert cli.returncode == 0, cli.stderr
    answer = json.loads(cli.stdout)
    assert answer["cis"] == 7 and {"score", "completeness", "correctness", "compliance"} <= set(
        answer
    )
    table = run("health", "--class", "vm", "--db", db)
    assert "orphan" in table.stdout and "vm-2" in table.stdout
    token = create_token(sqlite_store, "auditor", "viewer")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        body = gql(client, """{ cmdbHealth(first: 2) { cis findingCount scores { score correctness }
            byClass { class cis } findings { rule ci fix } } }""", token)["data"]["cmdbHealth"]  # fmt: skip
    assert body["cis"] == 7 and body["findingCount"] == len(answer["findings"])
    assert len(body["findings"]) == 2 and body["scores"]["score"] == answer["score"]
