"""What the CLI modules share: the consoles and the common options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from servicegraph.api.python import ServiceGraph, connect
from servicegraph.graph.values import strip_controls

out = Console()
err = Console(stderr=True)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLite file, or a bolt:// / neo4j:// URI. Default: SERVICEGRAPH_NEO4J_URI if set, "
        "else SERVICEGRAPH_DB, else ./servicegraph.db.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--model",
        help="Model file extending the shipped model (repeatable). Default: SERVICEGRAPH_MODEL.",
    ),
]
ActorOption = Annotated[str, typer.Option("--actor", help="Who is writing (journaled).")]


def safe(value: Any, multiline: bool = False) -> str:
    """Stored text as a terminal should show it: rich markup escaped (a name like ``[/x]`` or
    ``[red]admin[/red]`` is shown as written, not interpreted) and control characters and
    bidi overrides removed (no ANSI/OSC escapes reach the terminal)."""
    return escape(strip_controls(str(value), keep_newlines=multiline))


CreateOption = Annotated[
    bool, typer.Option("--create", help="Create the SQLite store if it does not exist.")
]


def open_graph(db: str | None, model: list[Path] | None, create: bool = False) -> ServiceGraph:
    """The store named by --db (or the environment) with the --model files, for one command.

    A SQLite file that does not exist is an error unless ``create`` (commands that make a store:
    demo, import, restore, or an explicit --create)."""
    return connect(db, [str(m) for m in model or []], create=create)


def read_json_file(path: Path) -> Any:
    """A JSON file's content (orjson: NaN and invalid UTF-8 are refused as the standard says);
    an unreadable or malformed file is a validation error naming the file."""
    import orjson

    from servicegraph.errors import Problem, ValidationFailed

    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ValidationFailed([Problem(str(path), "file", f"cannot read: {exc.strerror}")],
                               wrote=False) from exc  # fmt: skip
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed([Problem(str(path), "json", f"not valid JSON: {exc}")],
                               wrote=False) from exc  # fmt: skip
