"""The ``servicegraph`` command line, one module per group of commands: ``main`` (the app, the CMDB
commands, the entry point), ``changes`` (change, release), ``incidents`` (incident, problem, rca,
report), ``availability`` (availability, sla, supplier), ``admin`` (tokens, backup, restore,
check, undelete); ``common`` and ``output`` hold the shared options and how rows are printed."""

from servicegraph.api.cli.main import app, main

__all__ = ["app", "main"]
