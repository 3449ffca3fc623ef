"""GraphQL for the configuration audit (9.1): CMDB health with its findings."""

from __future__ import annotations

from typing import Annotated

import strawberry

from servicegraph.api.graphql.types import Info
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
