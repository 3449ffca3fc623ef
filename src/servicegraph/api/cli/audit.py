"""The ``servicegraph health`` command (ISO/IEC 20000-1 9.1)."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from servicegraph.api.cli.common import DbOption, ModelOption, open_graph, out, safe
from servicegraph.api.cli.output import check_format, emit


def health(
    cls: Annotated[
        str | None, typer.Option("--class", help="Only this class (and subclasses).")
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="Only this service's dependency closure.")
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option("--policy", help="Audit policy file (default: SERVICEGRAPH_AUDIT_POLICY)."),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=0, help="Findings shown in the table (JSON: all).")
    ] = 50,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """CMDB health: completeness, correctness and compliance (0..100) overall and per class, and
    the findings, each with the rule that made it and how to fix it."""
    check_format(fmt, ("table", "json"))
    with open_graph(db, model) as sg:
        result = sg.health(cls, service, policy)
    if fmt == "json":
        sys.stdout.write(json.dumps(result.to_dict(), indent=1, ensure_ascii=False) + "\n")
        return
    s = result.scores
    out.print(safe(f"score {s['score']}  completeness {s['completeness']}  correctness "
                   f"{s['correctness']}  compliance {s['compliance']}  ({result.cis} CIs, "
                   f"{len(result.findings)} findings)"))  # fmt: skip
    rows = [{"class": c, **v} for c, v in result.by_class.items()]
    emit(rows, ["class", "cis", "score", "completeness", "correctness", "compliance"], "table",
         title="per class")  # fmt: skip
    emit(result.findings[:limit], ["rule", "category", "ci", "detail", "fix"], "table",
         title=f"findings (first {min(limit, len(result.findings))} of {len(result.findings)})")  # fmt: skip
