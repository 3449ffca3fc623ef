"""Import throughput of the demo estate into each store (a benchmark, not a test).

    python -m bench.import_throughput --size 100000

Prints, per store and write path: CIs, relationships, seconds, items per second, for the first
import (everything created) and for the re-import of the same batch (everything unchanged), with
the peak memory of the Neo4j server (its JVM's resident set, VmHWM) and of this process.

Neo4j is measured twice when the estate is small enough for one transaction (``--one-tx-max``):
``write`` (one transaction: the whole import in the server's heap, 8 GB) and ``bulk_write``
(slices of 10,000 under a lease, :mod:`servicegraph.graph.neo4j_bulk`) on a server with a 2 GB
heap, each on a fresh server warmed up by importing (then deleting) a smaller estate first (a
fresh JVM has not compiled its hot paths yet: cold, the first 100k import is ~1.5x slower), with
the ratio between them.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from servicegraph.graph.model import load_model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.graph.records import Batch, WriteResult
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.demo import generate_estate
from tests.neo4j_server import server

Writer = Callable[[Batch, str], WriteResult]


def measure(label: str, write: Writer, batch: Batch, peak: Callable[[], str]) -> float:
    """Import ``batch`` twice with ``write``; return the first import's items per second."""
    items = len(batch)
    rates = []
    for run in ("first import", "re-import (no change)"):
        started = time.perf_counter()
        result = write(batch, "bench")
        seconds = time.perf_counter() - started
        rates.append(items / seconds)
        print(
            f"{label:<22} {run:<22} {len(batch.cis):>9,} CIs {len(batch.relationships):>9,} rels "
            f"{seconds:8.2f} s {items / seconds:>10,.0f} items/s "
            f"(created {result.created:,}, unchanged {result.unchanged:,}) {peak()}",
            flush=True,
        )
    return rates[0]


def _own_peak() -> str:
    return f"this process peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB"


def _server_peak(srv: server.Neo4jServer) -> Callable[[], str]:
    def peak() -> str:
        status = Path(f"/proc/{srv.process.pid}/status").read_text()
        hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
        return f"Neo4j peak RSS {int(hwm.split()[1]) / 1024:,.0f} MB; {_own_peak()}"

    return peak


def on_neo4j(
    label: str, heap: str, page_cache: str, batch: Batch, bulk: bool, warm_up: int
) -> float:
    srv = server.start(heap=heap, page_cache=page_cache)
    try:
        with Neo4jStore(srv.uri, load_model()) as neo:
            write: Writer = neo.bulk_write if bulk else neo.write
            if warm_up:  # a running server has compiled its hot paths; a fresh JVM has not
                write(generate_estate(warm_up), "warm-up")
                neo.delete_everything()
            return measure(f"{label} ({heap} heap)", write, batch, _server_peak(srv))
    finally:
        srv.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--heap", default="2g", help="Neo4j heap for the bulk write")
    parser.add_argument("--one-tx-heap", default="8g", help="Neo4j heap for one transaction")
    parser.add_argument("--page-cache", default="2g", help="as a deployment sets it")
    parser.add_argument(
        "--warm-up",
        type=int,
        default=30_000,
        help="estate imported (then deleted) on each fresh Neo4j before measuring (0: none)",
    )
    parser.add_argument(
        "--one-tx-max",
        type=int,
        default=200_000,
        help="largest estate also imported in one Neo4j transaction (the baseline)",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="skip the Neo4j runs")
    args = parser.parse_args()
    model = load_model()
    batch = generate_estate(args.size)
    print(f"estate of {args.size:,}: {len(batch):,} items", flush=True)
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "b.db", model) as sqlite:
        measure("sqlite", sqlite.bulk_write, batch, _own_peak)
    if args.sqlite_only:
        return
    one_tx = None
    if args.size <= args.one_tx_max:
        one_tx = on_neo4j(
            "neo4j write", args.one_tx_heap, args.page_cache, batch, False, args.warm_up
        )
    bulk = on_neo4j("neo4j bulk_write", args.heap, args.page_cache, batch, True, args.warm_up)
    if one_tx is not None:
        print(f"neo4j bulk_write / one transaction: {bulk / one_tx:.2f}x items/s")


if __name__ == "__main__":
    main()
