"""Baselines, diffs and as-of queries (ISO/IEC 20000-1 9.1, 9.3) over the journal
(:mod:`servicegraph.graph.history`): the CMDB as it was at a seq, a time or a baseline, and what
changed between two such points, attribute by attribute, with who changed it.

* :func:`diff` — CIs created, updated (``before → after`` per attribute), retired, deleted;
  relationships added and removed; each with the journal's actor, time and reason;
* :func:`ci_as_of` — one CI and its relationships as they were (only their own journal entries);
* :func:`health_over_time` — CMDB health at several points, from one replay;
* :func:`open_as_of` — the whole graph as it was, in a temporary store of its own (impact and
  every other analysis then run on it unchanged);
* baselines of any CI set (ids, a class, a service and its dependency closure): a ``baseline``
  record naming its members and the seq it was taken at — the journal holds their state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.history import changes_between, replay, resolve_point, state_at
from servicegraph.graph.records import CI, Batch, JournalFilter, Relationship, StoreDump
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require
from servicegraph.processes.audit.policy import AuditPolicy
from servicegraph.processes.listing import record_of, records_of_class
from servicegraph.processes.times import iso, time_of

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = [
    "ci_as_of",
    "create_baseline",
    "diff",
    "health_over_time",
    "list_baselines",
    "open_as_of",
    "show_baseline",
]

MAX_BASELINE = 50_000  # members named in one baseline record


def diff(
    store: GraphStore,
    start: str | int,
    end: str | int | None = None,
    members: Collection[str] | None = None,
) -> dict[str, Any]:
    """What changed from ``start`` to ``end`` (default: now); ``members`` restricts it to those
    CIs and the relationships touching them."""
    lo = resolve_point(store, start)
    hi = store.head_seq() if end is None else resolve_point(store, end)
    baseline = store.get_ci(str(start)) if not str(start).strip().isdigit() else None
    if members is None and baseline is not None and baseline.cls == "baseline":
        members = list(baseline.attributes.get("ci_ids") or [])  # since a baseline: its CIs
    wanted = set(members) if members is not None else None
    out: dict[str, Any] = {
        "from": {"point": str(start), "seq": lo}, "to": {"point": str(end or "now"), "seq": hi},
        "cis": {"created": [], "updated": [], "retired": [], "deleted": []},
        "relationships": {"added": [], "removed": []},
        "members": len(wanted) if wanted is not None else None,
    }  # fmt: skip
    with paused_gc():
        for entity, item in sorted(changes_between(store, lo, hi).items()):
            before, after = item.before, item.after
            if item.kind == "ci":
                if wanted is not None and entity not in wanted:
                    continue
                _ci_change(out["cis"], entity, before, after, _by(item.entries))
                continue
            rec = after or before
            if rec is None or (wanted is not None and not {rec["source"], rec["target"]} & wanted):
                continue
            key = {"source": rec["source"], "type": rec["type"], "target": rec["target"],
                   "by": _by(item.entries)}  # fmt: skip
            if before is None and after is not None:
                out["relationships"]["added"].append(key)
            elif after is None and before is not None:
                out["relationships"]["removed"].append(key)
    out["counts"] = {
        f"{k}_{n}": len(v) for k in ("cis", "relationships") for n, v in out[k].items()
    }
    return out


def _by(entries: list[tuple[int, str, str, str, str | None]]) -> list[dict[str, Any]]:
    """Who changed an entity, when, how and why: its journal entries in the range."""
    return [{"seq": e[0], "at": e[1], "actor": e[2], "op": e[3], "reason": e[4]} for e in entries]


def _ci_change(
    cis: dict[str, list[Any]],
    ident: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    by: list[dict[str, Any]],
) -> None:
    if before is None and after is None:
        return  # created and deleted in the range
    if before is None:
        assert after is not None
        cis["created"].append(
            {"id": ident, "class": after["class"], "name": after["name"], "by": by}
        )
        return
    if after is None:
        cis["deleted"].append({"id": ident, "class": before["class"], "name": before["name"],
                               "by": by})  # fmt: skip
        return
    changes = _attribute_changes(before, after)
    if not changes:
        return
    row = {"id": ident, "class": after["class"], "changes": changes, "by": by}
    was = (before.get("attributes") or {}).get("status")
    now = (after.get("attributes") or {}).get("status")
    cis["retired" if now == "retired" and was != "retired" else "updated"].append(row)


def _attribute_changes(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    out = [{"attribute": k, "before": before.get(k), "after": after.get(k)}
           for k in ("class", "name") if before.get(k) != after.get(k)]  # fmt: skip
    was, now = before.get("attributes") or {}, after.get("attributes") or {}
    for k in sorted(was.keys() | now.keys()):
        if was.get(k) != now.get(k):
            out.append({"attribute": f"attributes.{k}", "before": was.get(k), "after": now.get(k)})
    return out


def ci_as_of(store: GraphStore, ident: str, point: str | int) -> dict[str, Any]:
    """One CI and its relationships as they were at ``point`` (NOT_FOUND if it did not exist)."""
    seq = resolve_point(store, point)
    entries = store.journal(where=JournalFilter(entity=ident, related=True, until=seq))
    last: dict[str, Any] = {}
    for entry in entries:
        last[entry.entity] = entry.after
    record = last.pop(ident, None)
    if record is None:
        raise NotFound(f"CI (as of seq {seq})", ident)
    rels = [Relationship.from_dict(r) for r in last.values() if r is not None]
    return {"seq": seq, "ci": CI.from_dict(record),
            "relationships": sorted(rels, key=lambda r: (r.source, r.type, r.target))}  # fmt: skip


def export_as_of(store: GraphStore, point: str | int) -> dict[str, Any]:
    """The interchange export as it would have been taken at ``point``."""
    with paused_gc():
        return state_at(store, resolve_point(store, point)).export()


def open_as_of(store: GraphStore, point: str | int, directory: Path) -> SqliteStore:
    """The graph at ``point`` in a new SQLite store under ``directory`` (its journal empty: it
    is a picture, not a history)."""
    seq = resolve_point(store, point)
    snapshot = state_at(store, seq)
    copy = SqliteStore(directory / f"as-of-{seq}.db", store.model)
    copy.load_dump(StoreDump(snapshot.ci_records(), snapshot.relationship_records(), [], []))
    return copy


def health_over_time(
    store: GraphStore, policy: AuditPolicy, points: Sequence[str | int], cls: str | None = None
) -> list[dict[str, Any]]:
    """CMDB health as of each point, from the journal alone (one replay for all points): rows of
    point, seq, at, the scores and the CIs audited. Each point is judged at its own time (what
    was stale then); a seq or baseline is judged at its journal entry's time."""
    from servicegraph.processes.audit.health import snapshot_health

    resolved = []
    for point in points:
        seq = resolve_point(store, point)
        resolved.append((seq, str(point), _time_of_point(store, point, seq)))
    rows: dict[str, dict[str, Any]] = {}
    order = sorted(resolved, key=lambda r: r[0])
    for (seq, point, when), snapshot in zip(order, replay(store, [r[0] for r in order]),
                                            strict=True):  # fmt: skip
        result = snapshot_health(snapshot, store.model, policy, when, cls)
        rows[point] = {"point": point, "seq": seq, "at": iso(when), **result.scores,
                       "cis": result.cis}  # fmt: skip
    return [rows[str(p)] for p in points]


def _time_of_point(store: GraphStore, point: str | int, seq: int) -> dt.datetime:
    text = str(point).strip()
    if not text.isdigit() and store.get_ci(text) is None:
        when = dt.datetime.fromisoformat(text)  # resolve_point read it already
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    entry = store.journal(since=seq - 1, limit=1) if seq > 0 else []
    stamp = time_of(entry[0].at) if entry else None
    return stamp or dt.datetime.now(dt.UTC)


# -- baselines -----------------------------------------------------------------------------------
def create_baseline(
    store: GraphStore,
    engine: TopologyEngine,
    ident: str,
    name: str,
    actor: Actor,
    ids: Collection[str] = (),
    cls: str | None = None,
    service: str | None = None,
) -> CI:
    """A baseline of CIs given by ids, a class (with subclasses) or a service and its dependency
    closure, at the journal's head."""
    require(actor, "write_cmdb")
    chosen = [bool(ids), cls is not None, service is not None]
    if sum(chosen) != 1:
        raise ValidationFailed([Problem("baseline", "selector",
                                        "give exactly one of: ids, a class, a service")])  # fmt: skip
    if ids:
        found = store.get_cis(list(ids))
        missing = [i for i in ids if i not in found]
        if missing:
            raise ValidationFailed([Problem("baseline", i, "no CI with this id") for i in missing])
        members = sorted(set(ids))
        selector: dict[str, Any] = {"ids": len(members)}
    elif cls is not None:
        if cls not in store.model.classes:
            raise ValidationFailed([Problem("baseline", "class", f"unknown class {cls!r}")])
        members = sorted(i for i in engine.ids if i in engine.index
                         and engine.class_of(i) in store.model.concrete(cls))  # fmt: skip
        selector = {"class": cls}
    else:
        assert service is not None
        members = sorted(engine.reach([service], "down", types=engine.impact_type_names))
        selector = {"service": service}
    if len(members) > MAX_BASELINE:
        raise ValidationFailed([Problem("baseline", "members", f"{len(members):,} CIs; at most "
                                        f"{MAX_BASELINE:,} in one baseline: narrow it")])  # fmt: skip
    seq = store.head_seq()
    batch = Batch()
    batch.add_ci(CI(ident, "baseline", name, {
        "taken_at": iso(), "seq": seq, "ci_ids": members, "selector": selector}, version=0))  # fmt: skip
    store.write(batch, actor.user, reason="baseline")
    found_ci = store.get_ci(ident)
    assert found_ci is not None
    return found_ci


def list_baselines(store: GraphStore) -> list[dict[str, Any]]:
    return [{"id": b.id, "name": b.name, "taken_at": b.attributes.get("taken_at"),
             "seq": b.attributes.get("seq"), "cis": len(b.attributes.get("ci_ids") or []),
             "selector": b.attributes.get("selector")}
            for b in records_of_class(store, "baseline")]  # fmt: skip


def show_baseline(store: GraphStore, ident: str) -> dict[str, Any]:
    """The baseline, its members as they were, and what changed in them since (drift)."""
    record = record_of(store, "baseline", ident)
    a = record.attributes
    members = list(a.get("ci_ids") or [])
    seq = int(a.get("seq") or 0)
    state = state_at(store, seq)
    return {
        "id": record.id, "name": record.name, "taken_at": a.get("taken_at"), "seq": seq,
        "selector": a.get("selector"),
        "cis": [c.to_dict(with_version=False) for i in members if (c := state.ci(i)) is not None],
        "drift": diff(store, seq, None, members),
    }  # fmt: skip
