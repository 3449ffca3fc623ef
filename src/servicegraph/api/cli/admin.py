"""Administration commands: API tokens, backup and restore, the store's health check, undelete."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from servicegraph.api.cli.common import (
    ActorOption,
    CreateOption,
    DbOption,
    ModelOption,
    open_graph,
    out,
    safe,
)
from servicegraph.errors import ServiceGraphError, StoreCorrupt
from servicegraph.graph.backup import backup, restore
from servicegraph.processes.access import (
    ROLES,
    Actor,
    create_token,
    parse_duration,
    revoke_tokens,
)
from servicegraph.processes.configuration import undelete

__all__ = ["register_admin_commands", "token_app"]

token_app = typer.Typer(
    help="API tokens (bearer tokens for the GraphQL API; only their hashes are stored).",
    no_args_is_help=True,
)
FormatOption = Annotated[str, typer.Option("--format", help="table or json")]


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option(help="The user the token acts as.")],
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")],
    expires_in: Annotated[
        str | None, typer.Option("--expires-in", help="e.g. 90d, 12h, 30m (default: never).")
    ] = None,
    db: DbOption = None,
    model: ModelOption = None,
    actor: ActorOption = "cli",
    create: CreateOption = False,
) -> None:
    """Create a token and print it (once: only its hash is stored)."""
    lifetime = parse_duration(expires_in) if expires_in else None
    with open_graph(db, model, create=create) as sg:
        token = create_token(sg.store, user, role, actor=actor, expires_in=lifetime)
    sys.stdout.write(token + "\n")


@token_app.command("list")
def token_list(db: DbOption = None, model: ModelOption = None, fmt: FormatOption = "table") -> None:
    """Every token: id, user, role, created, expires, last used, revoked (never the token)."""
    with open_graph(db, model) as sg:
        tokens = sg.store.list_tokens()
    if fmt == "json":
        sys.stdout.write(json.dumps([t.to_dict() for t in tokens], indent=1) + "\n")
        return
    table = Table()
    for col in ("id", "user", "role", "created", "expires", "last used", "revoked"):
        table.add_column(col)
    for t in tokens:
        table.add_row(*(safe(v or "") for v in (t.id, t.user, t.role, t.created_at,
                                                t.expires_at, t.last_used_at, t.revoked_at)))  # fmt: skip
    out.print(table)


@token_app.command("revoke")
def token_revoke(
    ids: Annotated[
        list[str] | None, typer.Argument(metavar="ID...", help="Ids from `token list`.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Revoke every token of this user.")] = None,
    db: DbOption = None,
    model: ModelOption = None,
    actor: ActorOption = "cli",
) -> None:
    """Revoke tokens: refused at once by every server on this store."""
    if not ids and user is None:
        raise typer.BadParameter("name token ids or --user", param_hint="ID")
    with open_graph(db, model) as sg:
        revoked = revoke_tokens(sg.store, ids or [], user=user, actor=actor)
    out.print(
        f"revoked {len(revoked)} token(s)"
        + "".join(f"\n  {safe(t.id)} {safe(t.user)}" for t in revoked),
        highlight=False,
    )


def register_admin_commands(app: typer.Typer) -> None:
    """Add backup, restore, check and undelete to the main app."""

    @app.command("backup")
    def backup_(
        path: Annotated[str, typer.Argument(metavar="FILE", help="A new file for the backup.")],
        db: DbOption = None,
        model: ModelOption = None,
    ) -> None:
        """Copy everything (CIs, relationships, journal, tokens) into FILE; safe while a server
        runs."""
        with open_graph(db, model) as sg:
            counts = backup(sg.store, path)
        out.print(safe(f"backed up {_counts(counts)} to {path}"), highlight=False)

    @app.command("restore")
    def restore_(
        path: Annotated[str, typer.Argument(metavar="FILE", help="A file written by `backup`.")],
        replace: Annotated[
            bool, typer.Option("--replace", help="Discard what the store holds first.")
        ] = False,
        db: DbOption = None,
        model: ModelOption = None,
    ) -> None:
        """Load a backup into an empty store (or replace what it holds); restart servers after."""
        with open_graph(db, model, create=True) as sg:
            counts = restore(sg.store, path, replace=replace)
        out.print(safe(f"restored {_counts(counts)} from {path}"), highlight=False)

    @app.command("check")
    def check(db: DbOption = None, model: ModelOption = None) -> None:
        """The store's integrity check (SQLite's), and stored values the engine cannot use.

        Exit 3 when the store is damaged, 1 when values need fixing, 0 when all is well."""
        with open_graph(db, model) as sg:
            damaged = sg.store.integrity_problems()
            if damaged:
                raise StoreCorrupt(
                    f"{sg.store.uri} is damaged: {'; '.join(damaged[:10])}; restore the latest "
                    "backup (`servicegraph restore FILE --replace`)"
                )
            problems = list(sg.engine.data_problems.values())
        for p in problems:
            out.print(safe(f"{p.ci}.{p.attribute}: {p.detail}; fix: {p.fix}"), highlight=False)
        if problems:
            raise ServiceGraphError(f"{len(problems)} stored value(s) need fixing (listed above)")
        out.print("integrity ok; every stored value is usable")

    @app.command("recover")
    def recover_(
        force: Annotated[
            bool,
            typer.Option(
                "--force",
                help="Also when the import was heard from in the last 5 minutes (only when its "
                "process is known to be dead).",
            ),
        ] = False,
        db: DbOption = None,
        model: ModelOption = None,
        actor: ActorOption = "cli",
    ) -> None:
        """Roll back a Neo4j bulk import whose process died, so the store takes writes again.

        An import that fails rolls itself back; this is for one killed mid-way (writers are told
        to run it). Exit 0 with "nothing to recover" when no import holds the store."""
        with open_graph(db, model) as sg:
            undone = sg.store.recover_import(actor, force=force)
        if undone is None:
            out.print("nothing to recover: no bulk import holds the store")
            return
        if undone.first_seq is None:
            out.print("released the interrupted import: it had written nothing")
            return
        out.print(
            f"rolled back the interrupted import: {undone.deleted} deleted, "
            f"{undone.updated + undone.created} restored (journal {undone.first_seq}.."
            f"{undone.last_seq}); the store takes writes again"
        )

    @app.command("undelete")
    def undelete_(
        ci_id: Annotated[str, typer.Argument(metavar="ID")],
        db: DbOption = None,
        model: ModelOption = None,
        actor: ActorOption = "cli",
    ) -> None:
        """Rebuild a deleted CI and its relationships from the journal."""
        with open_graph(db, model) as sg:
            done = undelete(sg.store, ci_id, Actor(actor, "admin"))
        out.print(safe(f"undeleted {ci_id} with {len(done['relationships'])} relationship(s)"
                       f" (deleted at seq {done['deleted_at_seq']})"), highlight=False)  # fmt: skip
        for entity in done["skipped"]:
            out.print(safe(f"  skipped {entity}: the other end no longer exists"), highlight=False)


def _counts(counts: dict[str, int]) -> str:
    return (
        f"{counts['cis']} CIs, {counts['relationships']} relationships, "
        f"{counts['journal_entries']} journal entries, {counts['tokens']} tokens"
    )
