"""Configuration audit benchmark on a CMDB with a year of history: the ``bench.engine`` estate
journaled a year ago, then the demo's year (``seed_config_history`` over every CI, with monthly
discovery sweeps): owners filled in, OS upgrades, new and retired VMs, ``last_seen`` refreshed.

    python -m bench.audit --size 100000

Figures: CMDB health (every CI, one service's closure) against the plain read of every CI; an
export as of six months ago; diffs between two dates; a feed of ``--feed`` records reconciled
(dry run and apply). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from bench.engine import CACHE, median_ms, rss_mb
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.model import load_model
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.audit.demo_audit import YEAR, seed_config_history
from servicegraph.processes.audit.timetravel import export_as_of
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.times import iso

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # the history's end: fixed, so the cache is reusable


def year_estate(size: int) -> SqliteStore:
    """The estate with a year of journal, built once into the bench cache."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"bench-audit-year-{size}.db"
    store = SqliteStore(path, load_model())
    if store.head_seq() == 0:
        started = time.perf_counter()
        store.write(generate_estate(size, seed=1), "bench", at=iso(NOW - YEAR))
        sg = ServiceGraph(store)
        writes = seed_config_history(sg, random.Random(3), NOW, first=None)
        print(f"  built {path}: {store.head_seq():,} journal entries ({writes} writes over a "
              f"year) in {time.perf_counter() - started:.0f} s")  # fmt: skip
    return store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--feed", type=int, default=None, help="feed records (default: --size)")
    args = parser.parse_args()
    source = year_estate(args.size)
    source.close()
    copy = CACHE / f"bench-audit-{args.size}.db"
    shutil.copy(CACHE / f"bench-audit-year-{args.size}.db", copy)  # the reconcile writes
    sg = ServiceGraph(SqliteStore(copy, source.model))
    sg.engine.refresh()  # built once, as a server or notebook holds it
    head = sg.store.head_seq()
    print(f"== {sum(sg.store.counts().values()):,} records, journal of {head:,} entries "
          f"from {iso(NOW - YEAR)[:10]} to {iso(NOW)[:10]}")  # fmt: skip
    plain, _ = median_ms(lambda: sum(1 for _ in sg.store.iter_cis()), 3)
    took, result = median_ms(sg.health, 3)
    print(f"health of {result.cis:,} live CIs: {took:,.0f} ms (median of 3), "
          f"{len(result.findings):,} findings, score {result.scores['score']}; reading every CI: "
          f"{plain:,.0f} ms ({took / plain:.1f}x)")  # fmt: skip
    service = next(i for i in sg.engine.ids if i.startswith("business-service-"))
    took, result = median_ms(lambda: sg.health(service=service), 3)
    print(f"health of {service}'s closure ({result.cis:,} CIs): {took:,.0f} ms")
    half = iso(NOW - YEAR / 2)
    took, data = median_ms(lambda: export_as_of(sg.store, half), 3)
    print(f"export as of {half[:10]} ({len(data['cis']):,} CIs, "
          f"{len(data['relationships']):,} relationships): {took:,.0f} ms (median of 3)")  # fmt: skip
    for start, end in ((NOW - YEAR / 2, NOW - YEAR / 4), (NOW - YEAR + dt.timedelta(days=1), NOW)):
        took, changed = median_ms(lambda s=start, e=end: sg.diff(iso(s), iso(e)), 3)  # type: ignore[misc]
        entries = changed["to"]["seq"] - changed["from"]["seq"]
        print(f"diff {iso(start)[:10]} → {iso(end)[:10]} ({entries:,} journal entries, "
              f"{sum(changed['counts'].values()):,} changes): {took:,.0f} ms (median of 3)")  # fmt: skip
    took, _ = median_ms(lambda: sg.diff(head - 1000), 3)
    print(f"diff over the last 1,000 journal entries: {took:,.0f} ms")
    months = [iso(NOW - YEAR + dt.timedelta(days=30 * m + 1)) for m in range(12)] + [iso(NOW)]
    took, trend = median_ms(lambda: sg.health_trend(months), 1)
    print(f"health trend at {len(months)} monthly points (one replay, a health per point): "
          f"{took:,.0f} ms; score {trend['score'].iloc[0]} → {trend['score'].iloc[-1]}")  # fmt: skip
    reconcile_feed(sg, args.feed or args.size)
    print(f"peak RSS {rss_mb():,.0f} MiB")
    sg.close()
    copy.unlink()


def bench_policy() -> Path:
    """The shipped audit policy, with discovery also identifying (by name) and reporting the
    storage volumes, application and database instances it finds, as a site's policy would."""
    raw = yaml.safe_load(files("servicegraph.processes.audit").joinpath("policy.yaml").read_text())
    for cls, attrs in (("storage_volume", ["size_gb"]), ("application_instance", ["port"]),
                       ("database_instance", ["port"])):  # fmt: skip
        raw["identification"][cls] = [["name"]]
        raw["reconciliation"]["discovery"]["attributes"][cls] = attrs
    path = CACHE / "bench-audit-policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def reconcile_feed(sg: ServiceGraph, size: int) -> None:
    """A discovery feed in the tool's own ids: the live hosts, VMs, storage volumes, application
    and database instances (found by serial number, FQDN, name) but 1% that are gone, 2% of the
    VMs with a new OS, padded to ``size`` records with new VMs."""
    policy = str(bench_policy())
    wanted = {"host", "vm", "storage_volume", "application_instance", "database_instance"}
    live = [c for c in sg.store.iter_cis() if c.cls in wanted and c.status != "retired"]
    records: list[dict[str, Any]] = []
    for n, ci in enumerate(live[:size]):
        if n % 100 == 99:
            continue  # gone: decommissioned without telling the CMDB (the report's missing)
        attrs = {k: ci.attributes[k] for k in ("fqdn", "ip_address", "os", "serial_number",
                                               "size_gb", "port") if k in ci.attributes}  # fmt: skip
        if n % 50 == 0 and ci.cls == "vm":
            attrs["os"] = "RHEL 9.4"
        records.append({"id": f"d{n}", "class": ci.cls, "name": ci.name, "attributes": attrs})
    for n in range(size - len(records)):
        records.append({"id": f"new{n}", "class": "vm", "name": f"new {n}",
                        "attributes": {"fqdn": f"new-{n}.example", "os": "RHEL 9.4"}})  # fmt: skip
    feed = {"records": records}
    took, report = median_ms(lambda: sg.reconcile(feed, "discovery", policy=policy), 1)
    print(f"reconcile a {len(records):,}-record feed (dry run): {took:,.0f} ms; "
          f"{report['counts']}")  # fmt: skip
    took, report = median_ms(lambda: sg.reconcile(feed, "discovery", apply=True, policy=policy), 1)
    applied = report["applied"]
    print(f"… and applied ({len(applied['updated']):,} updates, {len(applied['created']):,} new, "
          f"{applied['seen']:,} seen, one transaction): {took:,.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
