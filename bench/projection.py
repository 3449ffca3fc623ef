"""The persisted projection on the estates of ``bench.engine``: in fresh processes, the engine
built from the store (until it answers, and until the projection file it writes in a thread is
written) against opened from it, with each process's peak
RSS; the CLI's ``impact`` of a host end to end (table and json) with and without the projection; and
the plain
read of the columns the build needs (the floor of any build from the store).

    python -m bench.projection --sizes 100000 1000000

Prints figures; asserts nothing. "Warm" means the files are in the OS page cache (as on a server
that just wrote or read them); the benchmark cannot empty that cache without privileges.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.engine import estate
from servicegraph.graph.projection import projection_path

OPEN = """
import json, resource, sys, time
started = time.perf_counter()
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.model import load_model
from servicegraph.graph.sqlite_store import SqliteStore
imported = time.perf_counter()
engine = TopologyEngine(SqliteStore(sys.argv[1], load_model()))
done = time.perf_counter()
engine.wait_saved()  # a build writes the file in a thread while the engine answers
print(json.dumps({"seconds": done - imported, "saved": time.perf_counter() - imported,
                  "from": engine.opened_from, "n": engine.n,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

FLOOR = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
started = time.perf_counter()
nodes = db.execute("SELECT id, class, json_extract(attributes, '$.status'), "
                   "json_extract(attributes, '$.min_up'), name FROM cis").fetchall()
edges = db.execute("SELECT source, type, target FROM relationships").fetchall()
print(time.perf_counter() - started)
"""


def run(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=True)  # fmt: skip
    return done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000])
    args = parser.parse_args()
    for size in args.sizes:
        store = estate(size)
        path = str(store.path)
        target = projection_path(store)
        host = store.find_cis(["host"], first=1).items[0].id
        store.close()
        if target is not None:
            target.unlink(missing_ok=True)
        # the floor warm, like the build that follows it (the first read brings the file into
        # the page cache: on a cold cache it measured the disk, 13 s at 1M against 4-8 s warm)
        floors = [float(run(FLOOR, path)) for _ in range(2)]
        floor = min(floors)
        built = json.loads(run(OPEN, path))
        opened = [json.loads(run(OPEN, path)) for _ in range(3)]
        best = min(opened, key=lambda o: o["seconds"])
        print(f"\n== {built['n']:,} CIs ({path})")
        print(f"plain read of the columns (floor)   {floor:7.2f} s   (runs: "
              f"{', '.join(f'{f:.2f}' for f in floors)} s)")  # fmt: skip
        print(f"build from the store (engine ready) {built['seconds']:7.2f} s   "
              f"peak RSS {built['rss_mb']:,.0f} MB   ({built['seconds'] / floor:.2f}x the floor)")  # fmt: skip
        print(f"  and its projection file written   {built['saved']:7.2f} s   (in a thread, "
              f"{built['saved'] / floor:.2f}x the floor)")  # fmt: skip
        print(f"open the projection (warm, best 3)  {best['seconds']:7.2f} s   "
              f"peak RSS {best['rss_mb']:,.0f} MB   (from: {best['from']}; "
              f"{os.path.getsize(target or path) / 2**20:,.0f} MiB file)")  # fmt: skip
        for label, env in (("with the projection", {}),
                           ("without (SERVICEGRAPH_PROJECTION=off)", {"SERVICEGRAPH_PROJECTION": "off"})):  # fmt: skip
            for fmt in ("table", "json"):
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "servicegraph.api.cli", "impact", host,
                                "--db", path, "--format", fmt], capture_output=True, check=True,
                               env={**os.environ, **env})  # fmt: skip
                print(f"CLI impact {host} --format {fmt:5s} {label:38s} "
                      f"{time.perf_counter() - started:6.2f} s end to end")  # fmt: skip


if __name__ == "__main__":
    main()
