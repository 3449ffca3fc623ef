"""Web map benchmark in headless Chromium (Debian's, driven by Playwright) against a real
``servicegraph serve`` on an estate of ``bench.engine``: the time from asking for a map of about
500 and about 2,000 CIs to the drawn, interactive map, and the impact overlay on the 2,000-CI map.

    python -m bench.web --size 100000

Each figure is the median of ``--runs``: in the page (performance.now from the request to the
drawn map, layout included) and end to end (from the click to the page saying it is ready, as
Playwright sees it). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.engine import CACHE, estate
from bench.throughput import wait_up
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token


def pick_roots(sg: ServiceGraph, wanted: list[int]) -> dict[int, tuple[str, int, int]]:
    """For each wanted size, a CI and a depth (3 to 8) whose map as the page asks it (both ways,
    the relationship types that carry impact) is nearest to it, from a sample of the estate."""
    types = [n for n, t in sg.store.model.relationship_types.items() if t.impact != "none"]
    best: dict[int, tuple[str, int, int]] = {}
    engine = sg.engine
    for ident in engine.ids[:: max(1, len(engine.ids) // 2000)]:
        for depth in (3, 4, 5, 6, 8):
            size = len(set(engine.reach([ident], "up", depth, types))
                       | set(engine.reach([ident], "down", depth, types)))  # fmt: skip
            for w in wanted:
                if w not in best or abs(size - w) < abs(best[w][1] - w):
                    best[w] = (ident, size, depth)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("install Debian's chromium (make browser)")
    source = estate(args.size)
    path = source.path
    source.close()
    sg = ServiceGraph(SqliteStore(path, source.model))
    roots = pick_roots(sg, [500, 2000])
    token = create_token(sg.store, "bench-web", "viewer")
    sg.close()
    port = 8931
    server = subprocess.Popen(
        [sys.executable, "-c", "from servicegraph.api.cli import main; main()", "serve",
         "--db", str(path), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url + "/health", server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.goto(url + "/")
            page.fill("#token", token)
            page.click("#token-form button[type=submit]")
            page.wait_for_selector("#whoami:has-text('signed in')")
            print(f"== {args.size:,}-CI estate, headless Chromium "
                  f"({browser.version}), median of {args.runs}")  # fmt: skip
            for wanted, (root, size, depth) in sorted(roots.items()):
                page.fill("#depth", str(depth))
                inner, outer = time_map(page, root, args.runs)
                shown = page.inner_text("#map-count")
                print(f"map of {root} ({depth} hops, {size:,} CIs, {shown} drawn; ~{wanted:,} asked): "
                      f"{statistics.median(inner):,.0f} ms in the page, "
                      f"{statistics.median(outer):,.0f} ms end to end")  # fmt: skip
            page.screenshot(path=str(CACHE / "bench-web-2000.png"))
            overlay(page, roots[2000][0], args.runs)
            page.screenshot(path=str(CACHE / "bench-web-2000-impact.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)


def time_map(page: Any, root: str, runs: int) -> tuple[list[float], list[float]]:
    page.fill("#search", root)
    page.click("#search-button")
    button = page.locator(f"#results button.result[data-id='{root}']")
    button.wait_for()
    inner, outer = [], []
    for _ in range(runs):
        page.evaluate("() => { delete document.body.dataset.mapReady; }")
        started = time.perf_counter()
        button.click()
        page.wait_for_selector("body[data-map-ready]", state="attached", timeout=120_000)
        outer.append((time.perf_counter() - started) * 1000)
        inner.append(float(page.evaluate("() => document.body.dataset.mapReady")))
    return inner, outer


def overlay(page: Any, root: str, runs: int) -> None:
    page.wait_for_selector("#toggle-seed")
    if "Add" in page.inner_text("#toggle-seed"):
        page.click("#toggle-seed")
    inner, outer = [], []
    for _ in range(runs):
        page.click("#clear-impact")
        page.evaluate("() => { delete document.body.dataset.overlayMs; }")
        started = time.perf_counter()
        page.click("#impact")
        page.wait_for_selector("body[data-overlay-ms]", state="attached", timeout=120_000)
        outer.append((time.perf_counter() - started) * 1000)
        inner.append(float(page.evaluate("() => document.body.dataset.overlayMs")))
    print(f"impact overlay on that map ({page.inner_text('#impact-summary').split('.')[0]}): "
          f"{statistics.median(inner):,.0f} ms to colour the map, "
          f"{statistics.median(outer):,.0f} ms from the click (GraphQL impact included)")  # fmt: skip


if __name__ == "__main__":
    main()
