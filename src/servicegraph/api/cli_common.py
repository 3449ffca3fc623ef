"""What the CLI modules share: the consoles and the common options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from servicegraph.api.python import ServiceGraph, connect

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


def open_graph(db: str | None, model: list[Path] | None) -> ServiceGraph:
    """The store named by --db (or the environment) with the --model files, for one command."""
    return connect(db, [str(m) for m in model or []])
