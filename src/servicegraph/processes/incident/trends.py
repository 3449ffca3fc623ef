"""Incident trends for analysts (8.2 "identify problems from incident trends", 6.2): one frame
with a row per incident, counts over time by service, class, priority or CI, MTTR and MTBF per
service, and the CIs that keep failing.

Everything is computed from the records as they are: the services an incident hit come from the
impact snapshot it was prioritised with; SLA breaches are computed now (see :mod:`.timers`);
change-induced means a change implemented within the policy window before it had one of its CIs
in its blast radius.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from servicegraph.graph.store import GraphStore
from servicegraph.processes.incident.correlation import implemented_changes
from servicegraph.processes.incident.policy import IncidentPolicy
from servicegraph.processes.times import parse

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["BY", "incident_frame", "incident_trends", "recurring_cis", "service_reliability"]

BY = ("service", "class", "priority", "ci", "state", "impact_level")
COLUMNS = ["id", "name", "state", "priority", "urgency", "impact_level", "major", "opened_at",
           "responded_at", "resolved_at", "hours_to_resolve", "ci", "ci_class", "cis",
           "services", "sla_breached", "problem", "cause_class", "change_induced"]  # fmt: skip


def incident_frame(
    engine: TopologyEngine,
    store: GraphStore,
    policy: IncidentPolicy,
    start: str | None = None,
    end: str | None = None,
    now: dt.datetime | None = None,
) -> pd.DataFrame:
    """One row per incident (opened in [start, end) when given), by opening time."""
    now = now or dt.datetime.now(dt.UTC)
    read = store.attribute_columns("incident", list(_PATHS))
    engine.refresh()
    if not read.ids:
        return pd.DataFrame(columns=COLUMNS)
    frame = pd.DataFrame({"id": read.ids, "name": read.names,
                          **{name: read.columns[path] for path, name in _PATHS.items()}})  # fmt: skip
    frame["state"] = frame["state"].fillna("new").replace(_LEGACY_STATES)
    frame["major"] = frame["major"].fillna(False).astype(bool)
    frame["services"] = [s if isinstance(s, list) else [] for s in frame["services"]]
    for col in ("opened_at", "responded_at", "resolved_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, errors="coerce", format="ISO8601")
        frame[col] = frame[col].astype("datetime64[ns, UTC]")
    frame["priority"] = pd.to_numeric(frame["priority"], errors="coerce").astype("Int64")
    frame["hours_to_resolve"] = (
        frame["resolved_at"] - frame["opened_at"]
    ).dt.total_seconds() / 3600
    # SLA breaches, computed now: response until the first response, resolution net of holds
    stamp = pd.Timestamp(now).as_unit("ns")
    responded = frame["responded_at"].fillna(frame["resolved_at"]).fillna(stamp)
    response_min = (responded - frame["opened_at"]).dt.total_seconds() / 60
    hold = pd.to_numeric(frame["on_hold_minutes"], errors="coerce").fillna(0)
    resolution_min = (
        frame["resolved_at"].fillna(stamp) - frame["opened_at"]
    ).dt.total_seconds() / 60 - hold
    r_target = pd.to_numeric(frame["response_target"], errors="coerce")
    s_target = pd.to_numeric(frame["resolution_target"], errors="coerce")
    frame["sla_breached"] = ((response_min > r_target) | (resolution_min > s_target)).fillna(False)
    affected = _affected(engine, list(frame["id"]))
    frame["cis"] = [affected.get(i, []) for i in frame["id"]]
    frame["ci"] = [c[0] if c else None for c in frame["cis"]]
    frame["ci_class"] = [engine.class_of(c) if c in engine.index else None for c in frame["ci"]]
    frame["problem"] = _problems(engine, list(frame["id"]))
    frame["cause_class"] = _cause_classes(engine, frame)
    frame["change_induced"] = _change_induced(engine, store, policy, frame)
    frame = frame[COLUMNS]
    if start:
        frame = frame[frame["opened_at"] >= pd.Timestamp(parse(start))]
    if end:
        frame = frame[frame["opened_at"] < pd.Timestamp(parse(end))]
    return frame.sort_values(["opened_at", "id"]).reset_index(drop=True)


_PATHS = {  # attribute path -> frame column
    "state": "state", "priority": "priority", "urgency": "urgency",
    "impact_level": "impact_level", "major": "major", "opened_at": "opened_at",
    "responded_at": "responded_at", "resolved_at": "resolved_at",
    "on_hold_minutes": "on_hold_minutes",
    "impact.targets.response_minutes": "response_target",
    "impact.targets.resolution_minutes": "resolution_target",
    "services": "services",
}  # fmt: skip
_LEGACY_STATES = {"open": "new"}


def _affected(engine: TopologyEngine, ids: list[str]) -> dict[str, list[str]]:
    present = [i for i in ids if i in engine.index]
    out: dict[str, list[str]] = {}
    if present:
        for incident, ci in engine.outgoing(present, "AFFECTS"):
            out.setdefault(incident, []).append(ci)
    for cis in out.values():
        cis.sort()
    return out


def _problems(engine: TopologyEngine, ids: list[str]) -> list[str | None]:
    present = [i for i in ids if i in engine.index]
    linked = dict(engine.outgoing(present, "LINKED_TO")) if present else {}
    return [linked.get(i) for i in ids]


def _cause_classes(engine: TopologyEngine, frame: pd.DataFrame) -> list[str | None]:
    """The class of the root-cause CI of the incident's problem, else of its (first) CI."""
    problems = sorted({p for p in frame["problem"] if isinstance(p, str)})
    cause: dict[str, str] = {}
    if problems:
        for problem, ci in sorted(engine.outgoing(problems, "ROOT_CAUSE")):
            cause.setdefault(problem, engine.class_of(ci))
    return [
        cause.get(p) or c if isinstance(p, str) else c
        for p, c in zip(frame["problem"], frame["ci_class"], strict=True)
    ]


def _change_induced(
    engine: TopologyEngine, store: GraphStore, policy: IncidentPolicy, frame: pd.DataFrame
) -> np.ndarray:
    """Per row: a change implemented within the window before it had one of its CIs in its
    blast radius (its targets or what their failure impacts)."""
    from servicegraph.processes.change.schedule import change_targets

    flags = np.zeros(len(frame), dtype=bool)
    changes = implemented_changes(store)
    if not changes or frame.empty:
        return flags
    exploded = frame[["opened_at", "cis"]].reset_index(drop=True).explode("cis")
    exploded = exploded[exploded["cis"].notna()]
    row = exploded.index.to_numpy()
    node = np.array([engine.index.get(c, -1) for c in exploded["cis"]], dtype=np.int64)
    opened = exploded["opened_at"]
    window = pd.Timedelta(hours=policy.change_window_hours)
    for change, when in changes:
        stamp = pd.Timestamp(when)
        in_window = ((opened >= stamp) & (opened <= stamp + window)).to_numpy()
        if not in_window.any():
            continue
        targets = [t for t in change_targets(engine, change.id) if t in engine.index]
        if not targets:
            continue
        radius = np.concatenate([engine.index_of(targets), engine.propagate(targets).nodes])
        hit = in_window & np.isin(node, radius)
        flags[row[hit]] = True
    return flags


def incident_trends(frame: pd.DataFrame, by: str = "service", freq: str = "W") -> pd.DataFrame:
    """Incidents per period (``freq``: a pandas frequency, D, W, M …) and ``by`` (service,
    class, priority, ci, state, impact_level), long form: period, key, incidents."""
    if by not in BY:
        from servicegraph.errors import Problem, ValidationFailed

        raise ValidationFailed([Problem("trends", "by", f"one of {', '.join(BY)}")], wrote=False)
    column = {"service": "services", "class": "ci_class", "ci": "cis"}.get(by, by)
    data = frame[["opened_at", column]].dropna(subset=["opened_at"])
    if column in ("services", "cis"):
        data = data.explode(column)
    data = data.rename(columns={column: by})
    data[by] = data[by].fillna("(none)").astype(str)
    if data.empty:
        return pd.DataFrame(columns=["period", by, "incidents"])
    try:
        period = data["opened_at"].dt.tz_convert(None).dt.to_period(_period_freq(freq))
    except ValueError as exc:
        from servicegraph.errors import Problem, ValidationFailed

        raise ValidationFailed(
            [Problem("trends", "freq", f"{freq!r}: {exc}")], wrote=False
        ) from exc
    data = data.assign(period=period.dt.start_time)
    out = data.groupby(["period", by]).size().reset_index(name="incidents")
    return out.sort_values(["period", by]).reset_index(drop=True)


def _period_freq(freq: str) -> str:
    return {"M": "M", "ME": "M", "MS": "M", "Q": "Q", "QE": "Q", "Y": "Y", "YE": "Y"}.get(
        freq.upper(), freq
    )


def service_reliability(frame: pd.DataFrame) -> pd.DataFrame:
    """Per service: incidents, MTTR (mean hours to resolve) and MTBF (mean hours between the
    openings of consecutive incidents on it)."""
    data = frame[["id", "opened_at", "hours_to_resolve", "services"]].explode("services")
    data = data.dropna(subset=["services"]).rename(columns={"services": "service"})
    rows = []
    for service, group in data.groupby("service"):
        opened = group["opened_at"].sort_values()
        gaps = opened.diff().dt.total_seconds().dropna() / 3600
        rows.append({"service": service, "incidents": len(group),
                     "mttr_hours": round(float(group["hours_to_resolve"].mean()), 2)
                     if group["hours_to_resolve"].notna().any() else None,
                     "mtbf_hours": round(float(gaps.mean()), 2) if len(gaps) else None})  # fmt: skip
    columns = ["service", "incidents", "mttr_hours", "mtbf_hours"]
    return (
        pd.DataFrame(rows, columns=columns)
        .sort_values(["incidents", "service"], ascending=[False, True])
        .reset_index(drop=True)
    )


def recurring_cis(frame: pd.DataFrame, minimum: int) -> pd.DataFrame:
    """CIs with at least ``minimum`` incidents: count, first and last, linked problems."""
    data = frame[["id", "opened_at", "cis", "problem"]].explode("cis").dropna(subset=["cis"])
    grouped = data.groupby("cis").agg(
        incidents=("id", "count"), first=("opened_at", "min"), last=("opened_at", "max"),
        problems=("problem", lambda s: sorted({p for p in s if isinstance(p, str)})),
    )  # fmt: skip
    out = grouped[grouped["incidents"] >= minimum].reset_index().rename(columns={"cis": "ci"})
    return out.sort_values(["incidents", "ci"], ascending=[False, True]).reset_index(drop=True)
