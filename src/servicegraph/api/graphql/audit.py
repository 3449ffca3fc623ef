"""GraphQL for the configuration audit (9.1): CMDB health with its findings."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from servicegraph.api.graphql.types import Info, as_json
from servicegraph.errors import Problem, ValidationFailed


@strawberry.type
class HealthScores:
    score: float
    completeness: float
    correctness: float
    compliance: float


@strawberry.type
class ClassHealth:
    class_: str = strawberry.field(name="class")
    cis: int
    scores: HealthScores


@strawberry.type
class HealthFinding:
    rule: str
    category: str = strawberry.field(description="completeness, correctness or compliance")
    ci: strawberry.ID
    class_: str = strawberry.field(name="class")
    detail: str
    fix: str


@strawberry.type
class CmdbHealth:
    scores: HealthScores
    cis: int
    by_class: list[ClassHealth]
    finding_count: int
    findings: list[HealthFinding] = strawberry.field(description="The first `first` findings.")


def _scores(d: dict[str, float]) -> HealthScores:
    return HealthScores(score=d["score"], completeness=d["completeness"],
                        correctness=d["correctness"], compliance=d["compliance"])  # fmt: skip


@strawberry.type
class ChangedBy:
    seq: int
    at: str
    actor: str
    op: str
    reason: str | None


@strawberry.type
class AttributeChange:
    attribute: str
    before: JSON | None
    after: JSON | None


@strawberry.type
class CIChange:
    kind: str = strawberry.field(description="created, updated, retired or deleted")
    id: strawberry.ID
    class_: str = strawberry.field(name="class")
    changes: list[AttributeChange]
    by: list[ChangedBy]


@strawberry.type
class RelationshipChange:
    kind: str = strawberry.field(description="added or removed")
    source: strawberry.ID
    type: str
    target: strawberry.ID
    by: list[ChangedBy]


@strawberry.type
class Diff:
    from_seq: int
    to_seq: int
    members: int | None = strawberry.field(description="From a baseline: its CIs only.")
    cis: list[CIChange]
    relationships: list[RelationshipChange]


def _by(items: list[dict[str, object]]) -> list[ChangedBy]:
    return [ChangedBy(seq=int(str(b["seq"])), at=str(b["at"]), actor=str(b["actor"]),
                      op=str(b["op"]), reason=None if b["reason"] is None else str(b["reason"]))
            for b in items]  # fmt: skip


@strawberry.type
class AuditQuery:
    @strawberry.field(description="CMDB health: completeness, correctness and compliance "
                      "(0..100), per class, and findings with their rule and fix.")  # fmt: skip
    def cmdb_health(
        self,
        info: Info,
        class_: Annotated[str | None, strawberry.argument(name="class")] = None,
        service: strawberry.ID | None = None,
        first: int = 100,
    ) -> CmdbHealth:
        info.context.actor("read")
        if not 0 <= first <= 10_000:
            raise ValidationFailed([Problem("arguments", "first", "between 0 and 10,000")],
                                   wrote=False)  # fmt: skip
        r = info.context.sg.health(class_, str(service) if service else None)
        return CmdbHealth(
            scores=_scores(r.scores), cis=r.cis,
            by_class=[ClassHealth(class_=c, cis=v["cis"], scores=_scores(v))
                      for c, v in r.by_class.items()],
            finding_count=len(r.findings),
            findings=[HealthFinding(rule=f["rule"], category=f["category"],
                                    ci=strawberry.ID(f["ci"]), class_=f["class"],
                                    detail=f["detail"], fix=f["fix"]) for f in r.findings[:first]],
        )  # fmt: skip

    @strawberry.field(description="What changed between two points (journal seq, ISO 8601 time "
                      "or baseline id; `to` default now), attribute by attribute, with who.")  # fmt: skip
    def diff(
        self,
        info: Info,
        from_: Annotated[str, strawberry.argument(name="from")],
        to: str | None = None,
    ) -> Diff:
        info.context.actor("read")
        d = info.context.sg.diff(from_, to)
        cis = [CIChange(kind=kind, id=strawberry.ID(c["id"]), class_=c["class"],
                        changes=[AttributeChange(attribute=x["attribute"],
                                                 before=as_json(x["before"]),
                                                 after=as_json(x["after"]))
                                 for x in c.get("changes", [])], by=_by(c["by"]))
               for kind, items in d["cis"].items() for c in items]  # fmt: skip
        rels = [RelationshipChange(kind=kind, source=strawberry.ID(r["source"]), type=r["type"],
                                   target=strawberry.ID(r["target"]), by=_by(r["by"]))
                for kind, items in d["relationships"].items() for r in items]  # fmt: skip
        return Diff(from_seq=d["from"]["seq"], to_seq=d["to"]["seq"], members=d["members"],
                    cis=cis, relationships=rels)  # fmt: skip


@strawberry.type
class AuditMutation:
    @strawberry.mutation(description="Identify a discovery feed's records (matched, new, missing, "
                         "drift, ambiguous); with apply, write what the reconciliation rules allow "
                         "the source (one transaction, the source as actor).")  # fmt: skip
    def reconcile(self, info: Info, feed: JSON, source: str, apply: bool = False) -> JSON:
        info.context.actor("write_cmdb" if apply else "read")
        return as_json(info.context.sg.reconcile(feed, source, apply))
