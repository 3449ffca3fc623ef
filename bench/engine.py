"""Topology engine benchmark (not a test): build, refresh, impact vs networkx, GraphQL end to end.

    python -m bench.engine --sizes 100000 1000000

For each size an enterprise-shaped demo estate is written to a SQLite file under .tmp/ (kept and
reused by later runs), then the figures below are printed as medians:
projection build time and memory; refresh after one write; impact of a leaf (a storage volume), a
host and a hub (both core routers of a site) in the engine and with networkx (``nx.ancestors`` on the
same impact edges, in the same run) and their ratio; GraphQL end-to-end latency (real HTTP on
loopback, to ``servicegraph serve`` running in a process of its own) of an impact of about 10,000
CIs.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import networkx as nx

from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.model import load_model
from servicegraph.graph.records import CI
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate
from tests.neo4j_server.server import free_port

CACHE = Path(".tmp")


def median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def estate(size: int) -> SqliteStore:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"bench-estate-{size}.db"
    store = SqliteStore(path, load_model())
    if store.head_seq() == 0:
        started = time.perf_counter()
        batch = generate_estate(size, seed=1)
        result = store.write(batch, "bench")
        print(
            f"  wrote {result.created:,} records to {path} in {time.perf_counter() - started:.1f} s"
        )
    return store


def run(size: int, runs: int) -> None:
    store = estate(size)
    counts = store.counts()
    rels = counts.pop("relationships")
    nodes = sum(counts.values())
    print(f"\n== {nodes:,} CIs, {rels:,} relationships ({rels / nodes:.2f} per CI)")
    before = rss_mb()
    build_ms, engine = median_ms(lambda: TopologyEngine(store), max(1, runs // 3))
    print(
        f"build           {build_ms:9.1f} ms   arrays {engine.memory_bytes() / 2**20:.0f} MiB, "
        f"process RSS +{rss_mb() - before:.0f} MiB (ids and index included)"
    )

    def write_then_refresh() -> float:
        ci = store.get_ci("vm-000001")
        assert ci is not None
        store.upsert(
            [
                CI(
                    ci.id,
                    ci.cls,
                    ci.name,
                    {**ci.attributes, "cpu_cores": ci.attributes.get("cpu_cores", 1) % 64 + 1},
                )
            ]
        )
        started = time.perf_counter()
        applied = engine.refresh()
        assert applied == 1
        return (time.perf_counter() - started) * 1000

    refresh = statistics.median(write_then_refresh() for _ in range(max(5, runs)))
    print(f"refresh (1 write){refresh:8.2f} ms")

    impact_types = {t for t, s in store.model.relationship_types.items() if s.impact != "none"}
    graph = nx.DiGraph()
    graph.add_edges_from((s, d) for s, t, d in store.topology()[1] if t in impact_types)
    # Millions of networkx objects would make every cyclic-GC pass slow, for both contestants;
    # a server process holds no such graph. Freeze them out of the collector's scans.
    gc.collect()
    gc.freeze()
    seeds = {
        "leaf (volume)": ["storage-volume-000100"],
        "host": ["host-000005"],
        "hub (core routers)": ["router-000001", "router-000002"],
    }
    for label, ids in seeds.items():
        eng_ms, prop = median_ms(lambda ids=ids: engine.propagate(ids), runs)

        def with_networkx(ids: list[str] = ids) -> set[str]:
            found: set[str] = set()
            for seed in ids:
                found |= nx.ancestors(graph, seed)
            return found - set(ids)

        nx_ms, nx_set = median_ms(with_networkx, max(1, runs // 2))
        assert len(nx_set) == prop.nodes.size, (label, len(nx_set), prop.nodes.size)
        print(
            f"impact {label:<19} {prop.nodes.size:>9,} impacted  engine {eng_ms:8.2f} ms  "
            f"networkx {nx_ms:9.2f} ms  ratio {nx_ms / eng_ms:6.2f}x"
        )

    graph.clear()  # the client's networkx graph is not part of the system under test: free it
    gc.unfreeze()
    gc.collect()
    target = pick_seed_near(engine, store, 10_000)
    for first, label in ((100_000, "every impacted CI"), (100, "first 100 impacted CIs")):
        answer, decode_ms, total, size_kb = graphql_latency(store, target, runs, first)
        print(
            f"GraphQL impact  {answer:9.1f} ms   ({total:,} CIs impacted; response: {label} with "
            f"names and paths, all services, SLAs, customers: {size_kb:,.0f} kB; HTTP on loopback, "
            f"to the last byte; the client's json.loads adds {decode_ms:.0f} ms)"
        )


def pick_seed_near(engine: TopologyEngine, store: SqliteStore, wanted: int) -> str:
    """A storage array, switch or cluster whose failure impacts about ``wanted`` CIs."""
    kinds = ("storage-array-", "switch-", "cluster-")
    candidates = [i for i in engine.ids if i.startswith(kinds)]
    sample = random.Random(0).sample(candidates, min(400, len(candidates)))
    sizes = {c: engine.propagate([c]).nodes.size for c in sample}
    return min(sizes, key=lambda c: abs(sizes[c] - wanted))


def graphql_latency(
    store: SqliteStore, seed: str, runs: int, first: int
) -> tuple[float, float, int, float]:
    """Median ms to the response's last byte, median ms to decode it, CIs impacted, kB.

    The server is ``servicegraph serve`` in a process of its own on the same store, as deployed;
    the client is this process."""
    token = create_token(store, "bench", "viewer", actor="bench")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", "from servicegraph.api.cli import main; main()", "serve",
         "--db", str(store.path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    query = """query($ids: [ID!]!, $first: Int!) { impact(ciIds: $ids, first: $first) { totalImpacted
        impacted { ci { id name class } status distance path }
        services { service { id name } status } slas { sla { id } status }
        customers { customer { id } } } }"""
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            _wait_until_up(client, server)

            def call() -> bytes:
                r = client.post(
                    "/graphql",
                    json={"query": query, "variables": {"ids": [seed], "first": first}},
                    headers={"Authorization": f"Bearer {token}"},
                )
                return r.content  # read to the last byte

            call()  # warm-up
            ms, content = median_ms(call, runs)
            decode_ms, body = median_ms(lambda: json.loads(content), runs)
            assert "errors" not in body, body
    finally:
        server.terminate()
        server.wait()
    return ms, decode_ms, int(body["data"]["impact"]["totalImpacted"]), len(content) / 1000


def _wait_until_up(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    while True:
        if server.poll() is not None:
            assert server.stderr is not None
            raise RuntimeError(f"the server stopped: {server.stderr.read().decode()[-2000:]}")
        try:
            client.get("/health")
            return
        except httpx.TransportError:
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    parser.add_argument("--runs", type=int, default=7, help="repetitions per figure (median)")
    args = parser.parse_args()
    for size in args.sizes:
        run(size, args.runs)


if __name__ == "__main__":
    main()
