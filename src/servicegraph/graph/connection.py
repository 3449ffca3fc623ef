"""Choosing and opening a store from arguments or the environment.

Neo4j when ``SERVICEGRAPH_NEO4J_URI`` is set (with ``SERVICEGRAPH_NEO4J_USER``,
``SERVICEGRAPH_NEO4J_PASSWORD``, ``SERVICEGRAPH_NEO4J_DATABASE``), else the embedded SQLite file
given by ``--db`` / ``SERVICEGRAPH_DB`` (default ``./servicegraph.db``). ``SERVICEGRAPH_MODEL`` names
extra model files (``:``-separated) that extend the shipped model.
"""

from __future__ import annotations

import os
from pathlib import Path

from servicegraph.graph.model import Model, load_model
from servicegraph.graph.store import GraphStore

__all__ = ["DEFAULT_DB", "open_store", "resolve_model"]

DEFAULT_DB = "servicegraph.db"


def resolve_model(model_files: list[str] | None = None) -> Model:
    files = list(model_files or [])
    if not files and os.environ.get("SERVICEGRAPH_MODEL"):
        files = [f for f in os.environ["SERVICEGRAPH_MODEL"].split(os.pathsep) if f]
    return load_model(*files)


def open_store(
    target: str | Path | None = None, model: Model | None = None, create: bool = True
) -> GraphStore:
    """Open the store named by ``target`` (a SQLite path or a ``bolt://``/``neo4j://`` URI) or by
    the environment. ``create=False``: a SQLite file that does not exist is an error (a mistyped
    path must not silently become an empty store)."""
    model = model or resolve_model()
    target = str(target) if target is not None else None
    uri = target if target and "://" in target else None
    if uri is None and target is None:
        uri = os.environ.get("SERVICEGRAPH_NEO4J_URI") or None
    if uri is not None:
        from servicegraph.graph.neo4j_store import Neo4jStore

        return Neo4jStore(
            uri,
            model,
            user=os.environ.get("SERVICEGRAPH_NEO4J_USER"),
            password=os.environ.get("SERVICEGRAPH_NEO4J_PASSWORD"),
            database=os.environ.get("SERVICEGRAPH_NEO4J_DATABASE"),
        )
    from servicegraph.graph.sqlite_store import SqliteStore

    path = target or os.environ.get("SERVICEGRAPH_DB") or DEFAULT_DB
    return SqliteStore(path, model, create=create)
