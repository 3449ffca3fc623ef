"""Incident prioritisation from the graph (8.1): the impact analysis of the incident's CIs failing
gives the impact level (by the policy's criteria), the caller gives the urgency, the policy's
matrix gives the priority; the policy's criteria say whether it is major; the SLAs covering the
impacted services give the response and resolution targets.

The result is a compact snapshot stored with the incident (attribute ``impact``), so its priority
explains itself later: every conclusion names the rule and the facts that made it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from servicegraph.graph.store import GraphStore
from servicegraph.processes.incident.policy import LEVELS, IncidentPolicy
from servicegraph.processes.times import iso

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["assess_incident", "matching_criteria"]

SNAPSHOT_SERVICES = 100  # services listed in a snapshot (all are counted)


def assess_incident(
    engine: TopologyEngine,
    store: GraphStore,
    policy: IncidentPolicy,
    ci_ids: Collection[str],
    urgency: str,
) -> dict[str, Any]:
    """The impact snapshot of an incident affecting ``ci_ids`` at ``urgency`` (its
    ``service_ids`` — every service hit — is for the incident's ``services`` attribute, the
    snapshot itself lists the first 100 with status and criticality)."""
    from servicegraph.processes.impact import analyse_impact

    result = analyse_impact(engine, ci_ids)
    labels = store.get_cis([s["id"] for s in result.services] + [s["id"] for s in result.slas])
    services = [
        {
            "id": s["id"],
            "status": s["status"],
            "criticality": (
                labels[s["id"]].attributes.get("criticality") if s["id"] in labels else None
            ),
        }
        for s in result.services
    ]
    services.sort(key=lambda s: (s["status"] != "DOWN", -int(s["criticality"] or 0), str(s["id"])))
    facts = {
        "services": services,
        "slas_down": [s["id"] for s in result.slas if s["status"] == "DOWN"],
        "customers": [c["id"] for c in result.customers],
        "impacted": result.total_impacted,
    }
    level, level_rule = "minor", ["no impact level's criteria hold"]
    for name in LEVELS[:-1]:
        held = matching_criteria(policy.impact_levels.get(name) or {}, facts)
        if held:
            level, level_rule = name, held
            break
    priority = policy.priority(level, urgency)
    major = matching_criteria(policy.major_incident, {**facts, "priority": priority})
    targets = _targets(policy, priority, [s["id"] for s in result.slas], labels)
    return {
        "cis": sorted(set(ci_ids)),
        "service_ids": [s["id"] for s in services],
        "impacted": result.total_impacted,
        "down": int(result.propagation.down.sum()),
        "services": services[:SNAPSHOT_SERVICES],
        "service_count": len(services),
        "slas": [s["id"] for s in result.slas],
        "customers": facts["customers"],
        "level": level,
        "level_because": level_rule,
        "urgency": urgency,
        "priority": priority,
        "priority_because": f"priority_matrix[{level}][{urgency}] = {priority}",
        "major": bool(major),
        "major_because": major,
        "targets": targets,
        "assessed_at": iso(),
        "policy": policy.source,
    }


def matching_criteria(criteria: dict[str, Any], facts: dict[str, Any]) -> list[str]:
    """The criteria that hold on these facts, each as a sentence naming the evidence."""
    held = []
    services = facts.get("services", [])
    down = [s for s in services if s["status"] == "DOWN"]
    for name, value in criteria.items():
        if name == "service_down_min_criticality":
            hit = [s["id"] for s in down if (s.get("criticality") or 0) >= value]
            if hit:
                held.append(f"{name}: {value} ({', '.join(hit[:5])} DOWN)")
        elif name == "min_customers" and len(facts.get("customers", [])) >= value:
            held.append(f"{name}: {value} ({len(facts['customers'])} customers hit)")
        elif name == "any_sla_down" and value and facts.get("slas_down"):
            held.append(f"{name} ({', '.join(facts['slas_down'][:5])})")
        elif name == "any_service_down" and value and down:
            held.append(f"{name} ({', '.join(s['id'] for s in down[:5])})")
        elif name == "any_service_degraded" and value and services:
            held.append(f"{name} ({', '.join(s['id'] for s in services[:5])})")
        elif name == "min_impacted" and facts.get("impacted", 0) >= value:
            held.append(f"{name}: {value} ({facts['impacted']} CIs impacted)")
        elif name == "priority_at_most" and facts.get("priority", 99) <= value:
            held.append(f"{name}: {value} (priority {facts['priority']})")
    return held


def _targets(
    policy: IncidentPolicy, priority: int, slas: list[str], records: dict[str, Any]
) -> dict[str, Any]:
    """The strictest SLA targets among the SLAs covering the impacted services; the policy's
    defaults for the priority where no SLA sets one."""
    defaults = policy.targets(priority)
    out: dict[str, Any] = {}
    for kind in ("response_minutes", "resolution_minutes"):
        found = [(records[s].attributes[kind], s) for s in slas
                 if s in records and records[s].attributes.get(kind) is not None]  # fmt: skip
        if found:
            minutes, sla = min(found)
            out[kind] = int(minutes)
            out[kind.replace("minutes", "from")] = sla
        elif kind in defaults:
            out[kind] = defaults[kind]
            out[kind.replace("minutes", "from")] = f"policy default for priority {priority}"
    return out
