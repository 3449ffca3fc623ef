"""Fixtures for the adversarial suite: a demo estate behind the real app, and its tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servicegraph.api.limits import Limits
from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.graph.model import Model
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate


@dataclass
class Api:
    client: TestClient
    sg: ServiceGraph
    tokens: dict[str, str]
    path: Path

    def post(self, query: str, role: str | None = "admin", **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        response = self.client.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``servicegraph`` entry point in a process of its own, no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "servicegraph.api.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "300", **(env or {})},
    )


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]


def make_api(path: Path, model: Model, limits: Limits | None = None) -> Iterator[Api]:
    store = SqliteStore(path, model)
    if store.is_empty():
        store.write(generate_estate(400, seed=3), "demo")
    tokens = {
        role: create_token(store, f"{role}-user", role)
        for role in ("viewer", "cmdb_editor", "change_manager", "admin")
    }
    sg = ServiceGraph(store)
    with TestClient(create_app(sg, limits or Limits())) as client:
        yield Api(client, sg, tokens, path)
    store.close()


@pytest.fixture
def api(tmp_path: Path, model: Model) -> Iterator[Api]:
    yield from make_api(tmp_path / "adversarial.db", model)
