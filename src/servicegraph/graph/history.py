"""Time travel over the journal: the graph as it was at any journal seq or time, and what changed
between two points, rebuilt from the one journal every write appends to (no other history).

* a **point** is a journal seq (``1234``), an ISO 8601 time (the last entry at or before it) or the
  id of a ``baseline`` record (the seq it was taken at) — :func:`resolve_point`;
* :func:`state_at` replays the journal up to a seq: each entity's last entry at or before it is
  the entity as it was (absent when that entry deleted it);
* :func:`replay` gives the graph at several seqs in one pass (a health trend);
* :func:`changes_between` reads only the entries between two seqs: an entity's state before is the
  ``before`` of its first entry in the range, after is the ``after`` of its last.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.records import CI, JournalEntry, RangeChange, Relationship
from servicegraph.graph.store import GraphStore

__all__ = ["Snapshot", "changes_between", "replay", "resolve_point", "state_at"]


@dataclass
class Snapshot:
    """The graph at a seq, as the journal's records (plain dicts: CIs by id, relationships by
    entity key); objects are built only when asked for, so a 500k-record picture stays cheap."""

    seq: int
    cis: dict[str, dict[str, Any]] = field(default_factory=dict)
    relationships: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ci(self, ident: str) -> CI | None:
        record = self.cis.get(ident)
        return None if record is None else CI.from_dict(record)

    def ci_records(self) -> list[CI]:
        return [CI.from_dict(r) for r in self.cis.values()]

    def relationship_records(self) -> list[Relationship]:
        return [Relationship.from_dict(r) for r in self.relationships.values()]

    def export(self) -> dict[str, list[dict[str, Any]]]:
        """The interchange shape, ordered and keyed as a live export is."""
        rels = sorted(self.relationships.values(),
                      key=lambda r: (r["source"], r["type"], r["target"]))  # fmt: skip
        return {"cis": [_ci_export(self.cis[i]) for i in sorted(self.cis)],
                "relationships": [_rel_export(r) for r in rels]}  # fmt: skip


def _rel_export(r: dict[str, Any]) -> dict[str, Any]:
    return {"source": r["source"], "type": r["type"], "target": r["target"],
            "attributes": r.get("attributes") or {}}  # fmt: skip


def _ci_export(r: dict[str, Any]) -> dict[str, Any]:
    return {"id": r["id"], "class": r["class"], "name": r["name"],
            "attributes": r.get("attributes") or {}}  # fmt: skip


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
    with paused_gc():
        for entry in store.latest_entries(seq):
            _apply(snapshot, entry)
    return snapshot


def replay(store: GraphStore, seqs: list[int]) -> Iterator[Snapshot]:
    """The graph at each of ``seqs`` (ascending), in one pass: the first picture is replayed, each
    next one advanced by what changed in between (a monthly trend over a year costs one replay
    and the year's changed records, not twelve replays). The same object is advanced: use each
    picture before asking for the next."""
    if list(seqs) != sorted(seqs):
        raise ValueError("replay: seqs in ascending order")
    snapshot: Snapshot | None = None
    for seq in seqs:
        if snapshot is None:
            snapshot = state_at(store, seq)
        elif seq > snapshot.seq:
            with paused_gc():
                for entity, change in store.range_changes(snapshot.seq, seq).items():
                    table = snapshot.cis if change.kind == "ci" else snapshot.relationships
                    if change.after is None:
                        table.pop(entity, None)
                    else:
                        table[entity] = change.after
            snapshot.seq = seq
        yield snapshot


def _apply(snapshot: Snapshot, entry: JournalEntry) -> None:
    if entry.op.endswith("_ci"):
        if entry.after is None:
            snapshot.cis.pop(entry.entity, None)
        else:
            snapshot.cis[entry.entity] = entry.after
    elif entry.op.endswith("_relationship"):
        if entry.after is None:
            snapshot.relationships.pop(entry.entity, None)
        else:
            snapshot.relationships[entry.entity] = entry.after


def changes_between(store: GraphStore, start: int, end: int) -> dict[str, RangeChange]:
    """Per entity changed in (start, end]: its record before and after (None: absent), and the
    entries that changed it (who, when, how)."""
    if end < start:
        raise ValidationFailed(
            [Problem("diff", "to", f"seq {end} is before seq {start}; swap --from and --to")],
            wrote=False,
        )
    with paused_gc():
        return store.range_changes(start, end)
