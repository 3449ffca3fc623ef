"""Reading incident and problem records: states, the CIs an incident affects, incidents in a
window. Shared by the lifecycle, the timers, root-cause ranking and the trends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import TYPE_CHECKING

from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.listing import records_of_class
from servicegraph.processes.times import time_of

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = [
    "CLOSED_PROBLEM_STATES",
    "OPEN_STATES",
    "affected_cis",
    "incident_state",
    "incidents_in_window",
]

OPEN_STATES = frozenset({"new", "in_progress", "on_hold"})  # not yet resolved
CLOSED_PROBLEM_STATES = frozenset({"resolved", "closed"})
_LEGACY = {"open": "new"}  # incidents recorded before the lifecycle (0.x) said "open"


def incident_state(incident: CI) -> str:
    state = str(incident.attributes.get("state") or "new")
    return _LEGACY.get(state, state)


def affected_cis(engine: TopologyEngine, incident_ids: Collection[str]) -> list[tuple[str, str]]:
    """(incident, CI) for every CI the incidents ``AFFECTS``."""
    engine.refresh()
    present = [i for i in incident_ids if i in engine.index]
    return engine.outgoing(present, "AFFECTS") if present else []


def incidents_in_window(store: GraphStore, start: dt.datetime, end: dt.datetime) -> list[CI]:
    """Incidents opened in [start, end) that are not closed."""
    out = []
    for inc in records_of_class(store, "incident"):
        opened = time_of(inc.attributes.get("opened_at"))
        if opened is not None and start <= opened < end and incident_state(inc) != "closed":
            out.append(inc)
    return out
