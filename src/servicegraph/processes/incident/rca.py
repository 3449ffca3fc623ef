"""Root-cause ranking (8.2): which CI's failure explains these incidents, best first, with the
factors of every score — and the incidents split into groups that share a best explanation.

Candidates are the CIs whose failure can impact an incident's CIs: the union of the affected CIs'
dependency closures over ``required``/``redundant`` relationships (the engine's propagation read
backwards). A candidate's score is the sum of the policy's points (``rca`` in the incident policy)
for these factors, each listed with its value:

* incidents it explains: its failure takes one of the incident's CIs DOWN (or only DEGRADES it,
  through redundancy, for fewer points);
* silent CIs: CIs its failure would take DOWN that raised no incident (a cause that predicts many
  alarms that did not come is a poor explanation);
* time order: it alarmed itself no later than what it explains (a bonus), or incidents it would
  explain alarmed before it did (a penalty each);
* recent changes on it, and open known errors or problems affecting it.

Equal scores are ordered nearer first (the mean hop count to the CIs it explains) and reported as
ties when they also explain the same incidents. Predicting the DOWN set of every candidate would be
the expensive part at a million CIs, so candidates are visited by an upper bound of their score
(every explained incident DOWN, no silent CI) and the DOWN walk of each stops as soon as its silent
CIs alone rule it out of the answer: a hub that "explains everything" costs as much as the alarms
that could still save it, not its blast radius.

Groups: the best candidate over the remaining incidents takes the incidents it explains as a group
(ranked again on the group alone), until every incident is in one; incidents nothing explains form
a last group without candidates.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.incident.policy import IncidentPolicy
from servicegraph.processes.incident.records import (
    CLOSED_PROBLEM_STATES,
    affected_cis,
    incidents_in_window,
)
from servicegraph.processes.times import iso, parse, time_of

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import TopologyEngine

__all__ = ["RootCauseResult", "root_causes"]

MEANINGS = {
    "incidents_explained": "incidents whose CIs its failure takes DOWN",
    "incidents_degraded": "incidents whose CIs its failure only DEGRADES (redundancy)",
    "silent_cis": "CIs its failure takes DOWN that raised no incident",
    "alarms_first": "it alarmed no later than the incidents it explains",
    "incidents_before_it": "incidents it explains that alarmed before it did",
    "recent_changes": "changes on it implemented shortly before the incidents",
    "open_known_errors": "open known errors or problems affecting it",
}


@dataclass
class _Inputs:
    incidents: list[str]
    opened: dict[str, dt.datetime | None]
    affects: dict[str, list[int]]  # incident -> affected node indices
    alarmed: dict[int, list[str]]  # node -> incidents affecting it
    first_alarm: dict[int, dt.datetime]
    # candidate node -> {affected node: (hops, parent array owner)}
    reach: dict[int, dict[int, int]] = field(default_factory=dict)
    closures: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)


@dataclass
class RootCauseResult:
    """The ranking: ``incidents`` analysed, ``candidates`` best first, ``groups``."""

    incidents: list[str]
    candidates: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    window: dict[str, str | None]

    def to_dict(self) -> dict[str, Any]:
        return {"incidents": self.incidents, "window": self.window,
                "candidates": self.candidates, "groups": self.groups}  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        """One row per candidate of the overall ranking: rank, id, class, name, score, how many
        incidents it explains, silent CIs, mean distance, and each factor's points."""
        import pandas as pd

        rows = []
        for rank, c in enumerate(self.candidates, 1):
            row = {"rank": rank, "id": c["id"], "class": c["class"], "name": c["name"],
                   "score": c["score"], "explains": len(c["explains"]),
                   "silent": c["silent_count"], "distance": c["distance"],
                   "ties_with": ", ".join(c["ties_with"])}  # fmt: skip
            row.update({f["factor"]: f["points"] for f in c["factors"]})
            rows.append(row)
        return pd.DataFrame(rows)

    def groups_frame(self) -> pd.DataFrame:
        """One row per group: its incidents, its best candidate and score."""
        import pandas as pd

        return pd.DataFrame([
            {"group": g["group"], "incidents": len(g["incidents"]),
             "best": g["candidates"][0]["id"] if g["candidates"] else None,
             "score": g["candidates"][0]["score"] if g["candidates"] else None}
            for g in self.groups
        ])  # fmt: skip


def root_causes(
    engine: TopologyEngine,
    store: GraphStore,
    policy: IncidentPolicy,
    incident_ids: Collection[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    limit: int = 10,
    now: dt.datetime | None = None,
) -> RootCauseResult:
    """Rank the root-cause candidates of the given incidents, or of those opened in
    [start, end) and not closed (default: the last 24 hours)."""
    if limit < 1 or limit > 1000:
        raise ValidationFailed([Problem("rca", "limit", "between 1 and 1000")], wrote=False)
    now = now or dt.datetime.now(dt.UTC)
    if incident_ids:
        records = store.get_cis(list(dict.fromkeys(incident_ids)))
        missing = [i for i in incident_ids if i not in records or records[i].cls != "incident"]
        if missing:
            if len(missing) == 1:
                raise NotFound("incident", missing[0])
            raise ValidationFailed(
                [Problem("incidents", i, "no incident with this id") for i in missing],
                wrote=False,
            )
        chosen = list(records.values())
        window: dict[str, str | None] = {"from": None, "to": None}
    else:
        lo = parse(start) if start else now - dt.timedelta(hours=24)
        hi = parse(end) if end else now
        if hi <= lo:
            raise ValidationFailed(
                [Problem("rca", "to", f"the window ends ({iso(hi)}) before it starts ({iso(lo)})")],
                wrote=False,
            )
        chosen = incidents_in_window(store, lo, hi)
        window = {"from": iso(lo), "to": iso(hi)}
    ranker = _Ranker(engine, store, policy, _inputs(engine, chosen))
    everything = set(ranker.inputs.incidents)
    candidates = ranker.rank(everything, limit)
    groups: list[dict[str, Any]] = []
    remaining = set(everything)
    while remaining:
        best = ranker.rank(remaining, 1)
        # a group is what its best explanation takes DOWN; incidents it only DEGRADES stay for
        # a better explanation (unless that is all it explains)
        strong = set(best[0]["explains"]) - set(best[0]["degraded"]) if best else set()
        members = (strong or set(best[0]["explains"] if best else ())) & remaining
        if not members:
            groups.append({"group": len(groups) + 1, "incidents": sorted(remaining),
                           "candidates": [], "unexplained": True})  # fmt: skip
            break
        groups.append({"group": len(groups) + 1, "incidents": sorted(members),
                       "candidates": ranker.rank(members, limit), "unexplained": False})  # fmt: skip
        remaining -= members
    return RootCauseResult(sorted(everything), candidates, groups, window)


def _inputs(engine: TopologyEngine, incidents: list[CI]) -> _Inputs:
    ids = sorted(i.id for i in incidents)
    opened = {i.id: time_of(i.attributes.get("opened_at")) for i in incidents}
    affects: dict[str, list[int]] = {i: [] for i in ids}
    alarmed: dict[int, list[str]] = {}
    for incident, ci in affected_cis(engine, ids):
        node = int(engine.index[ci])
        affects[incident].append(node)
        alarmed.setdefault(node, []).append(incident)
    first_alarm: dict[int, dt.datetime] = {}
    for node, incs in alarmed.items():
        times = [t for t in (opened[i] for i in incs) if t is not None]
        if times:
            first_alarm[node] = min(times)
    inputs = _Inputs(ids, opened, affects, alarmed, first_alarm)
    nodes = sorted(alarmed)
    for node, closure in zip(nodes, engine.dependency_closures(nodes), strict=True):
        inputs.closures[node] = closure
        members, hops, _ = closure
        for cand, h in zip(members.tolist(), hops.tolist(), strict=True):
            inputs.reach.setdefault(cand, {})[node] = h
    return inputs


class _Ranker:
    def __init__(
        self, engine: TopologyEngine, store: GraphStore, policy: IncidentPolicy, inputs: _Inputs
    ) -> None:
        self.engine, self.store, self.inputs = engine, store, inputs
        self.points = policy.rca
        self.tolerance = dt.timedelta(minutes=self.points["time_tolerance_minutes"])
        self.down: dict[int, tuple[np.ndarray, bool]] = {}  # node -> DOWN set (or its prefix)
        self.alarmed_mask = np.zeros(engine.n, dtype=bool)
        self.alarmed_mask[list(inputs.alarmed)] = True
        candidates = list(inputs.reach)
        self.changes = _recent_changes(engine, store, candidates)
        self.known_errors = _open_known_errors(engine, store, candidates)
        p = self.points
        first = max(0.0, p["points_alarms_first"])
        self.max_bonus = {  # the most the factors beside explained/silent can add, per candidate
            c: (first if c in inputs.alarmed else 0.0)
            + max(0.0, p["points_per_recent_change"]) * len(self.changes.get(c, ()))
            + max(0.0, p["points_per_open_known_error"]) * len(self.known_errors.get(c, ()))
            for c in candidates
        }
        self._positions: dict[int, dict[int, int]] = {}  # closure node -> {member: position}

    # -- scoring ----------------------------------------------------------------------------
    def _explained(self, cand: int, incidents: set[str]) -> dict[str, int]:
        """Incidents (of ``incidents``) the candidate can impact → the nearest affected node."""
        reach = self.inputs.reach[cand]
        out: dict[str, int] = {}
        for node in reach:
            for inc in self.inputs.alarmed[node]:
                if inc in incidents and (inc not in out or reach[node] < reach[out[inc]]):
                    out[inc] = node
        return out

    def _bonus(
        self, cand: int, explained: dict[str, int]
    ) -> tuple[list[tuple[str, Any, float]], list[tuple[str, dt.datetime, str]]]:
        """The factors that do not need the DOWN set (time order, changes, known errors), and
        the recent changes counted."""
        p, factors = self.points, []
        first = self.inputs.first_alarm.get(cand)
        times = [t for t in (self.inputs.opened[i] for i in explained) if t is not None]
        if first is not None and times:
            others = [t for i, t in ((i, self.inputs.opened[i]) for i in explained)
                      if t is not None and cand not in self.inputs.affects[i]]  # fmt: skip
            before = sum(1 for t in others if t < first - self.tolerance)
            if before:
                factors.append(("incidents_before_it", before,
                                before * p["points_per_incident_before_it"]))  # fmt: skip
            elif others:
                factors.append(("alarms_first", True, p["points_alarms_first"]))
        start = min(times) if times else None
        window = dt.timedelta(hours=p["recent_change_hours"])
        recent = [c for c in self.changes.get(cand, [])
                  if start is None or start - window <= c[1] <= max(times) + self.tolerance]  # fmt: skip
        if recent:
            factors.append(("recent_changes", len(recent),
                            len(recent) * p["points_per_recent_change"]))  # fmt: skip
        known = self.known_errors.get(cand, [])
        if known:
            factors.append(("open_known_errors", len(known),
                            len(known) * p["points_per_open_known_error"]))  # fmt: skip
        return factors, recent

    def _down_set(self, cand: int, cap: int) -> tuple[np.ndarray, bool]:
        cached = self.down.get(cand)
        if cached is None or (cached[1] and cached[0].size < cap):
            cached = self.down[cand] = self.engine.down_set(cand, cap)
        return cached

    def rank(self, incidents: set[str], limit: int) -> list[dict[str, Any]]:
        p = self.points
        per_explained = p["points_per_incident_explained"]
        per_silent = -p["points_per_silent_ci"]  # ≥ 0: points lost per silent CI
        bounds = []
        for cand in self.inputs.reach:
            explained = self._explained(cand, incidents)
            if explained:  # the bound: every incident DOWN, no silent CI, every bonus
                upper = len(explained) * per_explained + self.max_bonus[cand]
                bounds.append((-upper, cand, explained))
        heapq.heapify(bounds)
        best: list[dict[str, Any]] = []  # every candidate that reached the answer so far
        top: list[float] = []  # a min-heap of the best ``limit`` scores
        while bounds:
            neg_upper, cand, explained = heapq.heappop(bounds)
            threshold = top[0] if len(top) >= limit else -float("inf")
            if -neg_upper < threshold:
                break  # no candidate left can reach the answer
            cap = 1 << 62
            if per_silent > 0 and threshold > -float("inf"):
                cap = int((-neg_upper - threshold) / per_silent) + len(self.inputs.alarmed) + 2
            down, capped = self._down_set(cand, cap)
            if capped:
                continue  # its silent CIs alone put it below the answer
            bonus, recent = self._bonus(cand, explained)
            scored = self._score(cand, explained, bonus, down)
            if scored["score"] >= threshold:
                scored["recent_changes"] = [
                    {"change": c, "implemented_at": iso(t), "outcome": o} for c, t, o in recent
                ]
                best.append(scored)
                heapq.heappush(top, scored["score"])
                if len(top) > limit:
                    heapq.heappop(top)
        ranked = sorted(best, key=lambda s: (-s["score"], s["distance"], s["id"]))
        _mark_ties(ranked, limit)
        ranked = ranked[:limit]
        self._describe(ranked, incidents)
        return ranked

    def _score(
        self,
        cand: int,
        explained: dict[str, int],
        bonus: list[tuple[str, Any, float]],
        down: np.ndarray,
    ) -> dict[str, Any]:
        p = self.points
        alarmed_down = set(down[self.alarmed_mask[down]].tolist())  # few: the alarms it predicts
        fully = sorted(i for i in explained
                       if any(n in alarmed_down for n in self.inputs.affects[i]))  # fmt: skip
        partly = sorted(set(explained) - set(fully))
        silent = down[~self.alarmed_mask[down]]
        factors = [
            ("incidents_explained", len(fully), len(fully) * p["points_per_incident_explained"])
        ]
        if partly:
            factors.append(("incidents_degraded", len(partly),
                            len(partly) * p["points_per_incident_degraded"]))  # fmt: skip
        factors.append(("silent_cis", int(silent.size), silent.size * p["points_per_silent_ci"]))
        factors += bonus
        reach = self.inputs.reach[cand]
        distance = float(np.mean([reach[n] for n in explained.values()]))
        return {
            "id": self.engine.ids[cand],
            "score": round(float(sum(f[2] for f in factors)), 3),
            "factors": [
                {
                    "factor": name,
                    "value": value,
                    "points": round(float(points), 3),
                    "meaning": MEANINGS[name],
                }
                for name, value, points in factors
            ],
            "explains": sorted(explained),
            "degraded": partly,
            "distance": round(distance, 3),
            "silent_count": int(silent.size),
            "_silent": silent,
            "_cand": cand,
            "_explained": explained,
        }

    def _describe(self, ranked: list[dict[str, Any]], incidents: set[str]) -> None:
        """Names, classes, paths and listed evidence for the candidates in the answer."""
        labels = self.store.labels([r["id"] for r in ranked])
        limit = int(self.points["silent_list_limit"])
        ids = self.engine.ids
        for row in ranked:
            cand = row.pop("_cand")
            explained = row.pop("_explained")
            silent = row.pop("_silent")
            row["class"] = self.engine.class_of(row["id"])
            row["name"] = labels.get(row["id"], ("", ""))[1]
            row["paths"] = {inc: self._path(cand, node) for inc, node in sorted(explained.items())}
            row["silent"] = [ids[v] for v in silent[:limit].tolist()]
            row["known_errors"] = self.known_errors.get(cand, [])
            # keep the keys in the documented order
            order = ["id", "class", "name", "score", "factors", "explains", "degraded", "paths",
                     "distance", "silent", "silent_count", "recent_changes", "known_errors",
                     "ties_with", "ties_count"]  # fmt: skip
            items = {k: row[k] for k in order}
            row.clear()
            row.update(items)

    def _path(self, cand: int, node: int) -> list[str]:
        """[candidate … affected CI], from the affected CI's breadth-first closure."""
        members, _, parent = self.inputs.closures[node]
        position = self._positions.get(node)
        if position is None:
            position = self._positions[node] = {v: k for k, v in enumerate(members.tolist())}
        at = position[cand]
        chain = [cand]
        while at != 0:
            v = int(parent[at])
            chain.append(v)
            at = position[v]
        return [self.engine.ids[v] for v in chain]


def _mark_ties(ranked: list[dict[str, Any]], limit: int) -> None:
    """Candidates with the same score explaining the same incidents tie: each row names the
    others in the answer (``ties_with``) and how many there are in all (``ties_count``)."""
    by_key: dict[tuple[float, tuple[str, ...]], list[str]] = {}
    for row in ranked:
        by_key.setdefault((row["score"], tuple(row["explains"])), []).append(row["id"])
    shown = {row["id"] for row in ranked[:limit]}
    for row in ranked:
        same = by_key[(row["score"], tuple(row["explains"]))]
        row["ties_with"] = [i for i in same if i != row["id"] and i in shown]
        row["ties_count"] = len(same) - 1


def _recent_changes(
    engine: TopologyEngine, store: GraphStore, candidates: Iterable[int]
) -> dict[int, list[tuple[str, dt.datetime, str]]]:
    """Implemented changes per candidate node: (change, implemented_at, outcome)."""
    from servicegraph.processes.incident.correlation import implemented_changes

    changes = dict((c.id, (c, when)) for c, when in implemented_changes(store))
    wanted = set(candidates)
    out: dict[int, list[tuple[str, dt.datetime, str]]] = {}
    if not changes:
        return out
    for change, target in engine.outgoing(list(changes), "TARGETS"):
        node = engine.index.get(target)
        if node in wanted:
            record, when = changes[change]
            out.setdefault(node, []).append(
                (change, when, str(record.attributes.get("outcome") or ""))
            )
    return out


def _open_known_errors(
    engine: TopologyEngine, store: GraphStore, candidates: Iterable[int]
) -> dict[int, list[dict[str, Any]]]:
    """Open known errors and problems affecting each candidate node."""
    nodes = list(candidates)
    if not nodes:
        return {}
    ids = [engine.ids[v] for v in nodes]
    pairs = [(s, t) for s, t in engine.incoming(ids, "AFFECTS")
             if engine.class_of(s) in ("known_error", "problem")]  # fmt: skip
    records = store.get_cis(sorted({s for s, _ in pairs}))
    out: dict[int, list[dict[str, Any]]] = {}
    for source, target in pairs:
        rec = records.get(source)
        if rec is None or rec.attributes.get("state") in CLOSED_PROBLEM_STATES:
            continue
        entry = {"id": rec.id, "class": rec.cls, "name": rec.name,
                 "state": rec.attributes.get("state")}  # fmt: skip
        if rec.attributes.get("workaround"):
            entry["workaround"] = rec.attributes["workaround"]
        out.setdefault(engine.index[target], []).append(entry)
    return out
