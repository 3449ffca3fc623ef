"""Policies as data: a YAML file shipped in a package, whose top-level keys a user's file (named
by an environment variable) replaces. Shared by the change and the incident policy."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from servicegraph.errors import ModelError
from servicegraph.graph.model import safe_yaml

__all__ = ["read_policy"]


def read_policy(
    package: str, filename: str, variable: str, what: str, path: str | Path | None = None
) -> tuple[dict[str, Any], str]:
    """The shipped policy with the user's keys over it, and where the user's came from (or
    ``what`` when there is no user file). An unreadable or malformed user file is refused."""
    raw: dict[str, Any] = safe_yaml(resources.files(package).joinpath(filename).read_text())
    path = path or os.environ.get(variable)
    if path:
        try:
            extra = safe_yaml(Path(path).read_text("utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ModelError([f"cannot read the {what}: {exc}"], str(path)) from exc
        if not isinstance(extra, dict):
            raise ModelError(["expected a mapping of policy keys"], str(path))
        raw.update(extra)
    return raw, str(path or what)
