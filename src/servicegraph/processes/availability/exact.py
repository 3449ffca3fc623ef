"""Exact availability by a binary decision diagram of the structure function, and Monte Carlo.

The BDD (CUDD through ``dd``; ``dd``'s pure-Python BDD where CUDD is missing) has one variable per
component ("the component itself is up"). Shared components and k-of-n groups are exact: the
diagram is the function, not a series-parallel approximation. From it in linear passes:

* the probability that the service is up;
* Birnbaum importance of every component (∂A/∂p_c) in one top-down pass;
* minimal cut sets up to order 3 by Rauzy's recursion on the diagram (the structure is monotone).

Past :data:`MAX_EXACT_COMPONENTS` components, or when the diagram outgrows
:data:`MAX_BDD_NODES`, :func:`monte_carlo` samples component states (vectorised) and gives a 95 %
Wilson interval instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from graphlib import CycleError, TopologicalSorter
from itertools import combinations
from typing import Any

import networkx as nx
import numpy as np

from servicegraph.processes.availability.structure import Structure

__all__ = ["MAX_BDD_NODES", "MAX_EXACT_COMPONENTS", "ExactModel", "TooLarge", "monte_carlo"]

MAX_EXACT_COMPONENTS = 5_000
MAX_BDD_NODES = 2_000_000


class TooLarge(Exception):
    """The diagram grew past the exact method's bounds: use Monte Carlo."""


def _bdd_manager() -> Any:
    try:
        from dd.cudd import BDD

        # A service closure needs a few MiB; CUDD's default reservation took ~3 ms a manager.
        manager = BDD(memory_estimate=64 * 2**20, initial_cache_size=2**16)
    except ImportError:  # pragma: no cover - the wheel ships CUDD on common platforms
        from dd.autoref import BDD

        manager = BDD()
    # The depth-first variable order keeps a service's stack together; CUDD's automatic sifting
    # cost far more than it saved on service closures (measured on the demo: 601 ms -> 90 ms).
    manager.configure(reordering=False)
    return manager


class ExactModel:
    """The structure of one service as a BDD, with its probability and what derives from it."""

    def __init__(self, structure: Structure) -> None:
        if len(structure.nodes) > MAX_EXACT_COMPONENTS:
            raise TooLarge(f"{len(structure.nodes)} components")
        self.structure = structure
        self.bdd = _bdd_manager()
        self.names = {n: f"c{i}" for i, n in enumerate(_order(structure))}
        self.components = {v: n for n, v in self.names.items()}
        self.bdd.declare(*self.names.values())
        self.up = self._build()
        self.f = self.up[structure.root]
        self._p: dict[int, float] = {}

    # -- building ---------------------------------------------------------------------------------
    def _build(self) -> dict[str, Any]:
        bdd = self.bdd
        up: dict[str, Any] = {}
        for step, members in enumerate(_components_in_order(self.structure)):  # deps first
            for n in members:  # greatest fixpoint: a cycle that nothing failed stays up
                up[n] = bdd.var(self.names[n])
            for _ in range(len(members)):
                changed = False
                for n in members:
                    new = bdd.var(self.names[n]) & self._conditions(n, up)
                    if new != up[n]:
                        up[n], changed = new, True
                if not changed:
                    break
            if step % 512 == 511 and len(bdd) > MAX_BDD_NODES:  # len() costs: now and then
                raise TooLarge(f"the diagram has more than {MAX_BDD_NODES:,} nodes")
        if len(bdd) > MAX_BDD_NODES:
            raise TooLarge(f"the diagram has more than {MAX_BDD_NODES:,} nodes")
        return up

    def _conditions(self, n: str, up: dict[str, Any]) -> Any:
        s, bdd = self.structure, self.bdd
        result = bdd.true
        for d in s.required[n]:
            result &= up[d]
        members = s.redundant[n]
        if members:
            k = s.min_up[n]
            all_up = bdd.true
            for d in members:
                all_up &= up[d]
            result &= all_up | _at_least(bdd, [up[d] for d in members], k)
        return result

    # -- probability ------------------------------------------------------------------------------
    def probability(self, f: Any = None) -> float:
        return self._prob(self.f if f is None else f)

    def _prob(self, u: Any) -> float:
        bdd = self.bdd
        if u == bdd.true:
            return 1.0
        if u == bdd.false:
            return 0.0
        key = int(u)
        cached = self._p.get(key)
        if cached is not None:
            return cached
        p = self.structure.p[self.components[u.var]]
        hi, lo = _children(u)
        value = p * self._prob(hi) + (1 - p) * self._prob(lo)
        self._p[key] = value
        return value

    def birnbaum(self) -> dict[str, float]:
        """∂A/∂p_c for every component: one top-down pass over the diagram's nodes (each edge
        pointer, complemented or not, is a node with its own cofactors)."""
        bdd = self.bdd
        found: dict[int, Any] = {}
        stack = [self.f]
        while stack:
            u = stack.pop()
            if u == bdd.true or u == bdd.false or int(u) in found:
                continue
            found[int(u)] = u
            stack.extend(_children(u))
        reach = dict.fromkeys(found, 0.0)  # probability of reaching each node from the root
        if int(self.f) in reach:
            reach[int(self.f)] = 1.0
        importance = dict.fromkeys(self.structure.nodes, 0.0)
        for u in sorted(found.values(), key=lambda v: bdd.level_of_var(v.var)):
            weight = reach[int(u)]
            comp = self.components[u.var]
            p = self.structure.p[comp]
            hi, lo = _children(u)
            importance[comp] += weight * (self._prob(hi) - self._prob(lo))
            for child, w in ((hi, p), (lo, 1 - p)):
                if int(child) in reach:
                    reach[int(child)] += weight * w
        return importance

    def restricted(self, failed: set[str]) -> Any:
        """The function with these components failed."""
        return self.bdd.let({self.names[c]: False for c in failed}, self.f)

    # -- cut sets ---------------------------------------------------------------------------------
    def minimal_cut_sets(self, max_order: int = 3) -> list[frozenset[str]]:
        """Minimal sets of components whose failure alone takes the service down, up to
        ``max_order`` components (Rauzy's decomposition of a monotone function)."""
        memo: dict[tuple[int, int], list[frozenset[str]]] = {}
        bdd = self.bdd

        def mcs(u: Any, k: int) -> list[frozenset[str]]:
            if u == bdd.false:
                return [frozenset()]
            if u == bdd.true or k == 0:
                return []
            key = (int(u), k)
            if key in memo:
                return memo[key]
            comp = self.components[u.var]
            hi, lo = _children(u)
            without = mcs(hi, k)
            known = set(without)  # cut sets have at most max_order members: test their subsets
            with_x = [c | {comp} for c in mcs(lo, k - 1) if not _has_subset_in(c, known)]
            memo[key] = without + with_x
            return memo[key]

        return sorted(mcs(self.f, max_order), key=lambda c: (len(c), sorted(c)))


def _components_in_order(structure: Structure) -> list[list[str]]:
    """The closure's strongly connected components, dependencies first. Most closures have no
    cycle: the standard library's topological sort; networkx's condensation otherwise."""
    deps = {n: structure.required[n] + structure.redundant[n] for n in structure.nodes}
    try:
        return [[n] for n in TopologicalSorter(deps).static_order()]
    except CycleError:
        graph = nx.DiGraph()
        graph.add_nodes_from(structure.nodes)
        graph.add_edges_from((n, d) for n, ds in deps.items() for d in ds)
        condensed = nx.condensation(graph)
        return [sorted(condensed.nodes[c]["members"])
                for c in reversed(list(nx.topological_sort(condensed)))]  # fmt: skip


def _has_subset_in(cut: frozenset[str], known: set[frozenset[str]]) -> bool:
    """Whether a set in ``known`` is a subset of ``cut`` (cuts hold at most three members)."""
    if not known:
        return False
    if cut in known or frozenset() in known:
        return True
    members = tuple(cut)
    if any(frozenset((m,)) in known for m in members):
        return True
    return len(members) == 3 and any(frozenset(pair) in known for pair in combinations(members, 2))


def _children(u: Any) -> tuple[Any, Any]:
    """The cofactors (x up, x down) of ``u``, complement edges resolved."""
    hi, lo = u.high, u.low
    if u.negated:
        return ~hi, ~lo
    return hi, lo


def _at_least(bdd: Any, functions: list[Any], k: int) -> Any:
    """At least ``k`` of ``functions`` hold (dynamic programming over the list)."""
    if k <= 0:
        return bdd.true
    if k > len(functions):
        return bdd.false
    # row[j]: at least j of the functions seen so far hold
    row = [bdd.true] + [bdd.false] * k
    for f in functions:
        for j in range(k, 0, -1):
            row[j] = (f & row[j - 1]) | (~f & row[j])
    return row[k]


def _order(structure: Structure) -> Iterator[str]:
    """Variable order: depth-first from the root (related components stay close)."""
    seen: set[str] = set()
    stack = [structure.root]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        yield n
        stack.extend(reversed(structure.required[n] + structure.redundant[n]))
    yield from (n for n in structure.nodes if n not in seen)


def monte_carlo(
    structure: Structure, samples: int = 200_000, seed: int = 1
) -> tuple[float, tuple[float, float]]:
    """Availability by sampling component states (vectorised), with a 95 % Wilson interval."""
    rng = np.random.default_rng(seed)
    nodes = structure.nodes
    index = {n: i for i, n in enumerate(nodes)}
    p = np.array([structure.p[n] for n in nodes])
    order = _components_in_order(structure)
    up_total = 0
    chunk = 20_000
    for start in range(0, samples, chunk):
        n_s = min(chunk, samples - start)
        own = rng.random((len(nodes), n_s)) < p[:, None]
        up = own.copy()
        for members in order:
            for _ in range(len(members)):
                for n in members:
                    i = index[n]
                    state = own[i].copy()
                    for d in structure.required[n]:
                        state &= up[index[d]]
                    reds = structure.redundant[n]
                    if reds:
                        count = np.sum([up[index[d]] for d in reds], axis=0)
                        state &= (count == len(reds)) | (count >= structure.min_up[n])
                    up[i] = state
        up_total += int(up[index[structure.root]].sum())
    a = up_total / samples
    z = 1.959963984540054
    denom = 1 + z * z / samples
    centre = (a + z * z / (2 * samples)) / denom
    half = z * math.sqrt(a * (1 - a) / samples + z * z / (4 * samples * samples)) / denom
    return a, (max(0.0, centre - half), min(1.0, centre + half))


def brute_force(structure: Structure) -> float:
    """Exact availability by enumerating every component state (tests only: 2^n)."""
    nodes = structure.nodes
    total = 0.0
    for r in range(len(nodes) + 1):
        for failed in combinations(nodes, r):
            down = set(failed)
            prob = math.prod((1 - structure.p[n]) if n in down else structure.p[n] for n in nodes)
            if prob and structure.is_up(down):
                total += prob
    return total
