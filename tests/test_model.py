"""The shipped model as a whole, and user extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from servicegraph.errors import ModelError
from servicegraph.graph.model import Model, load_model

FIXED_CLASSES = [
    "business_service",
    "technical_service",
    "application",
    "application_instance",
    "database",
    "database_instance",
    "middleware",
    "container",
    "vm",
    "host",
    "cluster",
    "storage_array",
    "storage_volume",
    "router",
    "switch",
    "firewall",
    "load_balancer",
    "dns",
    "location",
    "licence",
    "document",
]


def test_the_shipped_model_is_consistent(model: Model) -> None:
    problems = []
    for name, cls in model.classes.items():
        if not cls.description:
            problems.append(f"{name}: no description")
        for attr in cls.attributes.values():
            if not attr.description:
                problems.append(f"{name}.{attr.name}: no description")
            if attr.required:
                problems.append(f"{name}.{attr.name}: only id, class and name may be required")
    for name, rel in model.relationship_types.items():
        for end in (*rel.sources, *rel.targets):
            if end not in model.classes:
                problems.append(f"{name}: endpoint {end} is not a class")
    for name in FIXED_CLASSES:
        if name not in model.classes or model.classes[name].abstract:
            problems.append(f"{name}: fixed class missing or abstract")
    assert problems == []


def test_the_relationship_types_users_rely_on(model: Model) -> None:
    concrete_cis = model.concrete("ci")
    assert {"host", "vm", "business_service", "dns", "cluster"} <= concrete_cis
    impacts = {name: model.impact(name) for name in model.relationship_types}
    assert impacts["DEPENDS_ON"] == "required"
    assert impacts["HAS_MEMBER"] == "redundant"
    for name in ("LOCATED_IN", "LICENSED_BY", "DOCUMENTED_BY"):
        assert impacts[name] == "none"
    for name in ("RUNS_ON", "HOSTED_ON", "CONNECTS_TO", "COMPOSED_OF"):
        assert name in impacts
    assert all(model.allows("DEPENDS_ON", a, b) for a in concrete_cis for b in concrete_cis)
    assert all(model.allows("HAS_MEMBER", "cluster", b) for b in concrete_cis)
    assert not model.allows("HAS_MEMBER", "vm", "host")
    min_up = model.classes["cluster"].attributes["min_up"]
    assert (min_up.type, min_up.min) == ("integer", 1)
    assert min_up.check(0) is not None and min_up.check(2) is None


def test_a_user_model_adds_classes_attributes_and_endpoints(tmp_path: Path) -> None:
    ext = tmp_path / "mine.yaml"
    ext.write_text(
        """
classes:
  vm:
    attributes:
      cost_centre: {type: string, required: true, description: Who pays.}
  mainframe:
    parent: compute
    description: A mainframe.
relationship_types:
  RUNS_ON:
    from: [dns]
  REPLICATES_TO:
    impact: none
    description: Data replication.
    from: [database_instance]
    to: [database_instance]
"""
    )
    model = load_model(ext)
    assert model.classes["vm"].attributes["cost_centre"].required
    assert model.is_a("mainframe", "compute")
    assert model.allows("RUNS_ON", "dns", "mainframe")
    assert model.impact("REPLICATES_TO") == "none"


def test_a_broken_user_model_lists_every_problem(tmp_path: Path) -> None:
    ext = tmp_path / "bad.yaml"
    ext.write_text(
        """
classes:
  gadget: {parent: nothing, description: x}
relationship_types:
  links: {impact: sometimes, description: x, from: [vm], to: [widget]}
"""
    )
    with pytest.raises(ModelError) as info:
        load_model(ext)
    assert any("parent 'nothing'" in p for p in info.value.problems)
    ext.write_text(
        """
relationship_types:
  links: {impact: sometimes, description: x, from: [vm], to: [widget]}
"""
    )
    with pytest.raises(ModelError) as info:
        load_model(ext)
    text = "\n".join(info.value.problems)
    assert "UPPER_SNAKE_CASE" in text and "impact must be one of" in text and "'widget'" in text
    ext.write_text("classes: [unclosed")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_model(ext)
