"""Scale-out: two ``servicegraph serve`` processes on one store (a SQLite file, a Neo4j) behave as
one service — a write through either is in the other's next impact (each engine catches up from
the shared journal), and a token revoked on the store is refused by both at once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import create_token, revoke_tokens
from tests.test_everyday import _free_port, wait_until_serving

IMPACT = 'query { impact(ciIds: ["host-1"]) { totalImpacted impacted { ci { id } status } } }'
ADD = """mutation { upsertCis(cis: [{id: "vm-2", class: "vm", name: "vm two"}]) { created }
  addRelationships(relationships: [{source: "vm-2", type: "HOSTED_ON", target: "host-1"}]) {
  created } }"""


def _db(store: GraphStore) -> str:
    path = getattr(store, "path", None)
    return str(path) if path is not None else str(store.uri)


@contextmanager
def serving(db: str, *extra: str) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "servicegraph.api.cli", "serve", "--db", db, "--port", str(port),
         *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


def ask(url: str, token: str, query: str) -> dict[str, Any]:
    response = httpx.post(url + "/graphql", json={"query": query},
                          headers={"Authorization": f"Bearer {token}"}, timeout=60)  # fmt: skip
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.timeout(300)
def test_two_servers_on_one_store_act_as_one(store: GraphStore) -> None:
    store.upsert([CI("host-1", "host", "h1"), CI("vm-1", "vm", "vm one")],
                 [Relationship("vm-1", "HOSTED_ON", "host-1")])  # fmt: skip
    editor = create_token(store, "editor", "cmdb_editor")
    viewer = create_token(store, "viewer", "viewer")
    with serving(_db(store)) as first, serving(_db(store)) as second:
        before = ask(second, viewer, IMPACT)["data"]["impact"]
        assert {r["ci"]["id"] for r in before["impacted"]} == {"vm-1"}
        wrote = ask(first, editor, ADD)
        assert "errors" not in wrote, wrote
        after = ask(second, viewer, IMPACT)["data"]["impact"]  # the other server's next impact
        assert {r["ci"]["id"] for r in after["impacted"]} == {"vm-1", "vm-2"}
        assert ask(first, viewer, IMPACT)["data"]["impact"]["totalImpacted"] == 2
        revoke_tokens(store, user="viewer", actor="admin")  # as `servicegraph token revoke` does
        for url in (first, second):
            refused = ask(url, viewer, IMPACT)
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert "revoked" in refused["errors"][0]["message"]
        assert "errors" not in ask(second, editor, IMPACT)  # other tokens still work


@pytest.mark.timeout(300)
def test_serve_with_worker_processes_answers_alike_from_each(sqlite_store: GraphStore) -> None:
    sqlite_store.upsert([CI("host-1", "host", "h1"), CI("vm-1", "vm", "vm one")],
                        [Relationship("vm-1", "HOSTED_ON", "host-1")])  # fmt: skip
    editor = create_token(sqlite_store, "editor", "cmdb_editor")
    with serving(_db(sqlite_store), "--workers", "2") as url:
        assert "errors" not in ask(url, editor, ADD)
        # requests spread over both workers: every one of them sees the write
        totals = {ask(url, editor, IMPACT)["data"]["impact"]["totalImpacted"] for _ in range(20)}
        assert totals == {2}
