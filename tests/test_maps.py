"""Dependency maps as views and files (GraphML, DOT, Cytoscape JSON, one HTML page), from Python,
the CLI and GraphQL, on both stores; each file is read back by the tool its users open it with."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pydot
import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import NotFound, ValidationFailed
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import create_token
from tests.test_cli import run
from tests.test_graphql import gql

TRICKY = 'db "main" </script><b>x'  # a name that must not break a file it is written into


def estate(store: GraphStore) -> None:
    store.upsert(
        [
            CI("svc", "business_service", "Payments"),
            CI("app", "application", "payments-app", {"min_up": 2}),
            CI("inst-1", "application_instance", "payments #1"),
            CI("inst-2", "application_instance", "payments #2"),
            CI("inst-3", "application_instance", "payments #3"),
            CI("vm-1", "vm", "vm one"),
            CI("host-1", "host", TRICKY),
            CI("dc", "datacentre", "DC"),
        ],
        [
            Relationship("svc", "COMPOSED_OF", "app"),
            Relationship("app", "DEPLOYED_AS", "inst-1"),
            Relationship("app", "DEPLOYED_AS", "inst-2"),
            Relationship("app", "DEPLOYED_AS", "inst-3"),
            Relationship("inst-1", "RUNS_ON", "vm-1"),
            Relationship("vm-1", "HOSTED_ON", "host-1"),
            Relationship("host-1", "LOCATED_IN", "dc"),
        ],
    )


def test_a_map_both_ways_labelled_for_people(store: GraphStore) -> None:
    estate(store)
    sg = ServiceGraph(store)
    view = sg.dependency_map("vm-1", "BOTH", max_depth=5)
    assert set(view.ids) == {"svc", "app", "inst-1", "vm-1", "host-1", "dc"}  # not inst-2, inst-3
    down = sg.dependency_map("vm-1", "DOWNSTREAM", max_depth=5)
    up = sg.dependency_map("vm-1", "UPSTREAM", max_depth=5)
    assert set(view.ids) == set(down.ids) | set(up.ids) and set(down.ids) != set(up.ids)
    nodes = {n["id"]: n for n in view.nodes}
    assert nodes["svc"]["family"] == "service" and nodes["app"]["family"] == "software"
    assert nodes["vm-1"]["family"] == "compute" and nodes["dc"]["family"] == "location"
    assert nodes["app"]["min_up"] == 2 and nodes["svc"]["min_up"] is None  # a redundancy group
    assert nodes["app"]["members"] == 3  # of its members in the graph (one on this map)
    assert nodes["svc"]["distance"] == 3 and nodes["host-1"]["distance"] == 1
    impact = {(e["source"], e["type"]): e["impact"] for e in view.edges}
    assert impact[("app", "DEPLOYED_AS")] == "redundant"
    assert (
        impact[("vm-1", "HOSTED_ON")] == "required" and impact[("host-1", "LOCATED_IN")] == "none"
    )
    only = sg.dependency_map("vm-1", "BOTH", max_depth=5, types=["RUNS_ON", "HOSTED_ON"])
    assert set(only.ids) == {"inst-1", "vm-1", "host-1"}
    with pytest.raises(ValidationFailed, match="DOWNSTREAM, UPSTREAM or BOTH"):
        sg.dependency_map("vm-1", "SIDEWAYS")
    with pytest.raises(NotFound):
        sg.dependency_map("no-such-ci")


def test_map_files_read_back_in_the_tools_that_open_them(store: GraphStore) -> None:
    estate(store)
    view = ServiceGraph(store).dependency_map("vm-1", "BOTH", max_depth=5)
    ids = set(view.ids)
    graphml = nx.read_graphml(_file(view.to_graphml()))  # what yEd and Gephi read
    assert set(graphml.nodes) == ids and graphml.number_of_edges() == len(view.edges)
    assert graphml.nodes["host-1"]["name"] == TRICKY and graphml.nodes["app"]["min_up"] == 2
    cyjs = nx.cytoscape_graph(json.loads(json.dumps(view.to_cyjs())))
    assert set(cyjs.nodes) == ids and cyjs.number_of_edges() == len(view.edges)
    (dot,) = pydot.graph_from_dot_data(view.to_dot())  # what Graphviz reads
    assert {n.get_name().strip('"') for n in dot.get_nodes()} >= ids
    assert len(dot.get_edges()) == len(view.edges)
    page = view.to_html()
    assert page.count("<script>") == 4 and "<script src" not in page and "<link" not in page
    assert "</script><b>x" not in page  # a CI's name cannot end the page's script
    assert '"host-1"' in page and "cytoscape" in page and "SGMap" in page


def _file(text: str) -> Path:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "map.graphml"
    path.write_text(text, encoding="utf-8")
    return path


def test_map_files_from_the_cli(sqlite_store: GraphStore, tmp_path: Path) -> None:
    estate(sqlite_store)
    db = str(sqlite_store.path)  # type: ignore[attr-defined]
    for fmt in ("graphml", "dot", "cyjs", "html"):
        out = tmp_path / f"map.{fmt}"
        done = run("map", "vm-1", "--direction", "both", "--depth", "5", "--format", fmt,
                   "-o", str(out), "--db", db)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "6 CIs, 5 relationships" in done.stderr
    assert set(nx.read_graphml(tmp_path / "map.graphml").nodes) >= {"svc", "dc"}
    assert json.loads((tmp_path / "map.cyjs").read_text())["elements"]["nodes"]
    shown = run("map", "app", "--format", "dot", "--depth", "1", "--db", db)
    assert shown.returncode == 0 and '"app" -> "inst-1"' in shown.stdout  # standard output
    bad = run("map", "vm-1", "--format", "pdf", "--direction", "left", "--db", db)
    assert bad.returncode != 0 and "--format" in bad.stderr and "--direction" in bad.stderr
    assert run("map", "nope", "--db", db).returncode == 4


def test_dependency_map_and_model_over_graphql(sqlite_store: GraphStore) -> None:
    estate(sqlite_store)
    token = create_token(sqlite_store, "frontend", "viewer")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        body = gql(client, """{
            dependencyMap(rootId: "vm-1", direction: BOTH, maxDepth: 5) {
                nodes { id class family status distance minUp members }
                edges { source target type impact }
                graphml dot cytoscape }
            model { classes { name family abstract } relationshipTypes { name impact } } }""",
                   token)["data"]  # fmt: skip
    m = body["dependencyMap"]
    assert {n["id"] for n in m["nodes"]} == {"svc", "app", "inst-1", "vm-1", "host-1", "dc"}
    app = next(n for n in m["nodes"] if n["id"] == "app")
    assert app["minUp"] == 2 and app["members"] == 3
    assert {e["impact"] for e in m["edges"]} == {"required", "redundant", "none"}
    assert set(nx.read_graphml(_file(m["graphml"])).nodes) == {n["id"] for n in m["nodes"]}
    assert m["dot"].startswith("digraph") and m["cytoscape"]["elements"]["edges"]
    classes = {c["name"]: c for c in body["model"]["classes"]}
    assert classes["vm"]["family"] == "compute" and classes["compute"]["abstract"]
    assert {"name": "HAS_MEMBER", "impact": "redundant"} in body["model"]["relationshipTypes"]
