"""A planned write cut into slices, and the plan that undoes what some slices wrote.

Store-neutral pieces of the bulk write (:meth:`GraphStore.bulk_write`). A store whose transactions
must stay small (Neo4j keeps a transaction's state in its heap: one transaction of a million CIs
needs more than 8 GB) checks and plans the whole batch first, then writes the plan a slice at a time,
each slice one transaction with its journal entries. When a slice fails, what the earlier slices
wrote is undone from the journal: every entity they touched gets back the record it had before
(:func:`undo_plan`), journaled as ordinary entries, so seqs are never reused and every process that
already read the slices' entries sees the undo as later entries.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from servicegraph.graph.records import CI, RangeChange, Relationship
from servicegraph.graph.store import Mutation, Plan

__all__ = ["SLICE", "slices", "undo_plan"]

SLICE = 10_000  # mutations per transaction: ~0.5 s and a few MB of Neo4j heap each


def slices(plan: Plan, size: int = SLICE) -> Iterator[Plan]:
    """``plan``'s mutations, in order, as plans of at most ``size`` mutations each.

    A plan lists CI upserts before relationship upserts and relationship deletes before CI
    deletes, so every slice finds the CIs its relationships join already written."""
    for start in range(0, len(plan.mutations), size):
        part = Plan(mutations=plan.mutations[start : start + size])
        for m in part.mutations:
            _place(part, m)
        yield part


def _place(plan: Plan, m: Mutation) -> None:
    record = m.record
    if m.op == "delete_ci":
        assert isinstance(record, str)
        plan.ci_deletes.append(record)
    elif m.op == "delete_relationship":
        assert isinstance(record, tuple)
        plan.rel_deletes.append(record)
    elif isinstance(record, CI):
        plan.ci_upserts.append(record)
    elif isinstance(record, Relationship):
        plan.rel_upserts.append(record)
    else:
        raise ValueError(f"mutation {m.op} {m.entity} carries no record to write")


def undo_plan(changes: Mapping[str, RangeChange]) -> Plan:
    """The plan that gives every entity in ``changes`` (the journal range of an interrupted bulk
    write, :meth:`GraphStore.range_changes`) the record it had before the range.

    A restored CI gets the next version, not its old one: clients holding the version they read
    during the write are refused (:class:`StaleVersion`), as after any change. Mutations are ordered
    so that any cut into slices is valid: relationships go first, then the CIs the write created,
    then restored CIs, then restored relationships (their ends exist by then)."""
    rel_deletes: list[Mutation] = []
    ci_deletes: list[Mutation] = []
    ci_restores: list[Mutation] = []
    rel_restores: list[Mutation] = []
    for entity, change in changes.items():
        before, after = change.before, change.after
        if before == after:
            continue  # nothing, or a record that came back to what it was
        if change.kind == "ci":
            if before is None:
                assert after is not None
                ci_deletes.append(Mutation("delete_ci", after, entity))
                continue
            version = (after or before)["version"] + 1
            ci = CI.from_dict({**before, "version": version})
            op = "create_ci" if after is None else "update_ci"
            ci_restores.append(Mutation(op, after, ci))
        elif before is None:
            assert after is not None
            rel = Relationship.from_dict(after)
            rel_deletes.append(Mutation("delete_relationship", after, rel.key))
        else:
            rel = Relationship.from_dict(before)
            op = "create_relationship" if after is None else "update_relationship"
            rel_restores.append(Mutation(op, after, rel))
    return Plan(mutations=rel_deletes + ci_deletes + ci_restores + rel_restores)
