"""The demo estate is valid, reproducible and shaped like an enterprise."""

from __future__ import annotations

from collections import Counter

from servicegraph.graph.model import Model
from servicegraph.graph.validation import check_against_store, check_batch
from servicegraph.processes.demo import generate_estate


def test_the_demo_estate_is_valid_against_the_model(model: Model) -> None:
    batch = generate_estate(3000)
    assert check_batch(model, batch) == []
    assert check_against_store(model, batch, {}) == []
    assert 2700 <= len(batch.cis) <= 3100


def test_the_same_seed_gives_the_same_estate() -> None:
    a, b, c = generate_estate(800, 1), generate_estate(800, 1), generate_estate(800, 2)
    assert a.cis == b.cis and a.relationships == b.relationships
    assert a.relationships != c.relationships


def test_the_estate_has_redundancy_groups_hubs_and_services() -> None:
    batch = generate_estate(5000)
    classes = Counter(ci.cls for ci in batch.cis)
    for cls in (
        "business_service",
        "technical_service",
        "application",
        "application_instance",
        "database",
        "database_instance",
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
        "datacentre",
        "sla",
        "customer",
        "middleware",
    ):
        assert classes[cls] > 0, cls
    in_degree = Counter(r.target for r in batch.relationships if r.type != "LOCATED_IN")
    assert in_degree.most_common(1)[0][1] > 300  # shared hubs (DNS, storage, sign-on)
    clusters = [ci for ci in batch.cis if ci.cls == "cluster"]
    assert all(ci.attributes["min_up"] >= 1 for ci in clusters)
    assert any(ci.attributes["min_up"] > 1 for ci in clusters)
