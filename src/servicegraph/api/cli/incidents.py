"""The ``servicegraph incident …``, ``problem …``, ``rca`` and ``report incidents`` commands
(ISO/IEC 20000-1 8.1, 8.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from servicegraph.api.cli.changes import RoleOption, UserOption, _fields
from servicegraph.api.cli.common import (
    DbOption,
    ModelOption,
    open_graph,
    out,
    read_json_file,
    safe,
)
from servicegraph.api.cli.output import check_format, emit, write_json
from servicegraph.errors import Problem, ValidationFailed
from servicegraph.processes.access import Actor
from servicegraph.processes.incident.lifecycle import ACTIONS
from servicegraph.processes.incident.problem import PROBLEM_ACTIONS

incident_app = typer.Typer(
    help="Incident management: record, work, import, breaches, major incidents.",
    no_args_is_help=True,
)
problem_app = typer.Typer(
    help="Problem management: problems, root causes, known errors, RFCs.", no_args_is_help=True
)
report_app = typer.Typer(help="Reports as self-contained HTML files.", no_args_is_help=True)

FormatOption = Annotated[str, typer.Option("--format", help="table, json or csv")]
INCIDENT_COLUMNS = ["id", "name", "state", "priority", "urgency", "impact_level", "major",
                    "opened_at", "resolved_at"]  # fmt: skip


def _row(ci: Any) -> dict[str, Any]:
    row = {"id": ci.id, "name": ci.name, "version": ci.version, **ci.attributes}
    row.pop("impact", None)
    return row


# -- incidents ------------------------------------------------------------------------------------
@incident_app.command("record")
def incident_record(
    summary: Annotated[str, typer.Argument(help="What is wrong, in one line.")],
    cis: Annotated[list[str], typer.Option("--ci", help="An affected CI (repeatable).")],
    incident_id: Annotated[
        str | None, typer.Option("--id", help="Its id (default: inc-<time>-<random>).")
    ] = None,
    urgency: Annotated[
        str | None, typer.Option(help="high, medium or low (default: the policy's).")
    ] = None,
    opened_at: Annotated[str | None, typer.Option(help="ISO 8601 (default: now).")] = None,
    description: Annotated[str | None, typer.Option(help="What was observed.")] = None,
    source: Annotated[str | None, typer.Option(help="monitoring, phone, portal …")] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Record an incident, prioritised from the graph; prints it with the impact that set its
    priority, its SLA timers, and known errors to try first."""
    with open_graph(db, model) as sg:
        inc = sg.incidents.record(summary, cis, Actor(user, role), incident_id, urgency,
                                  opened_at, description, source)  # fmt: skip
        write_json({**_row(inc), "impact": inc.attributes.get("impact"),
               "timers": sg.incidents.timers(inc.id),
               "suggestions": sg.incidents.suggestions(inc.id),
               "suspect_changes": sg.incidents.suspect_changes(inc.id)})  # fmt: skip


@incident_app.command("do")
def incident_do(
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(ACTIONS)}.")],
    reason: Annotated[str, typer.Option(help="Why (journaled; required to hold).")] = "",
    resolution: Annotated[
        str | None, typer.Option(help="How it was resolved (required to resolve).")
    ] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Move an incident through its lifecycle (exit 8 names the rule that refused it)."""
    with open_graph(db, model) as sg:
        inc = sg.incidents.transition(incident_id, action, Actor(user, role), reason, resolution)
        write_json(_row(inc))


@incident_app.command("reprioritise")
def incident_reprioritise(
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    urgency: Annotated[str | None, typer.Option(help="A new urgency.")] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Assess the incident again on today's graph (and a new urgency)."""
    with open_graph(db, model) as sg:
        inc = sg.incidents.reprioritise(incident_id, Actor(user, role), urgency)
        write_json({**_row(inc), "impact": inc.attributes.get("impact")})


@incident_app.command("show")
def incident_show(
    incident_id: Annotated[str, typer.Argument(metavar="ID")],
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """An incident with its CIs, impact, timers, problem, suggestions, suspect changes and
    history, as JSON."""
    with open_graph(db, model) as sg:
        details = sg.incidents.details(incident_id)
        details["history"] = [e.to_dict() for e in sg.store.journal(entity=incident_id)]
        write_json(details)


@incident_app.command("list")
def incident_list(
    states: Annotated[
        list[str] | None, typer.Option("--state", help="Only in this state (repeatable).")
    ] = None,
    priority: Annotated[int | None, typer.Option(help="Only this priority.")] = None,
    major: Annotated[bool, typer.Option("--major", help="Only major incidents.")] = False,
    ci: Annotated[str | None, typer.Option("--ci", help="Only those affecting this CI.")] = None,
    first: Annotated[int, typer.Option(min=1, max=10000, help="How many.")] = 100,
    fmt: FormatOption = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Incidents by id, filtered."""
    check_format(fmt)
    with open_graph(db, model) as sg:
        page = sg.incidents.find(states, priority, True if major else None, ci, first)
    emit([_row(c) for c in page.items], INCIDENT_COLUMNS, fmt)


@incident_app.command("import")
def incident_import(
    path: Annotated[
        Path, typer.Argument(help="JSON: a list of incidents (or {incidents: [...]}).")
    ],
    user: UserOption = "monitoring",
    role: RoleOption = "service_desk",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Bulk intake: {id, summary, affects: [CI ids], opened_at, urgency, description, source}
    per incident (history may add state, responded_at, resolved_at, closed_at, resolution).
    One transaction; every problem listed; ids that exist are left alone (idempotent)."""
    data = read_json_file(path)
    if isinstance(data, dict) and set(data) == {"incidents"}:
        data = data["incidents"]
    with open_graph(db, model) as sg:
        result = sg.incidents.import_incidents(data, Actor(user, role))
    write_json(
        {
            "created": len(result["created"]),
            "existing": len(result["existing"]),
            "created_ids": result["created"],
            "existing_ids": result["existing"],
        }
    )


@incident_app.command("major")
def incident_major(
    all_: Annotated[bool, typer.Option("--all", help="Resolved and closed ones too.")] = False,
    fmt: FormatOption = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Major incidents (the policy's criteria), newest first, with why they are major."""
    check_format(fmt)
    with open_graph(db, model) as sg:
        rows = [{**_row(c), "because": (c.attributes.get("impact") or {}).get("major_because")}
                for c in sg.incidents.major(open_only=not all_)]  # fmt: skip
    emit(rows, [*INCIDENT_COLUMNS, "because"], fmt)


@incident_app.command("breaches")
def incident_breaches(
    open_only: Annotated[bool, typer.Option("--open", help="Only unresolved incidents.")] = False,
    fmt: FormatOption = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Breached response and resolution targets, computed now, most overdue first."""
    check_format(fmt)
    with open_graph(db, model) as sg:
        rows = sg.incidents.breaches(open_only)
    emit(rows, ["incident", "kind", "priority", "state", "target_minutes", "elapsed_minutes",
                "overdue_minutes", "still_running", "from"], fmt)  # fmt: skip


@incident_app.command("changes")
def incident_changes(
    ident: Annotated[str, typer.Argument(metavar="ID", help="An incident, or a change.")],
    hours: Annotated[
        float | None, typer.Option(min=0, help="Window after a change (default: policy's).")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """For an incident: the changes that may have induced it (implemented shortly before, with
    one of its CIs in their blast radius). For a change: the incidents after it in its blast
    radius."""
    with open_graph(db, model) as sg:
        record = sg.store.get_ci(ident)
        if record is not None and record.cls == "change":
            write_json(sg.incidents.after_change(ident, hours))
        else:
            write_json({"incident": ident, "suspect_changes": sg.incidents.suspect_changes(ident)})


# -- problems -------------------------------------------------------------------------------------
@problem_app.command("create")
def problem_create(
    problem_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str | None, typer.Option(help="Title (default: from the group).")] = None,
    incidents: Annotated[
        list[str] | None, typer.Option("--incident", help="A linked incident (repeatable).")
    ] = None,
    root_causes: Annotated[
        list[str] | None, typer.Option("--root-cause", help="A root-cause CI (repeatable).")
    ] = None,
    from_group: Annotated[
        int | None,
        typer.Option(
            "--from-group",
            help="Take group N of `rca` (same --from/--to): its "
            "incidents and its best candidate as root cause.",
        ),
    ] = None,
    start: Annotated[str | None, typer.Option("--from", help="rca window start.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="rca window end.")] = None,
    description: Annotated[str | None, typer.Option(help="What is known.")] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Record a problem linked to incidents and naming root-cause CIs (or from an rca group)."""
    with open_graph(db, model) as sg:
        evidence = None
        incs, causes = list(incidents or []), list(root_causes or [])
        if from_group is not None:
            result = sg.root_causes(None, start, end)
            groups = result.groups
            if not 1 <= from_group <= len(groups) or not groups[from_group - 1]["candidates"]:
                raise ValidationFailed([Problem("rca", "--from-group",
                                                f"no group {from_group} with a candidate; rca "
                                                f"found {len(groups)} group(s)")], wrote=False)  # fmt: skip
            group = groups[from_group - 1]
            best = group["candidates"][0]
            incs += group["incidents"]
            causes.append(best["id"])
            name = name or f"{best['id']} explains {len(group['incidents'])} incidents"
            evidence = {"window": result.window, "group": from_group, "candidate": best}
        if not name:
            raise typer.BadParameter("give a title", param_hint="--name")
        problem = sg.problems.create(problem_id, name, Actor(user, role), incs, causes,
                                     description, evidence)  # fmt: skip
        write_json(sg.problems.details(problem.id))


@problem_app.command("link")
def problem_link(
    problem_id: Annotated[str, typer.Argument(metavar="ID")],
    incidents: Annotated[
        list[str] | None, typer.Option("--incident", help="An incident (repeatable).")
    ] = None,
    root_causes: Annotated[
        list[str] | None, typer.Option("--root-cause", help="A root-cause CI (repeatable).")
    ] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Link incidents and root-cause CIs to a problem."""
    with open_graph(db, model) as sg:
        sg.problems.link(problem_id, Actor(user, role), incidents or [], root_causes or [])
        write_json(sg.problems.details(problem_id))


@problem_app.command("do")
def problem_do(
    problem_id: Annotated[str, typer.Argument(metavar="ID")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(PROBLEM_ACTIONS)}.")],
    workaround: Annotated[str | None, typer.Option(help="For known_error.")] = None,
    known_error_id: Annotated[
        str | None, typer.Option("--known-error-id", help="Id of the known error record.")
    ] = None,
    resolution: Annotated[str | None, typer.Option(help="For resolve.")] = None,
    reason: Annotated[str, typer.Option(help="Why (journaled).")] = "",
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Move a problem through its lifecycle (known_error, resolve, reopen, close)."""
    with open_graph(db, model) as sg:
        sg.problems.transition(problem_id, action, Actor(user, role), reason,
                               known_error_id=known_error_id, workaround=workaround,
                               resolution=resolution)  # fmt: skip
        write_json(sg.problems.details(problem_id))


@problem_app.command("show")
def problem_show(
    problem_id: Annotated[str, typer.Argument(metavar="ID")],
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """A problem with its incidents, root causes, known errors, RFCs and effectiveness."""
    with open_graph(db, model) as sg:
        write_json(sg.problems.details(problem_id))


@problem_app.command("list")
def problem_list(
    fmt: FormatOption = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Problems by id."""
    from servicegraph.processes.listing import records_of_class

    check_format(fmt)
    with open_graph(db, model) as sg:
        rows = [_row(p) for p in records_of_class(sg.store, "problem")]
    emit(rows, ["id", "name", "state", "opened_at", "resolved_at"], fmt)


@problem_app.command("raise-change")
def problem_raise_change(
    problem_id: Annotated[str, typer.Argument(metavar="ID")],
    change_id: Annotated[str, typer.Option("--change", help="Id of the new RFC.")],
    name: Annotated[str, typer.Option(help="Title of the RFC.")],
    change_type: Annotated[str, typer.Option("--type", help="standard, normal, emergency.")] = (
        "normal"
    ),
    targets: Annotated[
        list[str] | None, typer.Option("--target", help="Default: the root-cause CIs.")
    ] = None,
    fields: Annotated[
        list[str] | None, typer.Option("--set", help="FIELD=VALUE for the RFC (repeatable).")
    ] = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Raise an RFC to remove the problem's cause (RAISED_FROM the problem)."""
    with open_graph(db, model) as sg:
        ci = sg.problems.raise_change(sg.changes, problem_id, change_id, name, Actor(user, role),
                                      change_type, targets or [], **_fields(fields))  # fmt: skip
        write_json({"id": ci.id, "name": ci.name, **ci.attributes, "raised_from": problem_id})


# -- rca and reports ------------------------------------------------------------------------------
def rca(
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 (default: 24 h ago).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 (default: now).")] = None,
    incidents: Annotated[
        list[str] | None, typer.Option("--incident", help="Rank for these (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Candidates per ranking.")] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Root-cause ranking: which CI's failure best explains the incidents (opened in the window
    and not closed, or the given ones), each score with its factors, and the incidents grouped
    by their best explanation."""
    check_format(fmt, ("table", "json"))
    with open_graph(db, model) as sg:
        result = sg.root_causes(incidents, start, end, limit)
    if fmt == "json":
        write_json(result.to_dict())
        return
    out.print(safe(f"{len(result.incidents)} incidents, {len(result.groups)} group(s)"))
    for group in result.groups:
        title = f"group {group['group']}: {len(group['incidents'])} incidents"
        if group["unexplained"]:
            title += " that no CI's failure explains"
        rows = [{"rank": n, "id": c["id"], "class": c["class"], "score": c["score"],
                 "explains": len(c["explains"]), "silent": c["silent_count"],
                 "distance": c["distance"],
                 "factors": ", ".join(f"{f['factor']}={f['value']} ({f['points']:+g})"
                                      for f in c["factors"]),
                 "ties": ", ".join(c["ties_with"])}
                for n, c in enumerate(group["candidates"], 1)]  # fmt: skip
        emit(rows, ["rank", "id", "class", "score", "explains", "silent", "distance", "factors",
                    "ties"], "table", title=title)  # fmt: skip


@report_app.command("incidents")
def report_incidents(
    html: Annotated[Path, typer.Option("--html", help="The HTML file to write.")],
    start: Annotated[str | None, typer.Option("--from", help="ISO 8601 start.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 end.")] = None,
    top: Annotated[int, typer.Option(min=1, max=50, help="Services shown by name.")] = 8,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Incident trends as one self-contained HTML file (opens offline): per week by service,
    service × week heat map, Pareto of root-cause classes, time-to-resolve trend."""
    from servicegraph.api.incident_figures import write_incident_report

    with open_graph(db, model) as sg:
        figures = sg.incident_figures(start, end, top)
    path = write_incident_report(figures, html, "Incident trends")
    out.print(safe(f"wrote {path} ({path.stat().st_size // 1024} KiB, {len(figures)} figures)"))
