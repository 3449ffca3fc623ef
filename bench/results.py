"""Materialising a large blast radius on an estate of ``bench.engine``: the impact of the host
whose failure reaches the most CIs, propagated, as columns, as a frame, as a dict and as JSON in
the process; then the CLI's ``impact --format json`` and ``ndjson`` end to end.

    python -m bench.results --size 1000000

Prints figures (median of ``--runs``); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import orjson

from bench.engine import estate, median_ms
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.sqlite_store import SqliteStore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    source = estate(args.size)
    path = source.path
    source.close()
    sg = ServiceGraph(SqliteStore(path, source.model))
    engine = sg.engine
    hosts = [i for i in engine.ids if i.startswith("host-")][:50]
    seed = max(hosts, key=lambda h: engine.propagate([h]).nodes.size)
    result = sg.impact([seed])
    print(f"== {engine.n:,} CIs; impact of {seed}: {result.total_impacted:,} CIs")
    figures = [
        ("propagate (engine)", lambda: engine.propagate([seed])),
        ("impact (with services, SLAs, customers)", lambda: sg.impact([seed])),
        ("columns, no names", lambda: result.columns()),
        ("columns with names (from the engine)", lambda: result.columns(names=True)),
        ("to_frame(names=False)", lambda: result.to_frame(names=False)),
        ("to_frame()", lambda: result.to_frame()),
        ("to_dict() (rows with names and paths)", lambda: result.to_dict()),
        ("orjson of to_dict()", lambda: orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2)),
    ]
    base = None
    for name, work in figures:
        took, _ = median_ms(work, args.runs)
        base = base or took
        print(f"{name:42s} {took:9,.0f} ms   ({took / base:,.1f}x propagate)")
    sg.close()
    for fmt in ("json", "ndjson"):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "servicegraph.api.cli", "impact", seed,
                               "--db", str(path), "--format", fmt], capture_output=True,
                              env=os.environ.copy(), check=True)  # fmt: skip
        print(f"CLI impact --format {fmt:7s} end to end {time.perf_counter() - started:9.2f} s   "
              f"({len(done.stdout) / 2**20:,.0f} MiB; engine opened from its projection when "
              "one is beside the store)")  # fmt: skip


if __name__ == "__main__":
    main()
