"""GraphQL for the configuration audit (9.1): CMDB health with its findings, diffs between two
points of the journal, and the reconciliation of discovery feeds (typed reports, lists bounded by
``first`` with the totals in ``counts``)."""

from __future__ import annotations

from typing import Annotated, Any

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
class DiffCounts:
    cis_created: int
    cis_updated: int
    cis_retired: int
    cis_deleted: int
    relationships_added: int
    relationships_removed: int


@strawberry.type
class Diff:
    from_seq: int
    to_seq: int
    members: int | None = strawberry.field(description="From a baseline: its CIs only.")
    counts: DiffCounts = strawberry.field(description="Totals; the lists hold the first `first`.")
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
        _first(first)
        info.context.actor("read")
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
        first: int = 1000,
    ) -> Diff:
        info.context.actor("read")
        _first(first)
        d = info.context.sg.diff(from_, to)
        cis = [CIChange(kind=kind, id=strawberry.ID(c["id"]), class_=c["class"],
                        changes=[AttributeChange(attribute=x["attribute"],
                                                 before=as_json(x["before"]),
                                                 after=as_json(x["after"]))
                                 for x in c.get("changes", [])], by=_by(c["by"]))
               for kind, items in d["cis"].items() for c in items[:first]][:first]  # fmt: skip
        rels = [RelationshipChange(kind=kind, source=strawberry.ID(r["source"]), type=r["type"],
                                   target=strawberry.ID(r["target"]), by=_by(r["by"]))
                for kind, items in d["relationships"].items() for r in items[:first]][:first]  # fmt: skip
        return Diff(from_seq=d["from"]["seq"], to_seq=d["to"]["seq"], members=d["members"],
                    counts=DiffCounts(**d["counts"]), cis=cis, relationships=rels)  # fmt: skip


@strawberry.type
class FeedMatch:
    feed_id: str
    ci: strawberry.ID
    rule: str = strawberry.field(description="The identification rule that matched it.")


@strawberry.type
class FeedDrift:
    ci: strawberry.ID
    attribute: str
    cmdb: JSON | None
    discovered: JSON | None


@strawberry.type
class FeedAmbiguity:
    feed_id: str
    rule: str
    cis: list[strawberry.ID] = strawberry.field(description="The CIs it matches: never guessed.")


@strawberry.type
class AppliedUpdate:
    ci: strawberry.ID
    attribute: str
    from_: JSON | None = strawberry.field(name="from")
    to: JSON | None


@strawberry.type
class KeptAttribute:
    ci: strawberry.ID
    attribute: str
    by: str = strawberry.field(description="The higher-priority source that owns it.")


@strawberry.type
class CreatedCI:
    feed_id: str
    ci: strawberry.ID


@strawberry.type
class NotCreated:
    feed_id: str
    why: str


@strawberry.type
class ReconcileApplied:
    seen: int = strawberry.field(description="CIs the feed saw (last_seen and source set).")
    updated: list[AppliedUpdate]
    kept: list[KeptAttribute]
    created: list[CreatedCI]
    not_created: list[NotCreated]


@strawberry.type
class ReconcileCounts:
    matched: int
    new: int
    missing: int
    drift: int
    ambiguous: int


@strawberry.type
class ReconcileReport:
    source: str
    records: int
    counts: ReconcileCounts = strawberry.field(description="Totals; each list has its first "
                                               "`first` items.")  # fmt: skip
    matched: list[FeedMatch]
    new: list[str] = strawberry.field(description="Feed ids no CI matches.")
    missing: list[strawberry.ID] = strawberry.field(
        description="Live CIs of the feed's classes the feed lacks."
    )
    drift: list[FeedDrift]
    ambiguous: list[FeedAmbiguity]
    applied: ReconcileApplied | None = strawberry.field(description="With apply: what was written.")


def _report(r: dict[str, Any], first: int) -> ReconcileReport:
    ID = strawberry.ID
    a = r.get("applied")
    applied = None if a is None else ReconcileApplied(
        seen=a["seen"],
        updated=[AppliedUpdate(ci=ID(u["ci"]), attribute=u["attribute"], from_=as_json(u["from"]),
                               to=as_json(u["to"])) for u in a["updated"][:first]],
        kept=[KeptAttribute(ci=ID(k["ci"]), attribute=k["attribute"], by=str(k["by"]))
              for k in a["kept"][:first]],
        created=[CreatedCI(feed_id=c["feed_id"], ci=ID(c["ci"])) for c in a["created"][:first]],
        not_created=[NotCreated(feed_id=n["feed_id"], why=n["why"])
                     for n in a["not_created"][:first]],
    )  # fmt: skip
    return ReconcileReport(
        source=r["source"], records=r["records"], counts=ReconcileCounts(**r["counts"]),
        matched=[FeedMatch(feed_id=m["feed_id"], ci=ID(m["ci"]), rule=m["rule"])
                 for m in r["matched"][:first]],
        new=r["new"][:first], missing=[ID(i) for i in r["missing"][:first]],
        drift=[FeedDrift(ci=ID(d["ci"]), attribute=d["attribute"], cmdb=as_json(d["cmdb"]),
                         discovered=as_json(d["discovered"])) for d in r["drift"][:first]],
        ambiguous=[FeedAmbiguity(feed_id=x["feed_id"], rule=x["rule"],
                                 cis=[ID(c) for c in x["cis"]]) for x in r["ambiguous"][:first]],
        applied=applied,
    )  # fmt: skip


def _first(first: int) -> int:
    if not 0 <= first <= 10_000:
        raise ValidationFailed([Problem("arguments", "first", "between 0 and 10,000")],
                               wrote=False)  # fmt: skip
    return first


@strawberry.type
class AuditMutation:
    @strawberry.mutation(description="Identify a discovery feed's records (matched, new, missing, "
                         "drift, ambiguous); with apply, write what the reconciliation rules allow "
                         "the source (one transaction, the source as actor). Lists: their first "
                         "`first` items; counts: the totals.")  # fmt: skip
    def reconcile(
        self, info: Info, feed: JSON, source: str, apply: bool = False, first: int = 1000
    ) -> ReconcileReport:
        info.context.actor("write_cmdb" if apply else "read")
        _first(first)
        return _report(info.context.sg.reconcile(feed, source, apply), first)
