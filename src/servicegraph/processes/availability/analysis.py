"""The availability of one service and why: its single points of failure, minimal cut sets,
component importance, and what it would be with other figures (what-if, nothing written).

Every figure explains itself: ``assumed`` lists the components whose availability was not stated
(class default or 1.0), each cut set carries its probability, each component its Birnbaum
importance and improvement potential ("what to make redundant first").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from servicegraph.processes.availability.exact import ExactModel, TooLarge, monte_carlo
from servicegraph.processes.availability.structure import build_structure

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.store import GraphStore

__all__ = ["AvailabilityResult", "availability"]

MINUTES_PER_YEAR = 525_960  # 365.25 days
TOP_CUT_SETS = 20


@dataclass
class AvailabilityResult:
    service: str
    availability: float
    method: str  # exact | monte_carlo
    components: int
    ci95: tuple[float, float] | None = None
    spofs: list[dict[str, Any]] = field(default_factory=list)
    cut_sets: list[dict[str, Any]] = field(default_factory=list)
    importance: list[dict[str, Any]] = field(default_factory=list)
    assumed: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    @property
    def downtime_minutes_per_year(self) -> float:
        return (1 - self.availability) * MINUTES_PER_YEAR

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "availability": self.availability,
            "method": self.method,
            "components": self.components,
            "spofs": self.spofs,
            "cut_sets": self.cut_sets,
            "importance": self.importance,
            "assumed": [a["id"] for a in self.assumed],
            "assumed_sources": self.assumed,
            "downtime_minutes_per_year": round(self.downtime_minutes_per_year, 3),
        }
        if self.ci95 is not None:
            out["ci95"] = list(self.ci95)
        if self.note:
            out["note"] = self.note
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per component: availability, Birnbaum importance, improvement potential."""
        import pandas as pd

        return pd.DataFrame(self.importance)


def availability(
    engine: TopologyEngine,
    store: GraphStore,
    service_id: str,
    overrides: dict[str, dict[str, Any]] | None = None,
    max_cut_order: int = 3,
    detail: bool = True,
) -> AvailabilityResult:
    """The availability ``service_id`` can reach from its model (see the module docstring).

    ``detail=False``: availability and single points of failure only (no cut sets of order 2 and
    3, no importance) — for sweeping every service of an estate."""
    structure = build_structure(engine, store, service_id, overrides)
    assumed = [
        {"id": n, "availability": structure.p[n], "source": structure.source[n]}
        for n in structure.nodes
        if structure.source[n] in ("class default", "assumed 1.0")
    ]
    try:
        model = ExactModel(structure)
    except TooLarge as why:
        a, interval = monte_carlo(structure)
        return AvailabilityResult(
            service_id, a, "monte_carlo", len(structure.nodes), ci95=interval, assumed=assumed,
            note=f"too large for the exact method ({why}); 200,000 samples",
        )  # fmt: skip
    a = model.probability()
    # The service's own failure is trivially a cut: listed are the dependencies' cut sets.
    cuts = [
        c for c in model.minimal_cut_sets(max_cut_order if detail else 1) if service_id not in c
    ]
    p = structure.p
    ranked = sorted(
        ({"cis": sorted(c), "probability": math.prod(1 - p[x] for x in c)} for c in cuts),
        key=lambda c: (-float(c["probability"]), len(c["cis"]), c["cis"]),  # type: ignore[arg-type]
    )
    spofs = sorted(
        ({"id": next(iter(c)), "availability": p[next(iter(c))]} for c in cuts if len(c) == 1),
        key=lambda s: (s["availability"], s["id"]),
    )
    if not detail:
        return AvailabilityResult(service_id, a, "exact", len(structure.nodes), spofs=spofs,
                                  cut_sets=ranked[:TOP_CUT_SETS], assumed=assumed)  # fmt: skip
    birnbaum = model.birnbaum()
    order = sorted(structure.nodes, key=lambda n: (-(1 - p[n]) * birnbaum[n], -birnbaum[n], n))
    importance = [
        {"id": n, "availability": p[n], "birnbaum": birnbaum[n],
         "improvement_potential": (1 - p[n]) * birnbaum[n]}
        for n in order
    ]  # fmt: skip
    return AvailabilityResult(
        service_id, a, "exact", len(structure.nodes), spofs=spofs,
        cut_sets=ranked[:TOP_CUT_SETS], importance=importance, assumed=assumed,
    )  # fmt: skip
