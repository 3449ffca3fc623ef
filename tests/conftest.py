"""Fixtures: a fresh SQLite file per test, and a real Neo4j 5.26 for the session.

The Neo4j server comes from ``SERVICEGRAPH_TEST_NEO4J_URI`` when set, else it is started from the
Maven Central test harness (tests/neo4j_server). When ``CI`` is set a server that cannot start fails
the run. The graph is wiped before each test, but only in a database these tests marked as theirs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicegraph.graph.model import Model, load_model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from tests.neo4j_server import server as neo4j_server

MARKER = "ServicegraphTestMarker"


@pytest.fixture(scope="session")
def model() -> Model:
    return load_model()


@pytest.fixture(scope="session")
def neo4j_uri() -> Iterator[str]:
    external = os.environ.get("SERVICEGRAPH_TEST_NEO4J_URI")
    if external:
        yield external
        return
    try:
        srv = neo4j_server.start()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the Neo4j test server could not start: {exc}")
        pytest.skip(f"Neo4j test server could not start (outside CI only): {exc}")
    try:
        yield srv.uri
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_uri: str) -> Iterator[object]:
    from neo4j import GraphDatabase

    driver = GraphDatabase.driver(neo4j_uri, auth=None, notifications_min_severity="OFF")
    records, _, _ = driver.execute_query(
        f"OPTIONAL MATCH (m:{MARKER}) WITH count(m) AS marked "
        "OPTIONAL MATCH (n) WHERE NOT n:" + MARKER + " RETURN marked, count(n) AS others"
    )
    if records[0]["marked"] == 0 and records[0]["others"] > 0:
        pytest.fail(f"refusing to wipe {neo4j_uri}: it holds data these tests did not create")
    driver.execute_query(f"MERGE (:{MARKER})")
    yield driver
    driver.close()


def wipe_neo4j(driver: object) -> None:
    driver.execute_query(f"MATCH (n) WHERE NOT n:{MARKER} DETACH DELETE n")  # type: ignore[attr-defined]


@pytest.fixture
def sqlite_store(tmp_path: Path, model: Model) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "test.db", model)
    yield store
    store.close()


@pytest.fixture
def neo4j_store(neo4j_uri: str, neo4j_driver: object, model: Model) -> Iterator[Neo4jStore]:
    wipe_neo4j(neo4j_driver)
    store = Neo4jStore(neo4j_uri, model)
    yield store
    store.close()


@pytest.fixture
def neo4j_blocks_store(neo4j_store: Neo4jStore) -> Neo4jStore:
    """The Neo4j store journaling every write as blocks (the shape of a bulk import's slices)."""
    neo4j_store.journal_block = 1
    return neo4j_store


@pytest.fixture(params=["sqlite", "neo4j", "neo4j_blocks"])
def store(request: pytest.FixtureRequest) -> GraphStore:
    """The same test on both stores (the contract suite), Neo4j's journal in both its shapes."""
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


@pytest.fixture
def reopen_empty(request: pytest.FixtureRequest, tmp_path: Path, model: Model):  # type: ignore[no-untyped-def]
    """A function giving an empty store of the same kind as ``store`` (for round trips)."""
    opened: list[GraphStore] = []

    def make() -> GraphStore:
        if request.node.callspec.params.get("store") in ("neo4j", "neo4j_blocks"):
            wipe_neo4j(request.getfixturevalue("neo4j_driver"))
            s: GraphStore = Neo4jStore(request.getfixturevalue("neo4j_uri"), model)
        else:
            s = SqliteStore(tmp_path / f"empty{len(opened)}.db", model)
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()
