"""Compiled inner loops of the topology engine (numba): failure propagation over CSR arrays.

Level-synchronous numpy frontiers spent most of a hub's propagation on temporary arrays (the
edges of a level gathered, filtered and de-duplicated a few times over). These loops visit each
edge of the affected region once, in place, and are compiled on first use (cached on disk).

Work is proportional to the affected region, not to the graph: the per-node arrays are a
:class:`Scratch` the engine keeps between analyses, and every entry an analysis touched is reset
before it returns (the engine's lock serialises analyses).

The rules are the engine's (see ``engine.py``): DOWN is the least fixpoint, level by level; the
level a node turns DOWN at is its distance and the dependency that turned it its cause. Every
other node reached is DEGRADED at its breadth-first hop count, caused by the node it was first
reached from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numba import njit

__all__ = [
    "Csr",
    "Reached",
    "Scratch",
    "closure_csr",
    "compiled",
    "down_set_csr",
    "expand_csr",
    "propagate_csr",
    "stable_order",
    "warm_up",
    "warm_up_soon",
]

REQUIRED, REDUNDANT = 0, 1
_NO_CAP = 2**62
F = TypeVar("F", bound=Callable[..., Any])


def compiled(fn: F) -> F:
    """numba-compiled and cached on disk; where numba finds no writable cache location (a
    read-only install without a usable HOME or NUMBA_CACHE_DIR) it raises at decoration, and the
    loops are then compiled in each process instead."""
    try:
        return njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]
    except RuntimeError:  # "cannot cache function …: no locator available for file …"
        return njit(nogil=True)(fn)  # type: ignore[return-value]


Csr = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ptr, neighbour, kind, edge alive


class Scratch(NamedTuple):
    """Per-node working arrays. Between analyses ``level`` and ``hops`` are -1 for the nodes that
    take part and -2 for those that do not (retired, deleted), and ``red_down`` is 0."""

    level: np.ndarray  # DOWN level, -1 = not DOWN
    hops: np.ndarray  # breadth-first hops, -1 = not reached
    red_down: np.ndarray  # redundant dependencies found DOWN
    down_cause: np.ndarray
    parent: np.ndarray
    down_queue: np.ndarray
    reach_queue: np.ndarray
    touched: np.ndarray  # nodes whose red_down was raised

    @classmethod
    def of(cls, alive: np.ndarray) -> Scratch:
        """Working arrays for the nodes of ``alive`` (True: takes part)."""

        def empty() -> np.ndarray:
            return np.empty(alive.size, dtype=np.int32)

        unvisited = np.where(alive, np.int32(-1), np.int32(-2)).astype(np.int32)
        zeros = np.zeros(alive.size, dtype=np.int32)
        return cls(unvisited, unvisited.copy(), zeros, empty(), empty(), empty(), empty(), empty())


class Reached(NamedTuple):
    """The impacted nodes, ascending (``nodes``), with their facts, and the order of the answer."""

    nodes: np.ndarray
    down: np.ndarray
    distance: np.ndarray
    down_cause: np.ndarray  # the dependency that turned a DOWN node DOWN (-1 for DEGRADED)
    parent: np.ndarray  # the node each was first reached from, breadth first
    order: np.ndarray  # indices into the above by (distance, node)


@compiled
def _start(seeds: np.ndarray, mark: np.ndarray, queue: np.ndarray) -> int:
    """Put the seeds in ``queue``, each marked 0; return the queue's length."""
    for i, s in enumerate(seeds):
        mark[s] = 0
        queue[i] = s
    return seeds.size


@compiled
def _down_walk(base: Csr, over: Csr, nred: np.ndarray, min_up: np.ndarray, seeds: np.ndarray,
               limit: int, s: Scratch, cap: int) -> tuple[int, int]:  # fmt: skip
    """DOWN levels; returns (nodes in the down queue, nodes in ``touched``). Stops after the level
    at which the queue holds ``cap`` nodes or more (the DOWN set is then at least that large)."""
    tail = _start(seeds, s.level, s.down_queue)
    head, level, touched = 0, 0, 0
    while head < tail and level < limit and tail < cap:
        end = tail
        while head < end:
            u = s.down_queue[head]
            head += 1
            for csr in (base, over):
                ptr, nbr, kind, alive_edge = csr
                for e in range(ptr[u], ptr[u + 1]):
                    v = nbr[e]
                    if s.level[v] != -1 or not alive_edge[e]:
                        continue
                    k = kind[e]
                    if k == REDUNDANT:
                        if s.red_down[v] == 0:
                            s.touched[touched] = v
                            touched += 1
                        s.red_down[v] += 1
                        if nred[v] - s.red_down[v] >= min_up[v]:
                            continue
                    elif k != REQUIRED:
                        continue
                    s.level[v] = level + 1
                    s.down_cause[v] = u
                    s.down_queue[tail] = v
                    tail += 1
        level += 1
    return tail, touched


@compiled
def _reach_walk(base: Csr, over: Csr, seeds: np.ndarray, limit: int, s: Scratch) -> int:
    """Breadth-first hops; returns the number of nodes in the reach queue (seeds first)."""
    tail = _start(seeds, s.hops, s.reach_queue)
    head = 0
    while head < tail:
        u = s.reach_queue[head]
        head += 1
        if s.hops[u] >= limit:
            continue
        for csr in (base, over):
            ptr, nbr, kind, alive_edge = csr
            for e in range(ptr[u], ptr[u + 1]):
                v = nbr[e]
                if s.hops[v] != -1 or not alive_edge[e]:
                    continue
                k = kind[e]
                if k != REQUIRED and k != REDUNDANT:
                    continue
                s.hops[v] = s.hops[u] + 1
                s.parent[v] = u
                s.reach_queue[tail] = v
                tail += 1
    return tail


@compiled
def _collect(s: Scratch, first: int, tail: int) -> tuple[np.ndarray, ...]:
    """The reached nodes after the seeds, ascending, with their facts and the answer's order."""
    count = tail - first
    n = s.hops.size
    if count * 16 > n:  # a large region: one sequential scan beats sorting it
        nodes = np.empty(count, dtype=np.int32)
        i = 0
        for v in range(n):
            if s.hops[v] > 0:
                nodes[i] = v
                i += 1
    else:
        nodes = np.sort(s.reach_queue[first:tail])
    down = np.empty(count, dtype=np.bool_)
    distance = np.empty(count, dtype=np.int32)
    down_cause = np.empty(count, dtype=np.int32)
    parent = np.empty(count, dtype=np.int32)
    top = 0
    for i in range(count):
        v = nodes[i]
        down[i] = s.level[v] > 0
        distance[i] = s.level[v] if down[i] else s.hops[v]
        down_cause[i] = s.down_cause[v] if down[i] else -1
        parent[i] = s.parent[v]
        top = max(top, distance[i])
    starts = np.zeros(top + 2, dtype=np.int64)  # a stable counting sort by distance
    for i in range(count):
        starts[distance[i] + 1] += 1
    for d in range(1, top + 2):
        starts[d] += starts[d - 1]
    order = np.empty(count, dtype=np.int64)
    for i in range(count):
        order[starts[distance[i]]] = i
        starts[distance[i]] += 1
    return nodes, down, distance, down_cause, parent, order


@compiled
def _reset(s: Scratch, alive: np.ndarray, down_tail: int, reach_tail: int, touched: int) -> None:
    for i in range(down_tail):  # a seed that does not take part goes back to -2
        v = s.down_queue[i]
        s.level[v] = -1 if alive[v] else -2
    for i in range(reach_tail):
        v = s.reach_queue[i]
        s.hops[v] = -1 if alive[v] else -2
    for i in range(touched):
        s.red_down[s.touched[i]] = 0


def propagate_csr(
    base: Csr,
    over: Csr,
    alive: np.ndarray,
    nred: np.ndarray,
    min_up: np.ndarray,
    seeds: np.ndarray,
    limit: int,
    scratch: Scratch,
) -> Reached:
    """Both walks over two reverse CSRs of impact edges: the built one and the overlay of edges
    added since (``kind`` per edge: 0 required, 1 redundant, others skipped; ``edge alive`` per
    edge). ``seeds`` must be distinct; ``scratch`` (made by :meth:`Scratch.of` from the same
    ``alive``) is left as it was found."""
    down_tail, touched = _down_walk(base, over, nred, min_up, seeds, limit, scratch, _NO_CAP)
    reach_tail = _reach_walk(base, over, seeds, limit, scratch)
    try:
        return Reached(*_collect(scratch, seeds.size, reach_tail))
    finally:
        _reset(scratch, alive, down_tail, reach_tail, touched)


def down_set_csr(
    base: Csr,
    over: Csr,
    alive: np.ndarray,
    nred: np.ndarray,
    min_up: np.ndarray,
    seed: int,
    cap: int,
    scratch: Scratch,
) -> tuple[np.ndarray, bool]:
    """The DOWN set of one failing node (itself first, then by level) — only the DOWN walk of
    :func:`propagate_csr`. With ``cap`` the walk stops once the set reaches that size; the second
    value then says the set is *at least* as large as what is returned."""
    seeds = np.array([seed], dtype=np.int32)
    tail, touched = _down_walk(base, over, nred, min_up, seeds, 1 << 30, scratch, cap)
    try:
        return scratch.down_queue[:tail].copy(), tail >= cap
    finally:
        _reset(scratch, alive, tail, 0, touched)


def closure_csr(
    base: Csr, over: Csr, alive: np.ndarray, seed: int, scratch: Scratch
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Breadth first from ``seed`` over the impact edges of two CSRs (given forward: what the
    seed depends on): the nodes (seed first), their hop counts and the node each was reached
    from (-1 for the seed)."""
    seeds = np.array([seed], dtype=np.int32)
    tail = _reach_walk(base, over, seeds, 1 << 30, scratch)
    try:
        nodes = scratch.reach_queue[:tail].copy()
        parent = scratch.parent[nodes]
        parent[0] = -1
        return nodes, scratch.hops[nodes].copy(), parent
    finally:
        _reset(scratch, alive, 0, tail, 0)


@compiled
def expand_csr(ptr: np.ndarray, nbr: np.ndarray, typ: np.ndarray, eid: np.ndarray,
               edge_alive: np.ndarray, check_alive: bool, frontier: np.ndarray,
               base_nodes: int, types: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The edges of one CSR direction at ``frontier`` (nodes from ``base_nodes`` on have none in
    it): (frontier node, neighbour, type) in frontier order, only types whose ``types`` entry is
    set and, with ``check_alive``, only edges whose ``edge_alive[eid]`` is. One pass with no
    temporaries: numpy's gather took about ten array operations, most of a small analysis's
    time."""
    total = 0
    for v in frontier:
        if 0 <= v < base_nodes:
            total += ptr[v + 1] - ptr[v]
    here = np.empty(total, dtype=frontier.dtype)
    there = np.empty(total, dtype=nbr.dtype)
    kind = np.empty(total, dtype=typ.dtype)
    k = 0
    for v in frontier:
        if not 0 <= v < base_nodes:
            continue
        for e in range(ptr[v], ptr[v + 1]):
            t = typ[e]
            if not types[t] or (check_alive and not edge_alive[eid[e]]):
                continue
            here[k], there[k], kind[k] = v, nbr[e], t
            k += 1
    return here[:k], there[:k], kind[:k]


@compiled
def stable_order(keys: np.ndarray, size: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for keys in ``range(size)``, by counting: O(n + size)
    (node positions as keys; two passes, the minor key first, are a ``lexsort``)."""
    start = np.zeros(size + 1, dtype=np.int64)
    for k in keys:
        start[k + 1] += 1
    for i in range(size):
        start[i + 1] += start[i]
    order = np.empty(keys.size, dtype=np.int64)
    for i in range(keys.size):
        k = keys[i]
        order[start[k]] = i
        start[k] += 1
    return order


_warming: threading.Thread | None = None


def warm_up_soon() -> None:
    """Load the loops in a thread of their own (once per process): numba's half second of
    loading then overlaps what the caller does next (reading the projection, opening the store),
    and the first analysis waits only for what is left of it."""
    global _warming
    if _warming is None:
        _warming = threading.Thread(target=warm_up, name="servicegraph-kernels", daemon=True)
        _warming.start()


def warm_up() -> None:
    """Compile (or load from numba's cache) every loop now, on a two-node graph, so that a
    server's first analysis does not pay for it."""
    alive = np.ones(2, dtype=bool)
    csr = (np.array([0, 0, 1], dtype=np.int64), np.array([1], dtype=np.int32),
           np.array([REQUIRED], dtype=np.int8), np.ones(1, dtype=bool))  # fmt: skip
    ones = np.ones(2, dtype=np.int32)
    seeds = np.array([1], dtype=np.int32)
    propagate_csr(csr, csr, alive, ones, ones, seeds, 1 << 30, Scratch.of(alive))
    ptr, nbr = csr[0], csr[1]  # an adjacency's arrays as the engine keeps them
    expand_csr(ptr, nbr, np.zeros(1, dtype=np.int16), np.arange(1), alive, True, np.arange(2), 2,
               alive)  # fmt: skip
