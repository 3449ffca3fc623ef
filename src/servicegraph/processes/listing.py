"""Finding CIs and relationships: filters typed by the model, search, sorting and counts (9.1).

Attribute filters compare values as the model declares them: ``criticality: "5"`` finds the CIs
whose integer criticality is 5, and a filter on an attribute no class in scope declares, or on an
unknown relationship type, is refused naming what exists — never an empty answer that looks like
"nothing matches". The GraphQL API, the CLI (``list``, ``search``) and the Python API all list
through here.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph.model import AttributeSpec, Model
from servicegraph.graph.records import CI, Page, ci_cursor
from servicegraph.graph.store import GraphStore

__all__ = ["CIQuery", "check_relationship_types", "record_of", "records_of_class", "typed_filters"]


@dataclass(frozen=True)
class CIQuery:
    """What to list: a class (its subclasses too), attribute values, a text, an ordering."""

    cls: str | None = None
    attributes: Mapping[str, Any] | None = None
    text: str | None = None
    sort: str = "id"
    descending: bool = False

    def classes(self, model: Model) -> frozenset[str] | None:
        if self.cls is None:
            return None
        if self.cls not in model.classes:
            raise ValidationFailed(
                [
                    Problem(
                        "filter",
                        "class",
                        f"unknown class {self.cls!r}; `servicegraph model` lists the classes",
                    )
                ],
                wrote=False,
            )
        return model.concrete(self.cls)

    def page(self, store: GraphStore, first: int = 50, after: str | None = None) -> Page:
        classes = self.classes(store.model)
        attributes = typed_filters(store.model, self.cls, self.attributes or {})
        return store.find_cis(classes, attributes, first, after, self.text or None, self.sort,
                              self.descending)  # fmt: skip

    def cursor(self, ci: CI) -> str:
        """The cursor that continues the listing after ``ci`` (each edge has its own)."""
        return ci_cursor(ci, self.sort, self.descending)

    def count(self, store: GraphStore) -> int:
        classes = self.classes(store.model)
        attributes = typed_filters(store.model, self.cls, self.attributes or {})
        return store.count_cis(classes, attributes, self.text or None)


def typed_filters(model: Model, cls: str | None, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` with each value converted to its attribute's model type; unknown names and values
    that are not of the type are refused (every problem at once)."""
    if not isinstance(given, Mapping):
        raise ValidationFailed(
            [Problem("filter", "attributes", "expected an object of name: value")], wrote=False
        )
    scope = model.concrete(cls) if cls is not None and cls in model.classes else model.classes
    specs: dict[str, list[AttributeSpec]] = {}
    for name in scope:
        for attr, spec in model.classes[name].attributes.items():
            specs.setdefault(attr, []).append(spec)
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for name, value in given.items():
        candidates = specs.get(name)
        if not candidates:
            where = f"class {cls}" if cls else "any class"
            close = difflib.get_close_matches(name, specs, n=3)
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            problems.append(
                Problem(
                    "filter",
                    f"attributes.{name}",
                    f"not an attribute of {where}; {hint}known: {', '.join(sorted(specs))}",
                )
            )
            continue
        converted, reason = _convert(candidates[0], value)
        if reason is not None:
            problems.append(Problem("filter", f"attributes.{name}", reason))
        else:
            out[name] = converted
    if problems:
        raise ValidationFailed(problems, wrote=False)
    return out


def _convert(spec: AttributeSpec, value: Any) -> tuple[Any, str | None]:
    if isinstance(value, str) and spec.type not in ("string", "enum", "date", "datetime"):
        try:
            value = spec.parse_text(value)
        except ValueError as exc:
            return None, str(exc)
    if isinstance(value, float) and value.is_integer() and spec.type == "integer":
        value = int(value)
    return value, spec.check(value)


def check_relationship_types(model: Model, types: Collection[str] | None) -> None:
    """Refuse relationship types the model does not declare (naming the known ones)."""
    unknown = sorted(set(types or ()) - set(model.relationship_types))
    if unknown:
        known = ", ".join(sorted(model.relationship_types))
        raise ValidationFailed(
            [Problem("arguments", "types", f"unknown relationship type {t!r}; known: {known}")
             for t in unknown],
            wrote=False,
        )  # fmt: skip


def record_of(store: GraphStore, cls: str, ident: str) -> CI:
    """The record ``ident`` of exactly class ``cls`` (NOT_FOUND naming the class otherwise)."""
    record = store.get_ci(ident)
    if record is None or record.cls != cls:
        raise NotFound(cls, ident)
    return record


def records_of_class(store: GraphStore, cls: str) -> list[CI]:
    """Every record of exactly class ``cls``."""
    out, after = [], None
    while True:
        page = store.find_cis([cls], first=1000, after=after)
        out += page.items
        if not page.has_next:
            return out
        after = page.end_cursor
