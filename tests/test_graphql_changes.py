"""Change and release management over GraphQL: typed rule violations, schedule, releases."""

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
              for r in ("viewer", "cmdb_editor", "change_manager")}  # fmt: skip
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        yield client, tokens


CREATE = """mutation($c: ChangeInput!) { createChange(change: $c) { id state changeType } }"""
STEP = """mutation($id: ID!, $a: ChangeAction!, $f: JSON) {
  transitionChange(id: $id, action: $a, reason: "CAB 12", fields: $f) {
    state riskScore riskLevel majorImpact targets { id class }
    assessment { totalImpacted riskFactors { factor value points detail }
                 majorImpactCriteria { criterion met } services { id status } } } }"""


def step(client: TestClient, token: str, ident: str, action: str, **fields: Any) -> dict[str, Any]:
    return gql(client, STEP, token, id=ident, a=action, f=fields or None)


def test_an_rfc_over_graphql_with_typed_rule_violations(api: Any) -> None:
    client, t = api
    new = {"id": "rfc-1", "name": "patch", "changeType": "normal", "targets": ["host-000003"]}
    assert codes(gql(client, CREATE, t["viewer"], c=new)) == ["FORBIDDEN"]
    created = gql(client, CREATE, t["cmdb_editor"], c=new)["data"]["createChange"]
    assert created == {"id": "rfc-1", "state": "draft", "changeType": "normal"}
    step(client, t["cmdb_editor"], "rfc-1", "SUBMIT")
    assessed = step(client, t["change_manager"], "rfc-1", "ASSESS")["data"]["transitionChange"]
    assert assessed["state"] == "assessed" and assessed["targets"] == [
        {"id": "host-000003", "class": "host"}
    ]
    assert {f["factor"] for f in assessed["assessment"]["riskFactors"]} >= {
        "blast_radius",
        "remediation_plan_missing",
    }
    refused = step(client, t["change_manager"], "rfc-1", "APPROVE")
    assert codes(refused) == ["RULE_VIOLATION"]
    assert refused["errors"][0]["extensions"]["rule"] == "remediation_plan_required"
    ok = step(client, t["change_manager"], "rfc-1", "APPROVE", remediation_plan="vMotion back")
    assert ok["data"]["transitionChange"]["state"] == "approved"
    illegal = step(client, t["change_manager"], "rfc-1", "CLOSE")
    assert illegal["errors"][0]["extensions"]["rule"] == "illegal_transition"
    history = gql(client, '{ change(id: "rfc-1") { history { op actor } } }', t["viewer"])
    actors = [h["actor"] for h in history["data"]["change"]["history"]]
    assert actors[0] == "cmdb_editor-user" and actors[-1] == "change_manager-user"


def test_schedule_and_release_over_graphql(api: Any) -> None:
    client, t = api
    for ident, host, start, end in (
        ("rfc-a", "host-000003", "2026-12-05T20:00:00Z", "2026-12-05T23:00:00Z"),
        ("rfc-b", "host-000004", "2026-12-05T22:00:00Z", "2026-12-06T01:00:00Z"),
    ):
        gql(client, CREATE, t["cmdb_editor"], c={"id": ident, "name": ident, "changeType": "normal",
            "targets": [host], "fields": {"remediation_plan": "revert"}})  # fmt: skip
        for action in ("SUBMIT", "ASSESS", "APPROVE"):
            step(client, t["change_manager"], ident, action)
        step(client, t["change_manager"], ident, "SCHEDULE", window_start=start, window_end=end)
    query = """{ changeSchedule(start: "2026-12-01T00:00:00Z", end: "2026-12-31T00:00:00Z") {
        changes { id windowStart } collisions { kind changes window ciCount cis reason } } }"""
    plan = gql(client, query, t["viewer"])["data"]["changeSchedule"]
    assert [c["id"] for c in plan["changes"]] == ["rfc-a", "rfc-b"]
    (collision,) = plan["collisions"]
    assert collision["changes"] == ["rfc-a", "rfc-b"] and collision["ciCount"] > 0
    bad = gql(client, '{ changeSchedule(start: "2026-12-31T00:00:00Z", end: "2026-12-01T00:00:00Z") '
              "{ changes { id } } }", t["viewer"])  # fmt: skip
    assert bad["errors"][0]["extensions"]["rule"] == "window_order"

    release = """mutation { createRelease(release: {id: "rel-1", name: "R1", releaseType: "minor",
        changes: ["rfc-a", "rfc-b"]}) { id state } }"""
    assert gql(client, release, t["change_manager"])["data"]["createRelease"]["state"] == "planned"
    deploy = 'mutation { deployRelease(id: "rel-1") { state } }'
    refused = gql(client, deploy, t["change_manager"])
    assert refused["errors"][0]["extensions"]["rule"] == "baseline_before_deployment"
    base = gql(
        client, 'mutation { baselineRelease(id: "rel-1") { id class } }', t["change_manager"]
    )
    assert base["data"]["baselineRelease"]["class"] == "baseline"
    assert gql(client, deploy, t["change_manager"])["data"]["deployRelease"]["state"] == "deployed"
    report = gql(client, '{ releaseIncidents(id: "rel-1", days: 7) }', t["viewer"])
    assert report["data"]["releaseIncidents"]["incidents"] == []
    trends = gql(client, "{ changeTrends }", t["viewer"])["data"]["changeTrends"]
    assert sum(r["changes"] for r in trends) == 2
