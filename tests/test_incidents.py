"""Incident and problem management on both stores (8.1, 8.2): prioritised from the graph by the
policy, the lifecycle's rules, SLA timers, suggestions, change-induced incidents, bulk intake,
problems with known errors, RFCs and effectiveness, and the analyst's frame and trends."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from servicegraph.api.python import ServiceGraph
from servicegraph.errors import Forbidden, ModelError, RuleViolation, ValidationFailed
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.incident.policy import load_incident_policy
from servicegraph.processes.times import iso

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
DESK = Actor("dora", "service_desk")
PM = Actor("pia", "problem_manager")
CAB = Actor("carl", "change_manager")
VIEWER = Actor("vic", "viewer")


@pytest.fixture
def sg(store: GraphStore) -> ServiceGraph:
    store.write(generate_estate(800, seed=3))
    return ServiceGraph(store)


def at(hours: float) -> str:
    return iso(NOW + dt.timedelta(hours=hours))


def test_an_incident_is_prioritised_from_the_graph_and_explains_why(sg: ServiceGraph) -> None:
    # a DNS server takes every service down: extensive impact
    dns = sg.incidents.record("DNS not answering", ["dns-000001"], DESK, "inc-1", "high",
                              opened_at=at(0), now=NOW)  # fmt: skip
    a = dns.attributes
    assert a["state"] == "new" and a["impact_level"] == "extensive" and a["priority"] == 1
    assert a["major"] is True
    snap = a["impact"]
    assert snap["priority_because"] == "priority_matrix[extensive][high] = 1"
    assert any("service_down_min_criticality" in r for r in snap["level_because"])
    assert snap["impacted"] == sg.impact(["dns-000001"]).total_impacted
    assert {s["id"] for s in snap["services"]} <= {
        s["id"] for s in sg.impact(["dns-000001"]).services
    }
    assert snap["targets"]["response_minutes"] == 30 and snap["targets"][
        "response_from"
    ].startswith("sla-")
    # a storage volume of one VM: minor, low urgency → the matrix's lowest cell
    vol = sg.store.find_cis(["storage_volume"], first=1).items[0].id
    minor = sg.incidents.record("volume latency", [vol], DESK, "inc-2", "low", now=NOW)
    assert minor.attributes["priority"] >= 4 and minor.attributes["major"] is False
    assert [m.id for m in sg.incidents.major()] == ["inc-1"]
    # reprioritising with a new urgency re-assesses and records it
    again = sg.incidents.reprioritise("inc-1", DESK, urgency="low")
    assert again.attributes["priority"] == 3 and again.attributes["urgency"] == "low"


def test_the_lifecycle_is_enforced_and_nothing_is_written_when_refused(sg: ServiceGraph) -> None:
    im = sg.incidents
    im.record("app down", ["application-instance-000001"], DESK, "inc-1", now=NOW)
    with pytest.raises(Forbidden):
        im.transition("inc-1", "start", VIEWER)
    with pytest.raises(RuleViolation, match="illegal_transition"):
        im.transition("inc-1", "close", DESK, now=NOW)
    im.transition("inc-1", "start", DESK, now=NOW)
    seq = sg.store.head_seq()
    with pytest.raises(RuleViolation, match="hold_reason_required"):
        im.transition("inc-1", "hold", DESK)
    assert sg.store.get_ci("inc-1").attributes["state"] == "in_progress"
    assert sg.store.head_seq() == seq  # the refused hold wrote nothing
    im.transition(
        "inc-1", "hold", DESK, reason="waiting for the vendor", now=NOW + dt.timedelta(hours=1)
    )
    resumed = im.transition("inc-1", "resume", DESK, now=NOW + dt.timedelta(hours=3))
    assert resumed.attributes["on_hold_minutes"] == 120
    with pytest.raises(RuleViolation, match="resolution_required"):
        im.transition("inc-1", "resolve", DESK)
    im.transition("inc-1", "resolve", DESK, resolution="restarted", now=NOW + dt.timedelta(hours=4))
    reopened = im.transition(
        "inc-1", "reopen", DESK, reason="came back", now=NOW + dt.timedelta(hours=5)
    )
    assert reopened.attributes["reopened"] == 1 and "resolved_at" not in reopened.attributes
    im.transition("inc-1", "resolve", DESK, resolution="patched", now=NOW + dt.timedelta(hours=6))
    closed = im.transition("inc-1", "close", DESK, now=NOW + dt.timedelta(hours=7))
    assert closed.attributes["state"] == "closed"
    reasons = [e.reason for e in sg.store.journal(entity="inc-1")]
    assert "waiting for the vendor" in reasons and "came back" in reasons


def test_sla_timers_and_breaches_are_computed_not_stored(sg: ServiceGraph) -> None:
    im = sg.incidents
    im.record("dns down", ["dns-000001"], DESK, "inc-1", "high", opened_at=at(0), now=NOW)
    clocks = im.timers("inc-1", now=NOW + dt.timedelta(minutes=20))
    assert clocks["response"]["breached"] is False and clocks["response"]["remaining_minutes"] == 10
    later = NOW + dt.timedelta(minutes=45)
    assert [(b["incident"], b["kind"]) for b in im.breaches(now=later)] == [("inc-1", "response")]
    im.transition("inc-1", "start", DESK, now=NOW + dt.timedelta(minutes=10))
    assert im.breaches(now=later) == []  # responded in time: no breach, whatever the hour
    # hold time does not count against resolution (480 min)
    im.transition("inc-1", "hold", DESK, reason="customer away", now=NOW + dt.timedelta(hours=1))
    im.transition("inc-1", "resume", DESK, now=NOW + dt.timedelta(hours=6))
    clocks = im.timers("inc-1", now=NOW + dt.timedelta(hours=9))
    assert (
        clocks["resolution"]["elapsed_minutes"] == 4 * 60 and not clocks["resolution"]["breached"]
    )
    assert [b["kind"] for b in im.breaches(now=NOW + dt.timedelta(hours=14))] == ["resolution"]


def test_known_errors_are_suggested_nearest_first(sg: ServiceGraph) -> None:
    pm = sg.problems
    vm = sg.store.find_cis(["vm"], first=1).items[0].id
    app = next(r["id"] for r in sg.impact([vm]).impacted() if r["class"] == "application_instance")
    pm.create("prb-1", "VM storage path", PM, root_causes=[vm])
    with pytest.raises(RuleViolation, match="workaround_required"):
        pm.transition("prb-1", "known_error", PM)
    pm.transition(
        "prb-1", "known_error", PM, known_error_id="ke-1", workaround="restart multipathd"
    )
    inc = sg.incidents.record("app slow", [app], DESK, "inc-1", now=NOW)
    found = sg.incidents.suggestions(inc.id)
    assert found[0]["id"] == "ke-1" and found[0]["workaround"] == "restart multipathd"
    assert found[0]["ci"] == vm and found[0]["distance"] >= 1
    assert [f["id"] for f in found][:2] == ["ke-1", "prb-1"]  # a known error before its problem


def test_change_induced_incidents_both_ways(sg: ServiceGraph) -> None:
    host = "host-000003"
    victim = next(r for r in sg.impact([host]).impacted() if r["class"] == "vm")
    cm = sg.changes
    cm.create("rfc-1", "kernel", "standard", [host], CAB, remediation_plan="old kernel")
    done = NOW - dt.timedelta(hours=10)
    for step, fields in (("submit", {}), ("approve", {}), ("start", {}), ("complete", {})):
        if step == "start":
            cm.transition("rfc-1", "schedule", CAB, now=done, window_start=iso(done),
                          window_end=iso(done + dt.timedelta(hours=1)))  # fmt: skip
        cm.transition("rfc-1", step, CAB, now=done, **fields)
    sg.incidents.record("vm errors", [victim["id"]], DESK, "inc-1", opened_at=at(0), now=NOW)
    sg.incidents.record("old one", [victim["id"]], DESK, "inc-0", opened_at=at(-200), now=NOW)
    suspects = sg.incidents.suspect_changes("inc-1")
    assert [s["change"] for s in suspects] == ["rfc-1"]
    assert suspects[0]["path"][0] == host and suspects[0]["path"][-1] == victim["id"]
    assert suspects[0]["hours_before"] == 10
    assert sg.incidents.suspect_changes("inc-0") == []  # before the change
    after = sg.incidents.after_change("rfc-1")
    assert [i["incident"] for i in after["incidents"]] == ["inc-1"]
    frame = sg.incident_frame()
    assert frame.set_index("id").loc["inc-1", "change_induced"]
    assert not frame.set_index("id").loc["inc-0", "change_induced"]


def test_bulk_intake_is_all_or_nothing_lists_every_problem_and_is_idempotent(
    sg: ServiceGraph,
) -> None:
    good = [{"id": f"alert-{i}", "summary": "ping lost", "affects": [f"vm-00000{i}"],
             "opened_at": at(-i), "urgency": "medium", "source": "zabbix"} for i in range(1, 4)]  # fmt: skip
    bad = [*good, {"id": ["not", "text"], "summary": 5, "affects": [{"id": 1}]}, 7,
           {"id": "alert-9", "summary": "x", "affects": ["nope"], "opened_at": "yesterday",
                   "urgency": "urgent", "colour": "red"}, {"id": "alert-1", "summary": "dup",
                   "affects": ["vm-000001"]}]  # fmt: skip
    seq = sg.store.head_seq()
    with pytest.raises(ValidationFailed) as refused:
        sg.incidents.import_incidents(bad, DESK, now=NOW)
    fields = {(p.field) for p in refused.value.problems}
    assert {"affects", "opened_at", "urgency", "colour", "id", "summary", "item"} <= fields
    assert sg.store.head_seq() == seq and sg.store.get_ci("alert-1") is None
    first = sg.incidents.import_incidents(good, DESK, now=NOW)
    assert first == {"created": ["alert-1", "alert-2", "alert-3"], "existing": []}
    again = sg.incidents.import_incidents(good, DESK, now=NOW)
    assert again == {"created": [], "existing": ["alert-1", "alert-2", "alert-3"]}
    assert sg.store.get_ci("alert-2").attributes["source"] == "zabbix"
    with pytest.raises(ValidationFailed, match="future"):
        sg.incidents.record("x", ["vm-000001"], DESK, opened_at=at(2), now=NOW)


def test_problems_link_incidents_raise_an_rfc_and_measure_effectiveness(sg: ServiceGraph) -> None:
    host = "host-000002"
    for n, hours in enumerate((-300, -200, -100)):
        sg.incidents.record("mce", [host], DESK, f"inc-{n}", opened_at=at(hours), now=NOW)
    with pytest.raises(Forbidden):
        sg.problems.create("prb-1", "MCE", DESK)
    pm = sg.problems
    pm.create("prb-1", "machine checks", PM, incidents=["inc-0", "inc-1"], root_causes=[host],
              now=NOW - dt.timedelta(hours=50))  # fmt: skip
    pm.link("prb-1", PM, incidents=["inc-2"])
    assert pm.incidents("prb-1") == ["inc-0", "inc-1", "inc-2"]
    assert sg.incidents.problem_of("inc-2") == "prb-1"
    rfc = pm.raise_change(sg.changes, "prb-1", "rfc-9", "replace DIMM", PM)
    assert sg.changes.targets(rfc.id) == [host] and pm.details("prb-1")["changes"] == ["rfc-9"]
    assert pm.effectiveness("prb-1")["verdict"] == "not resolved yet"
    pm.transition(
        "prb-1", "resolve", PM, resolution="DIMM replaced", now=NOW - dt.timedelta(hours=48)
    )
    effect = pm.effectiveness("prb-1", now=NOW)
    assert effect["verdict"] == "effective" and effect["incidents_after"] == []
    sg.incidents.record("mce again", [host], DESK, "inc-9", opened_at=at(-1), now=NOW)
    effect = pm.effectiveness("prb-1", now=NOW)
    assert effect["verdict"] == "recurring" and effect["incidents_after"] == ["inc-9"]
    with pytest.raises(RuleViolation, match="illegal_transition"):
        pm.transition("prb-1", "known_error", PM, workaround="x")
    pm.transition("prb-1", "close", PM)
    assert pm.get("prb-1").attributes["state"] == "closed"


def test_frame_trends_reliability_and_recurring_cis(sg: ServiceGraph) -> None:
    vm = "vm-000001"
    for day in range(6):
        opened = NOW - dt.timedelta(days=7 * day)
        sg.incidents.import_incidents([{
            "id": f"inc-{day}", "summary": "flap", "affects": [vm], "opened_at": iso(opened),
            "state": "closed", "responded_at": iso(opened + dt.timedelta(minutes=5)),
            "resolved_at": iso(opened + dt.timedelta(hours=2)),
            "closed_at": iso(opened + dt.timedelta(days=1))}], DESK, now=NOW)  # fmt: skip
    frame = sg.incident_frame()
    assert len(frame) == 6 and set(frame["hours_to_resolve"]) == {2.0}
    assert set(frame["ci_class"]) == {"vm"} and not frame["sla_breached"].any()
    weekly = sg.incident_trends(by="class", freq="W")
    assert weekly["incidents"].sum() == 6 and set(weekly["class"]) == {"vm"}
    by_service = sg.incident_trends(by="service", freq="M")
    assert by_service["incidents"].sum() == sum(len(s) for s in frame["services"])
    reliability = sg.service_reliability()
    if not reliability.empty:
        assert (
            reliability["mttr_hours"].iloc[0] == 2.0 and reliability["mtbf_hours"].iloc[0] == 168.0
        )
    recurring = sg.recurring_cis(minimum=5)
    assert list(recurring["ci"]) == [vm] and recurring["incidents"].iloc[0] == 6
    with pytest.raises(ValidationFailed, match="by"):
        sg.incident_trends(by="colour")
    figures = sg.incident_figures()
    assert set(figures) == {"weekly_by_service", "heatmap", "pareto", "mttr"}


def test_the_incident_policy_is_data_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    custom = tmp_path / "policy.yaml"
    custom.write_text("change_window_hours: 24\n")
    assert load_incident_policy(custom).change_window_hours == 24
    custom.write_text("impact_levels: {catastrophic: {min_customers: 1}}\n"
                      "major_incident: {phase_of_moon: full}\n")  # fmt: skip
    with pytest.raises(ModelError) as bad:
        load_incident_policy(custom)
    text = str(bad.value)
    assert "catastrophic" in text and "phase_of_moon" in text


def test_root_causes_on_both_stores(sg: ServiceGraph) -> None:
    # a CI whose failure takes two to four others down, all of which alarm after it
    candidates = sg.store.find_cis(["database", "application"], first=200).items
    source, down = next(
        (c.id, hit)
        for c in candidates
        if 2 <= len(hit := [r["id"] for r in sg.impact([c.id]).impacted() if r["status"] == "DOWN"]) <= 4
    )  # fmt: skip
    alarms = [source, *down]
    sg.incidents.import_incidents(
        [{"id": f"a{n}", "summary": "down", "affects": [ci], "opened_at": at(n / 60)}
         for n, ci in enumerate(alarms)], DESK, now=NOW)  # fmt: skip
    result = sg.root_causes([f"a{n}" for n in range(len(alarms))])
    assert result.candidates[0]["id"] == source
    names = [f"a{n}" for n in range(len(alarms))]
    assert result.candidates[0]["explains"] == names
    assert result.candidates[0]["silent_count"] == 0
    assert [g["incidents"] for g in result.groups] == [names]
