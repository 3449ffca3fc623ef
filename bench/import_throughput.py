"""Import throughput of the demo estate into each store (a benchmark, not a test).

    python -m bench.import_throughput --size 100000

Prints, per store: CIs, relationships, seconds, items per second, for the first import (everything
created, one transaction) and for the re-import of the same batch (everything unchanged).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from servicegraph.graph.model import load_model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes.demo import generate_estate
from tests.neo4j_server import server


def measure(label: str, store: GraphStore, size: int) -> None:
    batch = generate_estate(size)
    items = len(batch.cis) + len(batch.relationships)
    for run in ("first import", "re-import (no change)"):
        started = time.perf_counter()
        result = store.write(batch, "bench")
        seconds = time.perf_counter() - started
        print(
            f"{label:<8} {run:<22} {len(batch.cis):>9,} CIs {len(batch.relationships):>9,} rels "
            f"{seconds:8.2f} s {items / seconds:>10,.0f} items/s "
            f"(created {result.created:,}, unchanged {result.unchanged:,})",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--neo4j-heap", default="8g", help="the whole import is one transaction")
    parser.add_argument("--neo4j-page-cache", default="2g", help="as a deployment sets it")
    args = parser.parse_args()
    model = load_model()
    with tempfile.TemporaryDirectory() as tmp, SqliteStore(Path(tmp) / "b.db", model) as sqlite:
        measure("sqlite", sqlite, args.size)
    srv = server.start(heap=args.neo4j_heap, page_cache=args.neo4j_page_cache)
    try:
        with Neo4jStore(srv.uri, model) as neo:
            measure("neo4j", neo, args.size)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()
