"""GraphQL for change and release management: queries and mutations over the change process."""

from __future__ import annotations

from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from servicegraph.api.graphql.types import CIType, Info, JournalEntryType, as_json
from servicegraph.errors import Problem, ValidationFailed
from servicegraph.graph.records import CI
from servicegraph.processes.change import ACTIONS


@strawberry.enum(description="A step of the RFC lifecycle.")
class ChangeAction(Enum):
    SUBMIT = "submit"
    ASSESS = "assess"
    APPROVE = "approve"
    REJECT = "reject"
    SCHEDULE = "schedule"
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    REMEDIATE = "remediate"
    REVIEW = "review"
    CLOSE = "close"


assert tuple(a.value for a in ChangeAction) == ACTIONS, "keep ChangeAction in step with TRANSITIONS"


@strawberry.type
class RiskFactor:
    factor: str
    value: JSON | None = strawberry.field(
        description="What was measured (a count, ids, a duration …)."
    )
    points: float
    detail: str


@strawberry.type
class MajorImpactCriterion:
    criterion: str
    threshold: JSON | None
    value: JSON | None
    met: bool


@strawberry.type
class AssessedService:
    id: strawberry.ID
    status: str


@strawberry.type
class AssessedSLA:
    id: strawberry.ID
    status: str
    services: list[strawberry.ID]


@strawberry.type
class AssessedCustomer:
    id: strawberry.ID
    slas: list[strawberry.ID]


@strawberry.type
class AssessedCI:
    id: strawberry.ID
    status: str
    distance: int
    path: list[strawberry.ID]


@strawberry.type
class OpenRecord:
    id: strawberry.ID
    class_: str = strawberry.field(name="class")
    state: str | None
    affects: list[strawberry.ID]


@strawberry.type
class OtherChange:
    id: strawberry.ID
    state: str | None
    window_start: str | None
    cis: list[strawberry.ID]


@strawberry.type(
    description="What the assessment found when the RFC was assessed (stored with it)."
)
class ChangeAssessment:
    snapshot: strawberry.Private[dict[str, Any]]
    total_impacted: int
    risk_factors: list[RiskFactor]
    major_impact_criteria: list[MajorImpactCriterion]
    services: list[AssessedService]
    slas: list[AssessedSLA]
    customers: list[AssessedCustomer]
    open_records: list[OpenRecord]
    other_changes: list[OtherChange]

    @classmethod
    def of(cls, data: dict[str, Any]) -> ChangeAssessment:
        impact = data.get("impact") or {}
        return cls(
            snapshot=data,
            total_impacted=int(data.get("total_impacted") or 0),
            risk_factors=[RiskFactor(factor=f["factor"], value=f.get("value"),
                                     points=float(f.get("points") or 0), detail=f.get("detail", ""))
                          for f in data.get("risk_factors") or []],
            major_impact_criteria=[MajorImpactCriterion(
                criterion=c["criterion"], threshold=c.get("threshold"), value=c.get("value"),
                met=bool(c.get("met"))) for c in data.get("major_impact_criteria") or []],
            services=[AssessedService(id=s["id"], status=s["status"])
                      for s in impact.get("services") or []],
            slas=[AssessedSLA(id=s["id"], status=s["status"], services=s.get("services") or [])
                  for s in impact.get("slas") or []],
            customers=[AssessedCustomer(id=c["id"], slas=c.get("slas") or [])
                       for c in impact.get("customers") or []],
            open_records=[OpenRecord(id=r["id"], class_=r.get("class", ""), state=r.get("state"),
                                     affects=r.get("affects") or [])
                          for r in data.get("open_records") or []],
            other_changes=[OtherChange(id=c["id"], state=c.get("state"),
                                       window_start=c.get("window_start"), cis=c.get("cis") or [])
                           for c in data.get("other_changes") or []],
        )  # fmt: skip

    @strawberry.field(description="The impacted CIs of the snapshot, nearest first.")
    def impacted(self, first: int = 100) -> list[AssessedCI]:
        rows = (self.snapshot.get("impact") or {}).get("impacted") or []
        return [
            AssessedCI(id=r["id"], status=r["status"], distance=r["distance"], path=r["path"])
            for r in rows[: max(0, first)]
        ]


@strawberry.type(name="Change", description="A request for change (RFC).")
class ChangeType:
    id: strawberry.ID
    name: str
    version: int
    change_type: str
    state: str
    risk_score: float | None
    risk_level: str | None
    major_impact: bool | None
    attributes: JSON

    @classmethod
    def of(cls, c: CI) -> ChangeType:
        a = c.attributes
        return cls(
            id=strawberry.ID(c.id), name=c.name, version=c.version or 0,
            change_type=a.get("change_type", ""), state=a.get("state", ""),
            risk_score=a.get("risk_score"), risk_level=a.get("risk_level"),
            major_impact=a.get("major_impact"), attributes=as_json(a),
        )  # fmt: skip

    @strawberry.field(
        description="The assessment, typed: risk factors with their points, major-impact "
        "criteria, the blast radius with services, SLAs and customers, open records and other "
        "changes in it (null until assessed)."
    )
    def assessment(self) -> ChangeAssessment | None:
        attributes: Any = self.attributes
        data = attributes.get("assessment")
        return ChangeAssessment.of(data) if isinstance(data, dict) else None

    @strawberry.field(description="The assessment as stored (JSON), e.g. for an export.")
    def assessment_snapshot(self) -> JSON | None:
        attributes: Any = self.attributes
        return as_json(attributes.get("assessment"))

    @strawberry.field
    async def targets(self, info: Info) -> list[CIType]:
        ids = [t for _, t in info.context.sg.engine.outgoing([str(self.id)], "TARGETS")]
        found = await info.context.loaders.cis.load_many(sorted(ids))
        return [CIType.of(ci) for ci in found if ci is not None]

    @strawberry.field(description="Every journaled transition and edit, with actor and reason.")
    def history(self, info: Info) -> list[JournalEntryType]:
        return [JournalEntryType.of(e) for e in info.context.sg.store.journal(entity=str(self.id))]


@strawberry.type
class ScheduledChange:
    id: strawberry.ID
    name: str
    state: str
    change_type: str | None
    window_start: str
    window_end: str
    targets: list[strawberry.ID]
    risk_level: str | None


@strawberry.type
class Collision:
    kind: str = strawberry.field(description="overlapping_changes or blackout")
    changes: list[strawberry.ID]
    blackout: strawberry.ID | None
    window: list[str]
    cis: list[strawberry.ID] = strawberry.field(description="Shared CIs, nearest first (≤ 100).")
    ci_count: int
    services: list[strawberry.ID]
    reason: str


@strawberry.type
class ChangeSchedule:
    changes: list[ScheduledChange]
    collisions: list[Collision]


@strawberry.type(name="Release")
class ReleaseType:
    id: strawberry.ID
    name: str
    release_type: str
    state: str
    attributes: JSON

    @classmethod
    def of(cls, r: CI) -> ReleaseType:
        a = r.attributes
        return cls(id=strawberry.ID(r.id), name=r.name, release_type=a.get("release_type", ""),
                   state=a.get("state", ""), attributes=as_json(a))  # fmt: skip

    @strawberry.field
    def baseline(self, info: Info) -> CIType | None:
        found = info.context.sg.releases.baseline(str(self.id))
        return CIType.of(found) if found else None

    @strawberry.field(description="CIs the release's changes target or impact.")
    def blast_radius(self, info: Info) -> list[strawberry.ID]:
        return [strawberry.ID(i) for i in info.context.sg.releases.blast_radius(str(self.id))]


@strawberry.input
class ChangeInput:
    id: strawberry.ID
    name: str
    change_type: str
    targets: list[strawberry.ID]
    fields: JSON = strawberry.field(default_factory=dict, description="Editable RFC fields.")


@strawberry.input
class ChangeFilter:
    states: list[str] | None = None
    change_types: list[str] | None = None
    window_start: str | None = strawberry.field(default=None, description="ISO 8601")
    window_end: str | None = strawberry.field(default=None, description="ISO 8601")


@strawberry.input
class ReleaseInput:
    id: strawberry.ID
    name: str
    release_type: str
    changes: list[strawberry.ID]
    resolves: list[strawberry.ID] = strawberry.field(default_factory=list)
    fields: JSON = strawberry.field(default_factory=dict)


@strawberry.type
class ChangeQuery:
    @strawberry.field(description="One RFC (NOT_FOUND if there is none).")
    def change(self, info: Info, id: strawberry.ID) -> ChangeType:
        info.context.actor("read")
        return ChangeType.of(info.context.sg.changes.get(str(id)))

    @strawberry.field(
        description="RFCs by state, type and window (the CAB agenda): those whose window "
        "overlaps [windowStart, windowEnd), by window start."
    )
    def changes(
        self,
        info: Info,
        filter: ChangeFilter | None = None,
        first: int = 100,
    ) -> list[ChangeType]:
        info.context.actor("read")
        if not 1 <= first <= 500:
            raise ValidationFailed(
                [Problem("arguments", "first", "must be between 1 and 500")], wrote=False
            )
        f = filter or ChangeFilter()
        found = info.context.sg.changes.find(
            states=f.states, start=f.window_start, end=f.window_end, change_types=f.change_types
        )
        return [ChangeType.of(c) for c in found[:first]]

    @strawberry.field(description="The forward schedule of change with its collisions.")
    def change_schedule(self, info: Info, start: str, end: str) -> ChangeSchedule:
        info.context.actor("read")
        plan = info.context.sg.changes.schedule(start, end)
        return ChangeSchedule(
            changes=[ScheduledChange(**_ids(c, "id", "targets")) for c in plan["changes"]],
            collisions=[
                Collision(**_ids({"blackout": None, **c}, "changes", "cis", "services"))
                for c in plan["collisions"]
            ],
        )

    @strawberry.field(description="RFC counts per month, type, target class and outcome.")
    def change_trends(self, info: Info) -> JSON:
        info.context.actor("read")
        return as_json(info.context.sg.changes.trends().to_dict(orient="records"))

    @strawberry.field
    def release(self, info: Info, id: strawberry.ID) -> ReleaseType:
        info.context.actor("read")
        return ReleaseType.of(info.context.sg.releases.get(str(id)))

    @strawberry.field(description="Incidents in the release's blast radius within N days.")
    def release_incidents(self, info: Info, id: strawberry.ID, days: int = 7) -> JSON:
        info.context.actor("read")
        if days < 0:
            raise ValidationFailed([Problem("arguments", "days", "must be 0 or more")], wrote=False)
        return as_json(info.context.sg.releases.incidents_after(str(id), days))


@strawberry.type
class ChangeMutation:
    @strawberry.mutation(description="Record a new RFC (state draft).")
    def create_change(self, info: Info, change: ChangeInput) -> ChangeType:
        actor = info.context.actor("read")
        created = info.context.sg.changes.create(
            str(change.id), change.name, change.change_type, [str(t) for t in change.targets],
            actor, **_fields(change.fields),
        )  # fmt: skip
        return ChangeType.of(created)

    @strawberry.mutation(description="Edit an RFC before approval.")
    def amend_change(self, info: Info, id: strawberry.ID, fields: JSON) -> ChangeType:
        actor = info.context.actor("read")
        return ChangeType.of(info.context.sg.changes.amend(str(id), actor, **_fields(fields)))

    @strawberry.mutation(
        description="Move an RFC through its lifecycle (RULE_VIOLATION names the rule)."
    )
    def transition_change(
        self,
        info: Info,
        id: strawberry.ID,
        action: ChangeAction,
        reason: str = "",
        fields: JSON | None = None,
    ) -> ChangeType:
        actor = info.context.actor("read")
        changed = info.context.sg.changes.transition(
            str(id), action.value, actor, reason, **_fields(fields or {})
        )
        return ChangeType.of(changed)

    @strawberry.mutation
    def create_release(self, info: Info, release: ReleaseInput) -> ReleaseType:
        actor = info.context.actor("read")
        created = info.context.sg.releases.create(
            str(release.id), release.name, release.release_type,
            [str(c) for c in release.changes], actor, [str(r) for r in release.resolves],
            **_fields(release.fields),
        )  # fmt: skip
        return ReleaseType.of(created)

    @strawberry.mutation(description="Baseline every CI in the release's blast radius.")
    def baseline_release(self, info: Info, id: strawberry.ID) -> CIType:
        actor = info.context.actor("read")
        return CIType.of(info.context.sg.releases.take_baseline(str(id), actor))

    @strawberry.mutation(description="Record the deployment (refused without a baseline).")
    def deploy_release(
        self, info: Info, id: strawberry.ID, succeeded: bool = True, notes: str = ""
    ) -> ReleaseType:
        actor = info.context.actor("read")
        return ReleaseType.of(info.context.sg.releases.deploy(str(id), actor, succeeded, notes))

    @strawberry.mutation(
        description="Restore the baselined CI records and mark the release rolled back."
    )
    def rollback_release(self, info: Info, id: strawberry.ID, reason: str = "") -> ReleaseType:
        actor = info.context.actor("read")
        return ReleaseType.of(info.context.sg.releases.rollback(str(id), actor, reason))


def _fields(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationFailed([Problem("arguments", "fields", "expected an object")])
    return value


def _ids(row: dict[str, Any], *keys: str) -> dict[str, Any]:
    out = dict(row)
    for k in keys:
        out[k] = (
            strawberry.ID(out[k]) if isinstance(out[k], str) else [strawberry.ID(v) for v in out[k]]
        )
    return out


__all__ = ["ChangeMutation", "ChangeQuery"]
