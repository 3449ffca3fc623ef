"""The GraphQL API over HTTP (FastAPI test client): auth, queries, mutations, limits, errors."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate


class CountingStore:
    """The real store, counting the calls that go to the database (no behaviour changed)."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if callable(attr) and name in {
            "get_cis",
            "relationships_of",
            "find_cis",
            "find_relationships",
            "journal",
        }:

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] += 1
                return attr(*args, **kwargs)

            return counted
        return attr


@pytest.fixture
def api(sqlite_store: SqliteStore) -> Iterator[tuple[TestClient, dict[str, str], CountingStore]]:
    sqlite_store.write(generate_estate(1500, seed=2))
    tokens = {
        role: create_token(sqlite_store, f"{role}-user", role)
        for role in ("viewer", "cmdb_editor", "admin")
    }
    counting = CountingStore(sqlite_store)
    sg = ServiceGraph(counting)  # type: ignore[arg-type]
    with TestClient(create_app(sg)) as client:
        yield client, tokens, counting


def gql(client: TestClient, query: str, token: str | None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def test_requests_need_a_valid_token(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, tokens, _ = api
    assert codes(gql(client, "{ me { user } }", None)) == ["UNAUTHENTICATED"]
    assert codes(gql(client, "{ me { user } }", "sg_forged")) == ["UNAUTHENTICATED"]
    body = gql(client, "{ me { user role } }", tokens["viewer"])
    assert body["data"]["me"] == {"user": "viewer-user", "role": "viewer"}
    assert "Traceback" not in caplog.text  # expected failures are not logged as errors


IMPACT = """
query($ids: [ID!]!, $depth: Int) {
  impact(ciIds: $ids, maxDepth: $depth) {
    totalImpacted
    impacted { ci { id name class } status distance path }
    services { service { id name } status }
    slas { sla { id } status services }
    customers { customer { id name } slas }
  }
}"""


def test_impact_over_graphql_matches_the_python_api(api: Any) -> None:
    client, tokens, counting = api
    body = gql(client, IMPACT, tokens["viewer"], ids=["storage-array-000001"])
    assert "errors" not in body, body
    impact = body["data"]["impact"]
    sg = ServiceGraph(counting)  # type: ignore[arg-type]
    expected = sg.impact(["storage-array-000001"]).to_dict()
    assert impact["totalImpacted"] == len(expected["impacted"]) > 100
    assert [
        {"id": r["ci"]["id"], "name": r["ci"]["name"], "class": r["ci"]["class"],
         "status": r["status"], "distance": r["distance"], "path": r["path"]}
        for r in impact["impacted"]
    ] == expected["impacted"]  # fmt: skip
    assert [{"id": s["service"]["id"], "status": s["status"]} for s in impact["services"]] == (
        expected["services"]
    )
    assert [c["customer"]["id"] for c in impact["customers"]] == [
        c["id"] for c in expected["customers"]
    ]
    first = impact["impacted"][0]
    assert first["ci"]["class"] == "storage_volume" and first["ci"]["name"]


@pytest.mark.parametrize(
    ("variables", "code", "needle"),
    [
        ({"ids": ["nope"]}, "NOT_FOUND", "'nope'"),
        ({"ids": []}, "VALIDATION_FAILED", "at least one"),
        ({"ids": ["dns-000001"], "depth": -1}, "VALIDATION_FAILED", "maxDepth"),
    ],
)
def test_bad_impact_arguments_are_typed_errors(
    api: Any, variables: dict[str, Any], code: str, needle: str
) -> None:
    client, tokens, _ = api
    body = gql(client, IMPACT, tokens["viewer"], **variables)
    assert codes(body) == [code]
    assert needle in body["errors"][0]["message"]


def test_query_limits_are_enforced(api: Any) -> None:
    client, tokens, _ = api
    nested = (
        '{ ci(id: "vm-000001") { ' + "relationships { source { " * 6 + "id" + " } }" * 6 + " } }"
    )
    body = gql(client, nested, tokens["viewer"])
    assert (
        body.get("data") is None
        and "exceeds maximum operation depth" in body["errors"][0]["message"]
    )
    aliases = "{ " + " ".join(f"a{i}: me {{ user }}" for i in range(20)) + " }"
    assert "aliases" in gql(client, aliases, tokens["viewer"])["errors"][0]["message"]
    body = gql(client, "{ cis(first: 5000) { edges { cursor } } }", tokens["viewer"])
    assert (
        codes(body) == ["VALIDATION_FAILED"] and "between 1 and 500" in body["errors"][0]["message"]
    )
    huge = "{ me { " + " ".join(["user"] * 3000) + " } }"
    assert "token" in gql(client, huge, tokens["viewer"])["errors"][0]["message"].lower()


def test_cis_pages_by_cursor_with_class_and_attribute_filters(api: Any) -> None:
    client, tokens, _ = api
    query = """query($after: String) {
      cis(filter: {class: "network_device", attributes: {status: "active"}}, first: 7, after: $after) {
        edges { node { id class } } pageInfo { hasNextPage endCursor } } }"""
    seen, after = [], None
    while True:
        page = gql(client, query, tokens["viewer"], after=after)["data"]["cis"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert {n["class"] for n in seen} == {"router", "switch", "firewall", "load_balancer"}
    assert [n["id"] for n in seen] == sorted(n["id"] for n in seen)
    body = gql(
        client, '{ cis(filter: {class: "spaceship"}) { edges { cursor } } }', tokens["viewer"]
    )
    assert codes(body) == ["VALIDATION_FAILED"]
    assert codes(gql(client, '{ ci(id: "nope") { id } }', tokens["viewer"])) == ["NOT_FOUND"]


def test_a_nested_query_makes_a_bounded_number_of_store_round_trips(api: Any) -> None:
    client, tokens, counting = api
    query = """{ cis(first: 200) { edges { node { id
        relationships { type source { name } target { name class } } } } } }"""
    counting.calls.clear()
    body = gql(client, query, tokens["viewer"])
    assert "errors" not in body
    rels = [r for e in body["data"]["cis"]["edges"] for r in e["node"]["relationships"]]
    assert len(rels) > 200
    assert counting.calls == Counter({"find_cis": 1, "relationships_of": 1, "get_cis": 1})


def test_a_query_reads_the_journal_once_and_the_next_one_sees_a_write(api: Any) -> None:
    """All fields of a query answer from the graph as it was at its start (one journal read, a
    round trip on Neo4j, instead of one per analysis); a write is in the next query."""
    client, tokens, counting = api
    both = """query($a: [ID!]!, $b: [ID!]!) {
        x: impact(ciIds: $a) { totalImpacted services { service { id } } slas { sla { id } } }
        y: impact(ciIds: $b) { totalImpacted customers { customer { id } } } }"""
    ids = {"a": ["storage-array-000001"], "b": ["host-000002"]}
    counting.calls.clear()
    before = gql(client, both, tokens["viewer"], **ids)["data"]
    assert counting.calls["journal"] <= 1 and before["x"]["slas"]  # none when up to date
    new = [{"id": "vm-late", "class": "vm", "name": "late VM"}]
    assert gql(client, UPSERT, tokens["cmdb_editor"], cis=new)["data"]["upsertCis"]["created"]
    rel = [{"source": "vm-late", "type": "HOSTED_ON", "target": "host-000002"}]
    assert gql(client, ADD, tokens["admin"], rels=rel)["data"]["addRelationships"]["created"]
    counting.calls.clear()
    after = gql(client, both, tokens["viewer"], **ids)["data"]
    assert counting.calls["journal"] == 1  # the engine catches up once, for both fields
    assert after["y"]["totalImpacted"] == before["y"]["totalImpacted"] + 1


def test_impact_paths_are_there_whenever_a_fragment_asks_for_them(api: Any) -> None:
    client, tokens, counting = api
    expected = ServiceGraph(counting).impact(["host-000002"]).impacted()  # type: ignore[arg-type]
    spread = """query($ids: [ID!]!) { impact(ciIds: $ids) { ...Rows } }
        fragment Rows on Impact { impacted { ci { id } ... on ImpactedCI { path } } }"""
    inline = """query($ids: [ID!]!) { impact(ciIds: $ids) { ... on Impact {
        impacted { ci { id } steps: path } } } }"""
    rows = gql(client, spread, tokens["viewer"], ids=["host-000002"])["data"]["impact"]
    assert [r["path"] for r in rows["impacted"]] == [r["path"] for r in expected]
    rows = gql(client, inline, tokens["viewer"], ids=["host-000002"])["data"]["impact"]
    assert [r["steps"] for r in rows["impacted"]] == [r["path"] for r in expected]
    assert all(len(r["steps"]) >= 2 for r in rows["impacted"])
    bare = """query($ids: [ID!]!) { impact(ciIds: $ids) { impacted { ci { id } distance } } }"""
    rows = gql(client, bare, tokens["viewer"], ids=["host-000002"])["data"]["impact"]
    assert [r["ci"]["id"] for r in rows["impacted"]] == [r["id"] for r in expected]


def test_dependency_map_gives_nodes_and_edges(api: Any) -> None:
    client, tokens, _ = api
    query = """{ dependencyMap(rootId: "application-000002", direction: DOWNSTREAM, maxDepth: 2) {
        nodes { id name class distance } edges { source target type } } }"""
    data = gql(client, query, tokens["viewer"])["data"]["dependencyMap"]
    ids = {n["id"] for n in data["nodes"]}
    assert "application-000002" in ids and "dns-000001" in ids
    assert all(e["source"] in ids and e["target"] in ids for e in data["edges"])
    assert any(e["type"] == "DEPLOYED_AS" for e in data["edges"])
    up = """{ dependencyMap(rootId: "dns-000001", direction: UPSTREAM, maxDepth: 1) {
        nodes { id distance } } }"""
    nodes = gql(client, up, tokens["viewer"])["data"]["dependencyMap"]["nodes"]
    assert {n["distance"] for n in nodes} == {0, 1} and len(nodes) > 10


UPSERT = """mutation($cis: [CIInput!]!) { upsertCis(cis: $cis) { created updated unchanged firstSeq } }"""
ADD = """mutation($rels: [RelationshipInput!]!) { addRelationships(relationships: $rels) { created } }"""


def test_mutations_are_validated_authorised_journaled_and_seen_by_the_next_impact(api: Any) -> None:
    client, tokens, counting = api
    new = [{"id": "vm-new", "class": "vm", "name": "new VM", "attributes": {"cpu_cores": 2}}]
    assert codes(gql(client, UPSERT, tokens["viewer"], cis=new)) == ["FORBIDDEN"]
    body = gql(client, UPSERT, tokens["cmdb_editor"], cis=new)
    assert body["data"]["upsertCis"]["created"] == 1
    entry = counting.journal(entity="vm-new")[0]
    assert entry.actor == "cmdb_editor-user" and entry.op == "create_ci"

    bad = [
        {"id": "x", "class": "spaceship", "name": "x"},
        {"id": "vm-2b", "class": "vm", "name": ""},
    ]
    body = gql(client, UPSERT, tokens["cmdb_editor"], cis=bad)
    assert codes(body) == ["VALIDATION_FAILED"]
    problems = body["errors"][0]["extensions"]["problems"]
    assert {(p["location"], p["field"]) for p in problems} == {
        ("cis[0]", "class"),
        ("cis[1]", "name"),
    }
    assert counting.get_ci("x") is None

    stale = [{"id": "vm-new", "class": "vm", "name": "renamed", "version": 7}]
    assert codes(gql(client, UPSERT, tokens["cmdb_editor"], cis=stale)) == ["STALE_VERSION"]

    rel = [{"source": "vm-new", "type": "HOSTED_ON", "target": "host-000002"}]
    assert gql(client, ADD, tokens["admin"], rels=rel)["data"]["addRelationships"]["created"] == 1
    impact = gql(client, IMPACT, tokens["viewer"], ids=["host-000002"])["data"]["impact"]
    assert "vm-new" in {r["ci"]["id"] for r in impact["impacted"]}
    remove = """mutation($rels: [RelationshipKeyInput!]!) {
        removeRelationships(relationships: $rels) { deleted } }"""
    assert (
        gql(client, remove, tokens["admin"], rels=rel)["data"]["removeRelationships"]["deleted"]
        == 1
    )
    impact = gql(client, IMPACT, tokens["viewer"], ids=["host-000002"])["data"]["impact"]
    assert "vm-new" not in {r["ci"]["id"] for r in impact["impacted"]}
    retire = 'mutation { retireCis(ids: ["vm-new"]) { updated } }'
    assert gql(client, retire, tokens["cmdb_editor"])["data"]["retireCis"]["updated"] == 1


def test_unexpected_errors_are_masked(
    api: Any, sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, tokens, _ = api
    token = tokens["viewer"]
    query = '{ ci(id: "vm-000001") { id } }'
    assert gql(client, query, token)["data"]["ci"]["id"] == "vm-000001"

    def broken(*args: object, **kwargs: object) -> None:  # a bug, as the server would meet it
        raise RuntimeError("sqlite internals: /secret/path.db")

    monkeypatch.setattr(sqlite_store, "journal", broken)
    body = gql(client, "{ journal { seq } }", token)
    assert body["errors"][0]["message"] == "Unexpected error."
    assert "sqlite" not in str(body).lower() and "secret" not in str(body)


def test_graphiql_is_served_to_browsers(api: Any) -> None:
    client, _, _ = api
    page = client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert client.get("/health").json()["status"] == "ok"


def test_the_readme_example_query_runs(api: Any) -> None:
    import re
    from pathlib import Path

    client, tokens, _ = api
    example = re.search(r"```graphql\n(.*?)```", Path("README.md").read_text(), re.S)
    assert example is not None
    body = gql(client, example.group(1), tokens["viewer"])
    assert "errors" not in body, body
    impact = body["data"]["impact"]
    assert impact["totalImpacted"] > 20 and len(impact["impacted"]) == 20
