"""Identification and reconciliation of discovery feeds (ISO/IEC 20000-1 9.1), like the
identification and reconciliation engines of the large CMDBs, with the rules as data.

A *feed* is what a discovery tool exports, with ids of its own: ``{"records": [{"id", "class",
"name", "attributes"}]}`` (or the list alone). Each record is **identified** by the identification
rules of its class and its ancestors (most specific first, each rule in order): the first rule
whose attributes the record has and that matches exactly one live CI matches it; two or more is
*ambiguous* (reported, never guessed); none is *new*. The report lists ``matched``, ``new``,
``missing`` (live CIs of the feed's classes the feed lacks), ``drift`` (attribute by attribute)
and ``ambiguous``.

**Reconciliation** (``apply``) writes what the policy's ``reconciliation`` rules allow the source:
the attributes it is authoritative for (per class, inherited), unless the CI was last set by a
source of higher priority that is authoritative for them too; new CIs of the classes it may
create; ``last_seen`` and ``source`` on what it saw — one journaled transaction, the source as
actor. A dry run writes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from typing import Any

from servicegraph.errors import Problem, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Batch
from servicegraph.graph.store import GraphStore
from servicegraph.processes.audit.policy import AuditPolicy
from servicegraph.processes.times import iso

__all__ = ["reconcile"]

_ID_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@paused_gc()  # a 100k-record feed: an identification and a report row per record
def reconcile(
    store: GraphStore,
    policy: AuditPolicy,
    feed: Any,
    source: str,
    apply: bool = False,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The identification report of ``feed`` from ``source``; with ``apply``, also the writes
    the rules allow (``applied``)."""
    model = store.model
    rules = policy.reconciliation.get(source)
    if rules is None:
        known = ", ".join(sorted(policy.reconciliation)) or "none"
        raise ValidationFailed([Problem("reconcile", "source", f"no reconciliation rules for "
                                        f"{source!r}; known sources: {known}")], wrote=False)  # fmt: skip
    records = _records(feed, model)
    classes = {r["class"] for r in records}
    live = [ci for ci in store.iter_cis()
            if ci.status != "retired" and model.is_a(ci.cls, "ci")]  # fmt: skip
    index = _index(live, policy, model)
    report: dict[str, Any] = {"source": source, "records": len(records), "matched": [],
                              "new": [], "missing": [], "drift": [], "ambiguous": []}  # fmt: skip
    seen: set[str] = set()
    matched: list[tuple[dict[str, Any], CI]] = []
    by_id = {ci.id: ci for ci in live}
    for record in records:
        hit, rule, candidates = _identify(record, policy, model, index)
        if candidates and len(candidates) > 1:
            report["ambiguous"].append({"feed_id": record["id"], "rule": rule,
                                        "cis": sorted(candidates)})  # fmt: skip
            continue
        if hit is None:
            report["new"].append(record["id"])
            continue
        ci = by_id[hit]
        seen.add(hit)
        matched.append((record, ci))
        report["matched"].append({"feed_id": record["id"], "ci": hit, "rule": rule})
        for attr, value in _observed(record).items():
            current = ci.name if attr == "name" else ci.attributes.get(attr)
            if value != current:
                report["drift"].append({"ci": hit, "attribute": attr, "cmdb": current,
                                        "discovered": value})  # fmt: skip
    report["missing"] = sorted(ci.id for ci in live
                               if ci.cls in classes and ci.id not in seen)  # fmt: skip
    report["counts"] = {k: len(v) for k, v in report.items() if isinstance(v, list)}
    if apply:
        report["applied"] = _apply(store, policy, source, rules, matched, records, report,
                                   now or dt.datetime.now(dt.UTC))  # fmt: skip
    return report


def _records(feed: Any, model: Model) -> list[dict[str, Any]]:
    items = feed.get("records") if isinstance(feed, dict) else feed
    if not isinstance(items, list):
        raise ValidationFailed([Problem("feed", "records", "a list of {id, class, name, "
                                        "attributes} (or {\"records\": [...]})")], wrote=False)  # fmt: skip
    problems, out, ids = [], [], set()
    for n, item in enumerate(items):
        where = f"records[{n}]"
        if not isinstance(item, dict):
            problems.append(Problem(where, "record", "an object"))
            continue
        if not isinstance(item.get("id"), str) or not item["id"]:
            problems.append(Problem(where, "id", "the discovery tool's id (text)"))
        elif item["id"] in ids:
            problems.append(Problem(where, "id", f"{item['id']!r} appears twice"))
        cls = str(item.get("class"))
        if cls not in model.classes or not model.is_a(cls, "ci") or model.classes[cls].abstract:
            problems.append(Problem(where, "class", f"{cls!r} is not a concrete CI class"))
        if not isinstance(item.get("attributes", {}), dict):
            problems.append(Problem(where, "attributes", "an object"))
        if item.get("name") is not None and not isinstance(item["name"], str):
            problems.append(Problem(where, "name", "text"))
        if isinstance(item.get("id"), str):
            ids.add(item["id"])
        out.append(item)
    if problems:
        raise ValidationFailed(problems, wrote=False)
    return out


def _observed(record: dict[str, Any]) -> dict[str, Any]:
    values = dict(record.get("attributes") or {})
    if record.get("name"):
        values["name"] = record["name"]
    return values


def _rules_for(cls: str, policy: AuditPolicy, model: Model) -> list[tuple[str, list[str]]]:
    """(rule class, keys) for a class: its own rules first, then its ancestors'."""
    return [(a, keys) for a in model.classes[cls].ancestors
            for keys in policy.identification.get(a, [])]  # fmt: skip


def _index(
    live: list[CI], policy: AuditPolicy, model: Model
) -> dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], list[str]]]:
    index: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], list[str]]] = {}
    for rule_cls, rules in policy.identification.items():
        for keys in rules:
            groups: dict[tuple[Any, ...], list[str]] = defaultdict(list)
            for ci in live:
                if model.is_a(ci.cls, rule_cls):
                    values = tuple(ci.name if k == "name" else ci.attributes.get(k) for k in keys)
                    if all(v not in (None, "") for v in values):
                        groups[values].append(ci.id)
            index[(rule_cls, tuple(keys))] = groups
    return index


def _identify(
    record: dict[str, Any],
    policy: AuditPolicy,
    model: Model,
    index: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], list[str]]],
) -> tuple[str | None, str | None, list[str]]:
    observed = _observed(record)
    for rule_cls, keys in _rules_for(record["class"], policy, model):
        values = tuple(observed.get(k) for k in keys)
        if any(v in (None, "") for v in values):
            continue
        found = index.get((rule_cls, tuple(keys)), {}).get(values, [])
        rule = f"{rule_cls}: {' + '.join(keys)}"
        if len(found) == 1:
            return found[0], rule, found
        if len(found) > 1:
            return None, rule, found
    return None, None, []


def _allowed(rules: dict[str, Any], cls: str, model: Model) -> set[str]:
    out: set[str] = set()
    for ancestor in model.classes[cls].ancestors:
        out |= set(rules.get("attributes", {}).get(ancestor, []))
    return out


def _apply(
    store: GraphStore,
    policy: AuditPolicy,
    source: str,
    rules: dict[str, Any],
    matched: list[tuple[dict[str, Any], CI]],
    records: list[dict[str, Any]],
    report: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    model = store.model
    stamp = iso(now)
    priority = float(rules.get("priority", 0))
    batch, updated, kept, created = Batch(), [], [], []
    for record, ci in matched:
        allowed = _allowed(rules, ci.cls, model)
        owner = ci.attributes.get("source")
        owner_rules = policy.reconciliation.get(str(owner)) if owner and owner != source else None
        stronger = (set() if owner_rules is None or float(owner_rules.get("priority", 0)) <= priority
                    else _allowed(owner_rules, ci.cls, model))  # fmt: skip
        attrs, name = dict(ci.attributes), ci.name
        for attr, value in _observed(record).items():
            current = ci.name if attr == "name" else ci.attributes.get(attr)
            if value == current:
                continue
            if attr not in allowed:
                continue
            if attr in stronger:
                kept.append({"ci": ci.id, "attribute": attr, "by": owner})
                continue
            if attr == "name":
                name = value
            else:
                attrs[attr] = value
            updated.append({"ci": ci.id, "attribute": attr, "from": current, "to": value})
        attrs.update(last_seen=stamp, source=source if not stronger else owner)
        batch.add_ci(CI(ci.id, ci.cls, name, attrs, ci.version), f"matched[{ci.id}]")
    creatable = set(rules.get("create", []))
    new = set(report["new"])
    fresh = {r["id"]: f"{source}-{_ID_SAFE.sub('-', r['id'])}".lower() for r in records
             if r["id"] in new and any(model.is_a(r["class"], c) for c in creatable)}  # fmt: skip
    taken = {m["ci"] for m in report["matched"]} | set(store.get_cis(list(fresh.values())))
    skipped = []
    for record in records:
        if record["id"] not in new:
            continue
        ident = fresh.get(record["id"])
        if ident is None:
            skipped.append({"feed_id": record["id"], "why": f"{source} may not create a "
                            f"{record['class']} (reconciliation.{source}.create)"})  # fmt: skip
            continue
        if ident in taken:  # an existing CI, or an earlier feed id that reads alike
            skipped.append({"feed_id": record["id"], "why": f"the id {ident} is taken"})
            continue
        taken.add(ident)
        attrs = {k: v for k, v in (record.get("attributes") or {}).items()}
        attrs.update(last_seen=stamp, source=source, status="active")
        batch.add_ci(CI(ident, record["class"], record.get("name") or record["id"], attrs),
                     f"new[{record['id']}]")  # fmt: skip
        created.append({"feed_id": record["id"], "ci": ident})
    if batch.cis:
        store.write(batch, source, reason=f"reconciliation of a {source} feed")
    return {"updated": updated, "kept": kept, "created": created, "not_created": skipped,
            "seen": len(matched)}  # fmt: skip
