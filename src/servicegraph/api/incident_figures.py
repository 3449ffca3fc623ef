"""The analyst's incident figures (plotly), each from the incident frame
(:func:`servicegraph.processes.incident.trends.incident_frame`), and the HTML report that holds
them all in one self-contained file (plotly's own HTML export, the library embedded once: it
opens offline)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicegraph.api.figures import PALETTE

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

__all__ = ["incident_figures", "write_incident_report"]


def _weeks(frame: pd.DataFrame) -> pd.Series:
    weeks: pd.Series = frame["opened_at"].dt.tz_convert(None).dt.to_period("W").dt.start_time
    return weeks


def _by_service(frame: pd.DataFrame, top: int) -> pd.DataFrame:
    data = frame[["opened_at", "services"]].explode("services")
    data["services"] = data["services"].fillna("(no service hit)")
    keep = data["services"].value_counts().index[:top]
    data.loc[~data["services"].isin(keep), "services"] = "(other)"
    data["week"] = _weeks(data)
    return data.groupby(["week", "services"]).size().reset_index(name="incidents")


def weekly_by_service(frame: pd.DataFrame, top: int = 8) -> go.Figure:
    import plotly.express as px

    data = _by_service(frame, top)
    fig = px.bar(data, x="week", y="incidents", color="services", barmode="stack",
                 color_discrete_sequence=PALETTE, title="Incidents per week by service hit")  # fmt: skip
    fig.update_layout(legend_title_text="service")
    return fig


def service_heatmap(frame: pd.DataFrame, top: int = 15) -> go.Figure:
    import plotly.express as px

    data = _by_service(frame, top).pivot(index="services", columns="week", values="incidents")
    fig = px.imshow(data.fillna(0), aspect="auto", color_continuous_scale="Viridis",
                    labels={"color": "incidents", "x": "week", "y": "service"},
                    title="Incidents: service × week")  # fmt: skip
    return fig


def root_cause_pareto(frame: pd.DataFrame) -> go.Figure:
    import plotly.graph_objects as go

    counts = frame["cause_class"].fillna("(unknown)").value_counts()
    share = counts.cumsum() / max(1, counts.sum()) * 100
    fig = go.Figure()
    fig.add_bar(x=list(counts.index), y=list(counts.values), name="incidents",
                marker_color=PALETTE[0])  # fmt: skip
    fig.add_scatter(x=list(counts.index), y=list(share.values), name="cumulative %",
                    yaxis="y2", mode="lines+markers", marker_color=PALETTE[3])  # fmt: skip
    fig.update_layout(title="Pareto of root-cause classes (problem root cause, else the CI hit)",
                      yaxis={"title": "incidents"},
                      yaxis2={"title": "cumulative %", "overlaying": "y", "side": "right",
                              "range": [0, 105]})  # fmt: skip
    return fig


def mttr_trend(frame: pd.DataFrame) -> go.Figure:
    import plotly.express as px

    data = frame.dropna(subset=["hours_to_resolve"]).copy()
    data["week"] = _weeks(data)
    weekly = data.groupby("week")["hours_to_resolve"].agg(["mean", "median", "count"]).reset_index()
    fig = px.line(weekly, x="week", y=["mean", "median"], markers=True,
                  color_discrete_sequence=PALETTE, hover_data=["count"],
                  title="Time to resolve per week (hours)")  # fmt: skip
    fig.update_layout(yaxis_title="hours", legend_title_text="")
    return fig


def incident_figures(frame: pd.DataFrame, top: int = 8) -> dict[str, Any]:
    """``{"weekly_by_service", "heatmap", "pareto", "mttr"}``: plotly figures."""
    return {
        "weekly_by_service": weekly_by_service(frame, top),
        "heatmap": service_heatmap(frame, max(top, 15)),
        "pareto": root_cause_pareto(frame),
        "mttr": mttr_trend(frame),
    }


def write_incident_report(figures: dict[str, Any], path: str | Path, title: str) -> Path:
    """One self-contained HTML file with every figure (plotly.js embedded once)."""
    from html import escape

    parts = []
    for n, fig in enumerate(figures.values()):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=n == 0))
    body = "\n".join(f"<section>{p}</section>" for p in parts)
    html = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"</head><body><h1>{escape(title)}</h1>\n{body}\n</body></html>")  # fmt: skip
    target = Path(path)
    target.write_text(html, encoding="utf-8")
    return target
