"""What the graph says about one incident beyond its priority (8.1, 8.2, 9.2):

* **suggestions** — open known errors and problems affecting the incident's CIs or what they
  depend on, nearest first, so the desk applies a workaround before diagnosing;
* **suspect changes** — changes implemented within the policy window before the incident whose
  blast radius contains one of its CIs, with the path (change-induced incidents);
* the reverse for a change: **incidents after** it in its blast radius.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.incident.records import CLOSED_PROBLEM_STATES
from servicegraph.processes.listing import records_of_class
from servicegraph.processes.times import iso, time_of

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["implemented_changes", "incidents_after_change", "suggestions", "suspect_changes"]

IMPLEMENTED = frozenset({"implemented", "failed", "remediated", "reviewed", "closed"})


def suggestions(
    engine: TopologyEngine, store: GraphStore, ci_ids: Collection[str]
) -> list[dict[str, Any]]:
    """Open known errors and problems affecting ``ci_ids`` or their dependencies, nearest first
    (known errors before problems at the same distance: they carry a workaround)."""
    if not ci_ids:
        return []
    closure = engine.reach(ci_ids, "down", types=engine.impact_type_names)
    pairs = [(s, t) for s, t in engine.incoming(list(closure), "AFFECTS")
             if engine.class_of(s) in ("known_error", "problem")]  # fmt: skip
    records = store.get_cis(sorted({s for s, _ in pairs}))
    best: dict[str, dict[str, Any]] = {}
    for source, ci in pairs:
        rec = records.get(source)
        if rec is None or rec.attributes.get("state") in CLOSED_PROBLEM_STATES:
            continue
        if source in best and best[source]["distance"] <= closure[ci]:
            continue
        best[source] = {
            "id": rec.id, "class": rec.cls, "name": rec.name,
            "state": rec.attributes.get("state"), "ci": ci, "distance": closure[ci],
            "workaround": rec.attributes.get("workaround"),
        }  # fmt: skip
    return sorted(
        best.values(), key=lambda s: (s["distance"], s["class"] != "known_error", s["id"])
    )


def implemented_changes(store: GraphStore) -> list[tuple[CI, dt.datetime]]:
    """Changes that were implemented (successfully or not), with when."""
    out = []
    for change in records_of_class(store, "change"):
        when = time_of(change.attributes.get("implemented_at"))
        if change.attributes.get("state") in IMPLEMENTED and when is not None:
            out.append((change, when))
    return out


def suspect_changes(
    engine: TopologyEngine,
    store: GraphStore,
    incident: CI,
    ci_ids: Collection[str],
    window_hours: float,
    changes: list[tuple[CI, dt.datetime]] | None = None,
) -> list[dict[str, Any]]:
    """Changes implemented within ``window_hours`` before the incident whose blast radius (their
    targets and what their failure impacts) contains one of ``ci_ids``, latest first, each with
    the path from its target to the incident's CI."""
    from servicegraph.processes.change.schedule import change_targets

    opened = time_of(incident.attributes.get("opened_at"))
    if opened is None or not ci_ids:
        return []
    window = dt.timedelta(hours=window_hours)
    found = []
    wanted = set(ci_ids)
    for change, when in changes if changes is not None else implemented_changes(store):
        if not (opened - window <= when <= opened):
            continue
        targets = [t for t in change_targets(engine, change.id) if t in engine.index]
        if not targets:
            continue
        hit = _path_to(engine, targets, wanted)
        if hit is None:
            continue
        ci, status, path = hit
        found.append({
            "change": change.id, "name": change.name, "implemented_at": iso(when),
            "outcome": change.attributes.get("outcome"),
            "hours_before": round((opened - when).total_seconds() / 3600, 2),
            "ci": ci, "status": status, "path": path,
        })  # fmt: skip
    return sorted(found, key=lambda f: (f["hours_before"], f["change"]))


def _path_to(
    engine: TopologyEngine, targets: list[str], wanted: set[str]
) -> tuple[str, str, list[str]] | None:
    """The nearest of ``wanted`` in the blast radius of ``targets``: (CI, status, path)."""
    direct = sorted(wanted & set(targets))
    if direct:
        return direct[0], "TARGET", [direct[0]]
    result = engine.propagate(targets)
    ids = engine.ids
    for row, v in enumerate(result.nodes.tolist()):
        if ids[v] in wanted:
            path = result.head(row + 1).paths()[row]
            return ids[v], "DOWN" if bool(result.down[row]) else "DEGRADED", path
    return None


def incidents_after_change(
    engine: TopologyEngine, store: GraphStore, change_id: str, window_hours: float
) -> dict[str, Any]:
    """Incidents opened within ``window_hours`` after the change was implemented on CIs in its
    blast radius (its targets included), each with the path."""
    from servicegraph.processes.change.schedule import change_targets

    change = store.get_ci(change_id)
    when = time_of(change.attributes.get("implemented_at")) if change else None
    out: dict[str, Any] = {"change": change_id, "implemented_at": iso(when) if when else None,
                           "window_hours": window_hours, "incidents": []}  # fmt: skip
    if change is None or when is None:
        return out
    targets = [t for t in change_targets(engine, change_id) if t in engine.index]
    if not targets:
        return out
    result = engine.propagate(targets)
    ids = engine.ids
    radius = {t: ("TARGET", [t]) for t in targets}
    paths = result.paths()
    for row, v in enumerate(result.nodes.tolist()):
        radius.setdefault(ids[v], ("DOWN" if bool(result.down[row]) else "DEGRADED", paths[row]))
    end = when + dt.timedelta(hours=window_hours)
    pairs = [(s, t) for s, t in engine.incoming(list(radius), "AFFECTS")
             if engine.class_of(s) == "incident"]  # fmt: skip
    incidents = store.get_cis(sorted({s for s, _ in pairs}))
    seen: dict[str, dict[str, Any]] = {}
    for inc_id, ci in pairs:
        inc = incidents.get(inc_id)
        opened = time_of(inc.attributes.get("opened_at")) if inc else None
        if inc is None or opened is None or not (when <= opened <= end) or inc_id in seen:
            continue
        status, path = radius[ci]
        seen[inc_id] = {"incident": inc_id, "name": inc.name, "opened_at": iso(opened),
                        "hours_after": round((opened - when).total_seconds() / 3600, 2),
                        "priority": inc.attributes.get("priority"), "ci": ci,
                        "status": status, "path": path}  # fmt: skip
    out["incidents"] = sorted(seen.values(), key=lambda i: (i["opened_at"], i["incident"]))
    return out
