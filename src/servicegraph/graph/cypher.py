"""The Cypher the Neo4j store runs, one query per file in the project's ``cypher/`` folder."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

__all__ = ["CYPHER_DIR", "query", "statements", "typed_query"]


def _cypher_dir() -> Path:
    here = Path(__file__).resolve()
    packaged = here.parent.parent / "cypher"  # installed wheel: servicegraph/cypher
    return packaged if packaged.is_dir() else here.parents[3] / "cypher"  # source checkout


CYPHER_DIR = _cypher_dir()
_REL_TYPE = re.compile(r"[A-Z][A-Z0-9_]*")


@cache
def query(name: str) -> str:
    """The text of ``cypher/<name>.cypher``."""
    return (CYPHER_DIR / f"{name}.cypher").read_text("utf-8")


def typed_query(name: str, rel_type: str) -> str:
    """A query whose ``__TYPE__`` placeholder becomes ``rel_type`` (a checked identifier)."""
    if not _REL_TYPE.fullmatch(rel_type):
        raise ValueError(f"not a relationship type name: {rel_type!r}")
    return query(name).replace("__TYPE__", rel_type)


def statements(name: str) -> list[str]:
    """The ``;``-separated statements of a file, without ``//`` comment lines."""
    lines = [ln for ln in query(name).splitlines() if not ln.lstrip().startswith("//")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
