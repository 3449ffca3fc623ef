"""``servicegraph map``: a dependency map as a file to share — DOT for Graphviz, GraphML for yEd
and Gephi, Cytoscape JSON for other frontends, or one self-contained interactive HTML page."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from servicegraph.api.cli.common import DbOption, ModelOption, err, open_graph
from servicegraph.api.maps import FORMATS
from servicegraph.errors import Problem, ValidationFailed

DIRECTIONS = {"down": "DOWNSTREAM", "up": "UPSTREAM", "both": "BOTH"}


def map_command(
    ci_id: Annotated[str, typer.Argument(metavar="ID", help="The CI the map is drawn around.")],
    direction: Annotated[
        str, typer.Option(help="down (what it needs), up (what needs it) or both.")
    ] = "down",
    depth: Annotated[int | None, typer.Option(min=1, help="Hops from ID (default: all).")] = 3,
    types: Annotated[
        list[str] | None, typer.Option("--types", help="Only these relationship types (repeat).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="dot, graphml, cyjs or html")] = "html",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="The file (default: standard output).")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """A dependency map as a file: DOT, GraphML, Cytoscape JSON or a self-contained HTML page with
    the interactive map (opens offline)."""
    problems = []
    if direction not in DIRECTIONS:
        problems.append(Problem("map", "--direction", f"{direction!r}: use up, down or both"))
    if fmt not in FORMATS:
        problems.append(Problem("map", "--format", f"{fmt!r}: use {', '.join(FORMATS)}"))
    if problems:
        raise ValidationFailed(problems, wrote=False)
    with open_graph(db, model) as sg:
        view = sg.dependency_map(ci_id, DIRECTIONS[direction], depth, types)
    if fmt == "cyjs":
        text = json.dumps(view.to_cyjs(), indent=1, ensure_ascii=False) + "\n"
    else:
        text = {"dot": view.to_dot, "graphml": view.to_graphml, "html": view.to_html}[fmt]()
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"{len(view.nodes)} CIs, {len(view.edges)} relationships → {output}",
                  highlight=False)  # fmt: skip
