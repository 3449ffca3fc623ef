"""Building hundreds of thousands of small objects at once (a journal replay, an audit, an
export) sets off CPython's cyclic garbage collector again and again, although none of them is
garbage yet: measured, half the time of such a build. :func:`paused_gc` holds it off for the
build; it runs again afterwards (nested and concurrent pauses end with it enabled once the
outermost that found it enabled is done).

:func:`scanning_new_only` is for the long phase that follows such a build and makes garbage of
its own (a Neo4j bulk write: the driver's results are cycles, about 7 MB a slice, 3 GB over a
million-CI import if never collected): the collector runs, but never scans what existed before."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc", "scanning_new_only"]


@contextmanager
def paused_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def scanning_new_only() -> Iterator[None]:
    """The collector on for the objects made inside, the ones that exist moved out of its sight
    (``gc.freeze``) until the end; as it was afterwards (also inside a :func:`paused_gc`)."""
    gc.freeze()
    enabled = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        if not enabled:
            gc.disable()
        gc.unfreeze()
