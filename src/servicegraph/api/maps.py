"""Dependency maps as views and files: the CIs around a root (``processes.topology``) labelled
for people — name, class, family (the class's branch of the model: service, software, compute,
storage, network device, location), status, ``min_up`` of redundancy groups, and each
relationship's impact kind — and written as the files people share:

* GraphML for yEd and Gephi and Cytoscape JSON for other frontends (networkx writes both),
* DOT for Graphviz (pydot writes it),
* one self-contained HTML file with the web app's interactive map (its scripts inlined: it opens
  offline, from an e-mail or a ticket).

The web app (``/``), ``servicegraph map``, ``sg.dependency_map()`` and GraphQL's
``dependencyMap`` all read this one view.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicegraph.processes.topology import MapDirection, dependency_map

if TYPE_CHECKING:
    import networkx as nx

    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.model import Model
    from servicegraph.graph.store import GraphStore

__all__ = ["FORMATS", "MapView", "family_of", "map_view"]

STATIC = Path(__file__).parent / "static"
FORMATS = ("dot", "graphml", "cyjs", "html")


def family_of(model: Model, cls: str) -> str:
    """The class's branch of the model: its ancestor right below ``ci`` (or the class)."""
    ancestors = list(model.classes[cls].ancestors)
    if "ci" in ancestors:
        at = ancestors.index("ci")
        return ancestors[at - 1] if at > 0 else cls
    return cls


@dataclass
class MapView:
    """A dependency map labelled for people; ``nodes`` and ``edges`` as plain dicts."""

    root: str
    direction: MapDirection
    depth: int | None
    types: list[str] | None
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [n["id"] for n in self.nodes]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "direction": self.direction, "depth": self.depth,
                "types": self.types, "nodes": self.nodes, "edges": self.edges}  # fmt: skip

    def to_networkx(self) -> nx.MultiDiGraph:
        """A networkx graph (node and edge attributes without empty values, as GraphML wants)."""
        import networkx as nx

        graph = nx.MultiDiGraph(root=self.root, direction=self.direction)
        for n in self.nodes:
            graph.add_node(n["id"], **{k: v for k, v in n.items() if k != "id" and v is not None})
        for e in self.edges:
            graph.add_edge(e["source"], e["target"], key=e["type"], type=e["type"],
                           impact=e["impact"])  # fmt: skip
        return graph

    def to_graphml(self) -> str:
        import networkx as nx

        return "\n".join(nx.generate_graphml(self.to_networkx())) + "\n"

    def to_cyjs(self) -> dict[str, Any]:
        """Cytoscape JSON (``cy.json()`` / Cytoscape desktop's .cyjs)."""
        import networkx as nx

        data: dict[str, Any] = nx.cytoscape_data(self.to_networkx())
        return data

    def to_dot(self) -> str:
        """Graphviz DOT: a layered drawing (``dot -Tsvg``), dependencies below dependents."""
        import pydot

        graph = pydot.Dot(graph_name="servicegraph", graph_type="digraph", rankdir="TB")
        graph.set_node_defaults(shape="box", style="rounded,filled", fontname="Helvetica",
                                fillcolor="#f0f0f0")  # fmt: skip
        for n in self.nodes:
            text = f"{n['name']}\n({n['class']})"
            if n.get("min_up"):
                text += f"\nmin_up {n['min_up']} of {n['members']}"
            graph.add_node(pydot.Node(_quoted(n["id"]), label=_quoted(text),
                                      penwidth="3" if n["id"] == self.root else "1"))  # fmt: skip
        for e in self.edges:
            style = {"redundant": "dashed", "none": "dotted"}.get(e["impact"], "solid")
            graph.add_edge(pydot.Edge(_quoted(e["source"]), _quoted(e["target"]),
                                      label=_quoted(e["type"]), style=style))  # fmt: skip
        return str(graph.to_string())

    def to_html(self, title: str | None = None) -> str:
        """One HTML file with the interactive map (no network needed to open it)."""
        scripts = [
            (STATIC / "vendor" / "cytoscape.min.js").read_text("utf-8"),
            (STATIC / "vendor" / "cytoscape-dagre.min.js").read_text("utf-8"),
            (STATIC / "app" / "map.js").read_text("utf-8"),
        ]
        data = json.dumps({"root": self.root, "map": {"nodes": [_api_node(n) for n in self.nodes],
                                                      "edges": self.edges}})  # fmt: skip
        heading = title or f"Dependency map of {self.root} ({self.direction.lower()})"
        inline = "\n".join(f"<script>{_script_safe(s)}</script>" for s in scripts)
        return _HTML.format(title=html.escape(heading), scripts=inline,
                            data=_script_safe(data), count=len(self.nodes))  # fmt: skip


def _api_node(n: dict[str, Any]) -> dict[str, Any]:
    """A node as the GraphQL API names its fields (map.js reads that shape)."""
    return {"id": n["id"], "name": n["name"], "class": n["class"], "family": n["family"],
            "status": n["status"], "distance": n["distance"], "minUp": n.get("min_up"),
            "members": n.get("members")}  # fmt: skip


def _quoted(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as Graphviz's ``\\n``."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + escaped + '"'


def _script_safe(text: str) -> str:
    """Text that cannot end the <script> element it is put in."""
    return text.replace("</", "<\\/")


def map_view(
    engine: TopologyEngine,
    store: GraphStore,
    root: str,
    direction: MapDirection = "DOWNSTREAM",
    depth: int | None = None,
    types: list[str] | None = None,
) -> MapView:
    """The map of ``root`` with its labels (one batched read of the CIs in it)."""
    found = dependency_map(engine, root, direction, depth, types)
    model = store.model
    records = store.get_cis(list(found.nodes))
    kinds = {name: spec.impact for name, spec in model.relationship_types.items()}
    groups = {s for s, t, d in found.edges if kinds.get(t) == "redundant"}
    members: dict[str, int] = {}  # a group's members in the whole graph, not only on the map
    if groups:
        here, _, typ = engine.out_edges(sorted(groups))
        names = engine.id_array()
        for h, k in zip(names[here].tolist(), typ.tolist(), strict=True):
            if kinds.get(engine.type_names[k]) == "redundant":
                members[h] = members.get(h, 0) + 1
    view = MapView(root, direction, depth, list(types) if types is not None else None)
    for ident, distance in sorted(found.nodes.items(), key=lambda x: (x[1], x[0])):
        ci = records.get(ident)
        if ci is None:
            continue
        view.nodes.append({
            "id": ci.id, "name": ci.name, "class": ci.cls, "family": family_of(model, ci.cls),
            "status": ci.status, "distance": distance,
            "min_up": int(ci.attributes.get("min_up") or 1) if ci.id in groups else None,
            "members": members.get(ci.id),
        })  # fmt: skip
    for source, rel_type, target in found.edges:
        view.edges.append({"source": source, "target": target, "type": rel_type,
                           "impact": kinds.get(rel_type, "required")})  # fmt: skip
    return view


_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ margin: 0; font: 14px/1.4 system-ui, sans-serif; }}
header {{ padding: .4em 1em; background: #0b3d5c; color: #fff; }}
main {{ display: grid; grid-template-columns: 1fr 320px; height: calc(100vh - 3em); }}
#cy {{ min-height: 400px; }}
aside {{ overflow: auto; border-left: 1px solid #ddd; padding: .5em; font-size: .9em; }}
.swatch {{ display: inline-block; width: 1em; height: .8em; border: 1px solid #333; }}
</style>
</head>
<body>
<header><strong>{title}</strong> — {count} CIs · made by servicegraph; drag to pan, scroll to zoom,
click a CI for its details.</header>
<main>
<div id="cy" role="img" aria-label="dependency map"></div>
<aside><p id="info"></p><div id="details"></div><h3>Legend</h3><ul id="legend"></ul>
<button id="png" type="button">Download PNG</button>
<button id="svg" type="button">Download SVG</button></aside>
</main>
{scripts}
<script>
(function () {{
  var data = {data};
  function save(blob, name) {{
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name; document.body.append(a); a.click(); a.remove();
  }}
  var byId = new Map(data.map.nodes.map(function (n) {{ return [n.id, n]; }}));
  var map = new SGMap(document.getElementById("cy"), {{
    onInfo: function (c) {{ document.getElementById("info").textContent =
      "Showing " + c.shown + " of " + c.total + " CIs" + (c.total > c.shown ?
      " (at most " + c.cap + " drawn; click a dotted box to show more)" : "."); }},
    onNode: function (id) {{
      var n = byId.get(id), box = document.getElementById("details");
      box.textContent = "";
      ["name", "class", "id", "status", "distance", "minUp"].forEach(function (k) {{
        if (n[k] === null || n[k] === undefined) return;
        var p = document.createElement("p"); p.textContent = k + ": " + n[k]; box.append(p);
      }});
    }},
  }});
  map.show(data.map, data.root);
  map.legend().forEach(function (item) {{
    var li = document.createElement("li"), s = document.createElement("span");
    s.className = "swatch"; s.style.background = item.colour;
    li.append(s, " " + item.label + ": " + item.classes.join(", "));
    document.getElementById("legend").append(li);
  }});
  document.getElementById("png").onclick = function () {{ save(map.png(), "map.png"); }};
  document.getElementById("svg").onclick = function () {{
    save(new Blob([map.svg()], {{ type: "image/svg+xml" }}), "map.svg"); }};
}})();
</script>
</body>
</html>
"""
