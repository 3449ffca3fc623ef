"""Property-based fuzzing of the GraphQL API: generated documents (valid ones, and ones with one
schema violation), arguments with any characters (NUL, lone surrogates, controls), and random JSON
bodies. Whatever comes in, the server answers with JSON, never HTTP 500, never a masked unexpected
error, never a traceback.

The number of generated requests per strategy is ``SERVICEGRAPH_FUZZ_EXAMPLES`` (default 1,000:
3,000 requests in all); runs are derandomised so a failure in CI reproduces, and
``SERVICEGRAPH_FUZZ_RANDOM=1`` explores new examples locally.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import hypothesis.strategies as st
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import Mode, from_schema, nodes

from servicegraph.api.graphql.schema import build_schema
from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.graph.model import load_model
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate

EXAMPLES = int(os.environ.get("SERVICEGRAPH_FUZZ_EXAMPLES", "1000"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("SERVICEGRAPH_FUZZ_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
SCHEMA = build_schema()._schema
_json_leaf = st.one_of(
    st.text(max_size=20).map(nodes.String),
    st.integers(min_value=-(2**31), max_value=2**31 - 1).map(nodes.Int),
    st.floats(allow_nan=False, allow_infinity=False).map(nodes.Float),
    st.booleans().map(nodes.Boolean),
)
_ids = st.sampled_from(
    ["vm-000001", "host-000001", "cluster-000008", "dns-000001", "service-000001", "nope", ""]
)
CUSTOM_SCALARS = {
    "JSON": st.one_of(
        _json_leaf,
        st.lists(_json_leaf, max_size=4).map(nodes.List),
        st.dictionaries(
            st.sampled_from(["os", "cpu_cores", "memory_gb", "status", "min_up", "zzz"]),
            _json_leaf,
            max_size=3,
        ).map(
            lambda d: nodes.Object(
                [
                    graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v)
                    for k, v in d.items()
                ]
            )
        ),
    ),
    "CIPath": st.lists(_ids.map(nodes.String), max_size=3).map(nodes.List),
}


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    store = SqliteStore(path, load_model())
    store.write(generate_estate(300, seed=5), "demo")
    token = create_token(store, "fuzzer", "admin")
    with TestClient(create_app(ServiceGraph(store)), raise_server_exceptions=False) as client:
        yield client, token
    store.close()


def check(client: TestClient, token: str, body: Any, raw: bytes | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    if raw is None:
        response = client.post("/graphql", json=body, headers=headers)
    else:
        response = client.post("/graphql", content=raw, headers=headers)
    assert response.status_code in (200, 400, 413), (response.status_code, body, response.text)
    payload = response.json()
    for error in payload.get("errors") or []:
        code = error.get("extensions", {}).get("code")
        assert code and code != "INTERNAL_SERVER_ERROR", (body, payload)
        assert error["message"] != "Unexpected error.", (body, payload)
        assert "Traceback" not in error["message"], (body, payload)


@FUZZ
@given(document=from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, codec=None))
def test_valid_documents_never_break_the_server(
    fuzz_api: tuple[TestClient, str], document: str
) -> None:
    check(*fuzz_api, {"query": document})


@FUZZ
@given(document=from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, codec=None, mode=Mode.NEGATIVE))
def test_invalid_documents_get_typed_client_errors(
    fuzz_api: tuple[TestClient, str], document: str
) -> None:
    check(*fuzz_api, {"query": document})


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
_variable_queries = st.sampled_from(
    [
        "query($ids: [ID!]!, $d: Int) { impact(ciIds: $ids, maxDepth: $d, first: 5) { totalImpacted } }",
        "query($f: CIFilter, $n: Int!) { cis(filter: $f, first: $n) { edges { node { id } } } }",
        "mutation($cis: [CIInput!]!) { upsertCis(cis: $cis) { created } }",
        "mutation($r: [RelationshipInput!]!) { addRelationships(relationships: $r) { created } }",
        "query($id: ID!, $d: MapDirection) { dependencyMap(rootId: $id, direction: $d) { nodes { id } } }",
    ]
)


@FUZZ
@given(
    query=_variable_queries,
    variables=st.dictionaries(st.sampled_from(["ids", "d", "f", "n", "cis", "r", "id"]), _json),
)
def test_any_variables_get_typed_answers(
    fuzz_api: tuple[TestClient, str], query: str, variables: dict[str, Any]
) -> None:
    import json

    # json.dumps writes NaN/Infinity for non-finite floats: the server must refuse them as JSON.
    raw = json.dumps({"query": query, "variables": variables}).encode("utf-8", "surrogatepass")
    check(*fuzz_api, None, raw=raw)
