"""Assessment of an RFC (9.2): what its targets' failure would impact (with paths), the open
incidents, problems and known errors and the other changes in that blast radius, the change
policy's major-impact verdict (clause 5) and an explainable risk score: a list of factors, each with
its value, its points and what it means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicegraph.graph.store import GraphStore
from servicegraph.processes.change.policy import ChangePolicy
from servicegraph.processes.impact import analyse_impact
from servicegraph.processes.times import iso, parse

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["Assessor"]

OPEN_RECORD_STATES = frozenset({"open", "new", "in_progress", "on_hold", "known_error"})
INCIDENT_AFTER_CHANGE = dt.timedelta(days=7)


@dataclass
class Assessor:
    store: GraphStore
    engine: TopologyEngine
    rules: ChangePolicy

    def assess(
        self, change_id: str, targets: list[str], attrs: dict[str, Any], now: dt.datetime
    ) -> dict[str, Any]:
        """The assessment fields an RFC stores (see the module docstring)."""
        impact = analyse_impact(self.engine, targets)
        snapshot = impact.to_dict()
        radius = targets + [r["id"] for r in snapshot["impacted"]]
        related = self.store.get_cis(
            [s for s, _ in self.engine.incoming(radius, "AFFECTS")]
            + [s for s, _ in self.engine.incoming(radius, "TARGETS")]
        )
        affects: dict[str, list[str]] = {}
        for record, ci in self.engine.incoming(radius, "AFFECTS"):
            affects.setdefault(record, []).append(ci)
        open_records = [
            {"id": r.id, "class": r.cls, "state": r.attributes.get("state"),
             "affects": sorted(affects[r.id])}
            for r in related.values()
            if r.id in affects and r.attributes.get("state") in OPEN_RECORD_STATES
        ]  # fmt: skip
        touching: dict[str, list[str]] = {}
        for other, ci in self.engine.incoming(radius, "TARGETS"):
            if other != change_id:
                touching.setdefault(other, []).append(ci)
        other_changes = [
            {"id": c.id, "state": c.attributes.get("state"), "window_start":
             c.attributes.get("window_start"), "cis": sorted(touching[c.id])}
            for c in related.values()
            if c.id in touching and c.attributes.get("state") not in ("closed", "rejected")
        ]  # fmt: skip
        major = self._major_criteria(impact)
        factors = self._risk_factors(change_id, targets, impact, attrs, now)
        score = round(sum(f["points"] for f in factors), 1)
        levels = sorted(self.rules.risk.get("levels", {"low": 0}).items(), key=lambda kv: kv[1])
        level = [name for name, floor in levels if score >= floor][-1]
        return {
            "assessment": {
                "impact": snapshot,
                "total_impacted": impact.total_impacted,
                "open_records": sorted(open_records, key=lambda r: r["id"]),
                "other_changes": sorted(other_changes, key=lambda r: r["id"]),
                "major_impact_criteria": major,
                "risk_factors": factors,
            },
            "major_impact": any(c["met"] for c in major),
            "risk_score": score,
            "risk_level": level,
            "assessed_at": iso(now),
        }

    def _major_criteria(self, impact: Any) -> list[dict[str, Any]]:
        rules = self.rules.major_impact
        down_services = [s["id"] for s in impact.services if s["status"] == "DOWN"]
        crit = self.store.get_cis(down_services)
        out = []
        if "service_down_min_criticality" in rules:
            floor = rules["service_down_min_criticality"]
            hit = sorted(
                i for i, c in crit.items() if (c.attributes.get("criticality") or 0) >= floor
            )
            out.append({"criterion": "service_down_min_criticality", "threshold": floor,
                        "value": hit, "met": bool(hit)})  # fmt: skip
        if "min_customers" in rules:
            n = len(impact.customers)
            out.append({"criterion": "min_customers", "threshold": rules["min_customers"],
                        "value": n, "met": n >= rules["min_customers"]})  # fmt: skip
        if rules.get("any_sla_down"):
            down = [s["id"] for s in impact.slas if s["status"] == "DOWN"]
            out.append({"criterion": "any_sla_down", "threshold": True, "value": down,
                        "met": bool(down)})  # fmt: skip
        if "min_impacted" in rules:
            n = impact.total_impacted
            out.append({"criterion": "min_impacted", "threshold": rules["min_impacted"],
                        "value": n, "met": n >= rules["min_impacted"]})  # fmt: skip
        return out

    def _risk_factors(
        self,
        change_id: str,
        targets: list[str],
        impact: Any,
        attrs: dict[str, Any],
        now: dt.datetime,
    ) -> list[dict[str, Any]]:
        r = self.rules.risk
        factors = []
        n = impact.total_impacted
        factors.append(_factor("blast_radius", n, min(r["max_blast_radius_points"],
                               n / 1000 * r["points_per_1000_impacted"]),
                               f"{n} CIs impacted by the targets' failure"))  # fmt: skip
        down = [s["id"] for s in impact.services if s["status"] == "DOWN"]
        critical = sorted(i for i, c in self.store.get_cis(down).items()
                          if (c.attributes.get("criticality") or 0) >= 4)  # fmt: skip
        factors.append(_factor("critical_services_down", critical, min(
            r["max_critical_service_points"], len(critical) * r["points_per_critical_service_down"]),
            "services of criticality >= 4 that go DOWN"))  # fmt: skip
        spofs = [t for t in targets if self._takes_a_service_down(t)]
        factors.append(_factor("single_points_of_failure", spofs,
                               len(spofs) * r["points_per_single_point_of_failure"],
                               "targets whose failure alone takes a service DOWN"))  # fmt: skip
        failed, incidents = self._history(change_id, targets)
        factors.append(_factor("failed_changes_on_targets", failed,
                               len(failed) * r["points_per_failed_change"],
                               "earlier changes to these targets that failed"))  # fmt: skip
        factors.append(_factor("incidents_after_changes", incidents,
                               len(incidents) * r["points_per_incident_after_change"],
                               "incidents on the targets within 7 days after a change"))  # fmt: skip
        lead = None
        if attrs.get("window_start"):
            lead = round((parse(attrs["window_start"]) - now).total_seconds() / 3600, 1)
        minimum = self.rules.min_lead_hours(attrs.get("change_type", "normal"))
        short = lead is not None and lead < minimum
        factors.append(_factor("lead_time_hours", lead, r["points_short_lead_time"] if short else 0,
                               f"hours before the window; the minimum is {minimum}"))  # fmt: skip
        missing = not str(attrs.get("remediation_plan") or "").strip()
        factors.append(_factor("remediation_plan_missing", missing,
                               r["points_no_remediation_plan"] if missing else 0,
                               "no back-out plan recorded"))  # fmt: skip
        return factors

    def _takes_a_service_down(self, target: str) -> bool:
        result = analyse_impact(self.engine, [target])
        return any(s["status"] == "DOWN" for s in result.services)

    def _history(self, change_id: str, targets: list[str]) -> tuple[list[str], list[str]]:
        past = self.store.get_cis([c for c, _ in self.engine.incoming(targets, "TARGETS")])
        past.pop(change_id, None)
        failed = sorted(c.id for c in past.values()
                        if c.attributes.get("outcome") in ("failed", "remediated"))  # fmt: skip
        done = [(parse(c.attributes["implemented_at"]), c.id) for c in past.values()
                if c.attributes.get("implemented_at")]  # fmt: skip
        records = self.store.get_cis([r for r, _ in self.engine.incoming(targets, "AFFECTS")])
        after = []
        for inc in records.values():
            if inc.cls != "incident" or not inc.attributes.get("opened_at"):
                continue
            opened = parse(inc.attributes["opened_at"])
            if any(at <= opened <= at + INCIDENT_AFTER_CHANGE for at, _ in done):
                after.append(inc.id)
        return failed, sorted(after)


def _factor(name: str, value: Any, points: float, detail: str) -> dict[str, Any]:
    return {"factor": name, "value": value, "points": round(float(points), 1), "detail": detail}
