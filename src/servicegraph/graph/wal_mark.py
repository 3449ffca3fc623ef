"""Whether a SQLite store in WAL mode changed since a moment, without a statement.

Every commit to a WAL database — by any connection of any process — rewrites the *WAL-index
header*: the first 96 bytes of the ``-shm`` file, two copies of a 48-byte header holding the
last frame, its checksum, the salts and a change counter (https://www.sqlite.org/walformat.html,
"The WAL-Index Header"). SQLite's own readers compare it to learn whether their cache is stale.
:class:`WalMark` reads it through a read-only memory map, so a reader of values that change only
by commits (the journal head, a token) keeps the value with the mark it read *before* asking
SQLite, and asks again only when the mark differs. Inside a request a statement costs ~20 µs,
SQLite's caches cold; comparing 96 bytes, well under one.

**The descriptors and maps of ``-shm`` files are never closed** (:data:`_FILES`: a descriptor
and a page of memory per file, for the life of the process; a server opens one store). Closing *any* descriptor of a file drops every POSIX lock this
process holds on it — SQLite's included — and a map closes a duplicate of its descriptor when it
goes. Without its locks, another process's connection takes itself for the only one and resets
the ``-shm`` file under this process's connections (they die of SIGBUS: seen in the test suite).

A map stays valid while the store's writer connection is open: SQLite resets or deletes the
``-shm`` file only for a connection alone on the database, and the store's writer is always
there. The one exception is the store's own switch to a rollback journal for a bulk import
(``SqliteStore._leave_wal``, which deletes the file and makes a new one): the store turns its
marks off around it and maps the new file afterwards. Any doubt — no file yet, a file shorter
than the header, an error — reads as "no mark", and the caller asks SQLite.
"""

from __future__ import annotations

import mmap
import os
import threading
from pathlib import Path
from typing import Any

HEADER = 96  # both copies of the WAL-index header (the checkpoint information after them is not
# a commit's)
# (device, inode) of each -shm file opened -> [its descriptor, its map once the file is long
# enough]; never closed, see the module's docstring
_FILES: dict[tuple[int, int], list[Any]] = {}
_SPARE: list[int] = []  # descriptors opened in a race for a file already known: kept open too
_FILES_LOCK = threading.Lock()


def _mapped(path: Path) -> mmap.mmap | None:
    """The map of the file at ``path`` now (made once per file), or None."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    with _FILES_LOCK:
        entry = _FILES.get((found.st_dev, found.st_ino))
        if entry is None:
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                return None
            opened = os.fstat(fd)  # the file may have been replaced since the stat
            entry = _FILES.setdefault((opened.st_dev, opened.st_ino), [fd, None])
            if entry[0] != fd:
                _SPARE.append(fd)
        if entry[1] is None:
            try:
                if os.fstat(entry[0]).st_size >= HEADER:
                    entry[1] = mmap.mmap(entry[0], HEADER, access=mmap.ACCESS_READ)
            except (OSError, ValueError):
                return None
        return entry[1]  # type: ignore[no-any-return]


class WalMark:
    """The WAL-index header of one store's ``-shm`` file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}-shm")
        self._map: mmap.mmap | None = None
        self._off = 0  # while > 0, no marks (the store is switching its journal mode)
        self._lock = threading.Lock()

    def read(self) -> bytes | None:
        """The header now, or None when there is no mark to trust."""
        mapped = self._map
        if mapped is None:
            with self._lock:
                if self._off:
                    return None
                if self._map is None:
                    self._map = _mapped(self.path)
                mapped = self._map
            if mapped is None:
                return None
        return mapped[:HEADER]

    def off(self) -> None:
        """No marks until :meth:`on`: the ``-shm`` file may be deleted and made anew (a read
        meanwhile may still see the old one's header, which no commit changes any more: the
        store forgets what it kept when it turns them on again)."""
        with self._lock:
            self._off += 1
            self._map = None

    def on(self) -> None:
        """Marks again, from the file the path names now."""
        with self._lock:
            self._off -= 1
            self._map = None
