"""Availability benchmark: exact availability with SPOFs, cut sets and importance for every service of
an estate (the estates of ``bench.engine``), and single points of failure found from the diagram
against the naive way (one engine propagation per component of the closure) in the same process.

    python -m bench.availability --size 100000

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bench.engine import estate
from servicegraph.graph.engine import TopologyEngine
from servicegraph.processes.availability import availability
from servicegraph.processes.availability.structure import build_structure


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--naive", type=int, default=40, help="services for the naive SPOF run")
    parser.add_argument("--spofs-only", action="store_true",
                        help="skip the sweep with cut sets and importance (minutes at 100k)")  # fmt: skip
    args = parser.parse_args()
    store = estate(args.size)
    engine = TopologyEngine(store)
    services = sorted(
        ident
        for ident in engine.ids
        if store.model.is_a(engine.class_of(ident), "service") and not engine.is_retired(ident)
    )
    print(f"== {engine.n:,} CIs, {len(services)} services")
    started = time.perf_counter()
    light = []
    for service in services:
        t = time.perf_counter()
        availability(engine, store, service, detail=False)
        light.append((time.perf_counter() - t) * 1000)
    print(
        f"availability + SPOFs, every service: {time.perf_counter() - started:.1f} s; per service "
        f"median {statistics.median(light):.1f} ms, p90 {statistics.quantiles(light, n=10)[-1]:.1f} ms"
    )
    times, sizes, methods = [], [], {"exact": 0, "monte_carlo": 0}
    started = time.perf_counter()
    for service in [] if args.spofs_only else services:
        t = time.perf_counter()
        result = availability(engine, store, service)
        times.append((time.perf_counter() - t) * 1000)
        sizes.append(result.components)
        methods[result.method] += 1
    total = time.perf_counter() - started
    if times:
        print(
            f"availability + SPOFs + cut sets (order <= 3) + importance, every service: "
            f"{total:.1f} s; per service median {statistics.median(times):.1f} ms, p90 "
            f"{statistics.quantiles(times, n=10)[-1]:.1f} ms, max {max(times):.0f} ms; closure "
            f"median {statistics.median(sizes):.0f} components, max {max(sizes)}; methods {methods}"
        )
    # SPOFs from the diagram vs one propagation per component (the naive way), same services.
    sample = services[: args.naive]
    t = time.perf_counter()
    diagram = {
        s: {x["id"] for x in availability(engine, store, s, detail=False).spofs} for s in sample
    }
    with_bdd = time.perf_counter() - t
    t = time.perf_counter()
    naive: dict[str, set[str]] = {}
    for service in sample:
        closure = build_structure(engine, store, service).nodes
        naive[service] = {
            c for c in closure
            if c != service and service in _down(engine, c)
        }  # fmt: skip
    naive_s = time.perf_counter() - t
    assert diagram == naive, "SPOFs from the diagram differ from the naive propagation"
    print(
        f"SPOFs of {len(sample)} services: from the diagram (with the availability) "
        f"{with_bdd:.2f} s; naive, one propagation per closure component {naive_s:.2f} s "
        f"(ratio {naive_s / with_bdd:.1f}x); same SPOFs"
    )


def _down(engine: TopologyEngine, ci: str) -> set[str]:
    p = engine.propagate([ci])
    return {engine.ids[v] for v in p.nodes[p.down].tolist()}


if __name__ == "__main__":
    main()
