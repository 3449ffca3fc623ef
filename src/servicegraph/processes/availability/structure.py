"""A service's dependency closure as a structure function, exactly as the engine fails things.

A CI is up when it is itself up, none of its ``required`` dependencies is down, and — if it has
``redundant`` dependencies — either all of them are up or at least ``min_up`` are (the engine: a CI
goes DOWN when one redundant dependency is DOWN and fewer than ``min_up`` are not DOWN). Retired CIs
take no part. Components fail independently with the probabilities of :func:`component_availability`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from servicegraph.errors import NotFound, Problem, RuleViolation, ValidationFailed

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.store import GraphStore

__all__ = ["Structure", "build_structure", "component_availability"]

HOURS_PER_YEAR = 8766


@dataclass
class Structure:
    """The closure of ``root``: each node's required and redundant dependencies and min_up, and
    each component's availability (with where it came from)."""

    root: str
    nodes: list[str]
    required: dict[str, list[str]]
    redundant: dict[str, list[str]]
    min_up: dict[str, int]
    p: dict[str, float] = field(default_factory=dict)
    source: dict[str, str] = field(
        default_factory=dict
    )  # attribute | mtbf/mttr | class default | assumed 1.0 | override

    def is_up(self, failed: set[str]) -> bool:
        """The structure evaluated for a set of failed components (greatest fixpoint: cycles of
        dependencies that nothing failed stay up, as in the engine's least fixpoint of DOWN)."""
        up = {n: n not in failed for n in self.nodes}
        changed = True
        while changed:
            changed = False
            for n in self.nodes:
                if up[n] and not self._node_up(n, up):
                    up[n] = False
                    changed = True
        return up[self.root]

    def _node_up(self, n: str, up: dict[str, bool]) -> bool:
        if not all(up[d] for d in self.required[n]):
            return False
        members = self.redundant[n]
        if members:
            count = sum(up[d] for d in members)
            return count == len(members) or count >= self.min_up[n]
        return True


def build_structure(
    engine: TopologyEngine,
    store: GraphStore,
    root: str,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Structure:
    """The structure of ``root``'s closure; ``overrides`` = ``{ci: {"availability": a,
    "min_up": k}}`` (what-if, nothing is written)."""
    if root not in engine.index:
        raise NotFound("CI", root)
    if engine.is_retired(root):
        raise RuleViolation("availability_of_live_ci", f"{root} is retired")
    overrides = overrides or {}
    impact_types = engine.impact_type_names
    nodes = sorted(engine.reach([root], "down", types=impact_types))
    bad_keys = [
        Problem("overrides", f"{ci}.{key}", "only availability and min_up can be overridden")
        for ci, given in overrides.items()
        for key in (given if isinstance(given, dict) else {"?": None})
        if key not in ("availability", "min_up")
    ]
    if bad_keys:
        raise ValidationFailed(bad_keys, wrote=False)
    unknown = sorted(set(overrides) - set(nodes))
    if unknown:
        raise ValidationFailed(
            [
                Problem("overrides", ci, f"not in the dependency closure of {root}")
                for ci in unknown
            ],
            wrote=False,
        )
    required: dict[str, list[str]] = {n: [] for n in nodes}
    redundant: dict[str, list[str]] = {n: [] for n in nodes}
    for source, rel_type, target in engine.edges_among(nodes, impact_types):
        kind = store.model.relationship_types[rel_type].impact
        (required if kind == "required" else redundant)[source].append(target)
    min_up = {n: engine.min_up_of(n) for n in nodes}
    structure = Structure(root, nodes, required, redundant, min_up)
    records = store.get_cis(nodes)
    for n in nodes:
        given = overrides.get(n, {})
        if "min_up" in given:
            min_up[n] = _check_min_up(n, given["min_up"])
        if "availability" in given:
            structure.p[n], structure.source[n] = _check_p(n, given["availability"]), "override"
        else:
            structure.p[n], structure.source[n] = component_availability(store, records.get(n))
    return structure


def component_availability(store: GraphStore, ci: Any) -> tuple[float, str]:
    """A CI's own availability and where it comes from: ``availability``; else MTBF/(MTBF+MTTR);
    else the class's ``default_availability``; else 1.0 (listed as assumed)."""
    if ci is None:
        return 1.0, "assumed 1.0"
    a = ci.attributes
    if isinstance(a.get("availability"), int | float):
        return float(a["availability"]), "attribute"
    mtbf, mttr = a.get("mtbf_hours"), a.get("mttr_hours")
    if isinstance(mtbf, int | float) and isinstance(mttr, int | float) and mtbf + mttr > 0:
        return float(mtbf) / float(mtbf + mttr), "mtbf/mttr"
    spec = store.model.classes.get(ci.cls)
    if spec is not None and spec.default_availability is not None:
        return spec.default_availability, "class default"
    return 1.0, "assumed 1.0"


def _check_p(ci: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValidationFailed(
            [Problem("overrides", f"{ci}.availability", f"{value!r}: a number in [0, 1]")],
            wrote=False,
        )
    return float(value)


def _check_min_up(ci: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationFailed(
            [Problem("overrides", f"{ci}.min_up", f"{value!r}: an integer in [1, 10000]")],
            wrote=False,
        )
    return value
