"""Columns of text as one byte string each, matched without a Python object per value.

A store can hand over a column as its values' UTF-8 joined by NUL bytes (SQLite's
``group_concat``): one object instead of millions. These compiled loops find where each value
starts, check that a column is strictly ascending (byte order is code point order in UTF-8, so
it is Python's ``sorted``), and give each value of one column its position in another — a hash
look-up, as a ``dict`` would, over the bytes. The engine's build maps four million relationship
endpoints to node positions this way.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from servicegraph.graph.kernels import compiled

__all__ = ["ascending", "joined", "positions", "starts"]

_IN_THREADS_FROM = 100_000  # values: then each column is looked up in a thread of its own
_HIGH = np.uint64(0xFFFFFFFF00000000)  # a hash table slot: the hash's high half, then the key
_LOW = np.uint64(0xFFFFFFFF)


def joined(values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (none holding a NUL) as one NUL-joined column and its :func:`starts`."""
    data = np.frombuffer("\0".join(values).encode(), dtype=np.uint8)
    at = starts(data, len(values))
    if at is None:
        raise ValueError(f"a value holds a NUL byte: {[v for v in values if chr(0) in v]!r}")
    return data, at


def starts(blob: bytes | np.ndarray | None, count: int) -> np.ndarray | None:
    """Where each of the ``count`` NUL-separated values of ``blob`` starts, with one more entry
    one past the end (value i is ``blob[s[i]:s[i + 1] - 1]``); None when ``blob`` does not hold
    exactly ``count`` values (a value with a NUL byte in it)."""
    if count == 0:
        return np.zeros(1, dtype=np.int64) if blob is None or len(blob) == 0 else None
    if blob is None:
        return None
    data = np.frombuffer(blob, dtype=np.uint8) if isinstance(blob, bytes) else blob
    found = _starts(data, count)
    return found if found.size else None


@compiled
def _starts(blob: np.ndarray, count: int) -> np.ndarray:
    out = np.empty(count + 1, dtype=np.int64)
    out[0] = 0
    k = 1
    for i in range(blob.size):
        if blob[i] == 0:
            if k == count:
                return np.empty(0, dtype=np.int64)
            out[k] = i + 1
            k += 1
    if k != count:
        return np.empty(0, dtype=np.int64)
    out[count] = blob.size + 1
    return out


@compiled
def ascending(blob: np.ndarray, at: np.ndarray) -> bool:
    """Whether the values are strictly ascending in byte order (sorted and distinct)."""
    for k in range(at.size - 2):
        if _compare(blob, at[k], at[k + 1] - 1, blob, at[k + 1], at[k + 2] - 1) >= 0:
            return False
    return True


@compiled
def _compare(a: np.ndarray, alo: int, ahi: int, b: np.ndarray, blo: int, bhi: int) -> int:
    n = min(ahi - alo, bhi - blo)
    for i in range(n):
        x, y = a[alo + i], b[blo + i]
        if x != y:
            return -1 if x < y else 1
    return (ahi - alo) - (bhi - blo)


@compiled
def _hash(blob: np.ndarray, lo: int, hi: int) -> np.uint64:
    h = np.uint64(14695981039346656037)  # FNV-1a
    prime = np.uint64(1099511628211)
    for i in range(lo, hi):
        h = (h ^ np.uint64(blob[i])) * prime
    return h


def positions(keys: np.ndarray, key_at: np.ndarray, *columns: tuple[np.ndarray, np.ndarray]
              ) -> list[np.ndarray]:  # fmt: skip
    """For each value of each column (its text and :func:`starts`), the position of the equal
    key (-1 when there is none); the keys are distinct."""
    table = _table(keys, key_at)
    if len(columns) == 1 or sum(at.size for _, at in columns) < _IN_THREADS_FROM:
        return [_positions(table, keys, key_at, values, at) for values, at in columns]
    with ThreadPoolExecutor(len(columns), thread_name_prefix="positions") as pool:  # nogil loops
        return list(pool.map(lambda column: _positions(table, keys, key_at, *column), columns))


@compiled
def _table(keys: np.ndarray, key_at: np.ndarray) -> np.ndarray:
    """Open addressing, a slot per power of two above twice the keys: the key's position in
    the low 32 bits, the high half of its hash above (0: empty)."""
    n = key_at.size - 1
    size = 16
    while size < 2 * n:
        size *= 2
    mask = np.uint64(size - 1)
    table = np.zeros(size, dtype=np.uint64)
    for k in range(n):
        h = _hash(keys, key_at[k], key_at[k + 1] - 1)
        slot = h & mask
        while table[slot] != 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = (h & _HIGH) | np.uint64(k + 1)
    return table


@compiled
def _positions(table: np.ndarray, keys: np.ndarray, key_at: np.ndarray, values: np.ndarray,
               value_at: np.ndarray) -> np.ndarray:  # fmt: skip
    mask = np.uint64(table.size - 1)
    m = value_at.size - 1
    hashes = np.empty(m, dtype=np.uint64)  # first all hashes, then the probes: more of the
    for q in range(m):  # probes' cache misses overlap when little work sits between them
        hashes[q] = _hash(values, value_at[q], value_at[q + 1] - 1)
    out = np.empty(m, dtype=np.int32)
    for q in range(m):
        lo, hi = value_at[q], value_at[q + 1] - 1
        if (
            q > 0
            and hashes[q] == hashes[q - 1]
            and _compare(values, lo, hi, values, value_at[q - 1], lo - 1) == 0
        ):
            out[q] = out[q - 1]  # a sorted column's runs
            continue
        h = hashes[q]
        slot = h & mask
        found = -1
        while table[slot] != 0:
            entry = table[slot]
            if entry & _HIGH == h & _HIGH:
                k = int(entry & _LOW) - 1
                if _compare(keys, key_at[k], key_at[k + 1] - 1, values, lo, hi) == 0:
                    found = k
                    break
            slot = (slot + np.uint64(1)) & mask
        out[q] = found
    return out
