"""Achieved availability (6.2, 6.3 "unplanned non-availability"): what a service actually reached.

An incident takes a service down when the failure of the CIs it ``AFFECTS`` takes the service DOWN
by the engine's propagation (the same rule as impact and the designed availability). A service's
outage in a period is the union of those incidents' intervals (``opened_at`` to ``resolved_at``,
or to the end of the period while unresolved), so overlapping incidents are not counted twice.
Achieved = 1 − outage / period, per service and month, beside the SLA target and the designed
(computed) availability.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from servicegraph.processes.availability.analysis import availability
from servicegraph.processes.listing import records_of_class
from servicegraph.processes.times import parse

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.store import GraphStore

__all__ = ["achieved_availability", "outages"]


def outages(
    engine: TopologyEngine, store: GraphStore, services: list[str]
) -> dict[str, list[tuple[dt.datetime, dt.datetime | None, str]]]:
    """service -> (start, end or None, incident) of the incidents that took it DOWN."""
    wanted = set(services)
    incidents = {c.id: c for c in records_of_class(store, "incident")}
    affects: dict[str, list[str]] = {}
    if incidents:
        for incident, ci in engine.outgoing(list(incidents), "AFFECTS"):
            affects.setdefault(incident, []).append(ci)
    out: dict[str, list[tuple[dt.datetime, dt.datetime | None, str]]] = {s: [] for s in services}
    cache: dict[tuple[str, ...], set[str]] = {}
    for ident, cis in sorted(affects.items()):
        opened = incidents[ident].attributes.get("opened_at")
        if not opened:
            continue
        key = tuple(sorted(cis))
        if key not in cache:
            p = engine.propagate(list(key))
            down = {engine.ids[v] for v in p.nodes[p.down].tolist()} | set(key)
            cache[key] = down & wanted
        resolved = incidents[ident].attributes.get("resolved_at")
        for service in cache[key]:
            out[service].append((parse(opened), parse(resolved) if resolved else None, ident))
    return out


def achieved_availability(
    engine: TopologyEngine,
    store: GraphStore,
    start: str,
    end: str,
    services: list[str] | None = None,
) -> pd.DataFrame:
    """One row per service and month in [start, end): outage minutes (union of intervals),
    achieved, the SLA target (the strictest SLA covering the service) and the designed figure."""
    import pandas as pd

    lo, hi = parse(start), parse(end)
    if services is None:
        services = sorted(
            i for i in engine.ids
            if store.model.is_a(engine.class_of(i), "service") and not engine.is_retired(i)
        )  # fmt: skip
    targets: dict[str, float] = {}
    slas = {c.id: c for c in records_of_class(store, "sla")}
    if slas:
        for sla, service in engine.outgoing(list(slas), "COVERS"):
            target = slas[sla].attributes.get("availability_target")
            if isinstance(target, int | float):
                targets[service] = max(targets.get(service, 0.0), float(target))
    down = outages(engine, store, services)
    rows = []
    for service in services:
        designed = availability(engine, store, service).availability
        for month_start, month_end in _months(lo, hi):
            minutes = (month_end - month_start).total_seconds() / 60
            outage = _union_minutes(down[service], month_start, month_end)
            rows.append({
                "service": service, "month": month_start.strftime("%Y-%m"),
                "outage_minutes": round(outage, 1), "achieved": 1 - outage / minutes,
                "target": targets.get(service), "designed": designed,
                "incidents": sorted({i for s, e, i in down[service]
                                     if s < month_end and (e is None or e > month_start)}),
            })  # fmt: skip
    return pd.DataFrame(rows)


def _union_minutes(
    intervals: list[tuple[dt.datetime, dt.datetime | None, str]], lo: dt.datetime, hi: dt.datetime
) -> float:
    clipped = sorted(
        (max(s, lo), min(e or hi, hi)) for s, e, _ in intervals if s < hi and (e is None or e > lo)
    )
    total, current_start, current_end = 0.0, None, None
    for s, e in clipped:
        if current_end is None or s > current_end:
            if current_end is not None and current_start is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = s, e
        else:
            current_end = max(current_end, e)
    if current_end is not None and current_start is not None:
        total += (current_end - current_start).total_seconds()
    return total / 60


def _months(lo: dt.datetime, hi: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    cursor = lo
    while cursor < hi:
        nxt = (cursor.replace(day=1) + dt.timedelta(days=32)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        out.append((cursor, min(nxt, hi)))
        cursor = nxt
    return out
