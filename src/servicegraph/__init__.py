"""servicegraph: ISO/IEC 20000-1 service management on a property graph.

``servicegraph.connect(path_or_uri)`` is the Python entry point; see :mod:`servicegraph.api.python`.
The names load on first use, so ``import servicegraph`` (and the CLI) stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servicegraph.api.python import ServiceGraph, connect

__all__ = ["ServiceGraph", "connect"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from servicegraph.api import python

        return getattr(python, name)
    raise AttributeError(f"module 'servicegraph' has no attribute {name!r}")
