"""Configuration audit benchmark on an estate of ``bench.engine`` (its journal holds every write
that built it): CMDB health (every CI, and one service's closure) against the plain read of
every CI, an export as of the journal's middle, and diffs.

    python -m bench.audit --size 100000

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil

from bench.engine import CACHE, estate, median_ms
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.records import CI, Batch
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.audit.timetravel import export_as_of


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=20_000)
    args = parser.parse_args()
    source = estate(args.size)
    source.close()
    copy = CACHE / f"bench-audit-{args.size}.db"
    shutil.copy(CACHE / f"bench-estate-{args.size}.db", copy)  # the reconcile writes
    sg = ServiceGraph(SqliteStore(copy, source.model))
    sg.engine.refresh()  # built once, as a server or notebook holds it
    plain, cis = median_ms(lambda: sum(1 for _ in sg.store.iter_cis()), 3)
    took, result = median_ms(sg.health, 3)
    print(f"== {cis:,} records; health of {result.cis:,} live CIs: {took:,.0f} ms (median of 3), "
          f"{len(result.findings):,} findings, score {result.scores['score']}; reading every CI: "
          f"{plain:,.0f} ms ({took / plain:.1f}x)")  # fmt: skip
    service = next(i for i in sg.engine.ids if i.startswith("business-service-"))
    took, result = median_ms(lambda: sg.health(service=service), 3)
    print(f"health of {service}'s closure ({result.cis:,} CIs): {took:,.0f} ms")
    head = sg.store.head_seq()
    half = head // 2
    took, data = median_ms(lambda: export_as_of(sg.store, half), 3)
    print(f"export as of seq {half:,} of {head:,} ({len(data['cis']):,} CIs, "
          f"{len(data['relationships']):,} relationships): {took:,.0f} ms")  # fmt: skip
    took, changed = median_ms(lambda: sg.diff(half), 1)
    print(f"diff from seq {half:,} to now ({sum(changed['counts'].values()):,} changes): "
          f"{took:,.0f} ms")  # fmt: skip
    took, _ = median_ms(lambda: sg.diff(head - 1000), 3)
    print(f"diff over the last 1,000 journal entries: {took:,.0f} ms")
    reconcile_feed(sg)
    sg.close()
    copy.unlink()


def reconcile_feed(sg: ServiceGraph) -> None:
    """Discovery gives every compute CI an FQDN, then a feed of them all (2% drifted, 1% new)
    is reconciled: a dry run and an apply."""
    compute = [c for c in sg.store.iter_cis() if sg.store.model.is_a(c.cls, "compute")
               and c.status != "retired"]  # fmt: skip
    batch = Batch()
    for ci in compute:
        batch.add_ci(CI(ci.id, ci.cls, ci.name, {"fqdn": f"{ci.id}.example"}))
    sg.store.write(batch, "discovery")
    records = [{"id": f"d{n}", "class": ci.cls, "name": ci.name,
                "attributes": {"fqdn": f"{ci.id}.example",
                               "os": "RHEL 9.4" if n % 50 == 0 else ci.attributes.get("os")}}
               for n, ci in enumerate(compute)]  # fmt: skip
    records += [{"id": f"new{n}", "class": "vm", "name": f"new {n}",
                 "attributes": {"fqdn": f"new-{n}.example"}} for n in range(len(compute) // 100)]  # fmt: skip
    feed = {"records": [{**r, "attributes": {k: v for k, v in r["attributes"].items() if v}}
                        for r in records]}  # fmt: skip
    took, report = median_ms(lambda: sg.reconcile(feed, "discovery"), 1)
    print(f"reconcile a {len(records):,}-record feed (dry run): {took:,.0f} ms; "
          f"{report['counts']}")  # fmt: skip
    took, report = median_ms(lambda: sg.reconcile(feed, "discovery", apply=True), 1)
    applied = report["applied"]
    print(f"… and applied ({len(applied['updated']):,} updates, {len(applied['created']):,} new, "
          f"{applied['seen']:,} seen, one transaction): {took:,.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
