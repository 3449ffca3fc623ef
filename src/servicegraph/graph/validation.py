"""Validation of a write batch against the model and the graph, collecting every problem at once.

Two passes: :func:`check_batch` needs only the model (classes, attribute types, duplicates);
:func:`check_against_store` also needs the stored CIs the batch touches (dangling relationships,
endpoint classes, class changes). Stores run the second pass inside the write transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from servicegraph.errors import Problem
from servicegraph.graph.model import AttributeSpec, Model
from servicegraph.graph.records import CI, Batch, Places, is_text_key
from servicegraph.graph.values import MAX_NAME_LENGTH, text_problem

if TYPE_CHECKING:
    from servicegraph.graph.packed_keys import PackedKeys

__all__ = [
    "Earlier",
    "check_against_store",
    "check_attributes",
    "check_batch",
    "check_name",
    "check_required",
    "check_write_names",
]

MAX_ID_LENGTH = 200


class Earlier:
    """What the earlier chunks of a streamed write held, for the problems across chunks: the
    ids checked and fine (each with a number of its own), the first of each CI id (its number
    among the write's CIs, spelled out by ``places`` only for a duplicate), each relationship
    key (as one integer of those numbers, :class:`PackedKeys`)."""

    def __init__(self) -> None:
        self.good: dict[str, int] = {}
        self.ids: dict[str, int] = {}
        self.places = Places()
        self.keys: PackedKeys | None = None  # made by the first streamed chunk


def check_batch(model: Model, batch: Batch, earlier: Earlier | None = None) -> list[Problem]:
    """Problems visible from the batch and the model alone; with ``earlier``, also duplicates
    of what it holds (to which the batch is then added)."""
    problems: list[Problem] = []
    streamed, earlier = earlier is not None, earlier or Earlier()
    # the first number of each id and relationship key, not its place: places are spelled out
    # only for problems (an import names millions of items)
    good, seen, base = earlier.good, earlier.ids, len(earlier.places)
    places = earlier.places
    classes, replace, ci_where = model.classes, batch.replace, batch.ci_where
    for index, (ci, where) in enumerate(zip(batch.cis, ci_where, strict=True)):
        ident = ci.id
        found = _check_id(where, "id", ident)
        if found:
            problems.extend(found)
        else:
            good.setdefault(ident, len(good))
        if isinstance(ident, str):
            if ident in seen:
                first = seen[ident]
                at = places[first] if first < base else ci_where[first - base]
                problems.append(Problem(where, "id", f"duplicate id {ident!r} (also at {at})"))
            else:
                seen[ident] = base + index
        problems.extend(_check_class(model, where, ci.cls))
        problems.extend(check_name(where, "name", ci.name))
        spec_of = classes.get(ci.cls) if isinstance(ci.cls, str) else None
        if spec_of is not None and not spec_of.abstract:
            problems.extend(
                check_attributes(where, ci.attributes, spec_of.attributes, ci.cls, replace)
            )
        if ci.version is not None and (
            isinstance(ci.version, bool) or not isinstance(ci.version, int)
        ):
            problems.append(Problem(where, "version", "expected an integer (the version you read)"))
    # types whose relationships may come without attributes (none is required)
    bare_ok = {
        name: not (replace and any(a.required for a in spec.attributes.values()))
        for name, spec in model.relationship_types.items()
    }
    seen_rels: dict[tuple[str, str, str], int] = {}
    rel_where = batch.rel_where
    # keys of earlier chunks: only those whose ends are known already can be among them
    keys = held = None
    if streamed:  # numpy only here: quick CLI commands do not load it
        from servicegraph.graph.packed_keys import UNKNOWN, PackedKeys, packed

        types = {name: i for i, name in enumerate(model.relationship_types)}
        rels = batch.relationships
        if earlier.keys is None:
            earlier.keys = PackedKeys()
        keys = packed(types, rels, good)
        held = earlier.keys.contains(keys) & (keys != UNKNOWN)
    again = None if held is None or not held.any() else held.tolist()
    for index, rel in enumerate(batch.relationships):  # places are formatted for problems only
        for end, ident in (("source", rel.source), ("target", rel.target)):
            if not (isinstance(ident, str) and ident in good):
                found = _check_id(rel_where[index], end, ident)
                problems.extend(found)
                if not found:
                    good.setdefault(ident, len(good))
        rel_type, attributes = rel.type, rel.attributes
        spec = model.relationship_types.get(rel_type) if isinstance(rel_type, str) else None
        if spec is None:
            known = ", ".join(sorted(model.relationship_types))
            problems.append(
                Problem(
                    rel_where[index],
                    "type",
                    f"unknown relationship type {rel_type!r}; known: {known}",
                )
            )
        elif not (type(attributes) is dict and not attributes and bare_ok[rel_type]):
            problems.extend(
                check_attributes(rel_where[index], attributes, spec.attributes, rel_type, replace)
            )
        if rel.source == rel.target:
            problems.append(
                Problem(rel_where[index], "target", "a relationship cannot join a CI to itself")
            )
        key = rel.key
        if not is_text_key(key):
            continue  # reported above; not a key to compare
        if key in seen_rels:
            problems.append(
                Problem(
                    rel_where[index],
                    "type",
                    f"duplicate relationship (also at {rel_where[seen_rels[key]]})",
                )
            )
        elif again is not None and again[index]:
            problems.append(
                Problem(
                    rel_where[index], "type", "duplicate relationship (also earlier in this import)"
                )
            )
        seen_rels.setdefault(key, index)
    if keys is not None and held is not None and earlier.keys is not None:
        keys = packed(types, rels, good, keys)
        earlier.keys.add(keys[(keys != UNKNOWN) & ~held])
        places.extend(ci_where)
    for i, ident in enumerate(batch.retire):
        problems.extend(_check_id(f"retire[{i}]", "id", ident))
    for i, ident in enumerate(batch.delete_cis):
        problems.extend(_check_id(f"delete[{i}]", "id", ident))
    return problems


def check_against_store(
    model: Model, batch: Batch, stored: Mapping[str, CI], earlier: Mapping[str, str] | None = None
) -> list[Problem]:
    """Problems that need the stored CIs: ``stored`` maps every id the batch names to its record,
    but those of ``earlier`` (id: class of the CIs a streamed write creates in its other chunks)."""
    earlier = earlier or {}
    problems: list[Problem] = []
    incoming = {ci.id: ci for ci in batch.cis if isinstance(ci.id, str)}
    deleted = set(batch.delete_cis)
    for ci, where in zip(batch.cis, batch.ci_where, strict=True):
        old = stored.get(ci.id) if isinstance(ci.id, str) else None
        spec_of = model.classes.get(ci.cls) if isinstance(ci.cls, str) else None
        if not batch.replace and spec_of is not None and isinstance(ci.attributes, dict):
            problems.extend(check_required(where, ci.attributes, spec_of.attributes, ci.cls))
        if old is not None and old.cls != ci.cls:
            problems.append(
                Problem(
                    where,
                    "class",
                    f"{ci.id!r} is stored as {old.cls!r}; a CI cannot change class "
                    "(retire it and create a new CI)",
                )
            )
    # the class of every CI a relationship may end at (the batch's over the stored ones)
    class_of = {i: ci.cls for i, ci in stored.items() if i not in deleted}
    class_of.update((i, ci.cls) for i, ci in incoming.items() if i not in deleted)
    types, allows = model.relationship_types, model.allows  # allows: cached by the model
    rel_where = batch.rel_where  # a place is formatted only for a relationship with a problem
    for index, rel in enumerate(batch.relationships):
        source, target, rel_type = rel.source, rel.target, rel.type
        if type(source) is str and type(target) is str and type(rel_type) is str:
            # the common case first: both ends known, the type allowed between their classes
            s, d = (
                class_of.get(source) or earlier.get(source),
                class_of.get(target) or earlier.get(target),
            )
            if (
                s is not None
                and d is not None
                and (rel_type not in types or allows(rel_type, s, d))
            ):
                continue
        where = rel_where[index]
        classes = {}
        for end, ident in (("source", rel.source), ("target", rel.target)):
            if not isinstance(ident, str):
                continue  # reported by check_batch
            cls = class_of.get(ident) or earlier.get(ident)
            if cls is None:
                problems.append(
                    Problem(
                        where,
                        end,
                        f"no CI {ident!r} in the store or in this file; add the CI or fix the id",
                    )
                )
            else:
                classes[end] = cls
        spec = types.get(rel.type) if isinstance(rel.type, str) else None
        if len(classes) == 2 and spec and not allows(rel.type, *classes.values()):
            problems.append(
                Problem(
                    where,
                    "type",
                    f"{rel.type} may not go from {classes['source']} to {classes['target']}; "
                    f"allowed from {', '.join(spec.sources)} to {', '.join(spec.targets)}",
                )
            )
    for label, ids in (("retire", batch.retire), ("delete", batch.delete_cis)):
        for i, ident in enumerate(ids):
            if ident not in stored:
                problems.append(Problem(f"{label}[{i}]", "id", f"no CI {ident!r} in the store"))
    return problems


def check_write_names(actor: str, reason: str | None) -> list[Problem]:
    """What is wrong with the names a write is journaled under: its actor and its reason."""
    problems = check_name("write", "actor", actor, limit=200)
    if reason is not None:
        problems += check_name("write", "reason", reason, limit=2_000)
    return problems


def check_attributes(
    where: str,
    attributes: Any,
    specs: Mapping[str, AttributeSpec],
    owner: str,
    replace: bool = True,
) -> list[Problem]:
    """Unknown and ill-typed attributes of one record, and (``replace``: the given attributes are
    the whole record) missing required ones. In a merge, ``None`` removes an attribute, and what
    is required is checked on the merged record (:func:`check_required`)."""
    if not isinstance(attributes, dict):
        return [Problem(where, "attributes", "expected an object of attribute: value")]
    problems = []
    for name, value in attributes.items():
        spec = specs.get(name)
        if value is None and spec is not None:
            if replace:
                problems.append(
                    Problem(
                        where,
                        f"attributes.{name}",
                        "null removes an attribute only when updates merge; leave it out of a "
                        "full replacement",
                    )
                )
            continue
        if spec is None:
            hint = ", ".join(sorted(specs)) or "none"
            problems.append(
                Problem(
                    where,
                    f"attributes.{name}",
                    f"not an attribute of {owner} (known: {hint}); fix the name or declare it "
                    "in your model file",
                )
            )
        elif (reason := spec.check(value)) is not None:
            problems.append(Problem(where, f"attributes.{name}", reason))
    if replace:
        problems.extend(check_required(where, attributes, specs, owner))
    return problems


def check_required(
    where: str, attributes: Mapping[str, Any], specs: Mapping[str, AttributeSpec], owner: str
) -> list[Problem]:
    return [
        Problem(where, f"attributes.{name}", f"required for {owner}")
        for name, spec in specs.items()
        if spec.required and attributes.get(name) is None
    ]


def _check_class(model: Model, where: str, cls: Any) -> list[Problem]:
    spec = model.classes.get(cls) if isinstance(cls, str) else None
    if spec is None:
        return [
            Problem(
                where,
                "class",
                f"unknown class {cls!r}; use one of the model's classes "
                "(`servicegraph model` lists them) or declare it in your model file",
            )
        ]
    if spec.abstract:
        options = ", ".join(sorted(model.concrete(cls)))
        return [Problem(where, "class", f"{cls!r} is abstract; use one of {options}")]
    return []


def _check_id(where: str, field: str, value: Any) -> list[Problem]:
    if not isinstance(value, str) or not value.strip():
        return [Problem(where, field, "required: a non-empty string id")]
    if len(value) > MAX_ID_LENGTH:
        return [Problem(where, field, f"ids are at most {MAX_ID_LENGTH} characters")]
    if problem := text_problem(value, single_line=True):
        return [Problem(where, field, f"the id {problem}")]
    if value != value.strip():
        return [Problem(where, field, f"{value!r} has leading or trailing spaces")]
    return []


def check_name(where: str, field: str, value: Any, limit: int = MAX_NAME_LENGTH) -> list[Problem]:
    """A display name or actor: a non-empty single line of valid text, at most ``limit`` long."""
    if not isinstance(value, str) or not value.strip():
        return [Problem(where, field, "required: a non-empty string")]
    if len(value) > limit:
        return [Problem(where, field, f"at most {limit:,} characters, got {len(value):,}")]
    if problem := text_problem(value, single_line=True):
        return [Problem(where, field, problem)]
    return []
