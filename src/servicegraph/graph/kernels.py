"""Compiled inner loops of the topology engine (numba): failure propagation over CSR arrays.

Level-synchronous numpy frontiers spend most of a hub's propagation on temporary arrays (the
edges of a level gathered, filtered and de-duplicated a few times over). These loops visit each
edge once, in place, and are compiled on first use (cached on disk by numba).

The rules are the engine's (see ``engine.py``): DOWN is the least fixpoint, level by level; the
level a node turns DOWN at is its distance and the dependency that turned it its cause. Every
other node reached is DEGRADED at its breadth-first hop count, caused by the node it was first
reached from.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["propagate_csr"]

REQUIRED, REDUNDANT = 0, 1
Csr = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # ptr, neighbour, kind, edge alive


@njit(cache=True, nogil=True)
def _start(seeds: np.ndarray, mark: np.ndarray) -> tuple[np.ndarray, int]:
    """A queue holding the seeds, each marked 0 (reached at level 0)."""
    queue = np.empty(mark.size, dtype=np.int32)
    for i, s in enumerate(seeds):
        mark[s] = 0
        queue[i] = s
    return queue, seeds.size


@njit(cache=True, nogil=True)
def _down_walk(base: Csr, over: Csr, level_of: np.ndarray, cause: np.ndarray,
               nred: np.ndarray, min_up: np.ndarray, seeds: np.ndarray, limit: int) -> None:  # fmt: skip
    """DOWN levels into ``level_of`` (-1 = not DOWN; pre-set to -2 for nodes that take no part)."""
    red_down = np.zeros(level_of.size, dtype=np.int32)
    queue, tail = _start(seeds, level_of)
    head, level = 0, 0
    while head < tail and level < limit:
        end = tail
        while head < end:
            u = queue[head]
            head += 1
            for csr in (base, over):
                ptr, nbr, kind, alive_edge = csr
                for e in range(ptr[u], ptr[u + 1]):
                    v = nbr[e]
                    if level_of[v] != -1 or not alive_edge[e]:
                        continue
                    k = kind[e]
                    if k == REDUNDANT:
                        red_down[v] += 1
                        if nred[v] - red_down[v] >= min_up[v]:
                            continue
                    elif k != REQUIRED:
                        continue
                    level_of[v] = level + 1
                    cause[v] = u
                    queue[tail] = v
                    tail += 1
        level += 1


@njit(cache=True, nogil=True)
def _reach_walk(base: Csr, over: Csr, dist: np.ndarray, parent: np.ndarray,
                seeds: np.ndarray, limit: int) -> None:  # fmt: skip
    """Breadth-first hop counts into ``dist`` (-1 = not reached; -2 pre-set for non-participants)."""
    queue, tail = _start(seeds, dist)
    head = 0
    while head < tail:
        u = queue[head]
        head += 1
        if dist[u] >= limit:
            continue
        for csr in (base, over):
            ptr, nbr, kind, alive_edge = csr
            for e in range(ptr[u], ptr[u + 1]):
                v = nbr[e]
                if dist[v] != -1 or not alive_edge[e]:
                    continue
                k = kind[e]
                if k != REQUIRED and k != REDUNDANT:
                    continue
                dist[v] = dist[u] + 1
                parent[v] = u
                queue[tail] = v
                tail += 1


@njit(cache=True, nogil=True)
def _impacted(
    level_of: np.ndarray, dist: np.ndarray, down_cause: np.ndarray, parent: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Impacted nodes ordered by (distance, index): nodes, down flags, distances, causes."""
    n = dist.size
    top = 0
    count = 0
    for v in range(n):
        if dist[v] > 0:
            d = level_of[v] if level_of[v] > 0 else dist[v]
            top = max(top, d)
            count += 1
    starts = np.zeros(top + 2, dtype=np.int64)
    for v in range(n):
        if dist[v] > 0:
            d = level_of[v] if level_of[v] > 0 else dist[v]
            starts[d + 1] += 1
    for d in range(1, top + 2):
        starts[d] += starts[d - 1]
    nodes = np.empty(count, dtype=np.int32)
    down = np.empty(count, dtype=np.bool_)
    distance = np.empty(count, dtype=np.int32)
    cause = np.empty(count, dtype=np.int32)
    for v in range(n):  # ascending v within each distance: a counting sort
        if dist[v] > 0:
            is_down = level_of[v] > 0
            d = level_of[v] if is_down else dist[v]
            i = starts[d]
            starts[d] += 1
            nodes[i] = v
            down[i] = is_down
            distance[i] = d
            cause[i] = down_cause[v] if is_down else parent[v]
    return nodes, down, distance, cause


def propagate_csr(
    base: Csr,
    over: Csr,
    alive: np.ndarray,
    nred: np.ndarray,
    min_up: np.ndarray,
    seeds: np.ndarray,
    limit: int,
) -> tuple[np.ndarray, ...]:
    """Both walks over two reverse CSRs of impact edges, the built one and the overlay of edges
    added since (``kind`` per edge: 0 required, 1 redundant, others skipped; ``edge alive`` per
    edge). Returns (nodes, down, distance, cause, down_cause, bfs_parent): the impacted nodes by
    (distance, index) with their status, distance and cause, and the per-node cause arrays."""
    unvisited = np.where(alive, np.int32(-1), np.int32(-2)).astype(np.int32)
    level_of = unvisited.copy()
    down_cause = np.full(alive.size, -1, dtype=np.int32)
    _down_walk(base, over, level_of, down_cause, nred, min_up, seeds, limit)
    dist = unvisited
    parent = np.full(alive.size, -1, dtype=np.int32)
    _reach_walk(base, over, dist, parent, seeds, limit)
    nodes, down, distance, cause = _impacted(level_of, dist, down_cause, parent)
    return nodes, down, distance, cause, down_cause, parent
