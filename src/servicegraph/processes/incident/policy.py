"""The incident policy as data: ``policy.yaml`` (shipped) and optionally a user's file named by
``SERVICEGRAPH_INCIDENT_POLICY`` whose top-level keys replace the shipped ones. Checked on load:
a policy that names an unknown criterion, level or urgency is refused with what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicegraph.errors import ModelError
from servicegraph.processes.policy_files import read_policy

__all__ = ["CRITERIA", "LEVELS", "URGENCIES", "IncidentPolicy", "load_incident_policy"]

LEVELS = ("extensive", "significant", "moderate", "minor")
URGENCIES = ("high", "medium", "low")
CRITERIA = frozenset({
    "service_down_min_criticality", "min_customers", "any_sla_down", "any_service_down",
    "any_service_degraded", "min_impacted",
})  # fmt: skip
RCA_KEYS = frozenset({
    "points_per_incident_explained", "points_per_incident_degraded", "points_per_silent_ci",
    "points_alarms_first", "points_per_incident_before_it", "points_per_recent_change",
    "points_per_open_known_error", "recent_change_hours", "time_tolerance_minutes",
    "silent_list_limit",
})  # fmt: skip


@dataclass(frozen=True)
class IncidentPolicy:
    impact_levels: dict[str, dict[str, Any]]
    priority_matrix: dict[str, dict[str, int]]
    default_urgency: str
    major_incident: dict[str, Any]
    default_targets: dict[int, dict[str, int]]
    change_window_hours: float
    rca: dict[str, float]
    recurring_min_incidents: int
    source: str

    def priority(self, level: str, urgency: str) -> int:
        return int(self.priority_matrix[level][urgency])

    def targets(self, priority: int) -> dict[str, int]:
        return dict(self.default_targets.get(priority) or {})


def load_incident_policy(path: str | Path | None = None) -> IncidentPolicy:
    raw, where = read_policy("servicegraph.processes.incident", "policy.yaml",
                             "SERVICEGRAPH_INCIDENT_POLICY", "incident policy", path)  # fmt: skip
    problems = _check(raw)
    if problems:
        raise ModelError(problems, where)
    rca = {k: float(v) for k, v in (raw.get("rca") or {}).items()}
    return IncidentPolicy(
        impact_levels={k: dict(v or {}) for k, v in (raw.get("impact_levels") or {}).items()},
        priority_matrix={
            k: {u: int(p) for u, p in v.items()} for k, v in raw["priority_matrix"].items()
        },
        default_urgency=str(raw.get("default_urgency") or "medium"),
        major_incident=dict(raw.get("major_incident") or {}),
        default_targets={
            int(k): {t: int(m) for t, m in v.items()}
            for k, v in (raw.get("default_targets") or {}).items()
        },
        change_window_hours=float(raw.get("change_window_hours", 72)),
        rca=rca,
        recurring_min_incidents=int(raw.get("recurring_min_incidents", 3)),
        source=where,
    )


def _check(raw: dict[str, Any]) -> list[str]:
    problems = []
    for level, criteria in (raw.get("impact_levels") or {}).items():
        if level not in LEVELS[:-1]:
            problems.append(f"impact_levels: {level!r} is not one of {list(LEVELS[:-1])}")
        problems += _check_criteria(f"impact_levels.{level}", criteria, CRITERIA)
    problems += _check_criteria("major_incident", raw.get("major_incident") or {},
                                CRITERIA | {"priority_at_most"})  # fmt: skip
    matrix = raw.get("priority_matrix")
    if not isinstance(matrix, dict):
        problems.append("priority_matrix: a mapping of impact level to {urgency: priority}")
    else:
        for level in LEVELS:
            row = matrix.get(level)
            if not isinstance(row, dict) or set(row) != set(URGENCIES):
                problems.append(f"priority_matrix.{level}: give a priority for each of "
                                f"{list(URGENCIES)}")  # fmt: skip
            elif not all(isinstance(p, int) and 1 <= p <= 5 for p in row.values()):
                problems.append(f"priority_matrix.{level}: priorities are integers 1..5")
    if raw.get("default_urgency", "medium") not in URGENCIES:
        problems.append(f"default_urgency: one of {list(URGENCIES)}")
    for prio, targets in (raw.get("default_targets") or {}).items():
        if not isinstance(targets, dict) or not set(targets) <= {"response_minutes",
                                                                  "resolution_minutes"}:  # fmt: skip
            problems.append(f"default_targets.{prio}: response_minutes and resolution_minutes")
    stray = sorted(set(raw.get("rca") or {}) - RCA_KEYS)
    if stray:
        problems.append(f"rca: unknown keys {stray}; known: {sorted(RCA_KEYS)}")
    missing = sorted(RCA_KEYS - set(raw.get("rca") or {}))
    if missing:
        problems.append(f"rca: missing keys {missing}")
    return problems


def _check_criteria(where: str, criteria: Any, known: frozenset[str]) -> list[str]:
    if not isinstance(criteria, dict):
        return [f"{where}: a mapping of criteria"]
    return [f"{where}: unknown criterion {c!r}; known: {sorted(known)}"
            for c in criteria if c not in known]  # fmt: skip
