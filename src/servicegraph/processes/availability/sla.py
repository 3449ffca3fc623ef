"""SLAs and suppliers on the availability analysis (ISO/IEC 20000-1 6.1, 7.2).

* :func:`sla_risk`: for every SLA, the computed availability of each service it covers against the
  SLA's ``availability_target``, the gap in minutes a year, and the cut sets that cause it.
* :func:`supplier_alignment`: for every live SLA, the supplier contracts (``supplier_contract``
  ``UNDERPINS`` a CI) on its services' dependency chains. A commitment that, used as that CI's
  availability, leaves the target out of reach is flagged, with the commitment that would meet it
  — solved exactly: the service's availability is linear in one component's (A = p·A₁ + (1−p)·A₀),
  so p* = (target − A₀) / (A₁ − A₀). Expired contracts under live SLAs are flagged too.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from servicegraph.processes.availability.analysis import (
    MINUTES_PER_YEAR,
    AvailabilityResult,
    availability,
)
from servicegraph.processes.availability.exact import ExactModel, TooLarge
from servicegraph.processes.availability.structure import build_structure
from servicegraph.processes.listing import records_of_class

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.records import CI
    from servicegraph.graph.store import GraphStore

__all__ = ["sla_risk", "supplier_alignment"]


def _live(record: CI, today: dt.date) -> bool:
    a = record.attributes
    start, end = a.get("valid_from"), a.get("valid_to")
    return (start is None or dt.date.fromisoformat(start) <= today) and (
        end is None or dt.date.fromisoformat(end) >= today
    )


def sla_risk(
    engine: TopologyEngine, store: GraphStore, today: dt.date | None = None
) -> list[dict[str, Any]]:
    """One row per (SLA, covered service): availability vs target, gap, causes."""
    today = today or dt.datetime.now(dt.UTC).date()
    rows = []
    analysed: dict[str, AvailabilityResult] = {}  # a service under several SLAs: analysed once
    for sla in records_of_class(store, "sla"):
        target = sla.attributes.get("availability_target")
        for _, service in sorted(engine.outgoing([sla.id], "COVERS")):
            if service not in analysed:
                analysed[service] = availability(engine, store, service)
            result = analysed[service]
            row: dict[str, Any] = {
                "sla": sla.id,
                "service": service,
                "live": _live(sla, today),
                "target": target,
                "availability": result.availability,
                "method": result.method,
                "assumed": len(result.assumed),
            }
            if isinstance(target, int | float):
                row["meets"] = result.availability >= target
                row["gap_minutes_per_year"] = round(
                    max(0.0, target - result.availability) * MINUTES_PER_YEAR, 1
                )
                row["top_cut_sets"] = result.cut_sets[:5] if not row["meets"] else []
            rows.append(row)
    return rows


def supplier_alignment(
    engine: TopologyEngine, store: GraphStore, today: dt.date | None = None
) -> dict[str, Any]:
    """Supplier commitments against the customer SLAs that depend on them (see the module)."""
    today = today or dt.datetime.now(dt.UTC).date()
    contracts = {c.id: c for c in records_of_class(store, "supplier_contract")}
    underpins: dict[str, list[str]] = {}
    for contract_id, ci in engine.outgoing(list(contracts), "UNDERPINS") if contracts else []:
        underpins.setdefault(ci, []).append(contract_id)
    suppliers = dict(engine.outgoing(list(contracts), "SUPPLIED_BY")) if contracts else {}
    rows, expired = [], []
    for sla in records_of_class(store, "sla"):
        target = sla.attributes.get("availability_target")
        if not _live(sla, today) or not isinstance(target, int | float):
            continue
        for _, service in sorted(engine.outgoing([sla.id], "COVERS")):
            structure = build_structure(engine, store, service)
            chain = [(ci, c) for ci in structure.nodes for c in underpins.get(ci, [])]
            if not chain:
                continue
            try:
                model = ExactModel(structure)
            except TooLarge:
                continue  # reported by sla_risk as monte_carlo; no exact solve here
            for ci, contract_id in chain:
                contract = contracts[contract_id]
                commitment = contract.attributes.get("availability_commitment")
                if not _live(contract, today):
                    expired.append({"contract": contract_id, "supplier": suppliers.get(contract_id),
                                    "valid_to": contract.attributes.get("valid_to"),
                                    "sla": sla.id, "service": service, "ci": ci})  # fmt: skip
                if not isinstance(commitment, int | float):
                    continue
                up = model.probability(model.bdd.let({model.names[ci]: True}, model.f))
                down = model.probability(model.bdd.let({model.names[ci]: False}, model.f))
                reachable = commitment * up + (1 - commitment) * down
                required = (target - down) / (up - down) if up > down else None
                rows.append({
                    "sla": sla.id, "service": service, "target": target, "ci": ci,
                    "contract": contract_id, "supplier": suppliers.get(contract_id),
                    "commitment": commitment, "availability_with_commitment": reachable,
                    "aligned": reachable >= target,
                    "required_commitment": None if required is None or required > 1
                    else max(0.0, required),
                    "reason": _reason(reachable, target, required, commitment),
                })  # fmt: skip
    return {"commitments": rows, "expired_under_live_slas": expired}


def _reason(reachable: float, target: float, required: float | None, commitment: float) -> str:
    if reachable >= target:
        return f"with {commitment:.5f} the service reaches {reachable:.6f} >= {target}"
    if required is None or required > 1:
        return (
            f"the service reaches at most {reachable:.6f} < {target} even with a perfect "
            "supplier here: other components cause the gap (see sla check)"
        )
    return (
        f"with {commitment:.5f} the service reaches {reachable:.6f} < {target}; a commitment of "
        f"{required:.6f} would meet the target"
    )
