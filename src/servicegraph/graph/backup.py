"""Backups: everything a store holds — CIs with their versions, relationships, the whole journal
and the API tokens — in one SQLite file, whichever store it came from.

From the embedded store the copy is SQLite's online backup (consistent while a server writes);
from Neo4j it is the same logical content read in one transaction through the store contract.
A restore loads such a file into an empty store (or, with ``replace``, discards what it holds),
in one transaction on SQLite; the journal is copied as it was, so history, baselines and as-of
answers are the same after a restore.
"""

from __future__ import annotations

from pathlib import Path

from servicegraph.errors import NotFound, RuleViolation, StoreCorrupt
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore

__all__ = ["backup", "restore"]


def backup(store: GraphStore, path: str | Path) -> dict[str, int]:
    """Write a backup of ``store`` to the new file ``path``; return what it holds."""
    target = Path(path)
    if target.exists():
        raise RuleViolation(
            "backup_to_new_file", f"{target} exists; give a new file name (nothing is overwritten)"
        )
    if isinstance(store, SqliteStore):
        store.backup_to(target)
    else:
        with SqliteStore(target, store.model) as copy:
            copy.load_dump(store.dump())
    with SqliteStore(target, store.model) as copy:
        return _summary(copy)


def restore(store: GraphStore, path: str | Path, replace: bool = False) -> dict[str, int]:
    """Load the backup at ``path`` into ``store`` (empty, unless ``replace``)."""
    source_path = Path(path)
    if not source_path.is_file():
        raise NotFound("backup file", str(source_path))
    with SqliteStore(source_path, store.model) as source:
        problems = source.integrity_problems()
        if problems:
            raise StoreCorrupt(f"the backup {source_path} is damaged: {'; '.join(problems[:5])}")
        dump = source.dump()
        store.load_dump(dump, replace=replace)
        return _summary(source)


def _summary(store: GraphStore) -> dict[str, int]:
    dump = store.dump()
    return {
        "cis": len(dump.cis),
        "relationships": len(dump.relationships),
        "journal_entries": len(dump.journal),
        "tokens": len(dump.tokens),
    }
