"""Problem management (ISO/IEC 20000-1 8.2): problems with their incidents (``LINKED_TO``), their
root-cause CIs (``ROOT_CAUSE``), known errors with workarounds (``KNOWN_ERROR_OF`` the problem,
``AFFECTS`` its root-cause CIs), RFCs raised to remove the cause (``RAISED_FROM``), and whether
resolving it worked (incidents on the root-cause CIs after it was resolved).

Lifecycle: ``open → known_error → resolved → closed`` (a problem may be resolved straight from
``open``, and reopened from ``resolved`` when the cause comes back). A refused step names its rule
and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicegraph.errors import Problem, RuleViolation, ValidationFailed
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require
from servicegraph.processes.listing import record_of
from servicegraph.processes.times import iso, time_of

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.processes.change import ChangeManager

__all__ = ["PROBLEM_ACTIONS", "PROBLEM_TRANSITIONS", "ProblemManager"]

PROBLEM_TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "known_error": (frozenset({"open"}), "known_error"),
    "resolve": (frozenset({"open", "known_error"}), "resolved"),
    "reopen": (frozenset({"resolved"}), "open"),
    "close": (frozenset({"resolved"}), "closed"),
}
PROBLEM_ACTIONS = tuple(PROBLEM_TRANSITIONS)


@dataclass
class ProblemManager:
    store: GraphStore
    engine: TopologyEngine

    # -- reading --------------------------------------------------------------------------------
    def get(self, problem_id: str) -> CI:
        return record_of(self.store, "problem", problem_id)

    def _linked(self, problem_id: str, rel: str, outgoing: bool) -> list[str]:
        self.engine.refresh()
        if problem_id not in self.engine.index:
            return []
        if outgoing:
            return sorted(t for _, t in self.engine.outgoing([problem_id], rel))
        return sorted(s for s, _ in self.engine.incoming([problem_id], rel))

    def root_causes(self, problem_id: str) -> list[str]:
        return self._linked(problem_id, "ROOT_CAUSE", outgoing=True)

    def incidents(self, problem_id: str) -> list[str]:
        return self._linked(problem_id, "LINKED_TO", outgoing=False)

    def known_errors(self, problem_id: str) -> list[CI]:
        ids = self._linked(problem_id, "KNOWN_ERROR_OF", outgoing=False)
        return [self.store.get_cis(ids)[i] for i in ids]

    def details(self, problem_id: str) -> dict[str, Any]:
        problem = self.get(problem_id)
        return {
            "id": problem.id, "name": problem.name, "version": problem.version,
            **problem.attributes, "root_causes": self.root_causes(problem_id),
            "incidents": self.incidents(problem_id),
            "known_errors": [{"id": k.id, "name": k.name, **k.attributes}
                             for k in self.known_errors(problem_id)],
            "changes": self._linked(problem_id, "RAISED_FROM", outgoing=False),
            "effectiveness": self.effectiveness(problem_id),
        }  # fmt: skip

    # -- recording ------------------------------------------------------------------------------
    def create(
        self,
        problem_id: str,
        name: str,
        actor: Actor,
        incidents: Collection[str] = (),
        root_causes: Collection[str] = (),
        description: str | None = None,
        evidence: dict[str, Any] | None = None,
        now: dt.datetime | None = None,
    ) -> CI:
        """Record a problem (state ``open``) linked to ``incidents`` and naming ``root_causes``."""
        require(actor, "manage_problems")
        self._check(incidents, root_causes)
        attrs: dict[str, Any] = {"state": "open", "opened_at": iso(now)}
        if description:
            attrs["description"] = description
        if evidence is not None:
            attrs["evidence"] = evidence
        batch = Batch()
        batch.add_ci(CI(problem_id, "problem", name, attrs, version=0), "problem")
        self._links(batch, problem_id, incidents, root_causes)
        self.store.write(batch, actor.user)
        return self.get(problem_id)

    def link(
        self,
        problem_id: str,
        actor: Actor,
        incidents: Collection[str] = (),
        root_causes: Collection[str] = (),
    ) -> CI:
        """Link more incidents to the problem and/or name more root-cause CIs."""
        require(actor, "manage_problems")
        self.get(problem_id)
        self._check(incidents, root_causes)
        batch = Batch()
        self._links(batch, problem_id, incidents, root_causes)
        self.store.write(batch, actor.user, reason="linked")
        return self.get(problem_id)

    def _check(self, incidents: Collection[str], root_causes: Collection[str]) -> None:
        found = self.store.get_cis(list(incidents) + list(root_causes))
        ci_classes = self.store.model.descendants("ci")
        problems = [Problem("incidents", i, "no incident with this id") for i in incidents
                    if i not in found or found[i].cls != "incident"]  # fmt: skip
        problems += [Problem("root_causes", c, "no CI with this id") for c in root_causes
                     if c not in found or found[c].cls not in ci_classes]  # fmt: skip
        if problems:
            raise ValidationFailed(problems)

    @staticmethod
    def _links(
        batch: Batch, problem_id: str, incidents: Collection[str], root_causes: Collection[str]
    ) -> None:
        for inc in dict.fromkeys(incidents):
            batch.add_relationship(Relationship(inc, "LINKED_TO", problem_id), f"incidents[{inc}]")
        for ci in dict.fromkeys(root_causes):
            batch.add_relationship(Relationship(problem_id, "ROOT_CAUSE", ci), f"root_causes[{ci}]")
            batch.add_relationship(Relationship(problem_id, "AFFECTS", ci), f"affects[{ci}]")

    # -- the state machine ----------------------------------------------------------------------
    def transition(
        self,
        problem_id: str,
        action: str,
        actor: Actor,
        reason: str = "",
        now: dt.datetime | None = None,
        known_error_id: str | None = None,
        workaround: str | None = None,
        resolution: str | None = None,
    ) -> CI:
        """Move a problem through its lifecycle. ``known_error`` records the known error (with
        ``workaround``) on the root-cause CIs; ``resolve`` needs a ``resolution`` and resolves
        its known errors; ``close`` closes them."""
        if action not in PROBLEM_TRANSITIONS:
            raise ValidationFailed(
                [Problem("transition", "action", f"one of {', '.join(PROBLEM_ACTIONS)}")]
            )
        require(actor, "manage_problems")
        problem = self.get(problem_id)
        state = problem.attributes.get("state", "open")
        sources, target = PROBLEM_TRANSITIONS[action]
        if state not in sources:
            raise RuleViolation(
                "illegal_transition",
                f"{problem_id} is {state}; '{action}' is allowed from {', '.join(sorted(sources))}",
            )
        attrs = {**problem.attributes, "state": target, "last_reason": reason or action}
        batch = Batch(replace=True)
        causes = self.root_causes(problem_id)
        if action == "known_error":
            if not causes:
                raise RuleViolation("root_cause_required",
                                    f"{problem_id} names no root-cause CI; link one first "
                                    "(problem link --root-cause CI)")  # fmt: skip
            if not str(workaround or "").strip():
                raise RuleViolation("workaround_required",
                                    "a known error needs its workaround (--workaround '…')")  # fmt: skip
            ke = known_error_id or f"ke-{problem_id}"
            if self.store.get_ci(ke) is not None:
                raise ValidationFailed(
                    [Problem("known_error", ke, "already exists; give another id")]
                )
            batch.add_ci(CI(ke, "known_error", problem.name,
                            {"state": "open", "workaround": workaround, "recorded_at": iso(now)},
                            version=0), "known_error")  # fmt: skip
            batch.add_relationship(Relationship(ke, "KNOWN_ERROR_OF", problem_id))
            for ci in causes:
                batch.add_relationship(Relationship(ke, "AFFECTS", ci))
        elif action in ("resolve", "close", "reopen"):
            if action == "resolve":
                text = resolution or attrs.get("resolution")
                if not str(text or "").strip():
                    raise RuleViolation("resolution_required",
                                        "record how the cause was removed (--resolution '…')")  # fmt: skip
                attrs.update(resolution=text, resolved_at=iso(now))
            elif action == "close":
                attrs["closed_at"] = iso(now)
            else:
                attrs.pop("resolved_at", None)
            ke_state = {"resolve": "resolved", "close": "closed", "reopen": "open"}[action]
            for ke_rec in self.known_errors(problem_id):
                if ke_rec.attributes.get("state") != ke_state:
                    batch.add_ci(CI(ke_rec.id, ke_rec.cls, ke_rec.name,
                                    {**ke_rec.attributes, "state": ke_state}, ke_rec.version))  # fmt: skip
        batch.add_ci(CI(problem.id, "problem", problem.name, attrs, problem.version), "problem")
        self.store.write(batch, actor.user, reason=reason or action)
        return self.get(problem_id)

    def raise_change(
        self,
        changes: ChangeManager,
        problem_id: str,
        change_id: str,
        name: str,
        actor: Actor,
        change_type: str = "normal",
        targets: Collection[str] = (),
        **fields: Any,
    ) -> CI:
        """An RFC to remove the problem's cause, targeting its root-cause CIs (or ``targets``),
        ``RAISED_FROM`` the problem, in one transaction."""
        self.get(problem_id)
        chosen = list(targets) or self.root_causes(problem_id)
        if not chosen:
            raise RuleViolation("root_cause_required",
                                f"{problem_id} names no root-cause CI to change; give --target")  # fmt: skip
        link = Relationship(change_id, "RAISED_FROM", problem_id)
        return changes.create(change_id, name, change_type, chosen, actor, links=[link], **fields)

    # -- effectiveness --------------------------------------------------------------------------
    def effectiveness(self, problem_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """Incidents on the root-cause CIs after the problem was resolved, against as long a
        period before it: did removing the cause work?"""
        problem = self.get(problem_id)
        resolved = time_of(problem.attributes.get("resolved_at"))
        causes = self.root_causes(problem_id)
        out: dict[str, Any] = {"resolved_at": iso(resolved) if resolved else None,
                               "root_causes": causes, "incidents_before": [],
                               "incidents_after": []}  # fmt: skip
        if resolved is None:
            out["verdict"] = "not resolved yet"
            return out
        if not causes:
            out["verdict"] = "no root-cause CI recorded"
            return out
        now = now or dt.datetime.now(dt.UTC)
        span = max(now - resolved, dt.timedelta(days=1))
        pairs = [s for s, _ in self.engine.incoming(causes, "AFFECTS")
                 if self.engine.class_of(s) == "incident"]  # fmt: skip
        for inc in self.store.get_cis(sorted(set(pairs))).values():
            opened = time_of(inc.attributes.get("opened_at"))
            if opened is None:
                continue
            if opened > resolved:
                out["incidents_after"].append(inc.id)
            elif opened >= resolved - span:
                out["incidents_before"].append(inc.id)
        out["period_days"] = round(span.total_seconds() / 86400, 1)
        out["verdict"] = "effective" if not out["incidents_after"] else "recurring"
        return out
