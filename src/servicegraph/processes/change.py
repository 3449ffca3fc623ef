"""Change management (ISO/IEC 20000-1 9.2, with clause 5 for major changes).

An RFC is a ``change`` record that ``TARGETS`` CIs. Its lifecycle is a state machine
(:data:`TRANSITIONS`); each transition is one journaled write carrying the actor and the reason.
Assessment stores an impact snapshot, the open incidents, problems and known errors and the other
changes in the blast radius, the policy's major-impact verdict and an explainable risk score.
The forward schedule of change finds collisions: overlapping windows whose blast radii share CIs,
and windows inside a blackout declared on an impacted service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from servicegraph.errors import NotFound, Problem, RuleViolation, ValidationFailed
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require
from servicegraph.processes.change_policy import ChangePolicy, load_policy
from servicegraph.processes.impact import analyse_impact
from servicegraph.processes.times import iso, parse

__all__ = ["ACTIONS", "TRANSITIONS", "ChangeManager"]

# action: (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "submit": (frozenset({"draft"}), "submitted"),
    "assess": (frozenset({"submitted"}), "assessed"),
    "approve": (frozenset({"assessed"}), "approved"),
    "reject": (frozenset({"submitted", "assessed"}), "rejected"),
    "schedule": (frozenset({"approved"}), "scheduled"),
    "start": (frozenset({"scheduled"}), "implementing"),
    "complete": (frozenset({"implementing"}), "implemented"),
    "fail": (frozenset({"implementing"}), "failed"),
    "remediate": (frozenset({"failed"}), "remediated"),
    "review": (frozenset({"implemented", "remediated"}), "reviewed"),
    "close": (frozenset({"reviewed", "rejected"}), "closed"),
}
ACTIONS = tuple(TRANSITIONS)
ACTIVE = frozenset({"approved", "scheduled", "implementing"})
OPEN_RECORD_STATES = frozenset({"open", "in_progress", "known_error"})
# Fields a caller may set with a transition (or with amend, before approval).
EDITABLE = frozenset({
    "description", "remediation_plan", "acceptance_criteria", "test_evidence", "window_start",
    "window_end", "cmdb_updates", "review", "remediation_result",
})  # fmt: skip
INCIDENT_AFTER_CHANGE = dt.timedelta(days=7)


@dataclass
class ChangeManager:
    """The change process on a store and its topology engine."""

    store: GraphStore
    engine: TopologyEngine
    policy: ChangePolicy | None = None

    def __post_init__(self) -> None:
        self.policy = self.policy or load_policy()

    @property
    def rules(self) -> ChangePolicy:
        assert self.policy is not None
        return self.policy

    # -- records --------------------------------------------------------------------------------
    def get(self, change_id: str) -> CI:
        change = self.store.get_ci(change_id)
        if change is None or change.cls != "change":
            raise NotFound("change", change_id)
        return change

    def targets(self, change_id: str) -> list[str]:
        return sorted(t for _, t in self.engine.outgoing([change_id], "TARGETS"))

    def create(
        self,
        change_id: str,
        name: str,
        change_type: str,
        targets: Collection[str],
        actor: Actor,
        **fields: Any,
    ) -> CI:
        """Record a new RFC in state ``draft`` targeting ``targets`` (one transaction)."""
        require(actor, "request_changes")
        if change_type not in self.rules.change_types:
            known = ", ".join(self.rules.change_types)
            raise ValidationFailed([Problem("change", "change_type", f"one of {known}")])
        _check_editable(fields)
        if not targets:
            raise ValidationFailed([Problem("change", "targets", "an RFC targets at least one CI")])
        self._check_targets(targets)
        attributes = {
            **fields,
            "change_type": change_type,
            "state": "draft",
            "requested_by": actor.user,
        }
        batch = Batch()
        batch.add_ci(CI(change_id, "change", name, attributes, version=0), "change")
        for t in targets:
            batch.add_relationship(Relationship(change_id, "TARGETS", t), f"targets[{t}]")
        self.store.write(batch, actor.user)
        return self.get(change_id)

    def amend(self, change_id: str, actor: Actor, **fields: Any) -> CI:
        """Edit an RFC's details before it is approved."""
        require(actor, "request_changes")
        change = self.get(change_id)
        if change.attributes.get("state") not in ("draft", "submitted", "assessed"):
            raise RuleViolation(
                "amend_before_approval",
                f"{change_id} is {change.attributes.get('state')}; an RFC can be amended only "
                "before approval",
            )
        _check_editable(fields)
        return self._write(change, {**change.attributes, **fields}, actor, reason="amended")

    def _check_targets(self, targets: Iterable[str]) -> None:
        found = self.store.get_cis(list(targets))
        controlled = set().union(*(self.store.model.descendants(c)
                                   for c in self.rules.controlled_classes))  # fmt: skip
        problems = [Problem("targets", t, "no CI with this id") for t in targets if t not in found]
        if problems:
            raise ValidationFailed(problems)
        for t in targets:
            ci = found[t]
            if ci.status == "retired":
                raise RuleViolation("target_not_retired", f"target {t} is retired")
            if ci.cls not in controlled:
                raise RuleViolation(
                    "target_under_change_control",
                    f"target {t} is a {ci.cls}, not a class under change control "
                    f"({', '.join(self.rules.controlled_classes)})",
                )

    # -- the state machine ----------------------------------------------------------------------
    def transition(
        self,
        change_id: str,
        action: str,
        actor: Actor,
        reason: str = "",
        now: dt.datetime | None = None,
        **fields: Any,
    ) -> CI:
        """Move an RFC through its lifecycle; every rule is checked before anything is written."""
        if action not in TRANSITIONS:
            raise ValidationFailed(
                [Problem("transition", "action", f"one of {', '.join(ACTIONS)}")]
            )
        require(actor, "request_changes" if action == "submit" else "manage_changes")
        _check_editable(fields)
        now = now or dt.datetime.now(dt.UTC)
        change = self.get(change_id)
        attrs = {**change.attributes, **fields}
        state, change_type = attrs.get("state"), attrs.get("change_type", "normal")
        sources, target_state = TRANSITIONS[action]
        allowed = set(sources)
        if action == "approve" and self.rules.flag(change_type, "skip_assessment"):
            allowed.add("submitted")
        if action == "start" and self.rules.flag(change_type, "may_skip_schedule"):
            allowed.add("approved")
        if state not in allowed:
            raise RuleViolation(
                "illegal_transition",
                f"{change_id} is {state}; '{action}' is allowed from {', '.join(sorted(allowed))}",
            )
        extra: list[CI] = []
        if action == "assess":
            attrs.update(self._assess(change_id, attrs, now))
        elif action in ("approve", "reject"):
            self._check_approver(change_id, change_type, actor)
            if action == "approve":
                self._check_approvable(change_id, attrs)
            attrs["approved_by"] = actor.user
        elif action == "schedule":
            _check_window(attrs)
        elif action == "complete":
            attrs.update(outcome="successful", implemented_at=iso(now))
            extra = self._cmdb_updates(change_id, attrs)
        elif action == "fail":
            attrs.update(outcome="failed", implemented_at=iso(now))
        elif action == "remediate":
            _require_text(attrs, "remediation_result", "remediation_result_required",
                          "record what was done to remediate the failed change")  # fmt: skip
            attrs["outcome"] = "remediated"
        elif action == "review":
            _require_text(attrs, "review", "review_required",
                          "a post-implementation review needs its findings (field review)")  # fmt: skip
        attrs["state"] = target_state
        return self._write(change, attrs, actor, reason or action, extra)

    def _write(
        self,
        change: CI,
        attrs: dict[str, Any],
        actor: Actor,
        reason: str,
        extra: Sequence[CI] = (),
    ) -> CI:
        attrs["last_reason"] = reason
        batch = Batch()
        batch.add_ci(CI(change.id, "change", change.name, attrs, change.version), "change")
        for ci in extra:
            batch.add_ci(ci, f"cmdb_updates[{ci.id}]")
        self.store.write(batch, actor.user)
        return self.get(change.id)

    def _check_approver(self, change_id: str, change_type: str, actor: Actor) -> None:
        roles = self.rules.approvers(change_type)
        if actor.role not in roles:
            authority = "emergency change authority" if change_type == "emergency" else "approver"
            raise RuleViolation(
                "approver_role",
                f"{actor.user} ({actor.role}) is not a {authority} for {change_type} changes "
                f"(roles: {', '.join(roles)})",
            )

    def _check_approvable(self, change_id: str, attrs: dict[str, Any]) -> None:
        _require_text(attrs, "remediation_plan", "remediation_plan_required",
                      f"{change_id} has no remediation (back-out) plan; record one first")  # fmt: skip
        if attrs.get("major_impact"):
            missing = [f for f in ("acceptance_criteria", "test_evidence") if not attrs.get(f)]
            if missing:
                raise RuleViolation(
                    "design_and_transition",
                    f"{change_id} has potentially major impact; record {' and '.join(missing)} "
                    "(clause 5) before approval",
                )

    def _cmdb_updates(self, change_id: str, attrs: dict[str, Any]) -> list[CI]:
        updates = attrs.get("cmdb_updates") or {}
        if not isinstance(updates, dict):
            raise ValidationFailed(
                [Problem("change", "cmdb_updates", "{ci id: {attribute: value}}")]
            )
        targets = set(self.targets(change_id))
        stray = sorted(set(updates) - targets)
        if stray:
            raise RuleViolation(
                "updates_only_targets", f"cmdb_updates names CIs the RFC does not target: {stray}"
            )
        current = self.store.get_cis(list(updates))
        return [
            CI(ci.id, ci.cls, ci.name, {**ci.attributes, **updates[ci.id]}, ci.version)
            for ci in current.values()
        ]

    # -- assessment -----------------------------------------------------------------------------
    def _assess(self, change_id: str, attrs: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
        targets = self.targets(change_id)
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

    # -- schedule and trends ----------------------------------------------------------------------
    def schedule(self, start: str, end: str) -> dict[str, Any]:
        """The forward schedule of change in [start, end) with collisions, each with its reason."""
        lo, hi = parse(start), parse(end)
        if hi <= lo:
            raise RuleViolation(
                "window_order", f"the range ends ({end}) before it starts ({start})"
            )
        changes = [
            c for c in self._all("change")
            if c.attributes.get("state") in ACTIVE and c.attributes.get("window_start")
            and c.attributes.get("window_end") and _overlaps(c, lo, hi)
        ]  # fmt: skip
        changes.sort(key=lambda c: (c.attributes["window_start"], c.id))
        radius: dict[str, dict[str, int]] = {}  # change -> CI -> hops from its targets
        services: dict[str, set[str]] = {}
        for c in changes:
            targets = self.targets(c.id)
            result = analyse_impact(self.engine, targets) if targets else None
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
        for blackout in self._all("blackout_window"):
            applies = {s for _, s in self.engine.outgoing([blackout.id], "APPLIES_TO")}
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
             "targets": self.targets(c.id), "risk_level": c.attributes.get("risk_level")}
            for c in changes
        ]  # fmt: skip
        return {"changes": rows, "collisions": collisions}

    def trends(self) -> pd.DataFrame:
        """RFCs per month, change type, target class and outcome (9.2 trend analysis)."""
        rows = []
        for c in self._all("change"):
            when = (
                c.attributes.get("implemented_at")
                or c.attributes.get("window_start")
                or c.attributes.get("assessed_at")
            )
            month = when[:7] if when else None
            outcome = c.attributes.get("outcome") or c.attributes.get("state")
            classes: set[str | None] = {self.engine.class_of(t) for t in self.targets(c.id)}
            for cls in sorted(classes or {None}, key=str):
                rows.append({"month": month, "change_type": c.attributes.get("change_type"),
                             "target_class": cls, "outcome": outcome})  # fmt: skip
        frame = pd.DataFrame(rows, columns=["month", "change_type", "target_class", "outcome"])
        keys = ["month", "change_type", "target_class", "outcome"]
        return frame.groupby(keys, dropna=False).size().reset_index(name="changes")

    def _all(self, cls: str) -> list[CI]:
        out, after = [], None
        while True:
            page = self.store.find_cis([cls], first=1000, after=after)
            out += page.items
            if not page.has_next:
                return out
            after = page.end_cursor


def _factor(name: str, value: Any, points: float, detail: str) -> dict[str, Any]:
    return {"factor": name, "value": value, "points": round(float(points), 1), "detail": detail}


def _check_editable(fields: dict[str, Any]) -> None:
    stray = sorted(set(fields) - EDITABLE)
    if stray:
        raise ValidationFailed(
            [
                Problem("change", f, f"not editable here; editable: {sorted(EDITABLE)}")
                for f in stray
            ]
        )


def _require_text(attrs: dict[str, Any], field: str, rule: str, message: str) -> None:
    if not str(attrs.get(field) or "").strip():
        raise RuleViolation(rule, message)


def _check_window(attrs: dict[str, Any]) -> None:
    start, end = attrs.get("window_start"), attrs.get("window_end")
    if not start or not end:
        raise RuleViolation("window_required", "scheduling needs window_start and window_end")
    if parse(end) <= parse(start):
        raise RuleViolation("window_order", f"the window ends ({end}) before it starts ({start})")


def _overlaps(c: CI, lo: dt.datetime, hi: dt.datetime) -> bool:
    return parse(c.attributes["window_start"]) < hi and parse(c.attributes["window_end"]) > lo


def _intersection(
    a: CI, b: CI, b_start: str = "window_start", b_end: str = "window_end"
) -> list[str] | None:
    start = max(parse(a.attributes["window_start"]), parse(b.attributes[b_start]))
    end = min(parse(a.attributes["window_end"]), parse(b.attributes[b_end]))
    return [iso(start), iso(end)] if start < end else None
