"""``servicegraph sla …`` and ``servicegraph supplier …``: SLAs and supplier commitments checked
against the availability the model can reach (6.1, 7.2)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from servicegraph.api.cli.common import DbOption, ModelOption, err, open_graph, safe
from servicegraph.api.cli.output import check_format, emit

__all__ = ["sla_app", "supplier_app"]

sla_app = typer.Typer(help="Service level agreements against computed availability.",
                      no_args_is_help=True)  # fmt: skip
supplier_app = typer.Typer(help="Supplier contracts against the SLAs that depend on them.",
                           no_args_is_help=True)  # fmt: skip
FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]


@sla_app.command("check")
def sla_check(fmt: FormatOption = "table", db: DbOption = None, model: ModelOption = None) -> None:
    """For every SLA and service it covers: the computed availability against the target, the
    gap in minutes a year and the cut sets that cause it (exit 8 when a live SLA is missed)."""
    check_format(fmt)
    from servicegraph.processes.availability.sla import sla_risk

    with open_graph(db, model) as sg:
        rows = sla_risk(sg.engine, sg.store)
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, indent=1, default=str) + "\n")
    else:
        for row in rows:
            row["top_cut_sets"] = "; ".join(
                ", ".join(c["cis"]) for c in row.get("top_cut_sets") or []
            )
        emit(rows, ["sla", "service", "live", "target", "availability", "meets",
                    "gap_minutes_per_year", "assumed", "top_cut_sets"], fmt)  # fmt: skip
    missed = [r for r in rows if r.get("live") and r.get("meets") is False]
    if missed:
        err.print(safe(f"{len(missed)} live SLA/service pair(s) cannot reach their target"),
                  highlight=False)  # fmt: skip
        raise typer.Exit(8)


@supplier_app.command("alignment")
def supplier_alignment(
    fmt: FormatOption = "table", db: DbOption = None, model: ModelOption = None
) -> None:
    """Each supplier commitment on a live SLA's dependency chain: does it let the SLA reach its
    target, and what commitment would; expired contracts under live SLAs."""
    check_format(fmt)
    with open_graph(db, model) as sg:
        found = sg.supplier_alignment()
    if fmt == "json":
        sys.stdout.write(json.dumps(found, indent=1, default=str) + "\n")
        return
    emit(found["commitments"], ["sla", "service", "contract", "supplier", "ci", "commitment",
                                 "aligned", "required_commitment", "reason"], fmt,
         title="supplier commitments")  # fmt: skip
    if found["expired_under_live_slas"]:
        emit(found["expired_under_live_slas"], ["contract", "supplier", "valid_to", "sla",
                                                "service", "ci"], fmt,
             title="expired contracts under live SLAs")  # fmt: skip
