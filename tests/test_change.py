"""Change management: lifecycle rules, assessment, schedule collisions, trends (9.2, 5)."""

from __future__ import annotations

import datetime as dt

import pytest

from servicegraph.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor
from servicegraph.processes.change import ChangeManager
from servicegraph.processes.demo import generate_estate

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
ALICE = Actor("alice", "cmdb_editor")
CAB = Actor("carol", "change_manager")
BOSS = Actor("eve", "admin")
VIEWER = Actor("victor", "viewer")


@pytest.fixture
def changes(sqlite_store: GraphStore) -> ChangeManager:
    sqlite_store.write(generate_estate(800, seed=3))
    return ChangeManager(sqlite_store, TopologyEngine(sqlite_store))


def rfc(
    cm: ChangeManager, ident: str, targets: list[str], kind: str = "normal", **fields: object
) -> CI:
    return cm.create(ident, f"RFC {ident}", kind, targets, ALICE, **fields)


def walk(cm: ChangeManager, ident: str, *actions: str, actor: Actor = CAB, **fields: object) -> CI:
    change = cm.get(ident)
    for action in actions:
        change = cm.transition(ident, action, actor, reason=f"{action} it", now=NOW, **fields)
    return change


def test_a_normal_change_goes_through_its_lifecycle_with_every_rule(changes: ChangeManager) -> None:
    store = changes.store
    rfc(
        changes,
        "rfc-1",
        ["vm-000005"],
        description="patch the VM",
        cmdb_updates={"vm-000005": {"os": "RHEL 9.4"}},
    )
    assert changes.get("rfc-1").attributes["state"] == "draft"
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-1", "approve", CAB)
    assert info.value.rule == "illegal_transition"
    walk(changes, "rfc-1", "submit", actor=ALICE)
    assessed = walk(changes, "rfc-1", "assess")
    a = assessed.attributes
    assert a["state"] == "assessed" and a["risk_level"] in ("low", "medium", "high", "very_high")
    factors = {f["factor"]: f for f in a["assessment"]["risk_factors"]}
    assert factors["remediation_plan_missing"] == {
        "factor": "remediation_plan_missing",
        "value": True,
        "points": 20.0,
        "detail": "no back-out plan recorded",
    }
    assert a["risk_score"] == round(sum(f["points"] for f in factors.values()), 1)
    impacted = a["assessment"]["impact"]["impacted"]
    assert impacted and all(r["path"][0] == "vm-000005" for r in impacted)

    version = changes.get("rfc-1").version
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-1", "approve", CAB)
    assert info.value.rule == "remediation_plan_required"
    assert changes.get("rfc-1").version == version  # nothing written
    with pytest.raises(Forbidden):
        changes.transition("rfc-1", "approve", VIEWER)
    changes.amend("rfc-1", ALICE, remediation_plan="restore the VM snapshot")
    approved = walk(changes, "rfc-1", "approve")
    assert approved.attributes["approved_by"] == "carol"
    with pytest.raises(RuleViolation) as info:
        changes.transition(
            "rfc-1",
            "schedule",
            CAB,
            window_start="2026-12-10T22:00:00Z",
            window_end="2026-12-10T20:00:00Z",
        )
    assert info.value.rule == "window_order"
    walk(
        changes,
        "rfc-1",
        "schedule",
        window_start="2026-12-10T20:00:00Z",
        window_end="2026-12-10T22:00:00Z",
    )
    walk(changes, "rfc-1", "start")
    before = store.get_ci("vm-000005")
    done = walk(changes, "rfc-1", "complete")
    after = store.get_ci("vm-000005")
    assert done.attributes["outcome"] == "successful"
    assert after.attributes["os"] == "RHEL 9.4" and after.version == before.version + 1
    vm_entry = store.journal(entity="vm-000005")[-1]
    rfc_entry = store.journal(entity="rfc-1")[-1]
    assert vm_entry.at == rfc_entry.at and vm_entry.actor == "carol"  # one transaction
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-1", "review", CAB)
    assert info.value.rule == "review_required"
    walk(changes, "rfc-1", "review", review="went as planned")
    walk(changes, "rfc-1", "close")
    history = [
        (e.after["attributes"]["state"], e.actor, e.after["attributes"]["last_reason"])
        for e in store.journal(entity="rfc-1")
        if e.op == "update_ci"
    ]
    assert [h[0] for h in history] == [
        "submitted",
        "assessed",
        "assessed",
        "approved",
        "scheduled",
        "implementing",
        "implemented",
        "reviewed",
        "closed",
    ]
    assert history[3] == ("approved", "carol", "approve it")


def test_emergency_changes_need_the_emergency_authority_and_a_review(
    changes: ChangeManager,
) -> None:
    rfc(changes, "rfc-e", ["vm-000007"], "emergency", remediation_plan="roll back")
    walk(changes, "rfc-e", "submit", "assess")
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-e", "approve", CAB)
    assert info.value.rule == "approver_role"
    walk(changes, "rfc-e", "approve", "start", actor=BOSS)  # may skip scheduling
    walk(changes, "rfc-e", "fail")
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-e", "close", CAB)
    assert info.value.rule == "illegal_transition"
    with pytest.raises(RuleViolation) as info:
        changes.transition("rfc-e", "remediate", CAB)
    assert info.value.rule == "remediation_result_required"
    walk(changes, "rfc-e", "remediate", remediation_result="rolled back the package")
    assert (
        walk(changes, "rfc-e", "review", "close", review="root cause found").attributes["outcome"]
        == "remediated"
    )


def test_standard_changes_are_pre_approved(changes: ChangeManager) -> None:
    rfc(changes, "rfc-s", ["vm-000009"], "standard", remediation_plan="revert")
    walk(changes, "rfc-s", "submit", actor=ALICE)
    assert walk(changes, "rfc-s", "approve").attributes["state"] == "approved"
    rfc(changes, "rfc-n", ["vm-000009"], remediation_plan="revert")
    walk(changes, "rfc-n", "submit", actor=ALICE)
    with pytest.raises(RuleViolation, match="illegal_transition"):
        walk(changes, "rfc-n", "approve")


def test_major_impact_routes_to_design_and_transition(changes: ChangeManager) -> None:
    rfc(changes, "rfc-m", ["dns-000001"], remediation_plan="fail back to the old resolvers")
    a = walk(changes, "rfc-m", "submit", "assess").attributes
    assert a["major_impact"] is True
    met = {c["criterion"] for c in a["assessment"]["major_impact_criteria"] if c["met"]}
    assert "any_sla_down" in met
    spof = {f["factor"]: f for f in a["assessment"]["risk_factors"]}["single_points_of_failure"]
    assert spof["value"] == ["dns-000001"] and spof["points"] == 10.0
    with pytest.raises(RuleViolation) as info:
        walk(changes, "rfc-m", "approve")
    assert info.value.rule == "design_and_transition"
    changes.amend(
        "rfc-m", ALICE, acceptance_criteria="all zones resolve", test_evidence="test run 42"
    )
    assert walk(changes, "rfc-m", "approve").attributes["state"] == "approved"


def test_rfc_targets_must_exist_be_live_and_under_change_control(changes: ChangeManager) -> None:
    with pytest.raises(ValidationFailed, match="nope"):
        rfc(changes, "rfc-x", ["nope"])
    changes.store.retire(["vm-000011"])
    with pytest.raises(RuleViolation) as info:
        rfc(changes, "rfc-x", ["vm-000011"])
    assert info.value.rule == "target_not_retired"
    with pytest.raises(RuleViolation) as info:
        rfc(changes, "rfc-x", ["sla-000001"])
    assert info.value.rule == "target_under_change_control"
    assert changes.store.get_ci("rfc-x") is None
    with pytest.raises(NotFound):
        changes.get("rfc-x")


def test_assessment_lists_open_records_other_changes_and_history(changes: ChangeManager) -> None:
    store = changes.store
    store.upsert(
        [
            CI(
                "inc-1",
                "incident",
                "slow checkout",
                {"state": "new", "opened_at": "2026-11-30T10:00:00Z"},
            ),
            CI(
                "inc-2", "incident", "old", {"state": "closed", "opened_at": "2026-11-01T10:00:00Z"}
            ),
            CI(
                "inc-3",
                "incident",
                "after the last change",
                {"state": "resolved", "opened_at": "2026-11-20T12:00:00Z"},
            ),
        ],
        [
            Relationship("inc-1", "AFFECTS", "application-000002"),
            Relationship("inc-2", "AFFECTS", "application-000002"),
            Relationship("inc-3", "AFFECTS", "vm-000005"),
        ],
    )
    rfc(changes, "rfc-old", ["vm-000005"], remediation_plan="x")
    walk(changes, "rfc-old", "submit", "assess", "approve")
    walk(
        changes,
        "rfc-old",
        "schedule",
        window_start="2026-11-20T08:00:00Z",
        window_end="2026-11-20T09:00:00Z",
    )
    walk(changes, "rfc-old", "start")
    changes.transition("rfc-old", "fail", CAB, now=dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC))
    rfc(changes, "rfc-new", ["vm-000005"], window_start="2026-12-01T12:00:00Z")
    a = walk(changes, "rfc-new", "submit", "assess").attributes["assessment"]
    assert [r["id"] for r in a["open_records"]] == ["inc-1"]
    assert a["open_records"][0]["affects"] == ["application-000002"]
    assert [c["id"] for c in a["other_changes"]] == ["rfc-old"]
    factors = {f["factor"]: f for f in a["risk_factors"]}
    assert factors["failed_changes_on_targets"]["value"] == ["rfc-old"]
    assert factors["incidents_after_changes"]["value"] == ["inc-3"]
    assert factors["lead_time_hours"]["value"] == 3.0 and factors["lead_time_hours"]["points"] == 15


def _scheduled(cm: ChangeManager, ident: str, target: str, start: str, end: str) -> None:
    rfc(cm, ident, [target], remediation_plan="revert")
    walk(cm, ident, "submit", "assess", "approve")
    walk(cm, ident, "schedule", window_start=start, window_end=end)


def test_the_schedule_finds_changes_whose_windows_and_blast_radii_overlap(
    changes: ChangeManager,
) -> None:
    # two different hosts of the same hypervisor cluster: no shared target, a shared blast radius
    _scheduled(changes, "rfc-a", "host-000003", "2026-12-05T20:00:00Z", "2026-12-05T23:00:00Z")
    _scheduled(changes, "rfc-b", "host-000004", "2026-12-05T22:00:00Z", "2026-12-06T01:00:00Z")
    _scheduled(changes, "rfc-c", "host-000005", "2026-12-07T20:00:00Z", "2026-12-07T21:00:00Z")
    plan = changes.schedule("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z")
    assert [c["id"] for c in plan["changes"]] == ["rfc-a", "rfc-b", "rfc-c"]
    (collision,) = [c for c in plan["collisions"] if c["kind"] == "overlapping_changes"]
    assert collision["changes"] == ["rfc-a", "rfc-b"]
    assert collision["window"] == ["2026-12-05T22:00:00Z", "2026-12-05T23:00:00Z"]
    assert "cluster-000008" in collision["cis"] and collision["ci_count"] > 10
    assert (
        "host-000003" not in collision["cis"]
    )  # the targets differ: the overlap is what depends on them

    service = next(
        s
        for s in changes.engine.reach(["host-000005"], "up")
        if changes.engine.class_of(s) == "business_service"
    )
    changes.store.upsert(
        [
            CI(
                "freeze",
                "blackout_window",
                "year-end freeze",
                {
                    "start": "2026-12-07T00:00:00Z",
                    "end": "2026-12-08T00:00:00Z",
                    "reason": "year end",
                },
            )
        ],
        [Relationship("freeze", "APPLIES_TO", service)],
    )
    plan = changes.schedule("2026-12-01T00:00:00Z", "2026-12-31T00:00:00Z")
    blackout = [c for c in plan["collisions"] if c["kind"] == "blackout"]
    assert [(b["changes"], b["blackout"]) for b in blackout] == [(["rfc-c"], "freeze")]
    assert service in blackout[0]["services"]
    with pytest.raises(RuleViolation) as info:
        changes.schedule("2026-12-31T00:00:00Z", "2026-12-01T00:00:00Z")
    assert info.value.rule == "window_order"


def test_trends_count_rfcs_by_month_type_class_and_outcome(changes: ChangeManager) -> None:
    _scheduled(changes, "rfc-a", "host-000003", "2026-12-05T20:00:00Z", "2026-12-05T23:00:00Z")
    _scheduled(changes, "rfc-b", "vm-000004", "2026-12-06T20:00:00Z", "2026-12-06T23:00:00Z")
    walk(changes, "rfc-b", "start", "fail")
    frame = changes.trends()
    rows = {tuple(r[:4]): r[4] for r in frame.itertuples(index=False)}
    assert rows[("2026-12", "normal", "host", "scheduled")] == 1
    assert rows[(NOW.strftime("%Y-%m"), "normal", "vm", "failed")] == 1
