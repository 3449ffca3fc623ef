"""Release and deployment management (ISO/IEC 20000-1 9.3).

A ``release`` record ``DEPLOYS`` changes and ``RESOLVES`` problems and known errors. Before it is
deployed a baseline of every CI in the combined blast radius of its changes is taken (a ``baseline``
record holding their records at a journal seq); deployment is refused without it. A rollback puts
those CI records back as they were in the baseline. Success is measured by the incidents raised on
the baselined CIs within N days after deployment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicegraph.errors import Problem, RuleViolation, ValidationFailed
from servicegraph.graph.records import CI, Batch, Places, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require
from servicegraph.processes.impact import analyse_impact
from servicegraph.processes.listing import record_of
from servicegraph.processes.times import iso, parse

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["RELEASE_TYPES", "ReleaseManager"]

RELEASE_TYPES = ("major", "minor", "emergency")


@dataclass
class ReleaseManager:
    store: GraphStore
    engine: TopologyEngine

    def get(self, release_id: str) -> CI:
        return record_of(self.store, "release", release_id)

    def create(
        self,
        release_id: str,
        name: str,
        release_type: str,
        changes: Collection[str],
        actor: Actor,
        resolves: Collection[str] = (),
        **fields: Any,
    ) -> CI:
        require(actor, "manage_changes")
        problems = []
        if release_type not in RELEASE_TYPES:
            problems.append(
                Problem("release", "release_type", f"one of {', '.join(RELEASE_TYPES)}")
            )
        found = self.store.get_cis([*changes, *resolves])
        for c in changes:
            if c not in found or found[c].cls != "change":
                problems.append(Problem("release", "changes", f"{c!r} is not a change"))
        for r in resolves:
            if r not in found or found[r].cls not in ("problem", "known_error"):
                problems.append(
                    Problem("release", "resolves", f"{r!r} is not a problem or known error")
                )
        if problems:
            raise ValidationFailed(problems)
        batch = Batch(replace=True)  # whole records: the release's, baselined ones
        attrs = {**fields, "release_type": release_type, "state": "planned"}
        batch.add_ci(CI(release_id, "release", name, attrs, version=0), "release")
        for c in changes:
            batch.add_relationship(Relationship(release_id, "DEPLOYS", c))
        for r in resolves:
            batch.add_relationship(Relationship(release_id, "RESOLVES", r))
        self.store.write(batch, actor.user)
        return self.get(release_id)

    def blast_radius(self, release_id: str) -> list[str]:
        """Every CI the release's changes target or impact (the combined blast radius)."""
        changes = [c for _, c in self.engine.outgoing([release_id], "DEPLOYS")]
        targets = (
            sorted({t for _, t in self.engine.outgoing(changes, "TARGETS")}) if changes else []
        )
        if not targets:
            return []
        impacted = [r["id"] for r in analyse_impact(self.engine, targets).impacted()]
        return sorted(set(targets) | set(impacted))

    def take_baseline(self, release_id: str, actor: Actor, now: dt.datetime | None = None) -> CI:
        """Record every CI of the blast radius as it is now, and link it to the release."""
        require(actor, "manage_changes")
        release = self.get(release_id)
        self._state(release, {"planned", "baselined"}, "baseline")
        radius = self.blast_radius(release_id)
        if not radius:
            raise RuleViolation(
                "release_has_changes", f"{release_id} deploys no change with targets"
            )
        seq = self.store.head_seq()
        records = self.store.get_cis(radius)
        taken = iso(now)
        baseline_id = f"{release_id}-baseline-{seq}"
        batch = Batch(replace=True)  # whole records: the release's, baselined ones
        batch.add_ci(
            CI(
                baseline_id,
                "baseline",
                f"baseline of {release.name}",
                {
                    "taken_at": taken,
                    "seq": seq,
                    "ci_ids": radius,
                    "snapshot": [records[i].to_dict() for i in radius if i in records],
                },
                version=0,
            ),
            "baseline",
        )
        batch.add_relationship(Relationship(release_id, "HAS_BASELINE", baseline_id))
        batch.add_ci(self._with(release, state="baselined"), "release")
        self.store.write(batch, actor.user)
        return self.store.get_ci(baseline_id)  # type: ignore[return-value]

    def baseline(self, release_id: str) -> CI | None:
        ids = [b for _, b in self.engine.outgoing([release_id], "HAS_BASELINE")]
        found = self.store.get_cis(ids)
        return max(found.values(), key=lambda b: b.attributes["seq"], default=None)

    def deploy(
        self,
        release_id: str,
        actor: Actor,
        succeeded: bool = True,
        notes: str = "",
        now: dt.datetime | None = None,
    ) -> CI:
        require(actor, "manage_changes")
        release = self.get(release_id)
        if self.baseline(release_id) is None:
            raise RuleViolation(
                "baseline_before_deployment",
                f"{release_id} has no baseline; take one (release baseline) before deploying",
            )
        self._state(release, {"baselined"}, "deploy")
        updated = self._with(release, state="deployed" if succeeded else "failed",
                             deployed_at=iso(now), deployment_result=notes or
                             ("deployed" if succeeded else "deployment failed"))  # fmt: skip
        self.store.write(
            Batch(cis=[updated], ci_where=Places(["release"]), replace=True), actor.user
        )
        return self.get(release_id)

    def rollback(self, release_id: str, actor: Actor, reason: str = "") -> CI:
        """Put the baselined CI records back as they were, and mark the release rolled back."""
        require(actor, "manage_changes")
        release = self.get(release_id)
        self._state(release, {"deployed", "failed"}, "rollback")
        baseline = self.baseline(release_id)
        assert baseline is not None  # deployed implies baselined
        current = self.store.get_cis(baseline.attributes["ci_ids"])
        batch = Batch(replace=True)  # whole records: the release's, baselined ones
        for old in baseline.attributes["snapshot"]:
            now = current.get(old["id"])
            if now is not None:
                batch.add_ci(CI(old["id"], old["class"], old["name"], old["attributes"], now.version),
                             f"rollback[{old['id']}]")  # fmt: skip
        batch.add_ci(
            self._with(release, state="rolled_back",
                       deployment_result=f"rolled back: {reason}" if reason else "rolled back"),
            "release",
        )  # fmt: skip
        self.store.write(batch, actor.user)
        return self.get(release_id)

    def incidents_after(self, release_id: str, days: int = 7) -> dict[str, Any]:
        """Incidents on the release's baselined CIs within ``days`` after deployment (9.3)."""
        release = self.get(release_id)
        deployed = release.attributes.get("deployed_at")
        baseline = self.baseline(release_id)
        if not deployed or baseline is None:
            raise RuleViolation("release_deployed", f"{release_id} has not been deployed")
        start = parse(deployed)
        end = start + dt.timedelta(days=days)
        radius = baseline.attributes["ci_ids"]
        affects: dict[str, list[str]] = {}
        for record, ci in self.engine.incoming(radius, "AFFECTS"):
            affects.setdefault(record, []).append(ci)
        incidents = []
        for inc in self.store.get_cis(list(affects)).values():
            opened = inc.attributes.get("opened_at")
            if inc.cls == "incident" and opened and start <= parse(opened) <= end:
                incidents.append({"id": inc.id, "name": inc.name, "opened_at": opened,
                                  "priority": inc.attributes.get("priority"),
                                  "cis": sorted(affects[inc.id])})  # fmt: skip
        return {
            "release": release_id,
            "deployed_at": deployed,
            "until": iso(end),
            "blast_radius": len(radius),
            "incidents": sorted(incidents, key=lambda i: i["opened_at"]),
        }

    def _state(self, release: CI, allowed: set[str], action: str) -> None:
        state = release.attributes.get("state")
        if state not in allowed:
            raise RuleViolation(
                "illegal_transition",
                f"{release.id} is {state}; '{action}' is allowed from {', '.join(sorted(allowed))}",
            )

    @staticmethod
    def _with(release: CI, **attrs: Any) -> CI:
        return CI(
            release.id, "release", release.name, {**release.attributes, **attrs}, release.version
        )
