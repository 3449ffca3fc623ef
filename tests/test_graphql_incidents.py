"""Incidents, problems and root causes over GraphQL: roles, typed answers, typed rule errors."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate
from tests.test_graphql import codes, gql


@pytest.fixture
def api(sqlite_store: SqliteStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    sqlite_store.write(generate_estate(800, seed=3))
    tokens = {r: create_token(sqlite_store, f"{r}-user", r)
              for r in ("viewer", "service_desk", "problem_manager")}  # fmt: skip
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        yield client, tokens


RECORD = """mutation($i: IncidentInput!) { recordIncident(incident: $i) {
  id state priority urgency impactLevel major
  impact { level levelBecause priority priorityBecause major majorBecause
           targets { responseMinutes responseFrom resolutionMinutes } services { id status } }
  timers { kind targetMinutes breached from }
  affects { id class } suggestions { id workaround distance } } }"""
STEP = """mutation($id: ID!, $a: IncidentAction!, $r: String) {
  transitionIncident(id: $id, action: $a, reason: "desk", resolution: $r) { id state } }"""


def test_the_desk_records_and_works_incidents_with_typed_answers(api: Any) -> None:
    client, t = api
    new = {"id": "inc-1", "summary": "DNS down", "affects": ["dns-000001"], "urgency": "high"}
    assert codes(gql(client, RECORD, t["viewer"], i=new)) == ["FORBIDDEN"]
    inc = gql(client, RECORD, t["service_desk"], i=new)["data"]["recordIncident"]
    assert inc["state"] == "new" and inc["priority"] == 1 and inc["major"] is True
    assert inc["impact"]["priorityBecause"] == "priority_matrix[extensive][high] = 1"
    assert inc["impact"]["targets"]["responseMinutes"] == 30
    assert {tm["kind"] for tm in inc["timers"]} == {"response", "resolution"}
    assert inc["affects"] == [{"id": "dns-000001", "class": "dns"}]
    bad = gql(client, STEP, t["service_desk"], id="inc-1", a="CLOSE")
    assert codes(bad) == ["RULE_VIOLATION"] and bad["errors"][0]["extensions"]["rule"] == (
        "illegal_transition"
    )
    refused = gql(client, STEP, t["service_desk"], id="inc-1", a="RESOLVE")
    assert refused["errors"][0]["extensions"]["rule"] == "resolution_required"
    done = gql(client, STEP, t["service_desk"], id="inc-1", a="RESOLVE", r="restarted")
    assert done["data"]["transitionIncident"]["state"] == "resolved"
    listed = gql(
        client,
        """{ incidents(filter: {states: ["resolved"]}, first: 5) {
        edges { node { id state } } pageInfo { hasNextPage } }
        majorIncidents(all: true) { id } slaBreaches { incident kind } }""",
        t["viewer"],
    )["data"]
    assert [e["node"]["id"] for e in listed["incidents"]["edges"]] == ["inc-1"]
    assert [m["id"] for m in listed["majorIncidents"]] == ["inc-1"]
    bad_input = gql(client, RECORD, t["service_desk"],
                    i={"summary": "x", "affects": ["nope"], "urgency": "asap"})  # fmt: skip
    assert codes(bad_input) == ["VALIDATION_FAILED"]
    assert {p["field"] for p in bad_input["errors"][0]["extensions"]["problems"]} >= {
        "affects",
        "urgency",
    }


def test_root_causes_and_a_problem_from_the_best_group(api: Any) -> None:
    client, t = api
    batch = {"incidents": [
        {"id": "a1", "summary": "dns", "affects": ["dns-000001"], "openedAt": "2026-11-20T10:00:00Z"},
        {"id": "a2", "summary": "app", "affects": ["application-000001"],
         "openedAt": "2026-11-20T10:02:00Z"},
    ]}  # fmt: skip
    imported = gql(client, """mutation($incidents: [IncidentInput!]!) {
        importIncidents(incidents: $incidents) { created existing } }""",
                   t["service_desk"], **batch)["data"]["importIncidents"]  # fmt: skip
    assert imported == {"created": ["a1", "a2"], "existing": []}
    ranked = gql(client, """{ rootCauses(incidentIds: ["a1", "a2"], limit: 3) {
        incidents candidates { id class score explains silentCount tiesWith
          factors { factor value points meaning } paths { incident path } }
        groups { group incidents candidates { id } } } }""", t["viewer"])["data"]["rootCauses"]  # fmt: skip
    best = ranked["candidates"][0]
    assert sum(f["points"] for f in best["factors"]) == pytest.approx(best["score"])
    assert set(best["explains"]) == {"a1", "a2"}
    assert all(p["path"][0] == best["id"] for p in best["paths"])
    group = ranked["groups"][0]
    rec = """mutation($p: ProblemInput!) { recordProblem(problem: $p) {
        id state rootCauses incidents effectiveness { verdict } } }"""
    problem = {"id": "prb-1", "name": "from rca", "incidentIds": group["incidents"],
               "rootCauseIds": [group["candidates"][0]["id"]]}  # fmt: skip
    assert codes(gql(client, rec, t["service_desk"], p=problem)) == ["FORBIDDEN"]
    made = gql(client, rec, t["problem_manager"], p=problem)["data"]["recordProblem"]
    assert (
        made["incidents"] == ["a1", "a2"] and made["effectiveness"]["verdict"] == "not resolved yet"
    )
    ke = gql(client, """mutation { transitionProblem(id: "prb-1", action: KNOWN_ERROR,
        workaround: "flush caches", knownErrorId: "ke-1") { state knownErrors { id workaround } } }""",
             t["problem_manager"])["data"]["transitionProblem"]  # fmt: skip
    assert ke == {
        "state": "known_error",
        "knownErrors": [{"id": "ke-1", "workaround": "flush caches"}],
    }
    rfc = gql(client, """mutation { raiseChangeFromProblem(problemId: "prb-1", changeId: "rfc-1",
        name: "fix it") { id state targets { id } } }""", t["problem_manager"])  # fmt: skip
    assert rfc["data"]["raiseChangeFromProblem"]["state"] == "draft"
    trends = gql(client, '{ incidentTrends(by: CLASS, freq: "D") { period key incidents } }',
                 t["viewer"])["data"]["incidentTrends"]  # fmt: skip
    assert sum(r["incidents"] for r in trends) == 2
