"""Request throughput of one ``servicegraph serve`` process on an estate of ``bench.engine``,
measured with wrk (Debian's, installed by ``make bench`` when missing) on loopback: small impact
requests (200 leaf CIs in turn, first 20 rows) — alone, and while another client keeps asking for a large
impact — against a bare FastAPI endpoint answering a constant JSON body in the same run.

    python -m bench.throughput --size 100000

Prints requests/s and latency percentiles as wrk reports them; asserts nothing. Both servers and
wrk share the machine's cores (2 here): the figures are for one worker process. Neither server
writes an access log line per request (``serve --no-access-log``; uvicorn's log of every request
cost about 7 % of a small request's time here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from itertools import islice
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.responses import Response

from bench.engine import estate
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token

SMALL = """query($ids: [ID!]!) { impact(ciIds: $ids, first: 20) { totalImpacted
  impacted { ci { id name class } status distance } services { service { id name } status } } }"""
LARGE = """query($ids: [ID!]!) { impact(ciIds: $ids, first: 10000) { totalImpacted
  impacted { ci { id name class } status distance path } } }"""

bare = FastAPI()


@bare.post("/graphql")
def bare_endpoint() -> Response:
    """The floor: FastAPI and uvicorn answering a constant body, no GraphQL, no store."""
    return Response(b'{"data":{"ok":true}}', media_type="application/json")


def wait_up(url: str, server: subprocess.Popen[bytes] | None = None, timeout: float = 300) -> None:
    """Wait until ``url`` answers (a server that stops, or ``timeout``, ends the benchmark)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            sys.exit(f"the server stopped (exit {server.returncode})")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.3)
    sys.exit(f"{url} did not come up")


def wrk(url: str, bodies: list[str], token: str, seconds: int) -> dict[str, float]:
    """wrk posting ``bodies`` in turn (each connection starts at its own place in the list)."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        f"local bodies = {{{', '.join(json.dumps(b) for b in bodies)}}}\n"
        "local i = math.random(#bodies)\n"
        "request = function()\n"
        "  i = i % #bodies + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[i])\n"
        "end\n"
    )
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout  # fmt: skip
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "90", "99"):
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(\w+)", out).groups()  # type: ignore[union-attr]
        figures[f"p{pct}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non2xx"] = float(errors.group(1)) if errors else 0.0
    return figures


def show(name: str, f: dict[str, float]) -> None:
    print(f"{name:58s} {f['rps']:8,.0f} req/s   p50 {f['p50']:6.1f} ms   p90 {f['p90']:6.1f} ms   "
          f"p99 {f['p99']:6.1f} ms" + (f"   ({f['non2xx']:.0f} errors)" if f["non2xx"] else ""))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="serve --workers N")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (make bench installs it)")
    source = estate(args.size)
    path = source.path
    source.close()
    sg = ServiceGraph(SqliteStore(path, source.model))
    token = create_token(sg.store, "bench-throughput", "viewer")
    leaves = list(islice((i for i in sg.engine.ids if i.startswith("vm-")
                          and 2 <= sg.impact([i]).total_impacted <= 20), 200))  # fmt: skip
    hub = max((i for i in sg.engine.ids if i.startswith("host-")),
              key=lambda i: len(sg.engine.reach([i], "up")))  # fmt: skip
    big = sg.impact([hub]).total_impacted
    sg.close()
    for port in (8941, 8942):  # else wrk would measure whatever answers there
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                sys.exit(f"port {port} is taken: stop what listens there, then run again")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    servers = [
        subprocess.Popen([sys.executable, "-c", "from servicegraph.api.cli import main; main()",
                          "serve", "--db", str(path), "--port", "8941", "--workers",
                          str(args.workers), "--no-access-log"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.throughput:bare", "--port",
                          "8942", "--log-level", "warning"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        wait_up("http://127.0.0.1:8941/health", servers[0])
        wait_up("http://127.0.0.1:8942/docs", servers[1])
        small = [json.dumps({"query": SMALL, "variables": {"ids": [leaf]}}) for leaf in leaves]
        large = json.dumps({"query": LARGE, "variables": {"ids": [hub]}})
        url = "http://127.0.0.1:8941/graphql"
        probe = httpx.post(url, content=small[0], headers={"Authorization": f"Bearer {token}",
                                                         "Content-Type": "application/json"})  # fmt: skip
        assert "errors" not in probe.json(), probe.text
        print(f"== {args.size:,}-CI estate, serve --workers {args.workers} --no-access-log (the "
              "bare endpoint logs no requests either); wrk -t2 -c16 "
              f"-d{args.seconds}s on loopback, "
              f"load average before: {os.getloadavg()[0]:.2f}")  # fmt: skip
        floor = wrk("http://127.0.0.1:8942/graphql", small, token, args.seconds)
        show("bare FastAPI, constant body", floor)
        alone = wrk(url, small, token, args.seconds)
        show(f"small impacts of {len(leaves)} VMs in turn (2-20 CIs each)", alone)
        print(f"{'':58s} {floor['rps'] / alone['rps']:8.1f}x the bare endpoint's time per request")
        stop = threading.Event()
        done = [0]

        def hammer() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set():
                    client.post(url, content=large, headers={"Authorization": f"Bearer {token}",
                                                             "Content-Type": "application/json"})  # fmt: skip
                    done[0] += 1

        worker = threading.Thread(target=hammer, daemon=True)
        worker.start()
        time.sleep(1)
        during = wrk(url, small, token, args.seconds)
        stop.set()
        worker.join()
        show(f"small impacts while {hub}'s ({big:,} CIs) runs again and again", during)
        print(f"{'':58s} ({done[0]} large impacts answered meanwhile)")
    finally:
        for s in servers:
            s.terminate()
            s.wait(30)


if __name__ == "__main__":
    main()
