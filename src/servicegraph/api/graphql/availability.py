"""GraphQL for availability (6.3): a service's computed availability, SPOFs, cut sets, importance."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON

from servicegraph.api.graphql.types import Info
from servicegraph.errors import Problem, ValidationFailed


@strawberry.type
class ComponentFigure:
    id: strawberry.ID
    availability: float


@strawberry.type
class CutSet:
    cis: list[strawberry.ID]
    probability: float = strawberry.field(description="Probability that all of them are down.")


@strawberry.type
class ComponentImportance:
    id: strawberry.ID
    availability: float
    birnbaum: float = strawberry.field(description="dA/dp: how much the service gains per unit.")
    improvement_potential: float = strawberry.field(description="A if this were perfect, minus A.")


@strawberry.type
class AssumedFigure:
    id: strawberry.ID
    availability: float
    source: str = strawberry.field(description="class default or assumed 1.0")


@strawberry.type(description="The availability a service can reach from its model, and why.")
class Availability:
    service: strawberry.ID
    availability: float
    method: str = strawberry.field(description="exact (BDD) or monte_carlo")
    ci95: list[float] | None = strawberry.field(description="Monte Carlo only.")
    components: int
    downtime_minutes_per_year: float
    spofs: list[ComponentFigure]
    cut_sets: list[CutSet]
    importance: list[ComponentImportance]
    assumed: list[AssumedFigure]


@strawberry.type
class SLARisk:
    sla: strawberry.ID
    service: strawberry.ID
    live: bool
    target: float | None
    availability: float
    method: str
    meets: bool | None
    gap_minutes_per_year: float | None
    assumed: int = strawberry.field(description="Components whose figure was assumed.")
    top_cut_sets: list[CutSet]


@strawberry.type
class SupplierCommitment:
    sla: strawberry.ID
    service: strawberry.ID
    ci: strawberry.ID
    contract: strawberry.ID
    supplier: strawberry.ID | None
    target: float
    commitment: float
    availability_with_commitment: float
    aligned: bool
    required_commitment: float | None = strawberry.field(
        description="The commitment that meets the target (null: none can, other causes)."
    )
    reason: str


@strawberry.type
class ExpiredContract:
    contract: strawberry.ID
    supplier: strawberry.ID | None
    valid_to: str | None
    sla: strawberry.ID
    service: strawberry.ID
    ci: strawberry.ID


@strawberry.type
class SupplierAlignment:
    commitments: list[SupplierCommitment]
    expired_under_live_slas: list[ExpiredContract]


@strawberry.type
class AvailabilityQuery:
    @strawberry.field(
        description="Every SLA's covered services: computed availability against the target, "
        "the gap in minutes a year and the cut sets that cause it."
    )
    def sla_risk(self, info: Info) -> list[SLARisk]:
        from servicegraph.processes.availability.sla import sla_risk

        info.context.actor("read")
        sg = info.context.sg
        return [
            SLARisk(
                sla=r["sla"], service=r["service"], live=r["live"], target=r["target"],
                availability=r["availability"], method=r["method"], meets=r.get("meets"),
                gap_minutes_per_year=r.get("gap_minutes_per_year"), assumed=r["assumed"],
                top_cut_sets=[CutSet(cis=c["cis"], probability=c["probability"])
                              for c in r.get("top_cut_sets") or []],
            )
            for r in sla_risk(sg.engine, sg.store)
        ]  # fmt: skip

    @strawberry.field(
        description="Supplier commitments on live SLAs' dependency chains: aligned or not, the "
        "commitment that would meet each target, and expired contracts under live SLAs."
    )
    def supplier_alignment(self, info: Info) -> SupplierAlignment:
        info.context.actor("read")
        found = info.context.sg.supplier_alignment()
        return SupplierAlignment(
            commitments=[SupplierCommitment(**c) for c in found["commitments"]],
            expired_under_live_slas=[
                ExpiredContract(**e) for e in found["expired_under_live_slas"]
            ],
        )

    @strawberry.field(
        description="Exact availability of a service from its dependency structure (shared "
        "components and k-of-n groups included), its single points of failure, minimal cut sets "
        'up to order 3 and component importance. overrides: {"ci": {"availability": 0.999, '
        '"min_up": 2}} is a what-if; nothing is written.'
    )
    def availability(
        self, info: Info, service_id: strawberry.ID, overrides: JSON | None = None
    ) -> Availability:
        info.context.actor("read")
        given: Any = overrides
        if given is not None and not (
            isinstance(given, dict) and all(isinstance(v, dict) for v in given.values())
        ):
            raise ValidationFailed(
                [Problem("arguments", "overrides", '{"ci": {"availability": …, "min_up": …}}')],
                wrote=False,
            )
        result = info.context.sg.availability(str(service_id), given)
        data = result.to_dict()
        return Availability(
            service=strawberry.ID(result.service),
            availability=result.availability,
            method=result.method,
            ci95=data.get("ci95"),
            components=result.components,
            downtime_minutes_per_year=data["downtime_minutes_per_year"],
            spofs=[
                ComponentFigure(id=s["id"], availability=s["availability"]) for s in result.spofs
            ],
            cut_sets=[CutSet(cis=c["cis"], probability=c["probability"]) for c in result.cut_sets],
            importance=[ComponentImportance(**r) for r in result.importance],
            assumed=[AssumedFigure(**a) for a in result.assumed],
        )
