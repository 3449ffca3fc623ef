"""Root-cause ranking on a published microservice topology with injected faults, on the demo
estate, and its grouping of unrelated bursts (8.2)."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import pytest

from servicegraph.api.python import ServiceGraph
from servicegraph.errors import NotFound, ValidationFailed
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import Actor
from servicegraph.processes.times import iso
from tests.topologies import BOUTIQUE_CALLS, boutique_batch

DESK = Actor("monitoring", "service_desk")
T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def boutique(sqlite_store: SqliteStore) -> ServiceGraph:
    sqlite_store.write(boutique_batch())
    return ServiceGraph(sqlite_store)


def callers_of(service: str) -> dict[str, int]:
    """Every service that (transitively) calls ``service``, with its hop count; plus the
    business service above the frontend."""
    found, frontier, hops = {service: 0}, [service], 0
    while frontier:
        hops += 1
        frontier = [c for c, callees in BOUTIQUE_CALLS.items()
                    for s in frontier if s in callees and c not in found]  # fmt: skip
        for c in frontier:
            found[c] = hops
    if "frontend" in found:
        found["online-boutique"] = found["frontend"] + 1
    return found


def symptoms(
    rng: random.Random,
    fault: str,
    trial: int,
    start: dt.datetime,
    detect: float = 0.85,
    noise: float = 0.2,
) -> list[dict[str, Any]]:
    """What monitoring would raise: each CI the fault takes down alarms with probability
    ``detect``, a minute later per hop (± 30 s); with probability ``noise`` an unrelated alarm
    joins at a random time in the burst."""
    hit = callers_of(fault)
    alarms = [(ci, hops) for ci, hops in hit.items() if rng.random() < detect]
    if not alarms:
        alarms = [max(hit.items(), key=lambda kv: kv[1])]
    if rng.random() < noise:
        other = rng.choice([s for s in BOUTIQUE_CALLS if s not in hit])
        alarms.append((other, rng.randint(0, 4)))
    return [{"id": f"t{trial}-{ci}", "summary": f"{ci} failing", "affects": [ci],
             "opened_at": iso(start + dt.timedelta(seconds=60 * hops + rng.randint(-30, 30)))}
            for ci, hops in alarms]  # fmt: skip


def test_the_faulty_service_ranks_first_on_online_boutique(boutique: ServiceGraph) -> None:
    rng = random.Random(20)
    services = sorted(BOUTIQUE_CALLS)
    ranks = []
    for trial in range(120):
        fault = services[trial % len(services)]
        items = symptoms(rng, fault, trial, T0 + dt.timedelta(hours=trial))
        boutique.incidents.import_incidents(items, DESK, now=T0 + dt.timedelta(days=30))
        result = boutique.root_causes([i["id"] for i in items], limit=5)
        ids = [c["id"] for c in result.candidates]
        ranks.append(ids.index(fault) + 1 if fault in ids else 99)
        best = result.candidates[0]
        # every answer explains itself: factors sum to the score, paths start at the candidate
        assert sum(f["points"] for f in best["factors"]) == pytest.approx(best["score"])
        for incident, path in best["paths"].items():
            assert path[0] == best["id"]
            assert path[-1] in {i["affects"][0] for i in items if i["id"] == incident}
    top1 = sum(r == 1 for r in ranks) / len(ranks)
    top3 = sum(r <= 3 for r in ranks) / len(ranks)
    print(f"online boutique, 120 injected faults: top-1 {top1:.0%}, top-3 {top3:.0%}")
    assert top1 >= 0.65 and top3 >= 0.9, (top1, top3, ranks)


def test_two_unrelated_failures_come_back_as_two_groups(boutique: ServiceGraph) -> None:
    rng = random.Random(5)
    shared = ("-checkoutservice", "-frontend", "-online-boutique")  # alarms either could cause
    items = symptoms(rng, "redis-cart", 1, T0, detect=1.0, noise=0) + symptoms(
        rng, "productcatalogservice", 2, T0 + dt.timedelta(minutes=1), detect=1.0, noise=0
    )
    items = [i for i in items if not i["id"].endswith(shared)]
    boutique.incidents.import_incidents(items, DESK, now=T0 + dt.timedelta(days=1))
    result = boutique.root_causes([i["id"] for i in items])
    groups = {g["candidates"][0]["id"]: set(g["incidents"]) for g in result.groups}
    assert groups == {
        "redis-cart": {"t1-redis-cart", "t1-cartservice"},
        "productcatalogservice": {"t2-productcatalogservice", "t2-recommendationservice"},
    }
    # the overall ranking has no single CI explaining both bursts above the two causes
    assert {c["id"] for c in result.candidates[:2]} == set(groups)


def test_a_cause_that_alarms_after_its_effects_loses_points_and_ties_are_named(
    boutique: ServiceGraph,
) -> None:
    # redis (the cause) alarms 20 minutes after the cart service it takes down
    items = [
        {"id": "a1", "summary": "cart down", "affects": ["cartservice"], "opened_at": iso(T0)},
        {"id": "a2", "summary": "redis late", "affects": ["redis-cart"],
         "opened_at": iso(T0 + dt.timedelta(minutes=20))},
    ]  # fmt: skip
    boutique.incidents.import_incidents(items, DESK, now=T0 + dt.timedelta(days=1))
    result = boutique.root_causes(["a1", "a2"], limit=20)
    ranked = {c["id"]: c for c in result.candidates}
    factors = {f["factor"]: f for f in ranked["redis-cart"]["factors"]}
    assert factors["incidents_before_it"]["value"] == 1
    assert factors["incidents_before_it"]["points"] == -3
    assert "alarms_first" not in factors
    assert result.candidates[0]["id"] == "redis-cart"  # still explains both, nothing else does
    # the two replicas of redis explain the same incidents (only DEGRADED) with the same score
    pods = ranked["redis-cart-pod-0"], ranked["redis-cart-pod-1"]
    assert pods[0]["score"] == pods[1]["score"] and pods[0]["degraded"] == ["a1", "a2"]
    assert pods[0]["ties_with"] == ["redis-cart-pod-1"] and pods[0]["ties_count"] == 1


def test_root_causes_refuses_unknown_incidents_and_bad_windows(boutique: ServiceGraph) -> None:
    with pytest.raises(NotFound):
        boutique.root_causes(["nope"])
    with pytest.raises(ValidationFailed, match="before it starts"):
        boutique.root_causes(start="2026-11-02T00:00:00Z", end="2026-11-01T00:00:00Z")
    empty = boutique.root_causes(start="2020-01-01T00:00:00Z", end="2020-01-02T00:00:00Z")
    assert empty.candidates == [] and empty.groups == []


def test_the_demo_burst_is_explained_by_the_ci_that_failed(tmp_path: Any) -> None:
    from servicegraph.api.python import connect

    with connect(tmp_path / "demo.db") as sg:
        sg.load_demo(600)
        result = sg.root_causes()  # the last 24 hours: the demo's burst (and maybe strays)
        burst = max(result.groups, key=lambda g: len(g["incidents"]))
        assert len(burst["incidents"]) >= 5
        best = burst["candidates"][0]
        opened = {i: sg.incidents.get(i).attributes["opened_at"] for i in burst["incidents"]}
        first_alarm = min(opened, key=lambda i: opened[i])  # the burst starts on its cause
        assert best["id"] in sg.incidents.affects(first_alarm)
        assert set(best["explains"]) >= set(burst["incidents"])
        frame = result.to_frame()
        assert best["id"] in set(frame["id"]) and "incidents_explained" in frame
