"""The ``servicegraph change …`` and ``servicegraph release …`` commands (9.2, 9.3)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from servicegraph.api.cli.common import DbOption, ModelOption, open_graph, out
from servicegraph.api.cli.output import check_format, emit, write_json
from servicegraph.processes.access import Actor
from servicegraph.processes.change import ACTIONS

change_app = typer.Typer(
    help="Change management: RFCs, assessment, schedule.", no_args_is_help=True
)
release_app = typer.Typer(help="Release management: baselines, deployment.", no_args_is_help=True)

UserOption = Annotated[str, typer.Option("--user", help="Who acts (journaled).")]
RoleOption = Annotated[
    str, typer.Option("--role", help="The role the rules check (the CLI has direct store access).")
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="FIELD=VALUE (VALUE as JSON when it parses, else text); repeatable."
    ),
]


def _fields(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r}: use FIELD=VALUE", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _change_row(ci: Any) -> dict[str, Any]:
    return {"id": ci.id, "name": ci.name, "version": ci.version, **ci.attributes}


@change_app.command("create")
def change_create(
    change_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option(help="Title of the RFC.")],
    targets: Annotated[list[str], typer.Option("--target", help="A CI it touches (repeatable).")],
    change_type: Annotated[
        str, typer.Option("--type", help="standard, normal or emergency.")
    ] = "normal",
    fields: SetOption = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Record a new RFC (state draft)."""
    with open_graph(db, model) as sg:
        ci = sg.changes.create(change_id, name, change_type, targets, Actor(user, role),
                               **_fields(fields))  # fmt: skip
        write_json(_change_row(ci))


@change_app.command("do")
def change_do(
    change_id: Annotated[str, typer.Argument(metavar="ID")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(ACTIONS)}.")],
    reason: Annotated[str, typer.Option(help="Why (journaled).")] = "",
    fields: SetOption = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Move an RFC through its lifecycle (exit 8 names the rule that refused it)."""
    with open_graph(db, model) as sg:
        ci = sg.changes.transition(change_id, action, Actor(user, role), reason, **_fields(fields))
        row = _change_row(ci)
        row.pop("assessment", None)
        write_json(row)


@change_app.command("amend")
def change_amend(
    change_id: Annotated[str, typer.Argument(metavar="ID")],
    fields: SetOption = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Edit an RFC before approval (e.g. --set remediation_plan='…')."""
    with open_graph(db, model) as sg:
        write_json(_change_row(sg.changes.amend(change_id, Actor(user, role), **_fields(fields))))


@change_app.command("show")
def change_show(
    change_id: Annotated[str, typer.Argument(metavar="ID")],
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """An RFC with its assessment, targets and history, as JSON."""
    with open_graph(db, model) as sg:
        ci = sg.changes.get(change_id)
        write_json({**_change_row(ci), "targets": sg.changes.targets(change_id),
               "history": [e.to_dict() for e in sg.store.journal(entity=change_id)]})  # fmt: skip


@change_app.command("schedule")
def change_schedule(
    start: Annotated[str, typer.Option("--from", help="ISO 8601 start of the range.")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 end of the range.")],
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """The forward schedule of change in a range, with collisions and their reasons (JSON)."""
    with open_graph(db, model) as sg:
        write_json(sg.changes.schedule(start, end))


@change_app.command("list")
def change_list(
    states: Annotated[
        list[str] | None, typer.Option("--state", help="Only RFCs in this state (repeatable).")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Window overlapping from (ISO 8601).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="… to (ISO 8601).")] = None,
    change_types: Annotated[
        list[str] | None, typer.Option("--type", help="standard, normal or emergency.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """RFCs by state, type and window, by window start (the CAB agenda)."""
    check_format(fmt)
    with open_graph(db, model) as sg:
        found = sg.changes.find(states, start, end, change_types)
    if fmt == "json":
        emit([_change_row(c) for c in found], [], "json")
        return
    columns = ["id", "name", "change_type", "state", "window_start", "window_end", "risk_level"]
    emit([{"id": c.id, "name": c.name, **c.attributes} for c in found], columns, fmt)


@change_app.command("trends")
def change_trends(db: DbOption = None, model: ModelOption = None) -> None:
    """RFCs per month, change type, target class and outcome."""
    with open_graph(db, model) as sg:
        out.print(sg.changes.trends().to_string(index=False))


@release_app.command("create")
def release_create(
    release_id: Annotated[str, typer.Argument(metavar="ID")],
    name: Annotated[str, typer.Option(help="Release name.")],
    changes: Annotated[
        list[str], typer.Option("--change", help="A change it deploys (repeatable).")
    ],
    release_type: Annotated[
        str, typer.Option("--type", help="major, minor or emergency.")
    ] = "minor",
    resolves: Annotated[
        list[str] | None, typer.Option("--resolves", help="A problem or known error (repeatable).")
    ] = None,
    fields: SetOption = None,
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Record a release of changes."""
    with open_graph(db, model) as sg:
        ci = sg.releases.create(release_id, name, release_type, changes, Actor(user, role),
                                resolves or [], **_fields(fields))  # fmt: skip
        write_json(_change_row(ci))


@release_app.command("baseline")
def release_baseline(
    release_id: Annotated[str, typer.Argument(metavar="ID")],
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Baseline every CI in the release's combined blast radius."""
    with open_graph(db, model) as sg:
        b = sg.releases.take_baseline(release_id, Actor(user, role))
        write_json(
            {"baseline": b.id, "seq": b.attributes["seq"], "cis": len(b.attributes["ci_ids"])}
        )


@release_app.command("deploy")
def release_deploy(
    release_id: Annotated[str, typer.Argument(metavar="ID")],
    failed: Annotated[bool, typer.Option("--failed", help="The deployment failed.")] = False,
    notes: Annotated[str, typer.Option(help="Deployment notes.")] = "",
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Record the deployment (refused without a baseline)."""
    with open_graph(db, model) as sg:
        write_json(
            _change_row(sg.releases.deploy(release_id, Actor(user, role), not failed, notes))
        )


@release_app.command("rollback")
def release_rollback(
    release_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help="Why.")] = "",
    user: UserOption = "cli",
    role: RoleOption = "admin",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Restore the baselined CI records and mark the release rolled back."""
    with open_graph(db, model) as sg:
        write_json(_change_row(sg.releases.rollback(release_id, Actor(user, role), reason)))


@release_app.command("incidents")
def release_incidents(
    release_id: Annotated[str, typer.Argument(metavar="ID")],
    days: Annotated[int, typer.Option(min=0, help="Days after deployment.")] = 7,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Incidents in the release's blast radius within N days after deployment."""
    with open_graph(db, model) as sg:
        write_json(sg.releases.incidents_after(release_id, days))
