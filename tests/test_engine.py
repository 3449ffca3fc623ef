"""Failure propagation semantics, reachability and journal refresh of the topology engine."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from servicegraph.errors import NotFound, ValidationFailed
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.impact import analyse_impact


def status(engine: TopologyEngine, seeds: list[str], max_depth: int | None = None) -> dict:
    p = engine.propagate(seeds, max_depth)
    return {
        engine.ids[v]: ("DOWN" if d else "DEGRADED", dist)
        for v, d, dist in zip(p.nodes.tolist(), p.down.tolist(), p.distance.tolist(), strict=True)
    }


@pytest.fixture
def estate(sqlite_store: GraphStore) -> GraphStore:
    """svc -> app -DEPLOYED_AS-> i1, i2 (redundant); i1 -> vm1 -> hosts cluster (2 of 3 must be up);
    i2 -> vm2 -> h4 (standalone); app -> db (required); app -LOCATED_IN-> dc (none)."""
    cis = [
        CI("svc", "business_service", "Shop"),
        CI("app", "application", "Shop app"),
        CI("i1", "application_instance", "i1"),
        CI("i2", "application_instance", "i2"),
        CI("vm1", "vm", "vm1"),
        CI("vm2", "vm", "vm2"),
        CI("hc", "cluster", "hosts", {"min_up": 2}),
        *[CI(f"h{i}", "host", f"h{i}") for i in range(1, 5)],
        CI("db", "database", "db"),
        CI("dc", "datacentre", "DC"),
    ]
    rels = [
        Relationship("svc", "COMPOSED_OF", "app"),
        Relationship("app", "DEPLOYED_AS", "i1"),
        Relationship("app", "DEPLOYED_AS", "i2"),
        Relationship("i1", "RUNS_ON", "vm1"),
        Relationship("i2", "RUNS_ON", "vm2"),
        Relationship("vm1", "HOSTED_ON", "hc"),
        *[Relationship("hc", "HAS_MEMBER", f"h{i}") for i in range(1, 4)],
        Relationship("vm2", "HOSTED_ON", "h4"),
        Relationship("app", "DEPENDS_ON", "db"),
        Relationship("h1", "LOCATED_IN", "dc"),
    ]
    sqlite_store.upsert(cis, rels)
    return sqlite_store


def test_required_failure_takes_down_every_dependent(estate: GraphStore) -> None:
    assert status(TopologyEngine(estate), ["db"]) == {"app": ("DOWN", 1), "svc": ("DOWN", 2)}


def test_a_group_survives_while_min_up_members_are_up(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    one = status(engine, ["h1"])
    assert one["hc"] == ("DEGRADED", 1)
    assert one["svc"] == ("DEGRADED", 5)
    two = status(engine, ["h1", "h2"])  # 1 of 3 up < min_up 2
    assert two["hc"] == ("DOWN", 1) and two["vm1"] == ("DOWN", 2) and two["i1"] == ("DOWN", 3)
    assert two["app"] == ("DEGRADED", 4)  # its other instance is still up
    both_paths = status(engine, ["h1", "h2", "h4"])
    assert both_paths["app"] == ("DOWN", 4) and both_paths["svc"] == ("DOWN", 5)


def test_informational_relationships_do_not_propagate(estate: GraphStore) -> None:
    assert status(TopologyEngine(estate), ["dc"]) == {}


def test_paths_lead_from_a_seed_and_match_the_distance(estate: GraphStore) -> None:
    result = analyse_impact(TopologyEngine(estate), ["h1", "h2", "h4"])
    rows = {r["id"]: r for r in result.to_dict()["impacted"]}
    assert rows["svc"]["path"] in (
        ["h1", "hc", "vm1", "i1", "app", "svc"],
        ["h2", "hc", "vm1", "i1", "app", "svc"],
        ["h4", "vm2", "i2", "app", "svc"],
    )
    assert rows["svc"]["path"][-2:] == ["app", "svc"]
    for row in rows.values():
        assert row["distance"] == len(row["path"]) - 1
        assert row["path"][0] in ("h1", "h2", "h4") and row["path"][-1] == row["id"]
        for dependent, dependency in zip(row["path"][1:], row["path"], strict=False):
            assert any(
                r.source == dependent and r.target == dependency
                for r in estate.relationships_of([dependent])
            )
    assert result.services == [{"id": "svc", "status": "DOWN"}]


def test_max_depth_limits_propagation(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    assert status(engine, ["db"], max_depth=1) == {"app": ("DOWN", 1)}
    assert status(engine, ["db"], max_depth=0) == {}
    with pytest.raises(ValidationFailed, match="maxDepth"):
        engine.propagate(["db"], max_depth=-1)


def test_cycles_terminate_and_are_least_fixpoints(sqlite_store: GraphStore) -> None:
    sqlite_store.upsert(
        [CI("a", "application", "a"), CI("b", "application", "b"), CI("c", "application", "c")],
        [
            Relationship("a", "DEPENDS_ON", "b"),
            Relationship("b", "DEPENDS_ON", "a"),
            Relationship("b", "DEPENDS_ON", "c"),
        ],
    )
    engine = TopologyEngine(sqlite_store)
    assert status(engine, ["c"]) == {"b": ("DOWN", 1), "a": ("DOWN", 2)}
    assert status(engine, ["a"]) == {"b": ("DOWN", 1)}


def test_unknown_seeds_are_named(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    with pytest.raises(NotFound, match="'nope'"):
        engine.propagate(["nope"])
    with pytest.raises(ValidationFailed) as info:
        engine.propagate(["x", "y"])
    assert [p.field for p in info.value.problems] == ["x", "y"]
    with pytest.raises(ValidationFailed, match="at least one"):
        engine.propagate([])


def test_writes_are_visible_to_the_next_analysis(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    assert status(engine, ["h1", "h2"])["hc"][0] == "DOWN"
    estate.upsert([CI("hc", "cluster", "hosts", {"min_up": 1})])  # now 1 of 3 is enough
    assert status(engine, ["h1", "h2"])["hc"][0] == "DEGRADED"
    estate.upsert([CI("h5", "host", "h5")], [Relationship("vm2", "HOSTED_ON", "h5")])
    assert "vm2" in status(engine, ["h5"])
    estate.retire(["i2"])  # a retired instance is neither impacted nor an up member
    after_retire = status(engine, ["h1", "h2", "h3"])
    assert after_retire["app"] == ("DOWN", 4) and "i2" not in status(engine, ["h4"])
    estate.delete_relationships([("app", "DEPENDS_ON", "db")])
    assert status(engine, ["db"]) == {}
    estate.delete(["db"])
    with pytest.raises(NotFound):
        engine.propagate(["db"])


def test_reach_with_depth_and_type_filter(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    assert engine.reach(["svc"], "down", max_depth=2) == {
        "svc": 0,
        "app": 1,
        "i1": 2,
        "i2": 2,
        "db": 2,
    }
    assert engine.reach(["h1"], "up", types=["HAS_MEMBER"]) == {"h1": 0, "hc": 1}
    assert engine.reach(["h1"], "down") == {"h1": 0, "dc": 1}
    with pytest.raises(ValidationFailed, match="FLIES_TO"):
        engine.reach(["h1"], types=["FLIES_TO"])


def test_subgraph_to_networkx(estate: GraphStore) -> None:
    engine = TopologyEngine(estate)
    ids = list(engine.reach(["app"], "down"))
    graph = engine.subgraph(ids)
    assert set(graph.nodes) == set(ids)
    assert graph.edges["vm1", "hc"]["type"] == "HOSTED_ON"
    assert nx.is_directed_acyclic_graph(graph)
    assert graph.nodes["hc"]["class"] == "cluster"


def test_the_impacted_set_is_upward_reachability_over_impact_edges(
    sqlite_store: GraphStore,
) -> None:
    """Cross-check against networkx on a demo estate: DOWN ∪ DEGRADED == nx.ancestors."""
    sqlite_store.write(generate_estate(3000, seed=5))
    engine = TopologyEngine(sqlite_store)
    impact_types = {
        t for t, s in sqlite_store.model.relationship_types.items() if s.impact != "none"
    }
    graph = nx.DiGraph()
    graph.add_edges_from(
        (r.source, r.target) for r in sqlite_store.iter_relationships() if r.type in impact_types
    )
    for seed in ("dns-000001", "storage-array-000001", "host-000010", "vm-000100"):
        expected = nx.ancestors(graph, seed)
        assert set(status(engine, [seed])) == expected, seed


def test_both_stores_give_the_same_impact(store: GraphStore) -> None:
    store.write(generate_estate(1500, seed=11))
    engine = TopologyEngine(store)
    result = analyse_impact(engine, ["storage-array-000001", "host-000004"]).to_dict()
    reference = _sqlite_reference(store)
    assert result == reference


_REFERENCE: dict = {}


def _sqlite_reference(store: GraphStore) -> dict:
    from servicegraph.graph.sqlite_store import SqliteStore

    if not _REFERENCE:
        import tempfile

        with SqliteStore(tempfile.mktemp(suffix=".db"), store.model) as ref:
            ref.write(generate_estate(1500, seed=11))
            _REFERENCE.update(
                analyse_impact(
                    TopologyEngine(ref), ["storage-array-000001", "host-000004"]
                ).to_dict()
            )
    return _REFERENCE


def _fixpoint(store: GraphStore, seeds: list[str], max_depth: int | None) -> dict:
    """The propagation rules computed naively from the stored records: DOWN levels by Jacobi
    iteration of the definition, DEGRADED distances by breadth-first search."""
    cis = {ci.id: ci for ci in store.iter_cis()}
    alive = {i for i, ci in cis.items() if ci.status != "retired"}
    kind = {t: s.impact for t, s in store.model.relationship_types.items()}
    deps: dict[str, list[tuple[str, str]]] = {i: [] for i in cis}
    dependents: dict[str, list[str]] = {i: [] for i in cis}
    for r in store.iter_relationships():
        if kind[r.type] != "none":
            deps[r.source].append((kind[r.type], r.target))
            dependents[r.target].append(r.source)
    limit = max_depth if max_depth is not None else len(cis) + 1
    level = dict.fromkeys(seeds, 0)
    for step in range(1, limit + 1):
        turned = []
        for v in sorted(alive - set(level)):
            required = any(k == "required" and d in level for k, d in deps[v])
            redundant = [d for k, d in deps[v] if k == "redundant" and (d in alive or d in level)]
            down = sum(d in level for d in redundant)
            up = sum(d in alive and d not in level for d in redundant)
            min_up = cis[v].attributes.get("min_up", 1)
            if required or (down and up < min_up):
                turned.append(v)
        if not turned:
            break
        level.update(dict.fromkeys(turned, step))
    hops = dict.fromkeys(seeds, 0)
    frontier = list(seeds)
    while frontier and hops[frontier[0]] < limit:
        nxt = []
        for u in frontier:
            for v in dependents[u]:
                if v in alive and v not in hops:
                    hops[v] = hops[u] + 1
                    nxt.append(v)
        frontier = nxt
    return {
        v: ("DOWN", level[v]) if level.get(v, 0) > 0 else ("DEGRADED", d)
        for v, d in hops.items()
        if d > 0
    }


def test_propagation_equals_the_rules_on_random_graphs_before_and_after_writes(
    sqlite_store: GraphStore,
) -> None:
    """Random graphs of required and redundant edges with cycles, groups of various min_up,
    retired CIs, then added, removed and re-added relationships and retirements applied from the
    journal: the engine's statuses and distances are the rules' own, and every path is a chain of
    relationships from a seed."""
    import random

    rng = random.Random(20)
    ids = [f"n{i:03d}" for i in range(120)]

    def ci(i: str) -> CI:
        return CI(i, "cluster", i, {"min_up": rng.choice([1, 1, 2, 3])})

    def key() -> tuple[str, str, str]:
        s, d = rng.sample(ids, 2)
        return (s, rng.choice(["DEPENDS_ON", "HAS_MEMBER", "HAS_MEMBER"]), d)

    def rels(keys: set[tuple[str, str, str]]) -> list[Relationship]:
        return [Relationship(*k) for k in sorted(keys)]

    keys = {key() for _ in range(260)}
    sqlite_store.upsert([ci(i) for i in ids], rels(keys))
    engine = TopologyEngine(sqlite_store)

    def check() -> None:
        for _ in range(12):
            seeds = rng.sample(ids, rng.choice([1, 2, 3]))
            seeds = [s for s in seeds if sqlite_store.get_ci(s).status != "retired"] or [ids[0]]
            depth = rng.choice([None, None, 1, 2, 4])
            assert status(engine, seeds, depth) == _fixpoint(sqlite_store, seeds, depth), seeds
            p = engine.propagate(seeds, depth)
            nearest_first = list(zip(p.distance.tolist(), p.nodes.tolist(), strict=True))
            assert nearest_first == sorted(nearest_first)  # what `first` cuts keeps the nearest
            live = {(r.source, r.target) for r in sqlite_store.iter_relationships()}
            for chain, d in zip(p.paths(), p.distance.tolist(), strict=True):
                assert chain[0] in seeds and len(chain) == d + 1
                assert all((b, a) in live for a, b in itertools.pairwise(chain))
        # the neighbour look-ups (built edges, edges added since, deleted ones) are the store's
        stored = {(r.source, r.type, r.target) for r in sqlite_store.iter_relationships()}
        for _ in range(6):
            among, kind = set(rng.sample(ids, 20)), rng.choice(["DEPENDS_ON", "HAS_MEMBER"])
            typed = {(s, d) for s, t, d in stored if t == kind}
            assert sorted(engine.outgoing(among, kind)) == sorted(k for k in typed if k[0] in among)
            assert sorted(engine.incoming(among, kind)) == sorted(k for k in typed if k[1] in among)
            assert sorted(engine.edges_among(among, [kind])) == sorted(
                k for k in stored if k[1] == kind and k[0] in among and k[2] in among
            )

    check()
    for _ in range(3):  # writes after the build: overlay edges, masked edges, retirements
        gone = rng.sample(sorted(keys), 25)
        sqlite_store.delete_relationships(gone)
        added = {key() for _ in range(25)} - keys
        sqlite_store.upsert([], rels(added | set(gone[:5])))
        keys = (keys - set(gone)) | added | set(gone[:5])
        sqlite_store.retire(rng.sample(ids, 3))
        sqlite_store.upsert([ci(i) for i in rng.sample(ids, 10)])  # min_up changes
        check()
