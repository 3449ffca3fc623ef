"""The schema as data: CI/record classes, typed attributes and relationship types, read from YAML.

The shipped ``model.yaml`` is always loaded; a user's model file extends it (new classes, attributes,
relationship types, extra allowed endpoints, attributes made required). The file is parsed into frozen
spec objects that are checked as a whole when built, so a bad model never reaches a store.

>>> m = load_model()
>>> m.is_a("vm", "compute"), m.impact("HAS_MEMBER")
(True, 'redundant')
>>> sorted(m.descendants("network_device"))
['firewall', 'load_balancer', 'network_device', 'router', 'switch']
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from servicegraph.errors import ModelError
from servicegraph.graph.values import (
    MAX_LIST_ITEMS,
    MAX_TEXT_LENGTH,
    integer_problem,
    json_problem,
    number_problem,
    text_problem,
)

__all__ = [
    "RESERVED_FIELDS",
    "AttributeSpec",
    "ClassSpec",
    "Model",
    "RelationshipTypeSpec",
    "load_model",
]

Impact = Literal["required", "redundant", "none"]
ATTRIBUTE_TYPES = (
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "enum",
    "string_list",
    "json",
)
IMPACTS = ("required", "redundant", "none")
RESERVED_FIELDS = frozenset({"id", "class", "name", "version", "attributes"})
_CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REL_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def _load_json_cell(text: str) -> Any:
    """A JSON cell: orjson refuses NaN/Infinity and bounds nesting (no RecursionError)."""
    import orjson

    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{text[:60]!r} is not valid JSON ({exc.msg})") from exc


@dataclass(frozen=True)
class AttributeSpec:
    """One typed attribute of a class."""

    name: str
    type: str
    required: bool = False
    description: str = ""
    recommended: bool = False  # not required, but a CMDB audit counts it missing
    values: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    pattern: str | None = None

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not valid for this attribute, or None when it is."""
        t = self.type
        if t == "string":
            if not isinstance(value, str):
                return f"expected a string, got {_kind(value)}"
            if len(value) > MAX_TEXT_LENGTH:
                return f"is {len(value):,} characters long, more than {MAX_TEXT_LENGTH:,}"
            if problem := text_problem(value):
                return problem
            if self.pattern and not re.fullmatch(self.pattern, value):
                return f"{value!r} does not match pattern {self.pattern!r}"
            return None
        if t == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"expected an integer, got {_kind(value)}"
            return self._range(value) or integer_problem(value)
        if t == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"expected a number, got {_kind(value)}"
            return number_problem(value) or self._range(value)
        if t == "boolean":
            return (
                None if isinstance(value, bool) else f"expected true or false, got {_kind(value)}"
            )
        if t == "enum":
            if not isinstance(value, str) or value not in self.values:
                return f"{value!r} is not one of {', '.join(self.values)}"
            return None
        if t == "string_list":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return f"expected a list of strings, got {_kind(value)}"
            if len(value) > MAX_LIST_ITEMS:
                return f"has {len(value):,} items, more than {MAX_LIST_ITEMS:,}"
            for i, item in enumerate(value):
                if problem := text_problem(item) or (
                    f"is longer than {MAX_TEXT_LENGTH:,} characters"
                    if len(item) > MAX_TEXT_LENGTH
                    else None
                ):
                    return f"item {i}: {problem}"
            return None
        if t == "json":
            if value is None:
                return "expected a JSON value, got null"
            return json_problem(value)
        if t in ("date", "datetime"):
            if not isinstance(value, str):
                return f"expected an ISO 8601 {t} string, got {_kind(value)}"
            try:
                (dt.date if t == "date" else dt.datetime).fromisoformat(value)
            except ValueError:
                example = "2026-01-31" if t == "date" else "2026-01-31T12:00:00Z"
                return f"{value!r} is not an ISO 8601 {t} (e.g. {example})"
            return None
        raise AssertionError(t)  # pragma: no cover - types are checked when the model is built

    def parse_text(self, text: str) -> Any:
        """Convert a CSV cell to this attribute's type (raises ValueError with the reason).

        As strict as JSON: integers are digits, numbers are JSON numbers (no ``nan``, ``inf``,
        ``1_000``), a ``string_list`` given as a JSON array must hold strings."""
        t = self.type
        if t == "integer":
            if not _INTEGER_TEXT.fullmatch(text):
                raise ValueError(f"{text!r} is not an integer (digits, optional sign)")
            return int(text)
        if t == "number":
            if not _NUMBER_TEXT.fullmatch(text):
                raise ValueError(f"{text!r} is not a number (e.g. 42, -0.5, 1.5e3)")
            number = float(text)
            if _INTEGER_TEXT.fullmatch(text):
                return int(text)
            return number  # 1e400 parses to inf: check() refuses it by name
        if t == "boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes"):
                return True
            if lowered in ("false", "0", "no"):
                return False
            raise ValueError(f"{text!r} is not a boolean (true/false)")
        if t == "string_list":
            if text.startswith("["):
                items = _load_json_cell(text)
                if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                    raise ValueError(f"{text!r} is not a JSON array of strings")
                return items
            return [part for part in text.split(";") if part != ""]
        if t == "json":
            return _load_json_cell(text)
        return text

    def format_text(self, value: Any) -> str:
        """The CSV cell for ``value`` (inverse of :meth:`parse_text`)."""
        if self.type == "boolean":
            return "true" if value else "false"
        if self.type in ("string_list", "json"):
            return json.dumps(value)
        return str(value)

    def _range(self, value: float) -> str | None:
        if self.min is not None and value < self.min:
            return f"{value} is below the minimum {_num(self.min)}"
        if self.max is not None and value > self.max:
            return f"{value} is above the maximum {_num(self.max)}"
        return None


@dataclass(frozen=True)
class ClassSpec:
    """A class of node; ``attributes`` holds its own and inherited attributes."""

    name: str
    parent: str | None
    abstract: bool
    description: str
    attributes: Mapping[str, AttributeSpec]
    ancestors: tuple[str, ...]  # itself first, then parent, … up to the root
    # Steady-state availability assumed for a CI of this class that states none (inherited).
    default_availability: float | None = None
    # Relationship types a CI of this class should have (outgoing; inherited), e.g. LOCATED_IN:
    # a CMDB audit counts each missing one.
    recommended_relationships: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelationshipTypeSpec:
    """A relationship type: allowed endpoint classes (with their subclasses) and impact semantics."""

    name: str
    impact: Impact
    description: str
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    attributes: Mapping[str, AttributeSpec] = field(default_factory=dict)


@dataclass(frozen=True)
class Model:
    """A consistent model: look-ups used by validation, stores and the engine."""

    classes: Mapping[str, ClassSpec]
    relationship_types: Mapping[str, RelationshipTypeSpec]

    def is_a(self, cls: str, ancestor: str) -> bool:
        spec = self.classes.get(cls)
        return spec is not None and ancestor in spec.ancestors

    def descendants(self, cls: str) -> frozenset[str]:
        """``cls`` and every class below it."""
        return self._descendants.get(cls, frozenset())

    def concrete(self, cls: str) -> frozenset[str]:
        """The non-abstract classes a record of class ``cls`` may have (for filters)."""
        return frozenset(c for c in self.descendants(cls) if not self.classes[c].abstract)

    def impact(self, rel_type: str) -> Impact:
        return self.relationship_types[rel_type].impact

    def allows(self, rel_type: str, source_class: str, target_class: str) -> bool:
        key = (rel_type, source_class, target_class)
        allowed = self._allowed.get(key)
        if allowed is None:  # a few combinations answer every relationship of an import
            spec = self.relationship_types[rel_type]
            allowed = self._allowed[key] = any(
                self.is_a(source_class, s) for s in spec.sources
            ) and any(self.is_a(target_class, t) for t in spec.targets)
        return allowed

    @cached_property
    def _allowed(self) -> dict[tuple[str, str, str], bool]:
        return {}

    @cached_property
    def _descendants(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {name: set() for name in self.classes}
        for name, spec in self.classes.items():
            for anc in spec.ancestors:
                out[anc].add(name)
        return {k: frozenset(v) for k, v in out.items()}


def load_model(*extensions: str | Path) -> Model:
    """Load the shipped model, extended by each user model file in turn."""
    text = resources.files("servicegraph.graph").joinpath("model.yaml").read_text("utf-8")
    raw = _parse_yaml(text, "the shipped model")
    for ext in extensions:
        path = Path(ext)
        try:
            ext_text = path.read_text("utf-8")
        except OSError as exc:
            raise ModelError([f"cannot read {path}: {exc.strerror}"], str(path)) from exc
        raw = _merge(raw, _parse_yaml(ext_text, str(path)), str(path))
    return build_model(raw)


def build_model(raw: Mapping[str, Any], source: str = "model") -> Model:
    """Build and check a model from its parsed YAML; every problem is reported at once."""
    problems: list[str] = []
    raw_classes = raw.get("classes") or {}
    raw_rels = raw.get("relationship_types") or {}
    if not isinstance(raw_classes, dict) or not isinstance(raw_rels, dict):
        raise ModelError(["`classes` and `relationship_types` must be mappings"], source)

    for name, body in raw_classes.items():
        if not _CLASS_NAME.match(str(name)):
            problems.append(f"class {name!r}: names are lower_snake_case")
        if not isinstance(body, dict):
            problems.append(f"class {name!r}: expected a mapping")
        elif not body.get("description"):
            problems.append(f"class {name!r}: add a description")
        elif body.get("parent") is not None and body["parent"] not in raw_classes:
            problems.append(f"class {name!r}: parent {body['parent']!r} is not a defined class")
    if problems:
        raise ModelError(problems, source)

    classes: dict[str, ClassSpec] = {}
    for name in raw_classes:
        chain = _ancestors(name, raw_classes, problems)
        attrs: dict[str, AttributeSpec] = {}
        for cls in reversed(chain):  # root first, so subclasses override
            for attr_name, attr_body in (raw_classes[cls].get("attributes") or {}).items():
                spec = _attribute(f"class {cls!r}", attr_name, attr_body, problems)
                if spec is not None:
                    attrs[attr_name] = spec
        body = raw_classes[name]
        default = next(
            (raw_classes[c]["default_availability"] for c in chain
             if raw_classes[c].get("default_availability") is not None),
            None,
        )  # fmt: skip
        if default is not None and (
            isinstance(default, bool)
            or not isinstance(default, int | float)
            or not 0 < default <= 1
        ):
            problems.append(f"class {name!r}: default_availability must be a number in (0, 1]")
            default = None
        recommended = tuple(dict.fromkeys(
            r for c in reversed(chain) for r in raw_classes[c].get("recommended_relationships") or ()
        ))  # fmt: skip
        unknown = [r for r in recommended if r not in raw_rels]
        if unknown:
            problems.append(
                f"class {name!r}: recommended_relationships names unknown types {unknown}"
            )
        classes[name] = ClassSpec(
            name=name,
            parent=body.get("parent"),
            abstract=bool(body.get("abstract", False)),
            description=str(body["description"]),
            attributes=attrs,
            ancestors=tuple(chain),
            default_availability=None if default is None else float(default),
            recommended_relationships=recommended,
        )

    rels: dict[str, RelationshipTypeSpec] = {}
    for name, body in raw_rels.items():
        where = f"relationship type {name!r}"
        if not _REL_NAME.match(str(name)):
            problems.append(f"{where}: names are UPPER_SNAKE_CASE")
        if not isinstance(body, dict):
            problems.append(f"{where}: expected a mapping")
            continue
        if body.get("impact") not in IMPACTS:
            problems.append(f"{where}: impact must be one of {', '.join(IMPACTS)}")
        if not body.get("description"):
            problems.append(f"{where}: add a description")
        ends: dict[str, tuple[str, ...]] = {}
        for end in ("from", "to"):
            listed = body.get(end)
            if not isinstance(listed, list) or not listed:
                problems.append(f"{where}: `{end}` must list at least one class")
                listed = []
            for cls in listed:
                if cls not in raw_classes:
                    problems.append(f"{where}: `{end}` names {cls!r}, which is not a defined class")
            ends[end] = tuple(listed)
        rel_attrs = {}
        for attr_name, attr_body in (body.get("attributes") or {}).items():
            spec = _attribute(where, attr_name, attr_body, problems)
            if spec is not None:
                rel_attrs[attr_name] = spec
        rels[name] = RelationshipTypeSpec(
            name=name,
            impact=body.get("impact", "none"),
            description=str(body.get("description", "")),
            sources=ends["from"],
            targets=ends["to"],
            attributes=rel_attrs,
        )
    if "ci" not in classes or "status" not in classes["ci"].attributes:
        problems.append("the model must keep the root class `ci` with its `status` attribute")
    elif "retired" not in classes["ci"].attributes["status"].values:
        problems.append("`ci.status` must keep the value `retired`")
    if problems:
        raise ModelError(problems, source)
    return Model(classes=classes, relationship_types=rels)


def _ancestors(name: str, raw_classes: Mapping[str, Any], problems: list[str]) -> list[str]:
    chain = [name]
    while (parent := raw_classes[chain[-1]].get("parent")) is not None:
        if parent in chain:
            problems.append(f"class {name!r}: inheritance cycle through {parent!r}")
            break
        chain.append(parent)
    return chain


def _attribute(where: str, name: Any, body: Any, problems: list[str]) -> AttributeSpec | None:
    where = f"{where} attribute {name!r}"
    if not isinstance(body, dict):
        problems.append(f"{where}: expected a mapping with at least `type`")
        return None
    if name in RESERVED_FIELDS or not _CLASS_NAME.match(str(name)):
        problems.append(
            f"{where}: names are lower_snake_case and not one of {sorted(RESERVED_FIELDS)}"
        )
    kind = body.get("type")
    if kind not in ATTRIBUTE_TYPES:
        problems.append(f"{where}: type must be one of {', '.join(ATTRIBUTE_TYPES)}")
        return None
    values = body.get("values") or []
    if kind == "enum" and (not values or not all(isinstance(v, str) for v in values)):
        problems.append(f"{where}: an enum needs `values`, a list of strings")
    if not body.get("description"):
        problems.append(f"{where}: add a description")
    for bound in ("min", "max"):
        if body.get(bound) is not None and kind not in ("integer", "number"):
            problems.append(f"{where}: `{bound}` applies to integer and number only")
    return AttributeSpec(
        name=str(name),
        type=kind,
        required=bool(body.get("required", False)),
        description=str(body.get("description", "")),
        recommended=bool(body.get("recommended", False)),
        values=tuple(values),
        min=body.get("min"),
        max=body.get("max"),
        pattern=body.get("pattern"),
    )


def _merge(base: dict[str, Any], ext: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Extend ``base`` with a user's model: add classes/types, add or tighten attributes, add ends."""
    merged = {
        "classes": {k: dict(v) for k, v in (base.get("classes") or {}).items()},
        "relationship_types": {
            k: dict(v) for k, v in (base.get("relationship_types") or {}).items()
        },
    }
    for name, body in (ext.get("classes") or {}).items():
        if not isinstance(body, dict):
            raise ModelError([f"class {name!r}: expected a mapping"], source)
        if name not in merged["classes"]:
            merged["classes"][name] = body
            continue
        current = merged["classes"][name]
        attrs = dict(current.get("attributes") or {})
        for attr_name, attr_body in (body.get("attributes") or {}).items():
            attrs[attr_name] = {**(attrs.get(attr_name) or {}), **(attr_body or {})}
        current["attributes"] = attrs
        if body.get("description"):
            current["description"] = body["description"]
        if body.get("recommended_relationships"):  # a user's file adds to the shipped ones
            current["recommended_relationships"] = list(dict.fromkeys(
                [*(current.get("recommended_relationships") or []),
                 *body["recommended_relationships"]]))  # fmt: skip
    for name, body in (ext.get("relationship_types") or {}).items():
        if not isinstance(body, dict):
            raise ModelError([f"relationship type {name!r}: expected a mapping"], source)
        if name not in merged["relationship_types"]:
            merged["relationship_types"][name] = body
            continue
        current = merged["relationship_types"][name]
        for end in ("from", "to"):
            current[end] = list(dict.fromkeys([*current.get(end, []), *body.get(end, [])]))
        for key in ("impact", "description"):
            if body.get(key):
                current[key] = body[key]
    return merged


# libyaml's loader where PyYAML has it (its wheels do): the model took 0.2 s of every CLI call
# with the pure-Python one
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load``, by libyaml when available."""
    return yaml.load(text, Loader=_LOADER)


def _parse_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = safe_yaml(text)
    except yaml.YAMLError as exc:
        raise ModelError([f"not valid YAML: {exc}"], source) from exc
    if not isinstance(raw, dict):
        raise ModelError(["expected a mapping with `classes` and `relationship_types`"], source)
    return raw


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
