"""Incident benchmark: root-cause ranking of a 200-alarm burst from 3 simultaneous failures, and
the analyst's incident frame over 100k incidents, on an estate of ``bench.engine`` (copied, so the
cached estate stays as it was).

    python -m bench.incidents --size 1000000

Prints figures (with the plain read of the same records as the baseline of the frame); asserts
nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import statistics
import time
from typing import Any

from bench.engine import CACHE, estate, rss_mb
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import Actor
from servicegraph.processes.incident.priority import assess_incident
from servicegraph.processes.listing import records_of_class
from servicegraph.processes.times import iso

WATCHED = ("application", "application_instance", "database_instance", "technical_service",
           "business_service")  # fmt: skip
NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
DESK = Actor("monitoring", "service_desk")


def timed(fn: Any, runs: int = 3) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def failures(sg: ServiceGraph, rng: random.Random, wanted: int = 3) -> list[tuple[str, list[str]]]:
    """CIs whose failure takes 60 to 120 watched CIs DOWN (so ~66 alarms each are a realistic
    share of what is down), with disjoint DOWN sets (a cluster, a shared application …)."""
    pool = []
    for cls in ("cluster", "storage_array", "application", "database", "switch"):
        page = sg.store.find_cis(sg.store.model.concrete(cls), first=300)
        pool += [c.id for c in page.items]
    rng.shuffle(pool)
    chosen: list[tuple[str, list[str]]] = []
    taken: set[str] = set()
    for ci in pool:
        result = sg.impact([ci])
        down = [r for r in result.impacted() if r["status"] == "DOWN"]
        watched = [r["id"] for r in down if r["class"] in WATCHED]
        ids = {r["id"] for r in down} | {ci}
        if 60 <= len(watched) <= 120 and not ids & taken:
            chosen.append((ci, watched))
            taken |= ids
            if len(chosen) == wanted:
                break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--alarms", type=int, default=200)
    parser.add_argument("--frame-incidents", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep the store (to profile it)")
    parser.add_argument("--profile", action="store_true", help="print a profile of one rca")
    args = parser.parse_args()
    source = estate(args.size)
    source.close()
    path = CACHE / f"bench-incidents-{args.size}.db"
    shutil.copy(CACHE / f"bench-estate-{args.size}.db", path)
    store = SqliteStore(path, source.model)
    sg = ServiceGraph(store)
    started = time.perf_counter()
    engine = sg.engine
    print(f"== {engine.n:,} CIs; engine built in {time.perf_counter() - started:.1f} s, "
          f"RSS {rss_mb():,.0f} MB")  # fmt: skip
    rng = random.Random(3)
    chosen = failures(sg, rng)
    per = args.alarms // len(chosen)
    items: list[dict[str, Any]] = []
    start = NOW - dt.timedelta(hours=1)
    for n, (cause, watched) in enumerate(chosen):
        alarms = [cause, *rng.sample(watched, min(per - 1, len(watched)))]
        for k, ci in enumerate(alarms):
            opened = start + dt.timedelta(minutes=n * 7, seconds=20 * k + rng.randint(0, 15))
            items.append({"id": f"burst-{n}-{k:03d}", "summary": f"{ci} failing",
                          "affects": [ci], "opened_at": iso(opened), "urgency": "high"})  # fmt: skip
    print(f"   3 failures: {', '.join(f'{c} ({len(w)} watched DOWN)' for c, w in chosen)}")
    took, _ = timed(lambda: sg.incidents.import_incidents(items, DESK, now=NOW), runs=1)
    print(f"import (record + prioritise) {len(items)} incidents: {took:.2f} s "
          f"({took / len(items) * 1000:.1f} ms each)")  # fmt: skip
    ids = [i["id"] for i in items]
    took, result = timed(lambda: sg.root_causes(ids, limit=10))
    found = [(g["candidates"][0]["id"] if g["candidates"] else None, len(g["incidents"]))
             for g in result.groups]  # fmt: skip
    right = sum(1 for best, _ in found if best in {c for c, _ in chosen})
    print(f"rca of {len(ids)} incidents: {took:.3f} s (median of 3); {len(found)} groups, "
          f"{right} headed by an injected cause: {found}")  # fmt: skip
    if args.profile:
        import cProfile
        import pstats

        cProfile.runctx("sg.root_causes(ids, limit=10)", globals(), locals(), "/tmp/rca.prof")
        pstats.Stats("/tmp/rca.prof").sort_stats("tottime").print_stats(20)
    took, _ = timed(lambda: sg.root_causes(start=iso(start), end=iso(NOW)))
    print(f"rca over the window (reads every incident record): {took:.3f} s")

    # the frame: n incidents written directly (their snapshots from real assessments of a sample
    # of CIs), then read back as the analyst's frame
    cis = rng.sample([i for i in engine.ids if engine.model.is_a(engine.class_of(i), "ci")], 300)
    snapshots = {
        ci: assess_incident(engine, store, sg.incidents.rules, [ci], "medium") for ci in cis
    }
    services = {ci: snap.pop("service_ids") for ci, snap in snapshots.items()}
    batch = Batch()
    for n in range(args.frame_incidents):
        ci = cis[n % len(cis)]
        opened = NOW - dt.timedelta(minutes=5 * n + rng.randint(0, 4))
        snap = snapshots[ci]
        batch.add_ci(CI(f"hist-{n:06d}", "incident", f"{ci} failing", {
            "state": "closed", "urgency": "medium", "impact_level": snap["level"],
            "priority": snap["priority"], "major": snap["major"], "services": services[ci],
            "impact": snap,
            "opened_at": iso(opened), "responded_at": iso(opened + dt.timedelta(minutes=9)),
            "resolved_at": iso(opened + dt.timedelta(hours=3)),
            "closed_at": iso(opened + dt.timedelta(days=1))}))  # fmt: skip
        batch.add_relationship(Relationship(f"hist-{n:06d}", "AFFECTS", ci))
    took, _ = timed(lambda: store.write(batch, "bench"), runs=1)
    print(f"wrote {args.frame_incidents:,} incidents in {took:.1f} s")
    plain, _ = timed(lambda: records_of_class(store, "incident"))
    took, frame = timed(sg.incident_frame)
    print(f"incident_frame of {len(frame):,} incidents: {took:.2f} s (median of 3); the plain read "
          f"of the same records: {plain:.2f} s ({took / plain:.1f}x)")  # fmt: skip
    took, _ = timed(lambda: sg.incident_trends(by="service", freq="W"), runs=1)
    print(f"incident_trends by service per week (frame included): {took:.2f} s")
    store.close()
    if not args.keep:
        path.unlink()


if __name__ == "__main__":
    main()
