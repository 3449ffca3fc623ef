"""servicegraph: ISO/IEC 20000-1 service management on a property graph.

``servicegraph.connect(path_or_uri)`` is the Python entry point; see :mod:`servicegraph.api.python`.
"""

from servicegraph.api.python import ServiceGraph, connect

__all__ = ["ServiceGraph", "connect"]
