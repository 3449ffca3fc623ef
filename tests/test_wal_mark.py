"""The SQLite store keeps its journal head and known tokens between commits (graph/wal_mark.py):
whatever commits — another connection, another process, a token's revocation — the next read
sees it; while nothing commits, no statement is run for them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from servicegraph.errors import Unauthenticated
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Batch
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes import interchange
from servicegraph.processes.access import authenticate, create_token, revoke_tokens, token_hash
from servicegraph.processes.demo import generate_estate
from tests.test_streamed_import import CHUNK, as_file


def one_ci(i: int) -> Batch:
    return Batch(cis=[CI(id=f"srv-{i}", cls="host", name=f"srv {i}")])


def statements(store: SqliteStore) -> list[str]:
    """The statements this thread's reader runs from now on."""
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_the_head_follows_every_commit_and_is_not_read_again_without_one(
    tmp_path: Path, model: Model
) -> None:
    path = tmp_path / "marks.db"
    with SqliteStore(path, model) as store, SqliteStore(path, model) as other:
        store.write(one_ci(0), "me")
        head = store.head_seq()
        seen = statements(store)
        assert [store.head_seq() for _ in range(3)] == [head] * 3
        assert not [s for s in seen if "journal" in s]  # nothing committed: no statement
        for i in range(1, 30):  # another connection's commits, each seen at once
            other.write(one_ci(i), "other")
            assert store.head_seq() == head + i == other.head_seq()
        assert len([s for s in seen if "journal" in s]) == 29
        store.write(one_ci(99), "me")  # this store's own writer
        assert store.head_seq() == head + 30
        code = (
            "import sys; from servicegraph.graph.sqlite_store import SqliteStore; "
            "from servicegraph.graph.model import load_model; "
            "from servicegraph.graph.records import CI, Batch; "
            "s = SqliteStore(sys.argv[1], load_model()); "
            "s.write(Batch(cis=[CI(id='srv-p', cls='host', name='p')]), 'process'); s.close()"
        )
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, timeout=120)
        assert store.head_seq() == head + 31  # another process's


def test_a_token_revoked_elsewhere_is_refused_at_the_next_request(
    tmp_path: Path, model: Model
) -> None:
    path = tmp_path / "tokens.db"
    with SqliteStore(path, model) as store, SqliteStore(path, model) as other:
        token = create_token(store, "ana", "viewer")
        header = f"Bearer {token}"
        assert authenticate(store, header).user == "ana"  # notes its use: a commit
        assert authenticate(store, header).user == "ana"
        seen = statements(store)
        assert authenticate(store, header).user == "ana"
        assert not [s for s in seen if "api_tokens" in s]  # kept: nothing committed
        unknown = "Bearer " + "x" * 40
        for _ in range(2):  # unknown tokens are looked up each time, never kept
            with pytest.raises(Unauthenticated, match="not known"):
                authenticate(store, unknown)
        assert len([s for s in seen if "api_tokens" in s]) == 2
        assert len(revoke_tokens(other, user="ana", actor="admin")) == 1
        with pytest.raises(Unauthenticated, match="revoked"):
            authenticate(store, header)
        assert store.find_token(token_hash(token)).revoked_at is not None  # type: ignore[union-attr]


def test_a_head_read_in_an_older_snapshot_is_not_kept(tmp_path: Path, model: Model) -> None:
    """In a read transaction SQLite answers from the snapshot it began with: that head is not
    kept as the head of the file's present state."""
    path = tmp_path / "snapshot.db"
    with SqliteStore(path, model) as store, SqliteStore(path, model) as other:
        store.write(one_ci(0), "me")
        head = store.head_seq()
        db = store._db
        db.execute("BEGIN")
        db.execute("SELECT count(*) FROM cis").fetchone()  # the snapshot begins
        other.write(one_ci(1), "other")
        assert store.head_seq() == head  # the snapshot's
        db.execute("COMMIT")
        assert store.head_seq() == head + 1


def test_after_an_import_written_directly_the_head_follows_commits_again(
    tmp_path: Path, model: Model
) -> None:
    """A direct import leaves WAL for a rollback journal (SQLite deletes the -shm file and makes
    a new one on return): the marks follow the new file."""
    path = tmp_path / "direct.db"
    store = SqliteStore(path, model)
    store.stream_chunk = CHUNK
    before = store.head_seq()
    estate = generate_estate(100)
    interchange.import_files(store, [as_file(tmp_path / "estate.json", estate)])
    head = store.head_seq()
    assert head > before
    with SqliteStore(path, model) as other:
        for i in range(3):
            other.write(one_ci(i), "other")
            assert store.head_seq() == head + i + 1
    store.close()


DMS = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)
except OSError:
    sys.exit(1)
sys.exit(0)
"""
CHILD = """
import sqlite3, subprocess, sys
from servicegraph.graph.model import load_model
from servicegraph.graph.records import CI, Batch
from servicegraph.graph.sqlite_store import SqliteStore

path, DMS = sys.argv[1], sys.argv[2]
def one(i):
    return Batch(cis=[CI(id=f"srv-{i}", cls="host", name=f"srv {i}")])
a = SqliteStore(path, load_model())
a.write(one(0), "a")
a.head_seq()  # maps the -shm file
b = SqliteStore(path, load_model())
b.head_seq()
b.close()  # this process's other connections keep their locks
# SQLite's "dead man switch": a shared lock on byte 128 of the -shm file while a connection
# is open; a process that can lock it exclusively takes itself for the only one and resets the file
dms = subprocess.run([sys.executable, "-c", DMS, path + "-shm"])
assert dms.returncode == 1, "another process could take the -shm file for its own"
peek = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('SELECT 1 FROM cis').fetchall(); c.close()"
subprocess.run([sys.executable, "-c", peek, path], check=True)
for i in range(1, 4):
    a.write(one(i), "a")
    assert a.head_seq() == i + 1, a.head_seq()
print("ok")
"""


def test_a_mark_keeps_sqlite_locks_another_process_relies_on(tmp_path: Path) -> None:
    """Closing any descriptor of the -shm file would drop this process's POSIX locks on it,
    SQLite's too: another process closing its connection would then take itself for the last
    one and delete the WAL and -shm files under this process's live connections — the writes
    after that would be lost (or the process killed by SIGBUS). The marks' files stay open."""
    path = tmp_path / "locks.db"
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), DMS], capture_output=True, text=True, timeout=120
    )
    assert child.returncode == 0 and child.stdout.strip() == "ok", child.stderr
    with sqlite3.connect(path) as db:  # what the file holds once every connection is gone
        assert db.execute("SELECT count(*) FROM cis").fetchone()[0] == 4
        assert db.execute("SELECT max(seq) FROM journal").fetchone()[0] == 4
