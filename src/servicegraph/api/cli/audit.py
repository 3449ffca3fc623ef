"""The configuration audit commands (ISO/IEC 20000-1 9.1): ``health``, ``diff`` and
``baseline …``, and the ``--as-of`` option that show, export and impact take."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from servicegraph.api.cli.changes import RoleOption, UserOption
from servicegraph.api.cli.common import (
    DbOption,
    ModelOption,
    open_graph,
    out,
    read_json_file,
    safe,
)
from servicegraph.api.cli.output import check_format, emit, write_json
from servicegraph.processes.access import Actor

AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="As it was at a journal seq, an ISO 8601 time or a baseline id."),
]
PointOption = Annotated[
    str, typer.Option("--from", help="A journal seq, ISO 8601 time or baseline id.")
]
baseline_app = typer.Typer(
    help="Baselines of any CI set, kept by the journal.", no_args_is_help=True
)


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
        write_json(result.to_dict())
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


def diff(
    start: PointOption,
    end: Annotated[
        str | None, typer.Option("--to", help="A seq, ISO 8601 time or baseline id (default: now).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """What changed between two points: CIs created, updated (attribute by attribute), retired,
    deleted; relationships added and removed; who changed each and when."""
    check_format(fmt, ("table", "json"))
    with open_graph(db, model) as sg:
        result = sg.diff(start, end)
    if fmt == "json":
        write_json(result)
        return
    out.print(safe(f"from seq {result['from']['seq']} to seq {result['to']['seq']}: "
                   + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result["counts"].items())))  # fmt: skip
    rows = []
    for kind, items in result["cis"].items():
        for item in items:
            last = item["by"][-1]
            changes = "; ".join(f"{c['attribute']}: {c['before']!r} → {c['after']!r}"
                                for c in item.get("changes", []))  # fmt: skip
            rows.append({"change": kind, "id": item["id"], "class": item["class"],
                         "by": last["actor"], "at": last["at"], "what": changes})  # fmt: skip
    for kind, items in result["relationships"].items():
        for item in items:
            last = item["by"][-1]
            rows.append({"change": f"relationship {kind}", "id": item["source"],
                         "class": item["type"], "by": last["actor"], "at": last["at"],
                         "what": f"{item['source']} -[{item['type']}]-> {item['target']}"})  # fmt: skip
    emit(rows, ["change", "id", "class", "by", "at", "what"], "table")


@baseline_app.command("create")
def baseline_create(
    ident: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option(help="What it is for.")],
    ids: Annotated[
        list[str] | None, typer.Option("--ci", "--ids", help="A CI (repeatable).")
    ] = None,
    cls: Annotated[str | None, typer.Option("--class", help="Every CI of a class.")] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="A service and its dependency closure.")
    ] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Baseline a CI set at the journal's head (its members' state is the journal's)."""
    from servicegraph.processes.audit.timetravel import create_baseline

    with open_graph(db, model) as sg:
        made = create_baseline(sg.store, sg.engine, ident, name, Actor(user, role), ids or [], cls,
                               service)  # fmt: skip
    a = made.attributes
    out.print(
        safe(f"baseline {made.id}: {len(a['ci_ids'])} CIs at seq {a['seq']} ({a['taken_at']})")
    )


@baseline_app.command("list")
def baseline_list(
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Every baseline (releases' too)."""
    from servicegraph.processes.audit.timetravel import list_baselines

    check_format(fmt)
    with open_graph(db, model) as sg:
        emit(list_baselines(sg.store), ["id", "name", "taken_at", "seq", "cis", "selector"], fmt)


@baseline_app.command("show")
def baseline_show(
    ident: Annotated[str, typer.Argument(metavar="ID")],
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """A baseline: its members as they were, and their drift since (JSON)."""
    from servicegraph.processes.audit.timetravel import show_baseline

    with open_graph(db, model) as sg:
        data = show_baseline(sg.store, ident)
    write_json(data)


def reconcile(
    feed: Annotated[
        Path, typer.Argument(help="The feed: {records: [{id, class, name, attributes}]}.")
    ],
    source: Annotated[str, typer.Option("--source", help="The discovery source (policy rules).")],
    apply: Annotated[bool, typer.Option("--apply", help="Write what the rules allow.")] = False,
    policy: Annotated[str | None, typer.Option("--policy", help="Audit policy file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Identify a discovery feed's records (by the identification rules, not by id): matched,
    new, missing, drift, ambiguous. A dry run unless --apply."""
    check_format(fmt, ("table", "json"))
    data = read_json_file(feed)
    with open_graph(db, model) as sg:
        report = sg.reconcile(data, source, apply, policy)
    if fmt == "json":
        write_json(report)
        return
    out.print(safe(f"{report['records']} records from {source}: " + ", ".join(
        f"{k} {v}" for k, v in report["counts"].items())))  # fmt: skip
    emit(report["drift"][:50], ["ci", "attribute", "cmdb", "discovered"], "table", title="drift")
    if report["ambiguous"]:
        emit(report["ambiguous"], ["feed_id", "rule", "cis"], "table", title="ambiguous")
    applied = report.get("applied")
    if applied is not None:
        out.print(safe(f"applied: {len(applied['updated'])} attribute updates, "
                       f"{len(applied['created'])} new CIs, {len(applied['kept'])} kept (a "
                       f"higher-priority source owns them), {applied['seen']} CIs seen"))  # fmt: skip
        if applied["not_created"]:
            emit(applied["not_created"][:50], ["feed_id", "why"], "table", title="not created")
    else:
        out.print("dry run: nothing written (--apply writes what the rules allow)")
