"""Configuration management (9.1) writes that other processes depend on.

A CI that an approved, scheduled or implementing RFC targets may not be retired or deleted: the
RFC would be stranded (approved work on something that is gone). The write is refused naming the
RFCs, unless an admin forces it with a reason, which is journaled with every entry of the write.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from servicegraph.errors import Forbidden, NotFound, Problem, RuleViolation, ValidationFailed
from servicegraph.graph.records import CI, Batch, Relationship, WriteResult
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, require

__all__ = [
    "ACTIVE_CHANGE_STATES",
    "active_changes_on",
    "check_stranding",
    "guarded_write",
    "undelete",
]

ACTIVE_CHANGE_STATES = frozenset({"approved", "scheduled", "implementing"})


def active_changes_on(store: GraphStore, ids: Collection[str]) -> dict[str, list[str]]:
    """CI id -> the active RFCs (approved, scheduled, implementing) that target it."""
    wanted = set(ids)
    pairs = [
        (r.source, r.target)
        for r in store.relationships_of(sorted(wanted))
        if r.type == "TARGETS" and r.target in wanted
    ]
    changes = store.get_cis({c for c, _ in pairs})
    held: dict[str, list[str]] = {}
    for change, target in sorted(pairs):
        record = changes.get(change)
        if record is not None and record.attributes.get("state") in ACTIVE_CHANGE_STATES:
            held.setdefault(target, []).append(change)
    return held


def guarded_write(
    store: GraphStore,
    batch: Batch,
    actor: Actor,
    force: bool = False,
    reason: str | None = None,
) -> WriteResult:
    """Write ``batch`` unless it retires or deletes CIs that active RFCs target; ``force`` (admin
    only, with a ``reason``) writes it anyway and journals the reason."""
    check_stranding(store, batch, actor, force, reason)
    return store.write(batch, actor.user, reason=reason if force else None)


def check_stranding(
    store: GraphStore,
    batch: Batch,
    actor: Actor,
    force: bool = False,
    reason: str | None = None,
) -> None:
    """Raise unless ``batch`` may be written (see :func:`guarded_write`)."""
    require(actor, "write_cmdb")
    if force and not (reason or "").strip():
        raise ValidationFailed(
            [Problem("arguments", "reason", "a forced write needs a reason (it is journaled)")],
            wrote=False,
        )
    leaving = [*batch.retire, *batch.delete_cis]
    leaving += [
        ci.id
        for ci in batch.cis
        if isinstance(ci.attributes, dict) and ci.attributes.get("status") == "retired"
    ]
    held = active_changes_on(store, [i for i in leaving if isinstance(i, str)])
    if held and not force:
        listed = "; ".join(f"{ci} by {', '.join(rfcs)}" for ci, rfcs in sorted(held.items()))
        raise RuleViolation(
            "ci_under_active_change",
            f"active RFCs target what this would retire or delete ({listed}); implement or fail "
            "those RFCs first, or have an admin force it with a reason",
        )
    if held and actor.role != "admin":
        raise Forbidden(f"{actor.user} ({actor.role}) may not force a write; only admin may")


def undelete(store: GraphStore, ci_id: str, actor: Actor) -> dict[str, Any]:
    """Rebuild a deleted CI and the relationships deleted with it from the journal's before-images.

    Relationships whose other end no longer exists are listed as skipped. The rebuilt CI starts a
    new version line (1); the journal keeps the whole history, and the write's reason names the
    deletion it undoes."""
    require(actor, "write_cmdb")
    if store.get_ci(ci_id) is not None:
        raise RuleViolation("undelete_needs_deleted", f"{ci_id} exists; nothing to undelete")
    deletions = [e for e in store.journal(entity=ci_id) if e.op == "delete_ci"]
    if not deletions or deletions[-1].before is None:
        raise NotFound("deleted CI", ci_id)
    deleted = deletions[-1]
    before = deleted.before or {}
    ci = CI.from_dict({**before, "version": None})
    # The relationships went in the same write: entries just before it, same time and actor.
    rels: list[Relationship] = []
    since = deleted.seq
    while since > 0:
        start = max(0, since - 1_000)
        chunk = [e for e in store.journal(since=start, limit=since - start) if e.seq < since]
        for entry in reversed(chunk):
            if entry.at != deleted.at or entry.actor != deleted.actor:
                since = 0
                break
            if entry.op == "delete_relationship" and entry.before is not None:
                rel = Relationship.from_dict(entry.before)
                if ci_id in (rel.source, rel.target):
                    rels.append(rel)
        else:
            since = start
    others = {r.target if r.source == ci_id else r.source for r in rels}
    present = store.get_cis(others)
    kept = [r for r in rels if (r.target if r.source == ci_id else r.source) in present]
    skipped = [r.entity for r in rels if r not in kept]
    batch = Batch()
    batch.add_ci(ci, "undelete")
    for rel in kept:
        batch.add_relationship(rel, f"undelete[{rel.entity}]")
    result = store.write(
        batch, actor.user, reason=f"undelete of {ci_id} (deleted at seq {deleted.seq})"
    )
    return {
        "ci": ci_id,
        "deleted_at_seq": deleted.seq,
        "relationships": [r.entity for r in kept],
        "skipped": skipped,
        "first_seq": result.first_seq,
    }
