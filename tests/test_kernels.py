"""The compiled loops still load where numba has nowhere to cache them."""

from __future__ import annotations

import numpy as np

from servicegraph.graph.kernels import compiled


def test_loops_compile_without_a_cache_location() -> None:
    # Source numba cannot locate on disk (as in a read-only install without HOME): it refuses to
    # cache such a function, and the loop must then simply be compiled in this process.
    namespace: dict[str, object] = {}
    exec("def total(a):\n    s = 0\n    for x in a:\n        s += x\n    return s\n", namespace)
    total = compiled(namespace["total"])  # type: ignore[arg-type]
    assert total(np.arange(10, dtype=np.int64)) == 45
