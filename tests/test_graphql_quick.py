"""POST /graphql answers quick queries directly (servicegraph.api.quick): for every request, the
response — status, headers that matter, JSON body, errors and their codes — is the one strawberry's
own path gives, and the requests it does not know how to answer go that way untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servicegraph.api import limits, quick, server
from servicegraph.graph.model import Model
from tests.adversarial.conftest import Api, make_api

IMPACT = """query($ids: [ID!]!, $first: Int = 20) { impact(ciIds: $ids, first: $first) {
  totalImpacted impacted { ci { id name class } status distance path }
  services { service { id name } status } warnings { ci attribute } } }"""
WHOLE = """query($ids: [ID!]!) { impact(ciIds: $ids) { totalImpacted
  impacted { ci { id } path } slas { sla { id } services } customers { customer { id } slas } } }"""
TWO_OPERATIONS = """query A { me { role } }
query B($id: ID!) { ci(id: $id) { id name class attributes } }"""


@pytest.fixture
def api(tmp_path: Path, model: Model) -> Iterator[Api]:
    yield from make_api(tmp_path / "quick.db", model)


def cases(api: Api) -> list[tuple[str, dict[str, Any], dict[str, str], bool]]:
    """(name, JSON body, headers, answered directly) for requests a client sends."""
    engine = api.sg.engine
    host = next(i for i in engine.ids if i.startswith("host-"))
    vm = next(i for i in engine.ids if i.startswith("vm-"))
    viewer = {"Authorization": f"Bearer {api.tokens['viewer']}"}
    return [
        ("impact", {"query": IMPACT, "variables": {"ids": [host], "first": 5}}, viewer, True),
        ("impact, charset", {"query": IMPACT, "variables": {"ids": [vm]}},
         {**viewer, "Content-Type": "application/json; charset=utf-8"}, True),
        ("ci and me", {"query": f'{{ ci(id: "{vm}") {{ id name }} me {{ user role }} }}'}, viewer,
         True),
        ("operation B of two", {"query": TWO_OPERATIONS, "operationName": "B",
                                "variables": {"id": vm}}, viewer, True),
        ("unknown CI", {"query": IMPACT, "variables": {"ids": ["nope"]}}, viewer, True),
        ("ci null", {"query": '{ ci(id: "nope") { id } }'}, viewer, True),
        ("no token", {"query": "{ me { role } }"}, {}, True),
        ("unknown token", {"query": "{ me { role } }"}, {"Authorization": "Bearer zz"}, True),
        ("whole impact", {"query": WHOLE, "variables": {"ids": [host]}}, viewer, False),
        ("page over the limit", {"query": IMPACT, "variables": {"ids": [vm], "first": 10**7}},
         viewer, False),  # costs more than a quick query: the small lane
        ("variables of a wrong type", {"query": IMPACT, "variables": {"ids": [{"a": 1}]}}, viewer, True),
        ("unknown field", {"query": "{ me { role nope } }"}, viewer, False),
        ("does not parse", {"query": "{ me { "}, viewer, False),
        ("no operation named so", {"query": TWO_OPERATIONS, "operationName": "C"}, viewer, False),
        ("extensions", {"query": "{ me { role } }", "extensions": {"x": 1}}, viewer, False),
        ("variables not an object", {"query": "{ me { role } }", "variables": [1]}, viewer, False),
        ("streaming accept", {"query": "{ me { role } }"},
         {**viewer, "Accept": "multipart/mixed"}, False),
        ("a mutation", {"query": 'mutation { retireCis(ids: ["nope"]) { updated } }'}, viewer,
         False),
    ]  # fmt: skip


def send(api: Api, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, Any]:
    response = api.client.post("/graphql", json=body, headers=headers)
    return response.status_code, response.headers["content-type"], response.json()


def test_a_quick_query_answered_directly_is_answered_as_strawberry_answers_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    executed: list[str] = []
    real = quick.execute

    def counted(*args: Any, **kwargs: Any) -> Any:
        executed.append(current)
        return real(*args, **kwargs)

    monkeypatch.setattr(quick, "execute", counted)
    direct: dict[str, tuple[int, str, Any]] = {}
    for current, body, headers, _ in cases(api):
        direct[current] = send(api, body, headers)
    assert executed == [name for name, _, _, answered in cases(api) if answered]

    monkeypatch.setattr(server, "answer", _no_answer)  # strawberry's path only
    for name, body, headers, _ in cases(api):
        assert send(api, body, headers) == direct[name], name
    status, _, impact = direct["impact"]
    assert status == 200 and impact["data"]["impact"]["totalImpacted"] > 5
    assert [e["extensions"]["code"] for e in direct["unknown CI"][2]["errors"]] == ["NOT_FOUND"]
    assert direct["no token"][2]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert direct["variables of a wrong type"][2]["errors"][0]["extensions"]["code"] == (
        "BAD_USER_INPUT"
    )


async def _no_answer(*args: Any) -> None:
    return None


def test_an_unexpected_error_on_the_direct_path_is_masked_and_logged(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> None:  # a bug, as the server would meet it
        raise RuntimeError("engine internals: /secret/path")

    vm = next(i for i in api.sg.engine.ids if i.startswith("vm-"))
    monkeypatch.setattr(api.sg.engine, "propagate", broken)
    body = {"query": IMPACT, "variables": {"ids": [vm]}}
    headers = {"Authorization": f"Bearer {api.tokens['viewer']}"}
    status, _, answered = send(api, body, headers)
    assert status == 200 and answered["data"] is None
    assert answered["errors"] == [
        {
            "message": "Unexpected error.",
            "locations": [{"line": 1, "column": 41}],
            "path": ["impact"],
            "extensions": {"code": "INTERNAL_SERVER_ERROR"},
        }
    ]
    assert "/secret/path" in caplog.text  # for the operator, not the client
    monkeypatch.setattr(server, "answer", _no_answer)
    assert send(api, body, headers) == (status, "application/json", answered)


def test_a_quick_query_whose_answer_proves_large_runs_again_in_a_thread(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the loop, an impact reaching more than QUICK_MAX_IMPACTED CIs gives way right after
    its propagation: the request is answered in a worker thread, whole; it is propagated twice,
    not three times (strawberry's path does not try the loop again)."""
    host = next(i for i in api.sg.engine.ids if i.startswith("host-"))
    expected = api.sg.impact([host]).total_impacted
    monkeypatch.setattr(limits, "QUICK_MAX_IMPACTED", 2)
    engine = api.sg.engine
    propagations: list[list[str]] = []
    propagate = engine.propagate

    def counted(seeds: list[str], *args: Any, **kwargs: Any) -> Any:
        propagations.append(seeds)
        return propagate(seeds, *args, **kwargs)

    monkeypatch.setattr(engine, "propagate", counted)
    threads: list[str] = []
    real = server.anyio.to_thread.run_sync

    async def in_thread(work: Any, *args: Any, **kwargs: Any) -> Any:
        threads.append(getattr(work, "__name__", ""))
        return await real(work, *args, **kwargs)

    monkeypatch.setattr(server.anyio.to_thread, "run_sync", in_thread)
    body = api.post(IMPACT, role="viewer", ids=[host], first=3)
    assert len(body["data"]["impact"]["impacted"]) == 3
    assert body["data"]["impact"]["totalImpacted"] == expected > 2
    assert threads == ["work"] and propagations == [[host], [host]]
    vm_body = api.post("{ me { role } }", role="viewer")  # the next quick one: on the loop
    assert vm_body["data"]["me"]["role"] == "viewer" and threads == ["work"]
