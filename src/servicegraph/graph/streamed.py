"""A large write read from its source a chunk at a time: memory of the chunk, one outcome.

An import file of a million CIs read whole was ~3.2 GB of Python objects before the first row
was written. A streamed write takes its items from a :class:`Source` in chunks of :data:`CHUNK`
(CIs before relationships) and, for each chunk in turn, checks it against the model, against
what the chunks before it held (:class:`Across`: a duplicate id or relationship, a relationship
to a CI the write creates), and against the graph; plans it; writes it. What it keeps from chunk
to chunk is a few dozen bytes a CI and a relationship key, not the records.

**One outcome.** After the first problem nothing more is written, but every remaining chunk is
still read and checked: the error lists every problem of the source, as a whole-batch write
does. Then what was written is undone — SQLite writes every chunk in one transaction (each
chunk by a thread of its own while the next is read and planned, :class:`_Behind`), rolled
back; Neo4j writes them in slices under a lease and undoes them from the journal
(:func:`servicegraph.graph.neo4j_bulk.bulk_stream`). A source that fails to read half-way
(malformed JSON at byte 600,000,000) ends it the same way, its problem named.
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from servicegraph.errors import Problem, ValidationFailed
from servicegraph.graph.gcpause import paused_gc
from servicegraph.graph.records import Batch, WriteResult
from servicegraph.graph.validation import Earlier, check_batch, check_write_names

if TYPE_CHECKING:
    from servicegraph.graph.model import Model
    from servicegraph.graph.store import GraphStore, Plan, Progress, ReadTx, WriteTx

__all__ = [
    "CHUNK",
    "Across",
    "Chunk",
    "ChunkCheck",
    "Source",
    "collected",
    "planned",
    "stream_write",
]

CHUNK = 20_000  # items read, checked and planned at a time
COLLECT_EVERY = 4  # chunks between two collections of the garbage a Neo4j write leaves


@dataclass
class Chunk:
    """Up to ``size`` items of a source, the problems met reading them, and how far it got."""

    batch: Batch
    problems: list[Problem] = field(default_factory=list)
    done: int = 0  # of the source's ``total`` (its bytes, for a file): for progress


class Source(Protocol):
    """Where a streamed write reads its items: every CI chunk before any relationship chunk."""

    total: int  # what ``Chunk.done`` counts up to (for progress)

    def chunks(self, size: int) -> Iterator[Chunk]: ...


# Called with each chunk before it is planned; raises to stop the write (e.g. a CI that an
# active change holds would be retired: servicegraph.processes.configuration.check_stranding).
ChunkCheck = Callable[[Batch], None]


class Across:
    """What a streamed write remembers from one chunk to the next.

    ``created``: id → class of each CI the write creates (the chunks after it neither look it
    up nor its relationships: see :meth:`GraphStore._prepare`); ``earlier``: the ids and
    relationship keys of the chunks before (:class:`Earlier`, for duplicates; the keys as
    integers, ~8 bytes each). The 1M-CI import peaks at ~430 MB (~690 MB with the keys as
    tuples; 3.2 GB with the records held whole)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.created: dict[str, str] = {}
        self.problems: list[Problem] = []
        self.earlier = Earlier()

    def check(self, chunk: Chunk) -> list[Problem]:
        """The chunk's problems visible without the graph: reading it, the model, duplicates
        inside it and of items of the chunks before it."""
        return chunk.problems + check_batch(self.model, chunk.batch, self.earlier)


def planned(
    store: GraphStore,
    reading: Callable[[Callable[[ReadTx], Plan]], Plan],
    across: Across,
    chunk: Chunk,
    check: ChunkCheck | None,
) -> Plan | None:
    """The chunk checked and planned (``reading`` runs the planning where the store reads:
    the write's transaction, a read under a lease); None, with its problems added to
    ``across.problems``, when it has any — and for every chunk after a problem: those are
    checked but not planned to be written."""
    problems = across.check(chunk)
    if check is not None and not problems and not across.problems:
        check(chunk.batch)
    batch = chunk.batch
    try:
        plan = reading(lambda tx: store._prepare(tx, batch, problems, across.created))
    except ValidationFailed as exc:
        across.problems += exc.problems
        return None
    return None if across.problems else plan


def stream_write(
    store: GraphStore,
    source: Source,
    actor: str,
    progress: Progress | None,
    reason: str | None,
    check: ChunkCheck | None,
    at: str,
) -> WriteResult:
    """Every chunk of ``source`` in one transaction of ``store`` (see the module's docstring)."""
    if problems := check_write_names(actor, reason):
        raise ValidationFailed(problems)
    report = progress or (lambda done, total: None)
    across = Across(store.model)

    def work(tx: WriteTx) -> WriteResult:
        behind = _Behind(lambda plan: tx.apply(plan, actor, at, _quiet, reason))
        try:
            for chunk in collected(source.chunks(store.stream_chunk), cycles=False):
                plan = planned(store, lambda work: work(tx), across, chunk, check)
                if plan is not None:
                    behind.put(plan)
                report(chunk.done, source.total)
        except BaseException:
            behind.close(abandon=True)  # the transaction is rolled back once nothing writes
            raise
        result = behind.close()  # raises what the writing raised
        if across.problems:
            raise ValidationFailed(across.problems)  # the transaction is rolled back
        return result

    return store._run_write(work, bulk=True)


class _Behind:
    """Writes each planned chunk in a thread of its own while the next one is read, checked and
    planned: the store's statements (SQLite's: one per table and 10,000 rows, see
    ``_SqliteWriteTx.apply``) run without the interpreter lock, beside the reading (100k-CI
    import 6.5 -> 5.5 s). At most one plan waits. Planning a chunk reads the transaction
    while an earlier one is written; it reads nothing those write: CIs this write created are
    in ``Across.created``, neither looked up nor their relationships."""

    def __init__(self, write: Callable[[Plan], tuple[int, int]]) -> None:
        self._write = write
        self._plans: queue.Queue[Plan | None] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._result = WriteResult()
        self._thread = threading.Thread(target=self._run, name="stream-writer", daemon=True)
        self._thread.start()

    def put(self, plan: Plan) -> None:
        """Hand over a plan (waits while one waits already); raise what the writing raised."""
        if self._error is not None:
            raise self._error
        self._plans.put(plan)

    def _run(self) -> None:
        while (plan := self._plans.get()) is not None:
            if self._stop.is_set() or self._error is not None:
                continue  # the write has failed: what remains is dropped
            try:
                seqs = self._write(plan) if plan.mutations else (0, 0)
                self._result = self._result.then(plan.result(*seqs))
            except BaseException as exc:  # re-raised in the reading thread
                self._error = exc

    def close(self, abandon: bool = False) -> WriteResult:
        """Wait for the writing to end and return its result, or raise what it raised.
        ``abandon`` (the reading failed): what waits is dropped; still wait for the statement
        that runs, even through Ctrl-C, so that the rollback finds none running."""
        if abandon:
            self._stop.set()
        interrupted: KeyboardInterrupt | None = None
        sent = False
        while True:
            try:
                if not sent:
                    self._plans.put(None)
                    sent = True
                while self._thread.is_alive():
                    self._thread.join(0.1)
                break
            except KeyboardInterrupt as exc:
                self._stop.set()
                interrupted = exc
        if interrupted is not None and not abandon:
            raise interrupted
        if self._error is not None and not abandon:
            raise self._error
        return self._result


def _quiet(done: int, total: int) -> None:
    """No progress reported: a streamed write reports its source's."""


def collected(chunks: Iterator[Chunk], cycles: bool = True) -> Iterator[Chunk]:
    """``chunks`` with the cyclic garbage collector paused: left to run, it scanned what the
    write keeps across chunks (:class:`Across`: a tuple a relationship) over and over.

    ``cycles``: the chunks leave reference cycles (a Neo4j driver's results): after every
    :data:`COLLECT_EVERY` chunks everything is collected. Collecting only the young generations
    after each chunk left the cycles of slices still in flight at that moment uncollected for
    good (the 1M-CI import into Neo4j peaked at 1.8 GB, 813 MB collecting fully after each
    chunk); a full collection there takes ~0.1 s (what the write keeps is mostly strings and
    tuples of strings, which the collector untracks), 13 s over a chunk each. The
    SQLite write leaves none (``gc.collect()`` after importing the 100k-CI estate with the
    collector off throughout found 0 unreachable objects) and skips that: the collection
    scanned every chunk's records, still referenced, for ~0.5 s of that import."""
    with paused_gc():
        for n, chunk in enumerate(chunks, start=1):
            yield chunk
            if cycles and n % COLLECT_EVERY == 0:
                gc.collect()
