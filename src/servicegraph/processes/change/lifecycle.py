"""Change management (ISO/IEC 20000-1 9.2, with clause 5 for major changes).

An RFC is a ``change`` record that ``TARGETS`` CIs. Its lifecycle is a state machine
(:data:`TRANSITIONS`); each transition is one journaled write carrying the actor and the reason.
Assessment (:mod:`.assessment`) and the forward schedule of change with its collisions
(:mod:`.schedule`) live in modules of their own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicegraph.errors import Problem, RuleViolation, ValidationFailed
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require
from servicegraph.processes.change.policy import ChangePolicy, load_policy
from servicegraph.processes.change.schedule import (
    change_targets,
    forward_schedule,
)
from servicegraph.processes.listing import record_of, records_of_class
from servicegraph.processes.times import iso, parse

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import TopologyEngine

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
# What the approver approved: after approval it is frozen, so what gets applied (cmdb_updates above
# all) is exactly what was approved; changing it needs a new RFC, assessed and approved again.
APPROVED_CONTENT = frozenset(
    {"description", "remediation_plan", "acceptance_criteria", "test_evidence", "cmdb_updates"}
)
BEFORE_APPROVAL = frozenset({"draft", "submitted", "assessed"})
# Fields each step may record once the content is frozen.
STEP_FIELDS: dict[str, frozenset[str]] = {
    # the approver may record approval evidence with the decision, never what gets applied
    "approve": frozenset({"remediation_plan", "acceptance_criteria", "test_evidence"}),
    "schedule": frozenset({"window_start", "window_end"}),
    "remediate": frozenset({"remediation_result"}),
    "review": frozenset({"review"}),
}
# Fields a caller may set with a transition (or with amend, before approval).
EDITABLE = frozenset({
    "description", "remediation_plan", "acceptance_criteria", "test_evidence", "window_start",
    "window_end", "cmdb_updates", "review", "remediation_result",
})  # fmt: skip


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
        return record_of(self.store, "change", change_id)

    def targets(self, change_id: str) -> list[str]:
        return change_targets(self.engine, change_id)

    def create(
        self,
        change_id: str,
        name: str,
        change_type: str,
        targets: Collection[str],
        actor: Actor,
        links: Collection[Relationship] = (),
        **fields: Any,
    ) -> CI:
        """Record a new RFC in state ``draft`` targeting ``targets`` (one transaction, with
        ``links``: further relationships of the RFC, e.g. ``RAISED_FROM`` a problem)."""
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
        for link in links:
            batch.add_relationship(link, f"links[{link.type}]")
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
        _check_frozen(change, action, fields)
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
            from servicegraph.processes.change.assessment import Assessor  # numpy: when needed

            assessor = Assessor(self.store, self.engine, self.rules)
            attrs.update(assessor.assess(change_id, self.targets(change_id), attrs, now))
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
                          "a post-implementation review needs its findings: set the field "
                          "`review` (CLI: --set review='…'; GraphQL: fields: {review: \"…\"})")  # fmt: skip
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
        batch = Batch(replace=True)  # the process owns the whole RFC record
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
            CI(ci.id, ci.cls, ci.name, _merge_update(ci.attributes, updates[ci.id]), ci.version)
            for ci in current.values()
        ]

    # -- the CAB agenda -------------------------------------------------------------------------
    def find(
        self,
        states: Collection[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        change_types: Collection[str] | None = None,
    ) -> list[CI]:
        """RFCs in these states (any), of these types, whose window overlaps [start, end) —
        ordered by window start, then id (RFCs without a window last)."""
        lo = parse(start) if start else None
        hi = parse(end) if end else None
        if lo and hi and hi <= lo:
            raise RuleViolation(
                "window_order", f"the range ends ({end}) before it starts ({start})"
            )
        chosen = []
        for c in records_of_class(self.store, "change"):
            a = c.attributes
            if states and a.get("state") not in states:
                continue
            if change_types and a.get("change_type") not in change_types:
                continue
            if lo or hi:
                if not a.get("window_start") or not a.get("window_end"):
                    continue
                if (hi and parse(a["window_start"]) >= hi) or (lo and parse(a["window_end"]) <= lo):
                    continue
            chosen.append(c)
        return sorted(chosen, key=lambda c: (c.attributes.get("window_start") or "~", c.id))

    # -- schedule and trends ----------------------------------------------------------------------
    def schedule(self, start: str, end: str) -> dict[str, Any]:
        """The forward schedule of change in [start, end) with collisions, each with its reason."""
        return forward_schedule(self.store, self.engine, start, end)

    def trends(self) -> pd.DataFrame:
        """RFCs per month, change type, target class and outcome (9.2 trend analysis)."""
        import pandas as pd

        rows = []
        for c in records_of_class(self.store, "change"):
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


def _merge_update(attributes: dict[str, Any], update: Any) -> dict[str, Any]:
    """The approved update applied as a merge: named attributes change, ``None`` removes one."""
    if not isinstance(update, dict):
        raise ValidationFailed(
            [Problem("change", "cmdb_updates", "{ci id: {attribute: value}} (null removes one)")]
        )
    merged = {**attributes, **update}
    return {k: v for k, v in merged.items() if v is not None}


def _check_editable(fields: dict[str, Any]) -> None:
    stray = sorted(set(fields) - EDITABLE)
    if stray:
        raise ValidationFailed(
            [
                Problem("change", f, f"not editable here; editable: {sorted(EDITABLE)}")
                for f in stray
            ]
        )


def _check_frozen(change: CI, action: str, fields: dict[str, Any]) -> None:
    """From approval on, a step records only its own fields (a window when scheduling, the
    result when remediating, the review): never the approved content."""
    state = change.attributes.get("state")
    if state in BEFORE_APPROVAL and action != "approve":
        return
    allowed = STEP_FIELDS.get(action, frozenset())
    current = change.attributes
    frozen = sorted(f for f in fields if f not in allowed and fields[f] != current.get(f))
    if frozen:
        raise RuleViolation(
            "approved_content_frozen",
            f"{change.id} is {state}; '{action}' may not set {', '.join(frozen)}: what was "
            "approved is what gets applied. Amend before approval, or raise a new RFC for the "
            f"new content{' (this step may set ' + ', '.join(sorted(allowed)) + ')' if allowed else ''}",
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
