"""Impact analysis: what goes DOWN or DEGRADED when CIs fail, which services, SLAs and customers are
hit, and why (each impacted CI with the path from a seed). Serves change assessment (9.2),
incident impact (8.1) and availability (6.3) through the engine's one propagation routine.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import Propagation, TopologyEngine

__all__ = ["AGREED_WITH", "COVERS", "ImpactResult", "analyse_impact"]

COVERS = "COVERS"  # sla -COVERS-> service
AGREED_WITH = "AGREED_WITH"  # sla -AGREED_WITH-> customer


@dataclass
class ImpactResult:
    """The blast radius of a set of failing CIs."""

    seeds: list[str]
    propagation: Propagation
    engine: TopologyEngine
    services: list[dict[str, str]] = field(default_factory=list)
    slas: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    # Stored values of the CIs it reached that the engine could not use (see DataProblem).
    warnings: list[dict[str, str]] = field(default_factory=list)

    @property
    def total_impacted(self) -> int:
        return int(self.propagation.nodes.size)

    def impacted(self, limit: int | None = None, names: bool = False) -> list[dict[str, Any]]:
        """Impacted CIs, nearest first: id, class, status, distance, path (and ``name``, read
        from the store in one round trip, when ``names``)."""
        p, ids = self.propagation, self.engine.ids
        nodes = p.nodes if limit is None else p.nodes[:limit]
        sliced = p if limit is None else p.head(limit)
        classes = self.engine.class_names
        cls = self.engine.cls
        rows = [
            {
                "id": ids[v],
                "class": classes[int(cls[v])],
                "status": "DOWN" if down else "DEGRADED",
                "distance": d,
                "path": path,
            }
            for v, down, d, path in zip(
                nodes.tolist(),
                sliced.down.tolist(),
                sliced.distance.tolist(),
                sliced.paths(),
                strict=True,
            )
        ]
        if names:
            labels = self.engine.store.labels([r["id"] for r in rows])
            for row in rows:
                row["name"] = labels.get(row["id"], ("", ""))[1]
        return rows

    def to_dict(self) -> dict[str, Any]:
        keys = ("id", "name", "class", "status", "distance", "path")
        impacted = [{k: row[k] for k in keys} for row in self.impacted(names=True)]
        return {
            "impacted": impacted,
            "services": self.services,
            "slas": self.slas,
            "customers": self.customers,
            "warnings": self.warnings,
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per impacted CI: id, name, class, status, distance, path."""
        import pandas as pd

        columns = ["id", "name", "class", "status", "distance", "path"]
        return pd.DataFrame(self.impacted(names=True), columns=columns)


def analyse_impact(
    engine: TopologyEngine, ci_ids: Collection[str], max_depth: int | None = None
) -> ImpactResult:
    """Propagate the failure of ``ci_ids`` and collect the services, SLAs and customers hit."""
    seeds = list(dict.fromkeys(ci_ids))
    propagation = engine.propagate(seeds, max_depth)
    result = ImpactResult(seeds, propagation, engine)
    reached = np.concatenate([propagation.seeds, propagation.nodes])
    result.warnings = [p.to_dict() for p in engine.problems_among(reached)]
    service_codes = [engine.class_code[c] for c in engine.model.descendants("service")]
    is_service = np.isin(engine.cls[propagation.nodes], service_codes)
    services = propagation.nodes[is_service]
    statuses = np.where(propagation.down[is_service], "DOWN", "DEGRADED")
    ids = engine.ids
    result.services = [
        {"id": ids[v], "status": str(s)} for v, s in zip(services.tolist(), statuses, strict=True)
    ]
    status_of = {row["id"]: row["status"] for row in result.services}
    if not status_of:
        return result
    covering = engine.incoming(list(status_of), COVERS)
    slas: dict[str, list[str]] = {}
    for sla, service in covering:
        slas.setdefault(sla, []).append(service)
    result.slas = [
        {
            "id": sla,
            "services": sorted(hit),
            "status": "DOWN" if any(status_of[s] == "DOWN" for s in hit) else "DEGRADED",
        }
        for sla, hit in sorted(slas.items())
    ]
    customers: dict[str, list[str]] = {}
    for sla, customer in engine.outgoing(list(slas), AGREED_WITH):
        customers.setdefault(customer, []).append(sla)
    result.customers = [{"id": c, "slas": sorted(s)} for c, s in sorted(customers.items())]
    return result
