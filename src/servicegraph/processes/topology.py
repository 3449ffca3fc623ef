"""Dependency maps: the CIs around a root, upstream (what depends on it, towards the services),
downstream (what it depends on, towards the infrastructure) or both, with the relationships among
them, ready for a graph library (labelled for people and written as files in ``api.maps``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from servicegraph.graph.records import RelKey

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["DependencyMap", "dependency_map"]

MapDirection = Literal["UPSTREAM", "DOWNSTREAM", "BOTH"]


@dataclass(frozen=True)
class DependencyMap:
    root: str
    direction: MapDirection
    nodes: dict[str, int]  # CI id -> hops from the root
    edges: list[RelKey]


def dependency_map(
    engine: TopologyEngine,
    root: str,
    direction: MapDirection = "DOWNSTREAM",
    max_depth: int | None = None,
    types: Collection[str] | None = None,
) -> DependencyMap:
    """The CIs within ``max_depth`` hops of ``root`` in ``direction`` (BOTH: the union of the two,
    each at its nearer distance) and the edges among them."""
    if direction == "BOTH":
        nodes = engine.reach([root], "up", max_depth, types)
        for ident, hops in engine.reach([root], "down", max_depth, types).items():
            nodes[ident] = min(hops, nodes.get(ident, hops))
    else:
        nodes = engine.reach(
            [root], "down" if direction == "DOWNSTREAM" else "up", max_depth, types
        )
    return DependencyMap(root, direction, nodes, engine.edges_among(list(nodes), types))
