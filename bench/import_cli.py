"""``servicegraph import FILE`` as a user runs it, into each store: wall time, items per second
and the importing process's peak memory (a benchmark, not a test).

    python -m bench.import_cli --size 100000

Writes the demo estate of ``--size`` as an interchange JSON file, then imports it with the CLI in a
child process into a new SQLite file and into a fresh Neo4j (2 GB heap and page cache, warmed by
importing then deleting a smaller estate first, as :mod:`bench.import_throughput` does). The peak
is the child's own maximum resident set (``wait4``), what ``/usr/bin/time`` prints as "Maximum
resident set size".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from servicegraph.graph.model import load_model
from servicegraph.graph.neo4j_store import Neo4jStore
from servicegraph.processes.demo import generate_estate
from tests.neo4j_server import server


def write_file(size: int, path: Path) -> int:
    batch = generate_estate(size)
    data = {
        "cis": [ci.to_dict(with_version=False) for ci in batch.cis],
        "relationships": [rel.to_dict() for rel in batch.relationships],
    }
    path.write_bytes(orjson.dumps(data))
    return len(batch)


TIME, IMPORT = "/usr/bin/time", "import"


def run_import(path: Path, db: str, items: int, label: str) -> None:
    """The import in a child process, its peak read by ``/usr/bin/time``: a child started from
    this process inherits at its ``exec`` the high-water mark of this process's memory (the
    kernel keeps the larger), so ``wait4``'s figure was this process's size — the estate it
    generated — whenever that was larger (377 MB at 100k for an import that peaks at 163)."""
    started = time.perf_counter()
    child = subprocess.run(
        [
            TIME,
            "-f",
            "peak %M",
            sys.executable,
            "-m",
            "servicegraph.api.cli",
            IMPORT,
            str(path),
            "--db",
            db,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"{label}: the import failed: {child.stderr[-2000:]}")
    peak = int(child.stderr.rsplit("peak ", 1)[1].split()[0]) / 1024
    print(
        f"{label:<8} {items:>10,} items {seconds:8.1f} s {items / seconds:>9,.0f} items/s "
        f"importing process peak {peak:,.0f} MB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--warm-up", type=int, default=30_000)
    parser.add_argument("--sqlite-only", action="store_true", help="skip Neo4j")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "estate.json"
        items = write_file(args.size, path)
        print(f"estate of {args.size:,}: {items:,} items, {path.stat().st_size / 2**20:,.0f} MiB")
        run_import(path, str(Path(tmp) / "estate.db"), items, "sqlite")
        if args.sqlite_only:
            return
        srv = server.start(heap="2g", page_cache="2g")
        try:
            if args.warm_up:
                with Neo4jStore(srv.uri, load_model()) as neo:
                    neo.bulk_write(generate_estate(args.warm_up), "warm-up")
                    neo.delete_everything()
            run_import(path, srv.uri, items, "neo4j")
        finally:
            srv.stop()


if __name__ == "__main__":
    main()
