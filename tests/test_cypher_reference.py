"""The Cypher reference query (ANY SHORTEST quantified path) agrees with the topology engine."""

from __future__ import annotations

import pytest

from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.processes.demo import generate_estate


@pytest.mark.parametrize("max_depth", [None, 3])
def test_the_reference_query_and_the_engine_reach_the_same_cis(
    neo4j_store: Neo4jStore, max_depth: int | None
) -> None:
    neo4j_store.write(generate_estate(1200, seed=4))
    neo4j_store.retire(["vm-000010", "cluster-000009"])
    engine = TopologyEngine(neo4j_store)
    impact_types = [
        t for t, s in neo4j_store.model.relationship_types.items() if s.impact != "none"
    ]
    for seeds in (["storage-array-000001"], ["host-000005", "dns-000001"], ["switch-000001"]):
        cypher = neo4j_store.impact_reference(seeds, max_depth)
        propagation = engine.propagate(seeds, max_depth)
        impacted = {engine.ids[v] for v in propagation.nodes.tolist()}
        assert set(cypher) == impacted and cypher, seeds
        bfs = engine.reach(seeds, "up", max_depth, impact_types)
        assert cypher == {k: v for k, v in bfs.items() if v > 0}
