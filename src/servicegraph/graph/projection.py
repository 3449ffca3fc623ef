"""The topology engine's arrays persisted beside the store, so a process opens them instead of
rebuilding them (at a million CIs the build reads every CI and relationship: 10–12 s).

One file per store: SQLite ``<file>.projection`` beside the database; Neo4j
``$XDG_CACHE_HOME/servicegraph/projections/<hash of URI and database>.projection``
(``SERVICEGRAPH_PROJECTION_DIR`` moves every projection file into one folder;
``SERVICEGRAPH_PROJECTION=off`` turns them off). The file holds the engine as the store's snapshot
at one journal seq made it, before any journal entry was applied: a JSON header (format, model
fingerprint, the seq and what the journal's entry at that seq was, the arrays' layout, a CRC-32 of
the data) and the arrays, 64-byte aligned.

Opening maps the arrays copy-on-write (``np.memmap`` mode ``c``: pages are shared between the
processes that open the file until one changes them) and the engine then replays the journal after
the seq, as after any build. The file is used only when everything matches — format, model, the
journal entry at its seq (a restored or different store has another), its size and checksum —
else the engine is rebuilt from the store and the file written anew: a stale, foreign or corrupt
file costs a rebuild, never a wrong answer. Files are written to a temporary name and renamed, so
a reader sees a whole file or none; two processes building at once both write a valid file and the
last rename wins.

The engine hands the file to :func:`write_soon`: it is written in a thread while the engine already
answers (a 1M-CI file is ~200 MB: 0.6–1.1 s to write on this repository's machine). The process
waits for it at exit; within the process, the next write of the same file starts after it, and a
read of it waits for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import threading
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from servicegraph.graph.atomic_file import atomic_write

if TYPE_CHECKING:
    from servicegraph.graph.store import GraphStore

__all__ = [
    "journal_mark",
    "model_fingerprint",
    "projection_path",
    "read",
    "wait_written",
    "write",
    "write_soon",
]

MAGIC = b"SGPROJ01"
FORMAT = 2  # 2: CI names
ALIGN = 64
_writing: dict[Path, threading.Thread] = {}  # the last write started per file
_writing_lock = threading.Lock()


def projection_path(store: GraphStore) -> Path | None:
    """Where ``store``'s projection lives (None: projections are off, or the store has no
    stable identity)."""
    if os.environ.get("SERVICEGRAPH_PROJECTION", "").lower() in ("off", "0", "false", "no"):
        return None
    folder = os.environ.get("SERVICEGRAPH_PROJECTION_DIR")
    path = getattr(store, "path", None)
    if path is not None:
        name = Path(str(path)).name + ".projection"
        return Path(folder) / name if folder else Path(str(path) + ".projection")
    uri = str(getattr(store, "uri", ""))
    if not uri:
        return None
    where = f"{uri}#{getattr(store, 'database', None) or ''}"  # one file per database
    digest = hashlib.sha256(where.encode()).hexdigest()[:20]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(folder or cache / "servicegraph" / "projections") / f"{digest}.projection"


def model_fingerprint(type_names: list[str], kinds: list[int], class_names: list[str]) -> str:
    """What the arrays' codes mean: relationship types with their impact kinds, classes."""
    text = json.dumps([type_names, kinds, class_names])
    return hashlib.sha256(text.encode()).hexdigest()


def journal_mark(store: GraphStore, seq: int) -> list[Any]:
    """The journal's entry at ``seq`` (time, operation, entity): another store, or this one
    restored from a backup, has another entry there."""
    if seq <= 0:
        return [seq]
    entries = store.journal(since=seq - 1, limit=1)
    if not entries or entries[0].seq != seq:
        return [seq, None]
    e = entries[0]
    return [seq, e.at, e.op, e.entity]


def write(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Write the file atomically (a temporary name, then a rename); the arrays' bytes go out
    through views, uncopied (three copies of each were a tenth of a 1M-CI build)."""
    layout, offset, crc = [], 0, 0
    views = [memoryview(np.ascontiguousarray(array).data).cast("B") for array in arrays.values()]
    for name, array, view in zip(arrays, arrays.values(), views, strict=True):
        layout.append({"name": name, "dtype": array.dtype.str, "shape": list(array.shape),
                       "offset": offset, "nbytes": view.nbytes})  # fmt: skip
        offset += -(-view.nbytes // ALIGN) * ALIGN
        crc = zlib.crc32(view, crc)
    head = json.dumps({**header, "format": FORMAT, "arrays": layout, "data_bytes": offset,
                       "crc32": crc}).encode()  # fmt: skip
    start = -(-(len(MAGIC) + 8 + len(head)) // ALIGN) * ALIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as out:
        out.write(MAGIC + len(head).to_bytes(8, "little") + head)
        out.write(b"\0" * (start - len(MAGIC) - 8 - len(head)))
        for view in views:
            out.write(view)
            out.write(b"\0" * (-(-view.nbytes // ALIGN) * ALIGN - view.nbytes))


def write_soon(path: Path, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """:func:`write` in a thread (not a daemon: the process waits for it at exit), after the
    write of this file started before it. The arrays must not change meanwhile (hand copies of
    those the caller changes in place). A file that cannot be written costs the next process a
    build, nothing more."""
    with _writing_lock:
        before = _writing.get(path)

        def run() -> None:
            if before is not None:
                before.join()
            with contextlib.suppress(OSError):
                write(path, header, arrays)

        thread = threading.Thread(target=run, name="servicegraph-projection-write")
        _writing[path] = thread
        thread.start()


def wait_written(path: Path) -> None:
    """Return once this process's writes of ``path`` are done."""
    with _writing_lock:
        thread = _writing.get(path)
    if thread is not None:
        thread.join()


def _crc_of(path: Path, start: int, layout: list[dict[str, Any]]) -> int:
    """The CRC-32 of the arrays, read through a mapping of their own that is closed at once (the
    pages leave this process's RSS with it; reading them into a buffer instead copied every
    byte: 0.29 s for a 1M-CI file against 0.06 s)."""
    crc = 0
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as whole:
        if hasattr(mmap, "MADV_SEQUENTIAL"):
            whole.madvise(mmap.MADV_SEQUENTIAL)
        view = memoryview(whole)
        try:
            for item in layout:
                at = start + int(item["offset"])
                end = at + int(item["nbytes"])
                if end > len(whole):
                    return -1
                crc = zlib.crc32(view[at:end], crc)
        finally:
            view.release()
    return crc


def read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The header and the arrays (memory-mapped copy-on-write), or None when the file is missing,
    of another format, truncated or corrupt."""
    wait_written(path)
    try:
        with path.open("rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                return None
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        if header.get("format") != FORMAT:
            return None
        start = -(-(len(MAGIC) + 8 + size) // ALIGN) * ALIGN
        if path.stat().st_size != start + int(header["data_bytes"]):
            return None
        if _crc_of(path, start, header["arrays"]) != header["crc32"]:
            return None
        whole = np.memmap(path, dtype=np.uint8, mode="c", offset=start,
                          shape=(int(header["data_bytes"]),))  # fmt: skip
        arrays: dict[str, np.ndarray] = {}
        for item in header["arrays"]:
            raw = whole[item["offset"] : item["offset"] + item["nbytes"]]
            # a plain ndarray over the mapping (the compiled kernels take ndarrays, not memmaps)
            arrays[item["name"]] = (
                np.asarray(raw).view(np.dtype(item["dtype"])).reshape(item["shape"])
            )
        return header, arrays
    except (OSError, ValueError, KeyError, TypeError):
        return None
