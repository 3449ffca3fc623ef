"""Time travel over the journal: the graph as it was at any journal seq or time, and what changed
between two points, rebuilt from the one journal every write appends to (no other history).

* a **point** is a journal seq (``1234``), an ISO 8601 time (the last entry at or before it) or the
  id of a ``baseline`` record (the seq it was taken at) — :func:`resolve_point`;
* :func:`state_at` replays the journal up to a seq: each entity's last entry at or before it is
  the entity as it was (absent when that entry deleted it);
* :func:`changes_between` reads only the entries between two seqs: an entity's state before is the
  ``before`` of its first entry in the range, after is the ``after`` of its last.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph.records import CI, JournalEntry, JournalFilter, Relationship
from servicegraph.graph.store import GraphStore

__all__ = ["Snapshot", "changes_between", "resolve_point", "state_at"]


@dataclass
class Snapshot:
    """The graph at a seq: CIs by id, relationships by entity key."""

    seq: int
    cis: dict[str, CI] = field(default_factory=dict)
    relationships: dict[str, Relationship] = field(default_factory=dict)

    def export(self) -> dict[str, list[dict[str, Any]]]:
        """The interchange shape, ordered as a live export is."""
        rels = sorted(self.relationships.values(), key=lambda r: (r.source, r.type, r.target))
        return {
            "cis": [self.cis[i].to_dict(with_version=False) for i in sorted(self.cis)],
            "relationships": [r.to_dict() for r in rels],
        }


def resolve_point(store: GraphStore, point: str | int) -> int:
    """A journal seq from a seq, an ISO 8601 time or a baseline id (named in the error if none)."""
    head = store.head_seq()
    if isinstance(point, int) or (isinstance(point, str) and point.strip().isdigit()):
        seq = int(point)
        if not 0 <= seq <= head:
            raise ValidationFailed(
                [Problem("point", str(point), f"a journal seq between 0 and {head}")], wrote=False
            )
        return seq
    text = str(point).strip()
    record = store.get_ci(text)
    if record is not None:
        if record.cls != "baseline" or not isinstance(record.attributes.get("seq"), int):
            raise ValidationFailed(
                [Problem("point", text, f"a {record.cls}, not a baseline, seq or time")],
                wrote=False,
            )
        return int(record.attributes["seq"])
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise NotFound("baseline, journal seq or ISO 8601 time", text) from None
    when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    stamp = when.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return store.seq_at(stamp)


def state_at(store: GraphStore, seq: int) -> Snapshot:
    """Every CI and relationship as it was after journal entry ``seq``."""
    snapshot = Snapshot(seq)
    for entry in store.latest_entries(seq):
        _apply(snapshot, entry)
    return snapshot


def _apply(snapshot: Snapshot, entry: JournalEntry) -> None:
    if entry.op.endswith("_ci"):
        if entry.after is None:
            snapshot.cis.pop(entry.entity, None)
        else:
            snapshot.cis[entry.entity] = CI.from_dict(entry.after)
    elif entry.op.endswith("_relationship"):
        if entry.after is None:
            snapshot.relationships.pop(entry.entity, None)
        else:
            snapshot.relationships[entry.entity] = Relationship.from_dict(entry.after)


def changes_between(store: GraphStore, start: int, end: int) -> dict[str, dict[str, Any]]:
    """Per entity changed in (start, end]: its record before and after (None: absent), and who
    changed it, when and how (``changes``: at, actor, op, reason)."""
    if end < start:
        raise ValidationFailed(
            [Problem("diff", "to", f"seq {end} is before seq {start}; swap --from and --to")],
            wrote=False,
        )
    out: dict[str, dict[str, Any]] = {}
    for entry in store.journal(where=JournalFilter(since=start, until=end)):
        if not entry.op.endswith(("_ci", "_relationship")):
            continue
        item = out.setdefault(entry.entity, {
            "kind": "ci" if entry.op.endswith("_ci") else "relationship",
            "before": entry.before, "changes": [],
        })  # fmt: skip
        item["after"] = entry.after
        item["changes"].append({"seq": entry.seq, "at": entry.at, "actor": entry.actor,
                                "op": entry.op, "reason": entry.reason})  # fmt: skip
    return out
