"""The ``servicegraph`` command line: thin wrappers that parse, call a process, and print.

Exit codes: 0 success, 1 invalid input (nothing written), 2 usage error, 3 store unavailable,
4 not found, 5 stale version.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from servicegraph.api.cli.admin import register_admin_commands, token_app
from servicegraph.api.cli.audit import AsOfOption, baseline_app, diff, health, reconcile
from servicegraph.api.cli.availability import sla_app, supplier_app
from servicegraph.api.cli.changes import change_app, release_app
from servicegraph.api.cli.common import (
    ActorOption,
    CreateOption,
    DbOption,
    ModelOption,
    err,
    open_graph,
    out,
    safe,
)
from servicegraph.api.cli.incidents import incident_app, problem_app, rca, report_app
from servicegraph.api.cli.maps import map_command
from servicegraph.api.cli.output import FORMATS, check_format, emit
from servicegraph.errors import NotFound, ServiceGraphError
from servicegraph.graph.connection import open_store, resolve_model
from servicegraph.graph.records import CI, Batch, JournalFilter
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes import interchange
from servicegraph.processes.access import Actor, create_token
from servicegraph.processes.configuration import check_stranding, guarded_write
from servicegraph.processes.import_source import FileSource
from servicegraph.processes.listing import CIQuery

app = typer.Typer(
    help="servicegraph: an ISO/IEC 20000-1 CMDB on a property graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _store(db: str | None, model: list[Path] | None, create: bool = False) -> GraphStore:
    return open_store(db, resolve_model([str(m) for m in model or []]), create=create)


@app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(help="JSON or CSV files, or folders with cis.csv and relationships.csv."),
    ],
    db: DbOption = None,
    model: ModelOption = None,
    actor: ActorOption = "import",
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="The file's attributes become each record's whole set (re-importing an "
            "export). Default: merge — given attributes change, absent ones stay, null removes.",
        ),
    ] = False,
) -> None:
    """Validate files against the model and write them, read 20,000 items at a time, all or
    nothing (SQLite: one transaction; Neo4j: slices of 10,000 under a lease, rolled back if
    one fails)."""
    with _store(db, model, create=True) as store:
        source = FileSource(store.model, files, replace)
        who = Actor(actor, "admin")
        started = time.perf_counter()
        with _interrupted(), _progress(source.total, bytes_=True) as update:
            result = store.write_stream(
                source, actor, progress=update, check=lambda b: check_stranding(store, b, who)
            )
        seconds = time.perf_counter() - started
    counts = source.counts
    out.print(
        f"imported {counts['cis']} CIs and {counts['relationships']} relationships in "
        f"{seconds:.2f}s: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
    )


@app.command()
def export(
    path: Annotated[
        Path, typer.Argument(help="A .json file, or a folder for cis.csv and relationships.csv.")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help="json or csv (default: from PATH)")
    ] = None,
    as_of: AsOfOption = None,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Write the whole graph to the interchange format (as it was at --as-of, from the journal)."""
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "csv")
    if fmt not in ("json", "csv"):
        raise typer.BadParameter("use json or csv", param_hint="--format")
    with open_graph(db, model) as sg:
        graph = sg.as_of(as_of) if as_of is not None else sg
        try:
            write = interchange.export_json if fmt == "json" else interchange.export_csv
            counts = write(graph.store, path)
        except OSError as exc:  # a folder that does not exist, no permission, a full disk
            raise typer.BadParameter(
                f"cannot write {path}: {exc.strerror or exc}; give a path in a folder you can "
                "write to",
                param_hint="PATH",
            ) from exc
        finally:
            if graph is not sg:
                graph.close()
    out.print(
        safe(f"exported {counts['cis']} CIs and {counts['relationships']} relationships to {path}")
    )


@app.command()
def demo(
    size: Annotated[int, typer.Option(min=50, help="About how many CIs and records.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same estate).")] = 7,
    db: DbOption = None,
    model: ModelOption = None,
    if_empty: Annotated[
        bool,
        typer.Option("--if-empty", help="Do nothing when the store holds data (compose's loader)."),
    ] = False,
) -> None:
    """Generate a realistic demo estate with the records every process needs (RFCs in several
    states, a release, incidents, a problem and its known error, blackout windows), load it, and
    print a summary of the store."""
    with open_graph(db, model, create=True) as sg:
        store = sg.store
        if if_empty and not store.is_empty():
            out.print(safe(f"{store.uri} holds data; the demo estate was not loaded again"))
            return
        if not store.is_empty():
            raise ServiceGraphError(
                f"{store.uri} holds data; load the demo into an empty store (or pass --if-empty "
                "to leave it as it is)"
            )
        started = time.perf_counter()
        with _progress(size * 2) as update:
            result = sg.load_demo(size, seed, progress=update)
        seconds = time.perf_counter() - started
        out.print(
            f"loaded the demo estate ({result.created} CIs and relationships) and its process "
            f"records into {safe(store.uri)} in {seconds:.2f}s",
            highlight=False,
        )
        _print_counts(store)


@app.command()
def summary(
    db: DbOption = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """CIs per class, relationships and the journal head of a store."""
    with _store(db, model) as store:
        if as_json:
            out.print_json(data={**store.counts(), "journal_head": store.head_seq()})
        else:
            _print_counts(store)


@app.command()
def show(
    ci_id: Annotated[str, typer.Argument(metavar="ID")],
    db: DbOption = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_of: AsOfOption = None,
) -> None:
    """One CI with its attributes and relationships (as they were at --as-of)."""
    with _store(db, model) as store:
        if as_of is not None:
            from servicegraph.processes.audit.timetravel import ci_as_of

            past = ci_as_of(store, ci_id, as_of)
            ci, rels = past["ci"], past["relationships"]
        else:
            found = store.get_ci(ci_id)
            if found is None:
                raise NotFound("CI", ci_id)
            ci, rels = found, store.relationships_of([ci_id])
    if as_json:
        out.print_json(data={"ci": ci.to_dict(), "relationships": [r.to_dict() for r in rels]})
        return
    table = Table(title=safe(f"{ci.id} ({ci.cls}) {ci.name} — version {ci.version}"))
    table.add_column("attribute")
    table.add_column("value")
    for k, v in sorted(ci.attributes.items()):
        table.add_row(safe(k), safe(json.dumps(v) if not isinstance(v, str) else v))
    out.print(table)
    for r in rels:
        out.print(safe(f"  {r.source} -[{r.type}]-> {r.target}"), highlight=False)


JOURNAL_COLUMNS = ["seq", "at", "actor", "op", "entity", "reason", "changes"]


@app.command()
def history(
    entity: Annotated[str, typer.Argument(help="A CI id, or a relationship as 'a -[TYPE]-> b'.")],
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """Every journaled change of one CI — with its relationships' — or of one relationship,
    oldest first (exit 4 when the journal never saw it)."""
    check_format(fmt)
    with _store(db, model) as store:
        entries = store.journal(where=JournalFilter(entity=entity, related=True))
    if not entries:
        raise NotFound("CI or relationship", entity)
    _print_journal(entries, fmt)


@app.command()
def journal(
    since: Annotated[
        str | None,
        typer.Option(help="After this seq (a number), or from this time (ISO date or datetime)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Up to this seq (included), or before this time (ISO date/datetime)."),
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only this actor's entries.")] = None,
    op: Annotated[
        list[str] | None,
        typer.Option("--op", help="Only these operations, e.g. update_ci (repeatable)."),
    ] = None,
    entity: Annotated[str | None, typer.Option(help="Only this CI or relationship.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries.")] = 100,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """The audit trail of every mutation, oldest first, filtered."""
    check_format(fmt)
    seqs: dict[str, int | None] = {"since": None, "until": None}
    times: dict[str, str | None] = {"since": None, "until": None}
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.strip().isdigit():
            seqs[name] = int(value)
        elif value is not None:
            times[name] = _journal_time(value, name)
    where = JournalFilter(
        since=seqs["since"] or 0, until=seqs["until"], since_at=times["since"],
        until_at=times["until"], actor=actor, ops=tuple(op) if op else None, entity=entity,
    )  # fmt: skip
    with _store(db, model) as store:
        entries = store.journal(limit=limit, where=where)
    _print_journal(entries, fmt)


def _journal_time(text: str, option: str) -> str:
    """An ISO date or datetime as the journal's UTC text (a date is its midnight, UTC)."""
    import datetime as dt

    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a seq nor an ISO date/datetime (e.g. 2026-11-01 or "
            "2026-11-01T12:00:00Z)",
            param_hint=f"--{option}",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    utc = moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="microseconds").replace("+00:00", "Z")


ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", help="Retire/delete even CIs that active RFCs target (needs --reason)."
    ),
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why (journaled with every entry of the write).")
]


@app.command()
def retire(
    ids: Annotated[list[str], typer.Argument(metavar="ID...")],
    db: DbOption = None,
    model: ModelOption = None,
    actor: ActorOption = "cli",
    force: ForceOption = False,
    reason: ReasonOption = None,
) -> None:
    """Mark CIs retired (they stay, with their history)."""
    with _store(db, model) as store:
        result = guarded_write(store, Batch(retire=ids), Actor(actor, "admin"), force, reason)
    out.print(f"retired {result.updated}, already retired {result.unchanged}")


@app.command()
def delete(
    ids: Annotated[list[str], typer.Argument(metavar="ID...")],
    db: DbOption = None,
    model: ModelOption = None,
    actor: ActorOption = "cli",
    force: ForceOption = False,
    reason: ReasonOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would go; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete CIs and their relationships (the journal keeps their history; `undelete` rebuilds
    them). Asks for confirmation on a terminal."""
    with _store(db, model) as store:
        found = store.get_cis(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFound("CI", missing[0])
        rels = store.relationships_of(ids)
        out.print(f"would delete {len(found)} CIs and {len(rels)} relationships:", highlight=False)
        for ci in found.values():
            out.print(safe(f"  {ci.id} ({ci.cls}) {ci.name}"), highlight=False)
        for r in rels:
            out.print(safe(f"  {r.source} -[{r.type}]-> {r.target}"), highlight=False)
        if dry_run:
            out.print("dry run: nothing was written")
            return
        if not yes:
            if not sys.stdin.isatty():
                raise typer.BadParameter(
                    "refusing to delete without confirmation: pass --yes (scripts) or run it "
                    "on a terminal",
                    param_hint="--yes",
                )
            typer.confirm("delete them?", abort=True)
        result = guarded_write(store, Batch(delete_cis=ids), Actor(actor, "admin"), force, reason)
    out.print(f"deleted {result.deleted} records (CIs and relationships)")


def _widen_pipe(stream: Any) -> None:
    """Let a pipe on ``stream`` hold up to 1 MiB (Linux; 64 KiB by default): a large answer then
    goes out in fewer, longer writes between the reader's turns (megabytes of JSON through the
    default size cost 0.3-0.7 s of task switches, measured). Nothing changes for files or
    terminals, nor where the system does not allow it."""
    import fcntl
    import stat

    try:
        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode) and hasattr(fcntl, "F_SETPIPE_SZ"):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
    except (OSError, ValueError, AttributeError):
        pass


@app.command()
def impact(
    ids: Annotated[list[str], typer.Argument(metavar="ID...", help="The CIs that fail.")],
    max_depth: Annotated[
        int | None, typer.Option("--max-depth", min=0, help="Propagate at most N hops.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, json, ndjson or csv")] = "table",
    limit: Annotated[
        int, typer.Option(min=1, help="Table: at most N impacted CIs (and services, SLAs, …).")
    ] = 50,
    as_of: AsOfOption = None,
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """What goes DOWN or DEGRADED if these CIs fail, why, and what services, SLAs, customers.

    json is the Python to_dict() (every impacted CI with id, name, class, status, distance,
    path); ndjson streams a summary line, then one line per impacted CI; csv has one row per
    impacted CI (path as ids joined by ' > ')."""
    check_format(fmt, (*FORMATS, "ndjson"))
    with open_graph(db, model) as live, live.as_of(as_of) if as_of else live as sg:
        result = sg.impact(ids, max_depth)
        if fmt in ("json", "ndjson"):
            _widen_pipe(sys.stdout)
        if fmt == "json":  # the indented dict, written as it is built
            for part in result.json_chunks():
                sys.stdout.buffer.write(part)
            sys.stdout.buffer.write(b"\n")
            return
        if fmt == "ndjson":  # a summary line, then a line per impacted CI, written as they come
            write = sys.stdout.buffer.write
            write(orjson.dumps({"summary": result.summary()}) + b"\n")
            for chunk in result.impacted_chunks(20_000, names=True):
                write(b"".join(orjson.dumps(row) + b"\n" for row in chunk))
            return
        rows = result.impacted(limit=None if fmt == "csv" else limit, names=True)
    if fmt == "csv":
        for row in rows:
            row["path"] = " > ".join(row["path"])
        emit(rows, ["id", "name", "class", "status", "distance", "path"], "csv")
        return
    down = int(result.propagation.down.sum())
    err.print(
        f"{result.total_impacted} CIs impacted ({down} DOWN, {result.total_impacted - down} "
        f"DEGRADED); {len(result.services)} services, {len(result.slas)} SLAs, "
        f"{len(result.customers)} customers",
        highlight=False,
    )
    for row in rows:
        row["hops"] = row["distance"]
        row["path"] = " → ".join(row["path"])
    emit(rows, ["id", "name", "class", "status", "hops", "path"])
    if result.total_impacted > len(rows):
        err.print(f"… {result.total_impacted - len(rows)} more (use --limit, or --format json/csv)")
    # at most --limit lines of each kind: a hub's failure hits thousands of services
    lines = [safe(f"service {s['id']}: {s['status']}") for s in result.services[:limit]]
    lines += [safe(f"SLA {s['id']}: {s['status']} (services {', '.join(s['services'])})")
              for s in result.slas[:limit]]  # fmt: skip
    lines += [safe(f"customer {c['id']} (SLAs {', '.join(c['slas'])})")
              for c in result.customers[:limit]]  # fmt: skip
    lines += [safe(f"warning: {w['ci']}.{w['attribute']}: {w['detail']}; {w['fix']}")
              for w in result.warnings[:limit]]  # fmt: skip
    hidden = sum(max(0, len(x) - limit) for x in (result.services, result.slas,
                                                  result.customers, result.warnings))  # fmt: skip
    if hidden:
        lines.append(f"… {hidden} more services, SLAs, customers or warnings (use --limit, or "
                     "--format json)")  # fmt: skip
    err.print("\n".join(lines), highlight=False, soft_wrap=True)


@app.command("availability")
def availability_(
    service: Annotated[str, typer.Argument(metavar="SERVICE", help="A service (or any CI).")],
    what_if: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="What-if, nothing written: CI.availability=0.999 or CI.min_up=2 (repeatable).",
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """The availability a service can reach from its model, its single points of failure, cut
    sets and what to make redundant first."""
    check_format(fmt, ("table", "json"))
    overrides: dict[str, dict[str, Any]] = {}
    for item in what_if or []:
        target, sep, value = item.partition("=")
        ci, dot, field = target.rpartition(".")
        if not sep or not dot or field not in ("availability", "min_up"):
            raise typer.BadParameter(
                f"{item!r}: use CI.availability=0.999 or CI.min_up=2", param_hint="--set"
            )
        try:
            number: Any = int(value) if field == "min_up" else float(value)
        except ValueError:
            raise typer.BadParameter(
                f"{item!r}: {value!r} is not a number", param_hint="--set"
            ) from None
        overrides.setdefault(ci, {})[field] = number
    with open_graph(db, model) as sg:
        result = sg.availability(service, overrides or None)
    data = result.to_dict()
    if fmt == "json":
        sys.stdout.write(json.dumps(data, indent=1) + "\n")
        return
    interval = (
        f" (95 % interval {data['ci95'][0]:.6f}–{data['ci95'][1]:.6f})" if "ci95" in data else ""
    )
    err.print(
        safe(f"{service}: availability {result.availability:.6f}{interval} by the {result.method} "
             f"method over {result.components} components; "
             f"{data['downtime_minutes_per_year']:,.1f} minutes down a year"),
        highlight=False,
    )  # fmt: skip
    if result.assumed:
        err.print(f"{len(result.assumed)} components have no stated availability (class default "
                  "or 1.0 assumed): --format json lists them", highlight=False)  # fmt: skip
    emit([{"id": s["id"], "availability": s["availability"]} for s in result.spofs],
         ["id", "availability"], title="single points of failure")  # fmt: skip
    emit([{"cis": ", ".join(c["cis"]), "probability": f"{c['probability']:.3g}"}
          for c in result.cut_sets[:10]], ["cis", "probability"], title="top cut sets")  # fmt: skip
    emit([{"id": r["id"], "availability": r["availability"], "birnbaum": f"{r['birnbaum']:.4g}",
           "improvement_potential": f"{r['improvement_potential']:.3g}"}
          for r in result.importance[:10]],
         ["id", "availability", "birnbaum", "improvement_potential"],
         title="what to improve first")  # fmt: skip


SortOption = Annotated[str, typer.Option("--sort", help="id, name or class")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, help="At most N CIs.")]


@app.command("list")
def list_(
    cls: Annotated[
        str | None, typer.Option("--class", help="A class (its subclasses too).")
    ] = None,
    name_contains: Annotated[
        str | None,
        typer.Option("--name-contains", help="A case-insensitive part of the id or name."),
    ] = None,
    attr: Annotated[
        list[str] | None,
        typer.Option("--attr", help="name=value, typed by the model (repeatable)."),
    ] = None,
    sort: SortOption = "id",
    descending: Annotated[bool, typer.Option("--desc", help="Descending order.")] = False,
    limit: LimitOption = 100,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """CIs by class, text and attribute values (json: whole records)."""
    attributes = dict(_key_value(a) for a in attr or [])
    _print_cis(db, model, CIQuery(cls, attributes, name_contains, sort, descending), limit, fmt)


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="A case-insensitive part of the id or name.")],
    cls: Annotated[str | None, typer.Option("--class", help="Only this class.")] = None,
    limit: LimitOption = 50,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv")] = "table",
    db: DbOption = None,
    model: ModelOption = None,
) -> None:
    """CIs whose id or name contains TEXT, by name."""
    _print_cis(db, model, CIQuery(cls, None, text, "name"), limit, fmt)


def _print_cis(
    db: str | None, model: list[Path] | None, query: CIQuery, limit: int, fmt: str
) -> None:
    check_format(fmt)
    with _store(db, model) as store:
        cis: list[CI] = []
        after: str | None = None
        while len(cis) < limit:
            page = query.page(store, min(1000, limit - len(cis)), after)
            cis += page.items
            if not page.has_next:
                break
            after = page.end_cursor
        total = query.count(store) if len(cis) == limit else len(cis)
    if fmt == "json":
        emit([ci.to_dict() for ci in cis], [], "json")
    else:
        rows = [{"id": c.id, "class": c.cls, "name": c.name, "status": c.status,
                 "version": c.version} for c in cis]  # fmt: skip
        emit(rows, ["id", "class", "name", "status", "version"], fmt)
    if total > len(cis):
        err.print(f"{len(cis)} of {total} CIs shown; raise --limit for more", highlight=False)


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise typer.BadParameter(f"{text!r}: use name=value", param_hint="--attr")
    return name.strip(), value


@app.command()
def serve(
    db: DbOption = None,
    model: ModelOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load the demo estate when the store is empty (kept across restarts) and print "
            "an admin token with a curl line.",
        ),
    ] = False,
    demo_size: Annotated[int, typer.Option(min=50, help="Size of the demo estate.")] = 2000,
    create: CreateOption = False,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Worker processes (each holds its own topology engine)."),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="A line per request on stderr (uvicorn's). Off behind a proxy that logs them.",
        ),
    ] = True,
) -> None:
    """Run the GraphQL server and the web map (http://HOST:PORT/, /graphql)."""
    import tempfile

    import uvicorn

    from servicegraph.api.server import create_app, tune_interpreter

    _check_port(host, port)  # before anything slow: say so now, not after loading an estate
    if demo and db is None and not os.environ.get("SERVICEGRAPH_NEO4J_URI"):
        db = str(Path(tempfile.mkdtemp(prefix="servicegraph-demo-")) / "demo.db")
    if demo and db is not None and "://" not in db:
        Path(db).parent.mkdir(parents=True, exist_ok=True)
    sg = open_graph(db, model, create=create or demo)
    url = f"http://{host}:{port}"
    if demo:
        if sg.store.is_empty():
            sg.load_demo(demo_size)
            out.print(f"demo estate loaded into {safe(sg.store.uri)}", highlight=False)
        else:
            out.print(f"demo store {safe(sg.store.uri)} kept (it holds data)", highlight=False)
        token = _demo_token(sg.store)
        out.print("demo admin token; paste these two lines into a shell:", highlight=False)
        sys.stdout.write(f"  export SG_TOKEN={token}\n")
        sys.stdout.write(
            "  curl -s -H \"Authorization: Bearer $SG_TOKEN\" -H 'content-type: application/json' "
            f'-d \'{{"query": "{{ me {{ user role }} }}"}}\' {url}/graphql\n'
        )
        sys.stdout.flush()
    out.print(f"Web map on {url}/ (open it in a browser and paste the token); GraphQL on "
              f"{url}/graphql (GraphiQL in a browser; set the Authorization header)")  # fmt: skip
    if workers > 1:  # the workers open the store themselves; this process only supervises
        from servicegraph.api.server import WORKER_DB, WORKER_MODEL

        os.environ[WORKER_DB] = db or os.environ.get("SERVICEGRAPH_DB", "")
        os.environ[WORKER_MODEL] = os.pathsep.join(str(m) for m in model or [])
        sg.close()
        uvicorn.run("servicegraph.api.server:worker_app", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=access_log)  # fmt: skip
        return
    app = create_app(sg)  # builds the topology engine
    tune_interpreter()
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log)


def _check_port(host: str, port: int) -> None:
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServiceGraphError(
                f"cannot listen on {host}:{port} ({exc.strerror}): another server (an earlier "
                "`make demo`?) holds the port; stop it, or pass --port N (make demo PORT=N)"
            ) from None


def _demo_token(store: GraphStore) -> str:
    """The demo's admin token: kept beside a SQLite demo store (owner-only file) and reused while
    the store still accepts it, so restarting the demo keeps the token; otherwise a new one."""
    from servicegraph.processes.access import token_hash

    path = Path(str(store.path) + ".demo-token") if isinstance(store, SqliteStore) else None
    if path is not None and path.is_file():
        token = path.read_text().strip()
        record = store.find_token(token_hash(token))
        if record is not None and record.revoked_at is None and record.expires_at is None:
            return token
    token = create_token(store, "demo-admin", "admin", actor="serve --demo")
    if path is not None:
        path.touch(mode=0o600)
        path.write_text(token + "\n")
    return token


app.add_typer(change_app, name="change")
app.add_typer(release_app, name="release")
app.add_typer(token_app, name="token")
app.add_typer(sla_app, name="sla")
app.add_typer(supplier_app, name="supplier")
app.add_typer(incident_app, name="incident")
app.add_typer(problem_app, name="problem")
app.add_typer(report_app, name="report")
app.command("rca")(rca)
app.command("health")(health)
app.command("diff")(diff)
app.command("reconcile")(reconcile)
app.command("map")(map_command)
app.add_typer(baseline_app, name="baseline")
register_admin_commands(app)


@app.command("model")
def model_(
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The classes and relationship types of the model in force."""
    m = resolve_model([str(p) for p in model or []])
    data: dict[str, Any] = {
        "classes": {
            name: {
                "parent": c.parent,
                "abstract": c.abstract,
                "attributes": {a.name: a.type for a in c.attributes.values()},
            }
            for name, c in m.classes.items()
        },
        "relationship_types": {
            name: {"impact": r.impact, "from": list(r.sources), "to": list(r.targets)}
            for name, r in m.relationship_types.items()
        },
    }
    if as_json:
        out.print_json(data=data)
        return
    table = Table(title="classes")
    for col in ("class", "parent", "attributes"):
        table.add_column(col)
    for name, c in m.classes.items():
        label = f"{name} (abstract)" if c.abstract else name
        table.add_row(label, c.parent or "", ", ".join(sorted(c.attributes)))
    out.print(table)
    rels = Table(title="relationship types")
    for col in ("type", "impact", "from", "to"):
        rels.add_column(col)
    for name, r in m.relationship_types.items():
        rels.add_row(name, r.impact, ", ".join(r.sources), ", ".join(r.targets))
    out.print(rels)


@contextmanager
def _progress(total: int, bytes_: bool = False) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on the terminal for a long write (hidden for small ones and pipes);
    ``bytes_``: counting bytes read (an import), not items."""
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn() if bytes_ else MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=total < (1 << 20 if bytes_ else 5_000) or not err.is_terminal,
    ) as bar:
        task = bar.add_task("importing" if bytes_ else "writing", total=total)
        yield lambda done, all_: bar.update(task, completed=done, total=all_)


@contextmanager
def _interrupted() -> Iterator[None]:
    """Ctrl-C during a write: say what became of what it had written, exit 130."""
    try:
        yield
    except KeyboardInterrupt as exc:
        notes = getattr(exc, "__notes__", None) or ["nothing was written"]
        err.print(safe(f"interrupted: {notes[0]}"), highlight=False)
        raise typer.Exit(130) from None


def _print_counts(store: GraphStore) -> None:
    counts = store.counts()
    rels = counts.pop("relationships")
    table = Table(title=safe(store.uri))
    table.add_column("class")
    table.add_column("count", justify="right")
    for cls, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(cls, f"{n:,}")
    table.add_row("[bold]CIs and records", f"[bold]{sum(counts.values()):,}")
    table.add_row("[bold]relationships", f"[bold]{rels:,}")
    table.add_row("[bold]journal head (seq)", f"[bold]{store.head_seq():,}")
    out.print(table)


def _print_journal(entries: list[Any], fmt: str = "table") -> None:
    if fmt == "json":
        emit([e.to_dict() for e in entries], [], "json")
        return
    rows = [{**e.to_dict(), "changes": _changes(e)} for e in entries]
    if fmt == "csv" or not out.is_terminal:
        emit(rows, JOURNAL_COLUMNS, fmt)
        return
    for e, row in zip(entries, rows, strict=True):
        line = f"{e.seq:>8} {e.at} {e.actor:<12} {e.op:<20} {e.entity}"
        if e.reason:
            line += f"  (reason: {e.reason})"
        out.print(safe(line), highlight=False)
        for change in row["changes"].split("; ") if row["changes"] else []:
            out.print(safe(f"{'':>10}{change}"), highlight=False)


def _changes(e: Any) -> str:
    """What an update changed, field by field (before → after)."""
    if e.before is None or e.after is None:
        return ""
    before, after = _flat(e.before), _flat(e.after)
    return "; ".join(
        f"{key}: {before.get(key)!r} → {after.get(key)!r}"
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    )


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record.items() if k != "attributes"}
    flat.update({f"attributes.{k}": v for k, v in (record.get("attributes") or {}).items()})
    return flat


def main() -> None:
    """Entry point: run the app, turning expected failures into a message and an exit code.

    The process ends after it: the objects it leaves (numba's compiler, an engine's million
    ids) are moved out of the garbage collector's sight first, since the collections Python runs
    while it shuts down would walk every one of them — 0.3 s of each command that analysed
    anything, measured — and none needs collecting (memory goes back with the process; files,
    stores and sockets are closed by the commands themselves, atexit handlers still run)."""
    try:
        app()  # click handles usage errors (exit 2) and exits with the command's code
    except ServiceGraphError as exc:
        err.print(
            f"[red]error[/red] ({exc.code}): {safe(exc, multiline=True)}",
            highlight=False,
            soft_wrap=True,
        )
        sys.exit(exc.exit_code)
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
