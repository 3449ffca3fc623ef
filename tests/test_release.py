"""Release and deployment: baseline before deployment, rollback, incidents after (9.3)."""

from __future__ import annotations

import datetime as dt

import pytest

from servicegraph.errors import RuleViolation, ValidationFailed
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor
from servicegraph.processes.change import ChangeManager
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.release import ReleaseManager

CAB = Actor("carol", "change_manager")
DEPLOYED = dt.datetime(2026, 12, 2, 20, 0, tzinfo=dt.UTC)


@pytest.fixture
def managers(sqlite_store: GraphStore) -> tuple[ChangeManager, ReleaseManager]:
    sqlite_store.write(generate_estate(800, seed=3))
    engine = TopologyEngine(sqlite_store)
    cm = ChangeManager(sqlite_store, engine)
    cm.create(
        "rfc-1",
        "upgrade",
        "normal",
        ["vm-000005"],
        CAB,
        remediation_plan="revert",
        cmdb_updates={"vm-000005": {"os": "RHEL 10"}},
    )
    for action in ("submit", "assess", "approve"):
        cm.transition("rfc-1", action, CAB)
    sqlite_store.upsert([CI("prb-1", "problem", "memory leak", {"state": "known_error"})])
    return cm, ReleaseManager(sqlite_store, engine)


def test_deployment_needs_a_baseline_of_the_whole_blast_radius(managers) -> None:  # type: ignore[no-untyped-def]
    cm, rm = managers
    with pytest.raises(ValidationFailed, match="not a change"):
        rm.create("rel-x", "x", "minor", ["vm-000005"], CAB)
    rm.create(
        "rel-1",
        "December release",
        "minor",
        ["rfc-1"],
        CAB,
        resolves=["prb-1"],
        acceptance_criteria="checkout p95 < 300 ms",
    )
    with pytest.raises(RuleViolation) as info:
        rm.deploy("rel-1", CAB)
    assert info.value.rule == "baseline_before_deployment"
    radius = rm.blast_radius("rel-1")
    assert "vm-000005" in radius and len(radius) > 3
    baseline = rm.take_baseline("rel-1", CAB)
    assert baseline.attributes["ci_ids"] == radius
    snap = {r["id"]: r for r in baseline.attributes["snapshot"]}
    assert snap["vm-000005"]["attributes"] == cm.store.get_ci("vm-000005").attributes
    deployed = rm.deploy("rel-1", CAB, now=DEPLOYED, notes="all green")
    assert deployed.attributes["state"] == "deployed"
    with pytest.raises(RuleViolation, match="illegal_transition"):
        rm.deploy("rel-1", CAB)


def test_rollback_restores_the_baselined_records(managers) -> None:  # type: ignore[no-untyped-def]
    cm, rm = managers
    rm.create("rel-1", "December release", "emergency", ["rfc-1"], CAB)
    before = cm.store.get_ci("vm-000005").attributes
    rm.take_baseline("rel-1", CAB)
    cm.transition(
        "rfc-1",
        "schedule",
        CAB,
        window_start="2026-12-02T19:00:00Z",
        window_end="2026-12-02T21:00:00Z",
    )
    cm.transition("rfc-1", "start", CAB)
    cm.transition("rfc-1", "complete", CAB)
    assert cm.store.get_ci("vm-000005").attributes["os"] == "RHEL 10"
    rm.deploy("rel-1", CAB, succeeded=False, now=DEPLOYED)
    rolled = rm.rollback("rel-1", CAB, reason="login errors")
    assert rolled.attributes["state"] == "rolled_back"
    vm = cm.store.get_ci("vm-000005")
    assert "os" not in vm.attributes and vm.attributes == before
    assert cm.store.journal(entity="vm-000005")[-1].actor == "carol"


def test_incidents_in_the_blast_radius_after_deployment_measure_success(managers) -> None:  # type: ignore[no-untyped-def]
    cm, rm = managers
    rm.create("rel-1", "December release", "minor", ["rfc-1"], CAB)
    rm.take_baseline("rel-1", CAB)
    rm.deploy("rel-1", CAB, now=DEPLOYED)
    radius = rm.blast_radius("rel-1")
    outside = next(c.id for c in cm.store.find_cis(["vm"], first=500).items if c.id not in radius)
    cm.store.upsert(
        [
            CI("inc-before", "incident", "before", {"opened_at": "2026-12-01T10:00:00Z"}),
            CI("inc-in", "incident", "in", {"opened_at": "2026-12-04T10:00:00Z", "priority": 2}),
            CI("inc-late", "incident", "late", {"opened_at": "2026-12-20T10:00:00Z"}),
            CI("inc-elsewhere", "incident", "elsewhere", {"opened_at": "2026-12-03T10:00:00Z"}),
        ],
        [
            Relationship("inc-before", "AFFECTS", "vm-000005"),
            Relationship("inc-in", "AFFECTS", radius[-1]),
            Relationship("inc-late", "AFFECTS", "vm-000005"),
            Relationship("inc-elsewhere", "AFFECTS", outside),
        ],
    )
    report = rm.incidents_after("rel-1", days=7)
    assert [i["id"] for i in report["incidents"]] == ["inc-in"]
    assert report["blast_radius"] == len(radius) and report["until"] == "2026-12-09T20:00:00Z"
    assert [i["id"] for i in rm.incidents_after("rel-1", days=30)["incidents"]] == [
        "inc-in",
        "inc-late",
    ]
