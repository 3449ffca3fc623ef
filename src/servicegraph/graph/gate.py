"""The topology engine's readers/writer lock: analyses share the engine, applying the journal
(or rebuilding) has it alone.

Analyses read the engine's arrays and write only into working arrays of their own, so any
number run at once — a large propagation in a worker thread (its loops release the interpreter
lock) no longer makes the small ones beside it wait for the whole of it. Only a writer, which
changes the arrays in place, waits until no analysis is inside, and has them alone while it
applies entries.

* Re-entrant per thread: a thread inside (reading or writing) may enter again to read; a writer
  may enter again to write. A thread that reads may not start writing (it would wait for itself):
  :meth:`Gate.writing` refuses that with an error, and :meth:`Gate.reading_here` lets the engine
  skip a journal refresh there instead (such a reader answers from the state it started with).
* Writers first: once a writer waits, new readers wait for it (except a thread already inside),
  so a stream of overlapping analyses cannot keep the journal from being applied.

(Python's standard library has no such lock; the PyPI packages for it are neither re-entrant
per thread nor tell a thread whether it is inside, which the engine needs both.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Gate"]


class Gate:
    """Shared reading, exclusive writing (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0  # threads holding a share
        self._writer: int | None = None  # the thread writing
        self._writes = 0  # its depth
        self._waiting = 0  # writers waiting
        self._here = threading.local()  # .reads: this thread's depth; .shared: it holds a share

    # -- reading --------------------------------------------------------------------------------
    def acquire_read(self, blocking: bool = True) -> bool:
        """Enter to read. Without ``blocking``: False instead of waiting — also while a writer
        waits or writes, even for a thread already inside (its turn would delay the writer)."""
        here = self._here
        depth: int = getattr(here, "reads", 0)
        me = threading.get_ident()
        if not blocking and (self._waiting or self._writer not in (None, me)):
            return False
        if depth or self._writer == me:
            here.reads = depth + 1
            if not depth:
                here.shared = False  # inside as the writer: no share taken
            return True
        with self._cond:
            if not blocking and (self._waiting or self._writer is not None):
                return False
            while self._waiting or self._writer is not None:
                self._cond.wait()
            self._readers += 1
        here.reads, here.shared = 1, True
        return True

    def release_read(self) -> None:
        here = self._here
        depth: int = getattr(here, "reads", 0)
        if not depth:
            raise RuntimeError("release_read without acquire_read on this thread")
        here.reads = depth - 1
        if depth == 1 and here.shared:
            here.shared = False
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def reading(self) -> Iterator[None]:
        self.acquire_read()
        try:
            yield
        finally:
            self.release_read()

    def reading_here(self) -> bool:
        """Whether this thread is inside to read (holding a share or not)."""
        return bool(getattr(self._here, "reads", 0))

    def busy(self) -> bool:
        """Whether a writer writes or waits to."""
        return bool(self._waiting) or self._writer is not None

    # -- writing --------------------------------------------------------------------------------
    def acquire_write(self, blocking: bool = True) -> bool:
        """Enter alone, once the readers inside have left (False without ``blocking`` when any
        is inside or another writer is)."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._writes += 1
                return True
            if getattr(self._here, "shared", False):
                raise RuntimeError("a thread that reads the engine cannot start writing it")
            if not blocking:
                if self._readers or self._writer is not None:
                    return False
            else:
                self._waiting += 1
                try:
                    while self._readers or self._writer is not None:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
            self._writer, self._writes = me, 1
            return True

    def release_write(self) -> None:
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("release_write by a thread that does not write")
            self._writes -= 1
            if not self._writes:
                self._writer = None
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        self.acquire_write()
        try:
            yield
        finally:
            self.release_write()
