"""Plotly figures for notebooks: a dependency map drawn in layers (the root at the top, each hop a
layer below), nodes coloured by class with a legend, hover text with id, name and class.

Figures are plain ``plotly.graph_objects.Figure`` objects: a notebook shows them in one line, and
``fig.write_html(path)`` writes a self-contained file.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from servicegraph.processes.topology import DependencyMap

__all__ = ["achieved_figure", "dependency_map_figure"]

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def dependency_map_figure(
    dmap: DependencyMap, labels: dict[str, tuple[str, str]], title: str | None = None
) -> go.Figure:
    """The map as a layered figure; ``labels`` gives ``id: (class, name)`` (store.labels)."""
    import plotly.graph_objects as go

    layers: dict[int, list[str]] = defaultdict(list)
    for ident, hops in sorted(dmap.nodes.items(), key=lambda kv: (kv[1], kv[0])):
        layers[hops].append(ident)
    position: dict[str, tuple[float, float]] = {}
    sign = -1 if dmap.direction == "DOWNSTREAM" else 1  # services above, infrastructure below
    for hops, members in layers.items():
        width = len(members)
        for i, ident in enumerate(members):
            position[ident] = ((i + 0.5) / width, sign * hops)
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for source, _, target in dmap.edges:
        if source in position and target in position:
            (x0, y0), (x1, y1) = position[source], position[target]
            edge_x += [x0, x1, None]
            edge_y += [y0, y1, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", hoverinfo="skip",
                             line={"width": 0.6, "color": "#999"}, showlegend=False))  # fmt: skip
    by_class: dict[str, list[str]] = defaultdict(list)
    for ident in position:
        by_class[labels.get(ident, ("?", ident))[0]].append(ident)
    for i, (cls, members) in enumerate(sorted(by_class.items())):
        fig.add_trace(
            go.Scatter(
                x=[position[m][0] for m in members],
                y=[position[m][1] for m in members],
                mode="markers",
                name=cls,
                marker={"size": 12 if cls else 9, "color": PALETTE[i % len(PALETTE)],
                        "line": {"width": 1, "color": "white"}},
                text=[f"{m}<br>{labels.get(m, ('', m))[1]}<br>{cls}" for m in members],
                hoverinfo="text",
            )
        )  # fmt: skip
    fig.update_layout(
        title=title or f"{dmap.direction.lower()} of {dmap.root} ({len(position)} CIs)",
        xaxis={"visible": False},
        yaxis={"title": "hops from the root", "zeroline": False},
        plot_bgcolor="white",
        legend={"title": "class"},
        height=max(400, 120 * (len(layers) + 1)),
    )
    return fig


def achieved_figure(frame: Any, service: str) -> go.Figure:
    """Achieved availability of ``service`` per month beside its SLA target and its designed
    (computed) availability, from :meth:`ServiceGraph.achieved_availability`'s frame."""
    import plotly.graph_objects as go

    rows = frame[frame["service"] == service]
    fig = go.Figure()
    for column, dash in (("achieved", None), ("target", "dash"), ("designed", "dot")):
        fig.add_trace(go.Scatter(x=rows["month"], y=rows[column], name=column,
                                 mode="lines+markers", line={"dash": dash}))  # fmt: skip
    fig.update_layout(title=f"{service}: achieved vs target vs designed availability",
                      yaxis={"title": "availability", "tickformat": ".3%"},
                      xaxis={"title": "month"}, plot_bgcolor="white")  # fmt: skip
    return fig
