"""Service availability from the model: published cases, brute force, and the engine's own
failure propagation as the ground truth for the structure."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import ValidationFailed
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.model import load_model
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import create_token
from servicegraph.processes.availability import availability
from servicegraph.processes.availability.exact import ExactModel, brute_force
from servicegraph.processes.availability.structure import build_structure


def bridge(store: GraphStore, p: float) -> None:
    """The bridge network: components c1..c5, minimal paths {1,4}, {2,5}, {1,3,5}, {2,3,4}. The
    service needs one path (a cluster of the four path CIs, min_up 1); each path CI depends on
    its components, so components are shared between paths."""
    paths = {"p14": ["c1", "c4"], "p25": ["c2", "c5"], "p135": ["c1", "c3", "c5"],
             "p234": ["c2", "c3", "c4"]}  # fmt: skip
    cis = [CI("svc", "business_service", "svc", {"availability": 1.0}),
           CI("paths", "cluster", "paths", {"min_up": 1, "availability": 1.0})]  # fmt: skip
    cis += [CI(c, "host", c, {"availability": p}) for c in ("c1", "c2", "c3", "c4", "c5")]
    cis += [CI(name, "application", name, {"availability": 1.0}) for name in paths]
    rels = [Relationship("svc", "DEPENDS_ON", "paths")]
    rels += [Relationship("paths", "HAS_MEMBER", name) for name in paths]
    rels += [Relationship(name, "DEPENDS_ON", c) for name, cs in paths.items() for c in cs]
    store.upsert(cis, rels)


@pytest.mark.parametrize("p", [0.9, 0.95, 0.99])
def test_the_bridge_network_matches_the_textbook_formula(store: GraphStore, p: float) -> None:
    """Source: the bridge configuration of reliability textbooks (e.g. Billinton & Allan,
    Reliability Evaluation of Engineering Systems, solved by conditional probability on the
    bridging component): R = 2p² + 2p³ − 5p⁴ + 2p⁵ for five equal components. Series-parallel
    reduction cannot express it; both stores give the same answer."""
    bridge(store, p)
    result = availability(TopologyEngine(store), store, "svc")
    assert result.method == "exact"
    assert result.availability == pytest.approx(
        2 * p**2 + 2 * p**3 - 5 * p**4 + 2 * p**5, abs=1e-12
    )
    cuts = {frozenset(c["cis"]) for c in result.cut_sets}
    assert {frozenset({"c1", "c2"}), frozenset({"c4", "c5"}), frozenset({"c1", "c3", "c5"}),
            frozenset({"c2", "c3", "c4"})} <= cuts  # the bridge's minimal cut sets  # fmt: skip
    assert not [s for s in result.spofs if s["id"].startswith("c")]  # no single component


def test_k_out_of_n(sqlite_store: SqliteStore) -> None:
    """2-out-of-3 (binomial): A = 3p² − 2p³; 3-out-of-4: A = 4p³ − 3p⁴."""
    for k, n, formula in (
        (2, 3, lambda p: 3 * p**2 - 2 * p**3),
        (3, 4, lambda p: 4 * p**3 - 3 * p**4),
    ):
        cluster = f"k{k}n{n}"
        hosts = [f"{cluster}-h{i}" for i in range(n)]
        sqlite_store.upsert(
            [CI(cluster, "cluster", cluster, {"min_up": k, "availability": 1.0})]
            + [CI(h, "host", h, {"availability": 0.97}) for h in hosts],
            [Relationship(cluster, "HAS_MEMBER", h) for h in hosts],
        )
        result = availability(TopologyEngine(sqlite_store), sqlite_store, cluster)
        assert result.availability == pytest.approx(formula(0.97), abs=1e-12)
        member_cuts = [c["cis"] for c in result.cut_sets]
        assert len(member_cuts) == math.comb(n, n - k + 1)  # any n-k+1 members down
        assert all(len(c) == n - k + 1 for c in member_cuts)


def test_composite_sla_and_a_shared_component(sqlite_store: SqliteStore) -> None:
    """Azure Architecture Center, "Composite SLAs": a web app at 99.95 % on an SQL database at
    99.99 % gives 99.95 % × 99.99 % ≈ 99.94 %. Then two redundant instances on one shared VM:
    the naive product of independent paths overstates what the model can reach."""
    sqlite_store.upsert(
        [CI("web", "application", "web", {"availability": 0.9995}),
         CI("sql", "database", "sql", {"availability": 0.9999})],
        [Relationship("web", "DEPENDS_ON", "sql")],
    )  # fmt: skip
    composite = availability(TopologyEngine(sqlite_store), sqlite_store, "web").availability
    assert round(composite * 100, 2) == 99.94 and composite == pytest.approx(0.9995 * 0.9999)
    a, h = 0.99, 0.995
    sqlite_store.upsert(
        [CI("pool", "cluster", "pool", {"min_up": 1, "availability": 1.0}),
         CI("i1", "application_instance", "i1", {"availability": a}),
         CI("i2", "application_instance", "i2", {"availability": a}),
         CI("vm", "vm", "vm", {"availability": h})],
        [Relationship("pool", "HAS_MEMBER", "i1"), Relationship("pool", "HAS_MEMBER", "i2"),
         Relationship("i1", "RUNS_ON", "vm"), Relationship("i2", "RUNS_ON", "vm")],
    )  # fmt: skip
    result = availability(TopologyEngine(sqlite_store), sqlite_store, "pool")
    naive = 1 - (1 - a * h) ** 2
    assert result.availability == pytest.approx(h * (1 - (1 - a) ** 2), abs=1e-12)
    assert result.availability < naive
    assert [s["id"] for s in result.spofs] == ["vm"]
    assert {"cis": ["i1", "i2"], "probability": pytest.approx((1 - a) ** 2)} in result.cut_sets
    top = result.importance[0]
    assert top["id"] == "vm"  # what to make redundant first
    assert top["birnbaum"] == pytest.approx(1 - (1 - a) ** 2)


def test_what_if_changes_figures_and_writes_nothing(sqlite_store: SqliteStore) -> None:
    test_composite_sla_and_a_shared_component(sqlite_store)
    engine = TopologyEngine(sqlite_store)
    head = sqlite_store.head_seq()
    base = availability(engine, sqlite_store, "pool").availability
    better = availability(engine, sqlite_store, "pool", {"vm": {"availability": 0.9999}})
    both = availability(engine, sqlite_store, "pool", {"pool": {"min_up": 2}})
    assert better.availability > base > both.availability
    assert both.availability == pytest.approx(0.995 * 0.99**2)
    assert sqlite_store.head_seq() == head
    with pytest.raises(ValidationFailed, match="closure"):
        availability(engine, sqlite_store, "pool", {"web": {"availability": 0.5}})
    with pytest.raises(ValidationFailed, match="availability"):
        availability(engine, sqlite_store, "pool", {"vm": {"availability": 1.5}})


def test_figures_come_from_attributes_mtbf_or_class_defaults(sqlite_store: SqliteStore) -> None:
    sqlite_store.upsert(
        [CI("app", "application", "app"), CI("h1", "host", "h1", {"mtbf_hours": 999, "mttr_hours": 1}),
         CI("v1", "vm", "v1"), CI("c", "cluster", "c", {"min_up": 1})],
        [Relationship("app", "RUNS_ON", "c"), Relationship("c", "HAS_MEMBER", "v1"),
         Relationship("v1", "HOSTED_ON", "h1")],
    )  # fmt: skip
    result = availability(TopologyEngine(sqlite_store), sqlite_store, "app")
    sources = {a["id"]: a["source"] for a in result.assumed}
    assert sources == {"app": "assumed 1.0", "c": "assumed 1.0", "v1": "class default"}
    vm_default = load_model().classes["vm"].default_availability
    assert result.availability == pytest.approx(0.999 * vm_default)  # type: ignore[operator]


# -- property: exact = brute force = the engine's own failure propagation -------------------------
@st.composite
def small_structures(draw: st.DrawFn) -> tuple[list[CI], list[Relationship]]:
    """A service over up to 7 infrastructure CIs, with shared dependencies and k-of-n groups."""
    n = draw(st.integers(2, 7))
    hosts = [CI(f"h{i}", "host", f"h{i}", {"availability": draw(st.sampled_from([0.5, 0.9, 0.99]))})
             for i in range(n)]  # fmt: skip
    cis, rels = list(hosts), []
    groups = draw(st.integers(1, 3))
    for g in range(groups):
        members = draw(st.lists(st.sampled_from([h.id for h in hosts]), min_size=1, max_size=n,
                                unique=True))  # fmt: skip
        k = draw(st.integers(1, len(members)))
        cis.append(CI(f"g{g}", "cluster", f"g{g}", {"min_up": k, "availability": 1.0}))
        rels += [Relationship(f"g{g}", "HAS_MEMBER", m) for m in members]
    cis.append(CI("svc", "business_service", "svc", {"availability": 1.0}))
    needs = draw(st.lists(st.sampled_from([f"g{g}" for g in range(groups)] + [h.id for h in hosts]),
                          min_size=1, max_size=3, unique=True))  # fmt: skip
    rels += [Relationship("svc", "DEPENDS_ON", t) for t in needs]
    return cis, rels


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(graph=small_structures())
def test_exact_equals_brute_force_and_the_engine(
    tmp_path_factory: pytest.TempPathFactory, graph: tuple[list[CI], list[Relationship]]
) -> None:
    cis, rels = graph
    store = SqliteStore(tmp_path_factory.mktemp("prop") / "p.db", load_model())
    try:
        store.upsert(cis, rels)
        engine = TopologyEngine(store)
        structure = build_structure(engine, store, "svc")
        exact = ExactModel(structure).probability()
        assert exact == pytest.approx(brute_force(structure), abs=1e-12)
        components = [c for c in structure.nodes if c.startswith("h")]
        for r in range(len(components) + 1):  # the structure fails exactly as the engine does
            for failed in combinations(components, r):
                down = failed and "svc" in {
                    engine.ids[v]
                    for v in engine.propagate(list(failed))
                    .nodes[engine.propagate(list(failed)).down]
                    .tolist()
                }
                assert structure.is_up(set(failed)) == (not down), failed
        spofs = {c for c in components if not structure.is_up({c})}
        found = {s["id"] for s in availability(engine, store, "svc").spofs} & set(components)
        assert found == spofs
    finally:
        store.close()


def test_cli_python_and_graphql_agree_on_the_demo(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = tmp_path / "demo.db"
    sg = ServiceGraph(SqliteStore(db, load_model()))
    sg.load_demo(600)
    python = sg.availability("business-service-000001").to_dict()
    assert 0 < python["availability"] < 1 and python["method"] == "exact"
    assert python["assumed"] and python["spofs"]
    assert python["downtime_minutes_per_year"] == pytest.approx(
        (1 - python["availability"]) * 525_960, abs=0.01
    )
    cli = subprocess.run([sys.executable, "-m", "servicegraph.api.cli", "availability",
                          "business-service-000001", "--format", "json", "--db", str(db)],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["availability"] == pytest.approx(python["availability"])
    token = create_token(sg.store, "v", "viewer")
    with TestClient(create_app(sg)) as client:
        body = client.post(
            "/graphql",
            json={"query": 'query($o: JSON) { availability(serviceId: "business-service-000001", '
                  "overrides: $o) { availability method spofs { id } cutSets { cis probability } "
                  "importance { id birnbaum improvementPotential } assumed { id source } } }",
                  "variables": {"o": None}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip
        got = body["data"]["availability"]
        assert got["availability"] == pytest.approx(python["availability"])
        assert [s["id"] for s in got["spofs"]] == [s["id"] for s in python["spofs"]]
        spof = python["spofs"][0]["id"]
        what_if = client.post(
            "/graphql",
            json={"query": 'query($o: JSON) { availability(serviceId: "business-service-000001", '
                  "overrides: $o) { availability } }", "variables": {"o": {spof: {"availability": 1}}}},
            headers={"Authorization": f"Bearer {token}"},
        ).json()  # fmt: skip
        assert what_if["data"]["availability"]["availability"] > python["availability"]
    sg.close()
    assert math.isfinite(python["availability"])


def test_sla_risk_and_supplier_alignment(tmp_path: Path) -> None:
    """A service on an app (0.999) on a storage array whose supplier commits 0.99, under an SLA of
    99.5 %: the commitment cannot meet it; 0.995 / 0.999 would. The app's support contract has
    expired under the live SLA."""
    import subprocess
    import sys

    db = tmp_path / "sla.db"
    store = SqliteStore(db, load_model())
    store.upsert(
        [CI("svc", "business_service", "svc", {"availability": 1.0}),
         CI("app", "application", "app", {"availability": 0.999}),
         CI("arr", "storage_array", "arr", {"availability": 0.99999}),
         CI("sla-1", "sla", "gold", {"availability_target": 0.995, "valid_from": "2020-01-01"}),
         CI("vendor", "supplier", "vendor"),
         CI("ctr-arr", "supplier_contract", "array support", {"availability_commitment": 0.99}),
         CI("ctr-app", "supplier_contract", "app support",
            {"availability_commitment": 0.9999, "valid_to": "2021-01-01"})],
        [Relationship("svc", "DEPENDS_ON", "app"), Relationship("app", "DEPENDS_ON", "arr"),
         Relationship("sla-1", "COVERS", "svc"), Relationship("ctr-arr", "UNDERPINS", "arr"),
         Relationship("ctr-arr", "SUPPLIED_BY", "vendor"), Relationship("ctr-app", "UNDERPINS", "app")],
    )  # fmt: skip
    sg = ServiceGraph(store)
    risk = sg.sla_risk().to_dict(orient="records")
    assert len(risk) == 1 and risk[0]["meets"] is True  # with the array's own figure
    assert risk[0]["availability"] == pytest.approx(0.999 * 0.99999)
    found = sg.supplier_alignment()
    by_contract = {c["contract"]: c for c in found["commitments"]}
    array = by_contract["ctr-arr"]
    assert array["aligned"] is False and array["supplier"] == "vendor"
    assert array["availability_with_commitment"] == pytest.approx(0.999 * 0.99)
    assert array["required_commitment"] == pytest.approx(0.995 / 0.999)
    assert by_contract["ctr-app"]["aligned"] is True
    assert [(e["contract"], e["sla"]) for e in found["expired_under_live_slas"]] == [
        ("ctr-app", "sla-1")
    ]
    store.upsert([CI("sla-1", "sla", "gold", {"availability_target": 0.99999})])
    check = subprocess.run([sys.executable, "-m", "servicegraph.api.cli", "sla", "check", "--format",
                            "json", "--db", str(db)], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert check.returncode == 8, check.stderr
    (row,) = json.loads(check.stdout)
    assert row["meets"] is False and row["gap_minutes_per_year"] > 0 and row["top_cut_sets"]
    token = create_token(store, "v", "viewer")
    with TestClient(create_app(sg)) as client:
        body = client.post("/graphql", json={"query": "{ slaRisk { sla meets gapMinutesPerYear "
                           "topCutSets { cis } } supplierAlignment { commitments { contract aligned "
                           "requiredCommitment } expiredUnderLiveSlas { contract } } }"},
                           headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert body["data"]["slaRisk"][0]["meets"] is False
        commitments = {c["contract"]: c for c in body["data"]["supplierAlignment"]["commitments"]}
        assert (
            commitments["ctr-arr"]["requiredCommitment"] is None
        )  # 0.99999 needs more than perfect
        assert body["data"]["supplierAlignment"]["expiredUnderLiveSlas"] == [
            {"contract": "ctr-app"}
        ]
    store.close()


def test_achieved_availability_is_the_union_of_outages(sqlite_store: SqliteStore) -> None:
    """Outage = union of the intervals of incidents whose CIs take the service DOWN (the engine's
    rule): overlapping incidents count once, an incident on one member of a redundant pair does
    not count, an unresolved one runs to the end of the period, and months are split."""
    inc = [
        ("inc-1", "app", "2026-10-10T10:00:00Z", "2026-10-10T11:00:00Z"),
        ("inc-2", "app", "2026-10-10T10:30:00Z", "2026-10-10T12:00:00Z"),  # overlaps inc-1
        ("inc-3", "h1", "2026-10-12T00:00:00Z", "2026-10-12T05:00:00Z"),  # one of two: not down
        ("inc-4", "app", "2026-10-31T23:00:00Z", "2026-11-01T01:00:00Z"),  # across the months
        ("inc-5", "app", "2026-11-30T23:30:00Z", None),  # unresolved at the end of the period
    ]
    sqlite_store.upsert(
        [CI("svc", "business_service", "svc"), CI("app", "application", "app"),
         CI("pair", "cluster", "pair", {"min_up": 1}), CI("h1", "host", "h1"), CI("h2", "host", "h2"),
         CI("sla", "sla", "sla", {"availability_target": 0.999})]
        + [CI(i, "incident", i, {"opened_at": o, **({"resolved_at": r} if r else {})})
           for i, _, o, r in inc],
        [Relationship("svc", "DEPENDS_ON", "app"), Relationship("app", "RUNS_ON", "pair"),
         Relationship("pair", "HAS_MEMBER", "h1"), Relationship("pair", "HAS_MEMBER", "h2"),
         Relationship("sla", "COVERS", "svc")]
        + [Relationship(i, "AFFECTS", ci) for i, ci, _, _ in inc],
    )  # fmt: skip
    sg = ServiceGraph(sqlite_store)
    frame = sg.achieved_availability("2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z", ["svc"])
    october, november = frame.to_dict(orient="records")
    assert october["outage_minutes"] == 120 + 60  # 10:00-12:00 once, and 23:00-24:00
    assert november["outage_minutes"] == 60 + 30  # 00:00-01:00, and the open one's last 30
    assert october["achieved"] == pytest.approx(1 - 180 / (31 * 24 * 60))
    assert october["target"] == 0.999
    assert october["designed"] == pytest.approx(sg.availability("svc").availability)
    assert october["incidents"] == ["inc-1", "inc-2", "inc-4"]
    fig = sg.achieved_figure("2026-10-01T00:00:00Z", "2026-12-01T00:00:00Z", "svc")
    assert [t.name for t in fig.data] == ["achieved", "target", "designed"]
    assert list(fig.data[0].y) == [october["achieved"], november["achieved"]]


def test_dependency_cycles_follow_the_engine(sqlite_store: SqliteStore) -> None:
    """Two applications that depend on each other (a cycle) under a service, one of them also
    on a 2-of-3 cluster: exact = brute force, and the structure fails when the engine says so."""
    sqlite_store.upsert(
        [CI("svc", "business_service", "svc"),
         CI("a", "application", "a", {"availability": 0.95}),
         CI("b", "application", "b", {"availability": 0.9}),
         CI("k", "cluster", "k", {"min_up": 2})]
        + [CI(f"h{i}", "host", f"h{i}", {"availability": 0.8}) for i in range(3)],
        [Relationship("svc", "DEPENDS_ON", "a"), Relationship("a", "DEPENDS_ON", "b"),
         Relationship("b", "DEPENDS_ON", "a"), Relationship("b", "DEPENDS_ON", "k")]
        + [Relationship("k", "HAS_MEMBER", f"h{i}") for i in range(3)],
    )  # fmt: skip
    engine = TopologyEngine(sqlite_store)
    structure = build_structure(engine, sqlite_store, "svc")
    exact = ExactModel(structure).probability()
    assert exact == pytest.approx(brute_force(structure), abs=1e-12)
    assert exact == pytest.approx(0.95 * 0.9 * (3 * 0.8**2 - 2 * 0.8**3), abs=1e-12)
    for r in range(1, 4):
        for failed in combinations(["a", "b", "h0", "h1", "h2"], r):
            p = engine.propagate(list(failed))
            down = "svc" in {engine.ids[v] for v in p.nodes[p.down].tolist()}
            assert structure.is_up(set(failed)) == (not down), failed


def test_large_closures_fall_back_to_monte_carlo_and_say_so(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from servicegraph.processes.availability import exact

    bridge(sqlite_store, 0.9)
    truth = availability(TopologyEngine(sqlite_store), sqlite_store, "svc").availability
    monkeypatch.setattr(exact, "MAX_EXACT_COMPONENTS", 3)  # as if the closure were huge
    result = availability(TopologyEngine(sqlite_store), sqlite_store, "svc")
    assert result.method == "monte_carlo" and result.ci95 is not None
    low, high = result.ci95
    assert low <= truth <= high and high - low < 0.01
    data = result.to_dict()
    assert data["method"] == "monte_carlo" and "too large" in data["note"]
