"""No request can make the server do unbounded work: cost, body size, items, ids, errors, time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicegraph.api import limits
from servicegraph.api.graphql.schema import build_schema
from servicegraph.api.limits import Limits, estimate
from servicegraph.graph.model import Model
from tests.adversarial.conftest import Api, codes, make_api


def test_the_fifteen_alias_flood_is_refused_before_any_work(api: Api) -> None:
    fields = " ".join(
        f'a{i}: impact(ciIds: ["cluster-000008"], first: 100000) '
        "{ impacted { ci { id relationships { source { id } target { id } } } } }"
        for i in range(15)
    )
    started = time.perf_counter()
    body = api.post("{ " + fields + " }", role="viewer")
    assert time.perf_counter() - started < 2
    assert codes(body) == ["QUERY_TOO_COSTLY"]
    ext = body["errors"][0]["extensions"]
    assert ext["cost"] > ext["limit"] == 1_000_000
    assert f"{ext['limit']:,}" in body["errors"][0]["message"]


def test_ordinary_queries_stay_under_the_cost_limit(api: Api) -> None:
    query = (
        '{ impact(ciIds: ["cluster-000008"], first: 100000) { totalImpacted '
        "impacted { ci { id name class } status distance path } services { service { id } } } }"
    )
    body = api.post(query, role="viewer")
    assert "errors" not in body and body["data"]["impact"]["totalImpacted"] > 0


def test_cost_counts_variables_fragments_and_defaults() -> None:
    from graphql import parse

    schema = build_schema()._schema
    doc = parse(
        'query($n: Int) { impact(ciIds: ["a", "b"], first: $n) { ...F } '
        "cis { edges { node { id } } } } fragment F on Impact { impacted { status } }"
    )
    cost, items, introspects = estimate(schema, doc, None, {"n": 1000})
    # impact (1) + 2 ids + impacted (1000) + status (1000) + cis (1) + edges (50) + node (50) + id (50)
    assert cost == 1 + 2 + 1000 + 1000 + 1 + 50 + 50 + 50
    assert (items, introspects) == (0, False)
    assert estimate(schema, doc, None, {"n": 10})[0] == cost - 2 * 990


def test_the_cost_of_one_query_text_follows_its_variables(api: Api) -> None:
    """The server keeps a text's cost per shape of its variables: the same text with a page
    size that is too large is refused, again with a small one answered."""
    fields = " ".join(
        f'a{i}: impact(ciIds: ["cluster-000008"], first: $n) {{ impacted {{ ci {{ id }} }} }}'
        for i in range(15)
    )
    query = "query($n: Int!) { " + fields + " }"
    for n, refused in ((5, False), (100_000, True), (5, False), (100_000, True)):
        body = api.post(query, role="viewer", n=n)
        assert (codes(body) == ["QUERY_TOO_COSTLY"]) == refused, body
        if not refused:
            assert len(body["data"]["a14"]["impacted"]) == 5


def test_mutation_items_are_capped_across_aliases(api: Api) -> None:
    def cis(prefix: str) -> list[dict[str, Any]]:
        return [{"id": f"{prefix}-{i}", "class": "vm", "name": "v"} for i in range(600)]

    query = (
        "mutation($a: [CIInput!]!, $b: [CIInput!]!) "
        "{ x: upsertCis(cis: $a) { created } y: upsertCis(cis: $b) { created } }"
    )
    body = api.post(query, a=cis("a"), b=cis("b"))
    assert codes(body) == ["TOO_MANY_ITEMS"]
    assert body["errors"][0]["extensions"]["items"] == 1200
    assert api.sg.store.get_ci("a-0") is None


def test_bodies_over_the_limit_are_refused_before_reading(api: Api) -> None:
    huge = b'{"query": "{ me { user } }", "pad": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    response = api.client.post(
        "/graphql", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"query": "{ me { user } }", "pad": "'
        for _ in range(6):
            yield b"x" * (1024 * 1024)
        yield b'"}'

    streamed = api.client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'"a string"', "must be a JSON object"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"query": "\xff\xfe"}', "not UTF-8"),
        (b'{"query": "{ me { user } }", "variables": {"a": NaN}}', "not valid JSON"),
        (b"{", "not valid JSON"),
    ],
)
def test_malformed_bodies_get_a_typed_400(api: Api, body: bytes, fragment: str) -> None:
    response = api.client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "BAD_REQUEST" and fragment in error["message"]


def test_impact_seeds_are_capped_and_error_lists_are_short(api: Api) -> None:
    body = api.post("query($ids: [ID!]!) { impact(ciIds: $ids) { totalImpacted } }",
                    ids=[f"nope-{i}" for i in range(300_000)])  # fmt: skip
    assert codes(body) == ["VALIDATION_FAILED"] and "at most 10,000" in str(body)
    response = api.client.post(
        "/graphql",
        json={"query": "query($ids: [ID!]!) { impact(ciIds: $ids) { totalImpacted } }",
              "variables": {"ids": [f"nope-{i}" for i in range(5000)]}},
        headers={"Authorization": f"Bearer {api.tokens['viewer']}"},
    )  # fmt: skip
    assert len(response.content) < 50_000
    ext = response.json()["errors"][0]["extensions"]
    assert ext["problemCount"] == 5000 and len(ext["problems"]) == 100


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        ("query($f: Int!) { cis(first: $f) { edges { cursor } } }", {"f": "abc"}, "Int cannot represent"),
        ("query($f: Int!) { cis(first: $f) { edges { cursor } } }", {}, "was not provided"),
        ('query($d: MapDirection!) { dependencyMap(rootId: "vm-000001", direction: $d) { nodes { id } } }',
         {"d": "SIDEWAYS"}, "does not exist in 'MapDirection'"),
    ],
)  # fmt: skip
def test_bad_variables_are_the_clients_error(
    api: Api, query: str, variables: dict[str, Any], message: str
) -> None:
    body = api.post(query, role="viewer", **variables)
    assert codes(body) == ["BAD_USER_INPUT"]
    assert message in body["errors"][0]["message"] or "provided" in body["errors"][0]["message"]


def test_validation_errors_carry_a_code(api: Api) -> None:
    body = api.post("{ nonsense }", role="viewer")
    assert codes(body) == ["GRAPHQL_VALIDATION"]
    assert codes(api.post("{ me { user ", role="viewer")) == ["GRAPHQL_PARSE_FAILED"]


@pytest.fixture
def slow_api(tmp_path: Path, model: Model) -> Iterator[Api]:
    yield from make_api(tmp_path / "slow.db", model, Limits(request_timeout=0.3))


def test_a_request_stops_at_its_time_budget(slow_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = slow_api.sg.engine
    real = engine.labels

    def slow_labels(ids: Any) -> Any:  # slow work inside the resolver, as a loaded server's
        time.sleep(0.5)
        return real(ids)

    monkeypatch.setattr(engine, "labels", slow_labels)
    # a large request (in a worker thread) and a quick one (on the event loop) alike
    for first in (10_000, 5):
        started = time.perf_counter()
        body = slow_api.post(
            f'{{ impact(ciIds: ["cluster-000008"], first: {first}) {{ impacted {{ ci {{ id }} }} }} }}',
            role="viewer",
        )
        assert codes(body) == ["QUERY_TIMEOUT"]
        assert body["errors"][0]["extensions"]["budgetSeconds"] == 0.3
        assert time.perf_counter() - started < 5
    monkeypatch.setattr(engine, "labels", real)
    assert "errors" not in slow_api.post("{ me { user } }", role="viewer")  # the server goes on


@pytest.mark.parametrize("mode", ["authenticated", "off"])
def test_introspection_follows_its_setting(tmp_path: Path, model: Model, mode: str) -> None:
    for api in make_api(tmp_path / "i.db", model, Limits(introspection=mode)):
        query = "{ __schema { queryType { name } } }"
        anonymous = api.post(query, role=None)
        expected = "UNAUTHENTICATED" if mode == "authenticated" else "INTROSPECTION_DISABLED"
        assert codes(anonymous) == [expected]
        with_token = api.post(query, role="viewer")
        if mode == "authenticated":
            assert with_token["data"]["__schema"]["queryType"]["name"] == "Query"
        else:
            assert codes(with_token) == ["INTROSPECTION_DISABLED"]
        assert api.post("{ __typename }", role=None)["data"] == {"__typename": "Query"}


def test_health_tells_strangers_nothing_about_the_store(api: Api) -> None:
    anonymous = api.client.get("/health").json()
    assert anonymous == {"status": "ok"}
    known = api.client.get("/health", headers={"Authorization": f"Bearer {api.tokens['viewer']}"})
    assert known.json()["store"].endswith("adversarial.db")


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "  bEaReR"])
def test_the_bearer_scheme_is_caseless(api: Api, scheme: str) -> None:
    response = api.client.post(
        "/graphql",
        json={"query": "{ me { user } }"},
        headers={"Authorization": f"{scheme} {api.tokens['viewer']}"},
    )
    assert response.json()["data"]["me"]["user"] == "viewer-user"


def test_what_the_server_keeps_per_query_text_does_not_keep_the_text(api: Api) -> None:
    """Costs, plans, selections and parsed documents are kept per query text to spare work on
    the next request — named by a digest, never by the text: thousands of long texts (comments
    pass the token limit) would otherwise hold gigabytes."""
    from servicegraph.api import quick
    from servicegraph.api.graphql import fast_lists, schema
    from servicegraph.api.limits import _COSTS

    padding = "#" + "x" * 90_000 + "\n"
    for i in range(3):
        query = f'{padding}{{ impact(ciIds: ["cluster-000008"], first: {i + 1}) {{ impacted {{ ci {{ id }} }} }} }}'
        body = api.post(query, role="viewer")
        assert len(body["data"]["impact"]["impacted"]) == i + 1

    def sizes(value: object) -> list[int]:
        if isinstance(value, str | bytes):
            return [len(value)]
        if isinstance(value, tuple):
            return [n for part in value for n in sizes(part)]
        return []

    memos = (_COSTS, schema._ASKED, fast_lists._PLANS, quick._QUICK, schema._PARSED,
             schema._VALIDATED)  # fmt: skip
    for memo in memos:
        assert all(n < 1_000 for key in memo._items for n in sizes(key))
    assert all(
        document.loc is None or len(document.loc.source.body) <= 20_000
        for document in schema._PARSED._items.values()
    )


def test_a_query_text_padded_past_the_limit_is_refused_before_it_is_parsed(api: Api) -> None:
    query = "#" + "x" * 100_000 + "\n{ me { role } }"
    body = api.post(query, role="viewer")
    assert codes(body) == ["QUERY_TOO_LARGE"]
    ext = body["errors"][0]["extensions"]
    assert ext["length"] == len(query) and ext["limit"] == 100_000
    assert "SERVICEGRAPH_MAX_QUERY_CHARS" in body["errors"][0]["message"]
    assert (
        api.post("#" + "x" * 90_000 + "\n{ me { role } }", role="viewer")["data"]["me"]["role"]
        == "viewer"
    )


def test_a_large_answer_is_built_in_pieces_each_checking_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``paced`` builds a large answer in order, a piece at a time, and checks the request's
    time budget before each piece: one that runs out half-way stops at the next piece."""
    monkeypatch.setattr(limits, "PACE", 10)
    pieces: list[tuple[int, int]] = []

    def build(start: int, stop: int) -> list[int]:
        pieces.append((start, stop))
        return list(range(start, stop))

    with limits.deadline(60):
        assert limits.paced(build, 25) == list(range(25))
    assert pieces == [(0, 10), (10, 20), (20, 25)]
    pieces.clear()

    def slow(start: int, stop: int) -> list[int]:
        time.sleep(0.05)
        return build(start, stop)

    with limits.deadline(0.12), pytest.raises(limits.QueryTimeout):
        limits.paced(slow, 100)  # ten pieces: 0.5 s
    assert 2 <= len(pieces) <= 4
