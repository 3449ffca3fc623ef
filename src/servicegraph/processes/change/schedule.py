"""The forward schedule of change (9.2) and its collisions: two active changes whose windows
overlap and whose blast radii share CIs (shared dependents count, not only a shared target;
the nearest shared CIs are listed first), and changes that impact a service inside a blackout
window that applies to it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from servicegraph.errors import RuleViolation
from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.listing import records_of_class
from servicegraph.processes.times import iso, parse

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["ACTIVE", "change_targets", "forward_schedule"]

ACTIVE = frozenset({"approved", "scheduled", "implementing"})


def forward_schedule(
    store: GraphStore, engine: TopologyEngine, start: str, end: str
) -> dict[str, Any]:
    """Active changes with a window in [start, end), and their collisions with reasons."""
    from servicegraph.processes.impact import analyse_impact  # numpy: loaded when scheduling

    lo, hi = parse(start), parse(end)
    if hi <= lo:
        raise RuleViolation("window_order", f"the range ends ({end}) before it starts ({start})")
    changes = [
        c for c in records_of_class(store, "change")
        if c.attributes.get("state") in ACTIVE and c.attributes.get("window_start")
        and c.attributes.get("window_end") and _overlaps(c, lo, hi)
    ]  # fmt: skip
    changes.sort(key=lambda c: (c.attributes["window_start"], c.id))
    radius: dict[str, dict[str, int]] = {}  # change -> CI -> hops from its targets
    services: dict[str, set[str]] = {}
    for c in changes:
        targets = change_targets(engine, c.id)
        result = analyse_impact(engine, targets) if targets else None
        radius[c.id] = {t: 0 for t in targets}
        if result:
            radius[c.id].update((r["id"], r["distance"]) for r in result.impacted())
        services[c.id] = {s["id"] for s in result.services} if result else set()
    collisions = []
    for i, a in enumerate(changes):
        for b in changes[i + 1 :]:
            window = _intersection(a, b)
            near_a, near_b = radius[a.id], radius[b.id]
            # the shared CIs nearest to both changes' targets first
            shared = sorted(near_a.keys() & near_b.keys(),
                            key=lambda i: (max(near_a[i], near_b[i]), i))  # fmt: skip
            if window and shared:
                hit = sorted(services[a.id] & services[b.id])
                collisions.append({
                    "kind": "overlapping_changes",
                    "changes": [a.id, b.id],
                    "window": window,
                    "cis": shared[:100],
                    "ci_count": len(shared),
                    "services": hit,
                    "reason": f"{a.id} and {b.id} overlap in time and both impact "
                    f"{len(shared)} CIs, nearest {', '.join(shared[:3])}",
                })  # fmt: skip
    for blackout in records_of_class(store, "blackout_window"):
        applies = {s for _, s in engine.outgoing([blackout.id], "APPLIES_TO")}
        for c in changes:
            hit = sorted(applies & services[c.id])
            window = _intersection(c, blackout, "start", "end")
            if hit and window:
                collisions.append({
                    "kind": "blackout",
                    "changes": [c.id],
                    "blackout": blackout.id,
                    "window": window,
                    "cis": [],
                    "ci_count": 0,
                    "services": hit,
                    "reason": f"{c.id} impacts {', '.join(hit)} inside blackout "
                    f"{blackout.id} ({blackout.attributes.get('reason', '')})",
                })  # fmt: skip
    rows = [
        {"id": c.id, "name": c.name, "state": c.attributes["state"],
         "change_type": c.attributes.get("change_type"),
         "window_start": c.attributes["window_start"], "window_end": c.attributes["window_end"],
         "targets": change_targets(engine, c.id), "risk_level": c.attributes.get("risk_level")}
        for c in changes
    ]  # fmt: skip
    return {"changes": rows, "collisions": collisions}


def change_targets(engine: TopologyEngine, change_id: str) -> list[str]:
    """The CIs an RFC targets, sorted."""
    return sorted(t for _, t in engine.outgoing([change_id], "TARGETS"))


def _overlaps(c: CI, lo: dt.datetime, hi: dt.datetime) -> bool:
    return parse(c.attributes["window_start"]) < hi and parse(c.attributes["window_end"]) > lo


def _intersection(
    a: CI, b: CI, b_start: str = "window_start", b_end: str = "window_end"
) -> list[str] | None:
    start = max(parse(a.attributes["window_start"]), parse(b.attributes[b_start]))
    end = min(parse(a.attributes["window_end"]), parse(b.attributes[b_end]))
    return [iso(start), iso(end)] if start < end else None
