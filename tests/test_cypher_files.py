"""Every file in cypher/ is valid Cypher for the real server and is used by the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from servicegraph.graph.cypher import CYPHER_DIR, statements
from servicegraph.graph.neo4j_store import _journal_query

SOURCES = "\n".join(p.read_text() for p in Path("src/servicegraph").rglob("*.py"))
FILES = sorted(CYPHER_DIR.glob("*.cypher"))


def test_there_are_cypher_files() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_cypher_file_is_used_by_the_code(path: Path) -> None:
    assert f'"{path.stem}"' in SOURCES, f"{path.name} is not referenced by any module"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_each_cypher_file_compiles_on_neo4j(path: Path, neo4j_driver: object) -> None:
    if path.stem in ("journal", "journal_filtered"):  # the block look-up is filled in two ways
        for by_entity in (True, False):
            text = _journal_query(path.stem, by_entity, path.stem == "journal_filtered")
            driver_run(neo4j_driver, "EXPLAIN " + text)
        return
    for stmt in statements(path.stem):
        if stmt.upper().startswith(("CREATE CONSTRAINT", "CREATE INDEX", "CREATE FULLTEXT")):
            driver_run(
                neo4j_driver, stmt
            )  # schema commands cannot be EXPLAINed; they are idempotent
        else:
            text = stmt.replace("__TYPE__", "DEPENDS_ON").replace("__MAX_DEPTH__", "")
            text = text.replace("__IMPACT_TYPES__", "DEPENDS_ON|RUNS_ON")
            text = text.replace("__SORT__", "name").replace("__CMP__", ">")
            text = text.replace("__DIRECTION__", "ASC")
            driver_run(neo4j_driver, "EXPLAIN " + text)


def driver_run(driver: object, text: str) -> None:
    driver.execute_query(text)  # type: ignore[attr-defined]
