"""The audit policy as data: ``policy.yaml`` (shipped) and optionally a user's file named by
``SERVICEGRAPH_AUDIT_POLICY`` whose top-level keys replace the shipped ones; checked on load."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from servicegraph.errors import ModelError
from servicegraph.graph.model import Model
from servicegraph.processes.policy_files import read_policy

__all__ = ["AuditPolicy", "ComplianceRule", "load_audit_policy"]


@dataclass(frozen=True)
class ComplianceRule:
    rule: str
    text: str
    cls: str | None
    where: dict[str, Any]
    expect: dict[str, Any]
    fix: str


@dataclass(frozen=True)
class AuditPolicy:
    needs: dict[str, dict[str, Any]]
    stale_after_days: float
    stale_after_days_by_class: dict[str, float]
    identification: dict[str, list[list[str]]]
    compliance: tuple[ComplianceRule, ...]
    weights: dict[str, float]
    source: str
    # per discovery source: priority, attributes it is authoritative for (per class), classes
    # whose new CIs it may create
    reconciliation: dict[str, dict[str, Any]] = field(default_factory=dict)

    def stale_days(self, cls: str, model: Model) -> float:
        """The class's own threshold, else its nearest ancestor's, else the default."""
        for ancestor in model.classes[cls].ancestors:
            if ancestor in self.stale_after_days_by_class:
                return self.stale_after_days_by_class[ancestor]
        return self.stale_after_days


def load_audit_policy(model: Model, path: str | Path | None = None) -> AuditPolicy:
    raw, where = read_policy("servicegraph.processes.audit", "policy.yaml",
                             "SERVICEGRAPH_AUDIT_POLICY", "audit policy", path)  # fmt: skip
    problems = []
    classes, types = model.classes, model.relationship_types
    for cls, need in (raw.get("needs") or {}).items():
        if cls not in classes:
            problems.append(f"needs: unknown class {cls!r}")
        if not isinstance(need, dict) or not need.get("types") or not need.get("fix"):
            problems.append(f"needs.{cls}: give types (a list) and fix (how to repair)")
        else:
            problems += [f"needs.{cls}: unknown relationship type {t!r}"
                         for t in need["types"] if t not in types]  # fmt: skip
    for cls, rules in (raw.get("identification") or {}).items():
        if cls not in classes:
            problems.append(f"identification: unknown class {cls!r}")
        elif not isinstance(rules, list) or not all(isinstance(r, list) and r for r in rules):
            problems.append(f"identification.{cls}: a list of attribute lists")
        else:
            known = set(classes[cls].attributes) | {"name"}
            problems += [f"identification.{cls}: {cls} has no attribute {a!r}"
                         for r in rules for a in r if a not in known]  # fmt: skip
    for cls in raw.get("stale_after_days_by_class") or {}:
        if cls not in classes:
            problems.append(f"stale_after_days_by_class: unknown class {cls!r}")
    rules = []
    for n, body in enumerate(raw.get("compliance") or []):
        spot = f"compliance[{n}]"
        if not isinstance(body, dict) or not body.get("rule") or not body.get("text"):
            problems.append(f"{spot}: give rule (a name), text and expect")
            continue
        if body.get("class") and body["class"] not in classes:
            problems.append(f"{spot}: unknown class {body['class']!r}")
        expect = body.get("expect") or {}
        for attr, cond in expect.items():
            ok = cond == "present" or (isinstance(cond, dict) and len(cond) == 1
                                        and next(iter(cond)) in ("one_of", "equals"))  # fmt: skip
            if not ok:
                problems.append(f"{spot}.expect.{attr}: present, {{one_of: [...]}} or "
                                "{equals: value}")  # fmt: skip
        if not expect:
            problems.append(f"{spot}: expect at least one attribute")
        rules.append(ComplianceRule(str(body["rule"]), str(body["text"]), body.get("class"),
                                    dict(body.get("where") or {}), dict(expect),
                                    str(body.get("fix") or body["text"])))  # fmt: skip
    for src, body in (raw.get("reconciliation") or {}).items():
        spot = f"reconciliation.{src}"
        if not isinstance(body, dict) or not set(body) <= {"priority", "attributes", "create"}:
            problems.append(f"{spot}: priority, attributes ({{class: [attribute, ...]}}), create")
            continue
        for cls, attrs in (body.get("attributes") or {}).items():
            if cls not in classes:
                problems.append(f"{spot}.attributes: unknown class {cls!r}")
                continue
            known = set(classes[cls].attributes) | {"name"}
            problems += [f"{spot}.attributes.{cls}: {cls} has no attribute {a!r}"
                         for a in attrs or [] if a not in known]  # fmt: skip
        problems += [f"{spot}.create: unknown class {c!r}"
                     for c in body.get("create") or [] if c not in classes]  # fmt: skip
    if problems:
        raise ModelError(problems, where)
    return AuditPolicy(
        needs={k: dict(v) for k, v in (raw.get("needs") or {}).items()},
        stale_after_days=float(raw.get("stale_after_days", 60)),
        stale_after_days_by_class={
            k: float(v) for k, v in (raw.get("stale_after_days_by_class") or {}).items()
        },
        identification={
            k: [list(r) for r in v] for k, v in (raw.get("identification") or {}).items()
        },
        compliance=tuple(rules),
        weights={k: float(v) for k, v in (raw.get("weights") or {}).items()},
        source=where,
        reconciliation={k: dict(v) for k, v in (raw.get("reconciliation") or {}).items()},
    )
