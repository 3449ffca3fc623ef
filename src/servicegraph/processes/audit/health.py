"""CMDB health (ISO/IEC 20000-1 9.1): completeness, correctness and compliance of the CI records,
each a score 0..100 with the findings that lowered it — every finding names the rule that made
it, the CI, what is wrong and how to fix it.

* **completeness** — the model's required and ``recommended`` attributes and its classes'
  ``recommended_relationships`` (e.g. ``LOCATED_IN``): filled / expected over the CIs in scope;
* **correctness** — CIs missing the relationships their class needs (``needs`` in the audit
  policy), relationships to retired CIs, stale CIs (``last_seen`` too old), duplicates by the
  identification rules, and two CIs joined by more than one relationship type: the share of CIs
  without such a finding;
* **compliance** — the policy's rules with expected values: the share of applicable checks met.

The rules are data (:mod:`.policy`); the relationships are read from the topology engine's arrays,
the records once, so an estate of 100k CIs is one pass.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from servicegraph.errors import Problem, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.history import Snapshot
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.audit.policy import AuditPolicy, ComplianceRule
from servicegraph.processes.times import time_of

if TYPE_CHECKING:
    import pandas as pd

    from servicegraph.graph.engine import TopologyEngine

__all__ = ["HealthResult", "cmdb_health", "snapshot_health"]

CATEGORIES = ("completeness", "correctness", "compliance")


@dataclass
class _Tally:
    expected: int = 0
    filled: int = 0
    cis: int = 0
    incorrect: int = 0
    checks: int = 0
    violations: int = 0

    def scores(self, weights: dict[str, float]) -> dict[str, float]:
        parts = {
            "completeness": 100.0 * self.filled / self.expected if self.expected else 100.0,
            "correctness": 100.0 * (1 - self.incorrect / self.cis) if self.cis else 100.0,
            "compliance": 100.0 * (1 - self.violations / self.checks) if self.checks else 100.0,
        }
        total = sum(weights.get(k, 1.0) for k in CATEGORIES) or 1.0
        score = sum(parts[k] * weights.get(k, 1.0) for k in CATEGORIES) / total
        return {"score": round(score, 1), **{k: round(v, 1) for k, v in parts.items()}}


@dataclass
class HealthResult:
    """The scores, per class, and every finding ``{rule, category, ci, class, detail, fix}``."""

    scores: dict[str, float]
    by_class: dict[str, dict[str, Any]]
    findings: list[dict[str, Any]]
    cis: int
    scope: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.scores, "cis": self.cis, "scope": self.scope, "by_class": self.by_class,
                "findings": self.findings}  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        """One row per finding."""
        import pandas as pd

        columns = ["rule", "category", "ci", "class", "detail", "fix"]
        return pd.DataFrame(self.findings, columns=columns)

    def figure(self) -> Any:
        """Scores per class as a grouped bar chart (plotly)."""
        import plotly.graph_objects as go

        from servicegraph.api.figures import PALETTE

        classes = sorted(self.by_class)
        fig = go.Figure()
        for n, part in enumerate(CATEGORIES):
            fig.add_bar(name=part, x=classes, y=[self.by_class[c][part] for c in classes],
                        marker_color=PALETTE[n])  # fmt: skip
        fig.update_layout(barmode="group", yaxis={"title": "score", "range": [0, 100]},
                          title=f"CMDB health {self.scores['score']} (per class)")  # fmt: skip
        return fig


@paused_gc()  # one pass builds a finding per gap: ~300k small objects at 100k CIs
def cmdb_health(
    engine: TopologyEngine,
    store: GraphStore,
    policy: AuditPolicy,
    cls: str | None = None,
    service: str | None = None,
    now: dt.datetime | None = None,
) -> HealthResult:
    """Audit the live CIs (of ``cls`` and its subclasses; in ``service``'s dependency closure)."""
    model = store.model
    ci_classes = _classes(model, cls)
    scope: set[str] | None = None
    if service is not None:
        scope = set(engine.reach([service], "down", types=engine.impact_type_names))
    source = store.get_cis(sorted(scope)).values() if scope is not None else store.iter_cis()
    records = [ci for ci in source if ci.cls in ci_classes and ci.status != "retired"]
    edges = _outgoing(engine, [r.id for r in records])
    return _audit(records, edges, model, policy, now or dt.datetime.now(dt.UTC),
                  {"class": cls, "service": service})  # fmt: skip


@paused_gc()
def snapshot_health(
    snapshot: Snapshot, model: Model, policy: AuditPolicy, now: dt.datetime, cls: str | None = None
) -> HealthResult:
    """The same audit of the graph as it was (a journal :class:`Snapshot`), judged at ``now``
    (the point's time: what was stale then)."""
    ci_classes = _classes(model, cls)
    records = []
    retired = set()
    for ident, record in snapshot.cis.items():
        attrs = record.get("attributes") or {}
        if attrs.get("status") == "retired":
            retired.add(ident)
        elif record["class"] in ci_classes:
            records.append(CI.from_dict(record))
    edges = _Edges()
    audited = {r.id for r in records}
    pairs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for rel in snapshot.relationships.values():
        here, there, kind = rel["source"], rel["target"], rel["type"]
        if here not in audited:
            continue
        if there in retired or there not in snapshot.cis:
            edges.retired.setdefault(here, []).append((kind, there))
        else:
            edges.live.setdefault(kind, set()).add(here)
        pairs[(here, there)].append(kind)
    for (here, there), kinds in pairs.items():
        if len(kinds) > 1:
            edges.parallel.setdefault(here, {})[there] = kinds
    return _audit(records, edges, model, policy, now, {"class": cls, "seq": snapshot.seq})


def _classes(model: Model, cls: str | None) -> frozenset[str]:
    if cls is not None and cls not in model.classes:
        raise ValidationFailed([Problem("health", "class", f"unknown class {cls!r}")], wrote=False)
    return frozenset(c for c in model.concrete(cls or "ci") if model.is_a(c, "ci"))


def _audit(
    records: list[CI],
    edges: _Edges,
    model: Model,
    policy: AuditPolicy,
    now: dt.datetime,
    scope: dict[str, Any],
) -> HealthResult:
    records.sort(key=lambda ci: ci.id)
    expected, needs, rules = _per_class(model, policy, {ci.cls for ci in records})
    findings: list[dict[str, Any]] = []
    tallies: dict[str, _Tally] = defaultdict(_Tally)
    incorrect: set[str] = set()

    def find(rule: str, category: str, ci: CI, detail: str, fix: str) -> None:
        findings.append({"rule": rule, "category": category, "ci": ci.id, "class": ci.cls,
                         "detail": detail, "fix": fix})  # fmt: skip
        if category == "correctness":
            incorrect.add(ci.id)

    for ci in records:
        spec = model.classes[ci.cls]
        tally = tallies[ci.cls]
        tally.cis += 1
        for name, kind, fix in expected[ci.cls]:
            tally.expected += 1
            if ci.attributes.get(name) not in (None, "", []):
                tally.filled += 1
            else:
                find(f"{kind}_attribute", "completeness", ci, f"{name} is not set", fix)
        for rel in spec.recommended_relationships:
            tally.expected += 1
            if ci.id in edges.live.get(rel, ()):
                tally.filled += 1
            else:
                find("recommended_relationship", "completeness", ci, f"no {rel} relationship",
                     f"add {ci.id} -{rel}-> … (e.g. its location)")  # fmt: skip
        for need in needs[ci.cls]:
            if not any(ci.id in edges.live.get(t, ()) for t in need["types"]):
                find("orphan", "correctness", ci,
                     f"a {ci.cls} needs a {' or '.join(need['types'])} relationship to a live CI",
                     str(need["fix"]))  # fmt: skip
        for rel, target in edges.retired.get(ci.id, ()):
            find("relationship_to_retired", "correctness", ci,
                 f"{rel} -> {target}, which is retired",
                 f"remove the relationship or point it at the CI that replaced {target}")  # fmt: skip
        for target, rels in edges.parallel.get(ci.id, {}).items():
            find("parallel_relationships", "correctness", ci,
                 f"joined to {target} by {', '.join(sorted(rels))}",
                 "keep the one relationship type that says how they depend")  # fmt: skip
        seen = time_of(ci.attributes.get("last_seen"))
        days = policy.stale_days(ci.cls, model)
        if seen is not None and now - seen > dt.timedelta(days=days):
            find("stale", "correctness", ci,
                 f"last seen {(now - seen).days} days ago (more than {days})",
                 "check that it still exists (rediscover it) or retire it")  # fmt: skip
        for rule in rules[ci.cls]:
            verdict = _check(rule, ci)
            if verdict is None:
                continue
            tally.checks += 1
            if verdict:
                tally.violations += 1
                find(rule.rule, "compliance", ci, f"{rule.text} {verdict}", rule.fix)
    by_id = {r.id: r for r in records}
    for ident, _cls_name, detail in _duplicates(records, policy, model):
        ci = by_id[ident]
        find("duplicate", "correctness", ci, detail, "merge the duplicates and retire the others")
    for ci in records:
        if ci.id in incorrect:
            tallies[ci.cls].incorrect += 1
    total = _Tally()
    for t in tallies.values():
        for key in ("expected", "filled", "cis", "incorrect", "checks", "violations"):
            setattr(total, key, getattr(total, key) + getattr(t, key))
    by_class = {c: {**t.scores(policy.weights), "cis": t.cis} for c, t in sorted(tallies.items())}
    findings.sort(key=lambda f: (CATEGORIES.index(f["category"]), f["rule"], f["ci"]))
    return HealthResult(total.scores(policy.weights), by_class, findings, total.cis, scope)


@dataclass
class _Edges:
    """The outgoing relationships of the audited CIs, as the rules ask about them."""

    live: dict[str, set[str]] = field(default_factory=dict)  # type → CIs with one to a live CI
    retired: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # CI → (type, target)
    parallel: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # CI → target → types


def _outgoing(engine: TopologyEngine, ids: Collection[str]) -> _Edges:
    """From the engine's arrays, vectorised: per type the CIs with a relationship of it to a live
    CI; the rare relationships to retired CIs and pairs joined by several types, per CI."""
    import numpy as np

    edges = _Edges()
    present = [i for i in ids if i in engine.index]
    if not present:
        return edges
    here, there, typ = engine.out_edges(present)
    alive = engine.alive[there].astype(bool)
    names = engine.id_array()
    for k in np.unique(typ[alive]).tolist():
        chosen = np.unique(here[alive & (typ == k)])
        edges.live[engine.type_names[k]] = set(names[chosen].tolist())
    dead = np.flatnonzero(~alive)
    for h, t, k in zip(names[here[dead]].tolist(), names[there[dead]].tolist(),
                       typ[dead].tolist(), strict=True):  # fmt: skip
        edges.retired.setdefault(h, []).append((engine.type_names[k], t))
    pair = here.astype(np.int64) * len(names) + there
    _, inverse, counts = np.unique(pair, return_inverse=True, return_counts=True)
    multi = np.flatnonzero(counts[inverse] > 1)
    for h, t, k in zip(names[here[multi]].tolist(), names[there[multi]].tolist(),
                       typ[multi].tolist(), strict=True):  # fmt: skip
        edges.parallel.setdefault(h, {}).setdefault(t, []).append(engine.type_names[k])
    return edges


def _per_class(
    model: Any, policy: AuditPolicy, classes: Collection[str]
) -> tuple[dict[str, list[tuple[str, str, str]]], dict[str, list[dict[str, Any]]],
           dict[str, list[ComplianceRule]]]:  # fmt: skip
    """Per class, once: the attributes it should have (name, required/recommended, fix), the
    relationships it needs and the compliance rules that may apply."""
    expected, needs, rules = {}, {}, {}
    for cls in classes:
        attrs = model.classes[cls].attributes.items()
        expected[cls] = [(n, "required" if a.required else "recommended",
                          f"set {n} ({a.description.rstrip('.')})")
                         for n, a in attrs if a.required or a.recommended]  # fmt: skip
        needs[cls] = [n for c, n in policy.needs.items() if model.is_a(cls, c)]
        rules[cls] = [r for r in policy.compliance if not r.cls or model.is_a(cls, r.cls)]
    return expected, needs, rules


def _check(rule: ComplianceRule, ci: CI) -> str | None:
    """None: the rule does not apply; "": it holds; else why it does not."""
    if any(ci.attributes.get(k) != v for k, v in rule.where.items()):
        return None
    problems = []
    for name, expected in rule.expect.items():
        value = ci.attributes.get(name)
        if expected == "present":
            if value in (None, "", []):
                problems.append(f"({name} is not set)")
        elif value is None:
            continue  # a missing value is a completeness finding, not a compliance one
        elif "one_of" in expected and value not in expected["one_of"]:
            problems.append(f"({name} is {value!r}, not one of {expected['one_of']})")
        elif "equals" in expected and value != expected["equals"]:
            problems.append(f"({name} is {value!r}, expected {expected['equals']!r})")
    if not problems and all(
        expected != "present" and ci.attributes.get(name) is None
        for name, expected in rule.expect.items()
    ):
        return None  # nothing to check on this CI
    return " ".join(problems)


def _duplicates(records: list[CI], policy: AuditPolicy, model: Any) -> list[tuple[str, str, str]]:
    """(CI, class, detail) for every CI that shares an identification key with another."""
    found: dict[str, tuple[str, str, str]] = {}
    for rule_cls, rules in policy.identification.items():
        members = [r for r in records if model.is_a(r.cls, rule_cls)]
        for keys in rules:
            groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
            for r in members:
                values = tuple(r.name if k == "name" else r.attributes.get(k) for k in keys)
                if all(v not in (None, "") for v in values):
                    groups[values].append(r.id)
            for values, ids in groups.items():
                if len(ids) < 2:
                    continue
                shown = ", ".join(f"{k}={v!r}" for k, v in zip(keys, values, strict=True))
                for ident in ids:
                    others = ", ".join(i for i in ids if i != ident)
                    found.setdefault(ident, (ident, rule_cls,
                                             f"same {shown} as {others} ({rule_cls} rule)"))  # fmt: skip
    return sorted(found.values())
