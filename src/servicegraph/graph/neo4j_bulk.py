"""The Neo4j bulk write: a large import in slices of transactions, all or nothing.

Neo4j keeps a transaction's whole state in its heap, so the import of a million CIs cannot be one
transaction on a modest server. :func:`bulk_write` keeps the outcome of one transaction instead:

1. **Check first.** The whole batch is checked against the model, then (under the lease) against
   the graph, and planned, before anything is written. Every problem is raised together and
   nothing is written — as with :meth:`GraphStore.write`.
2. **Hold the store.** A lease on the journal head (``claim_import.cypher``: id, actor, start,
   heartbeat, first seq) makes every other graph write wait its turn: it is refused with
   :class:`StoreBusy` naming the import. The plan therefore stays valid while it is written. Token
   writes are not refused (revoking a token must work at any time).
3. **Write slices.** Each slice (:data:`servicegraph.graph.bulk.SLICE` mutations) is one
   transaction holding its data and its journal entries (one ``JournalBlock`` node; their reason
   names the bulk write's id),
   and beats the lease's heartbeat. Readers
   see the import arrive slice by slice, each slice consistent with the journal (an engine
   following the journal stays exact); they do not see it appear at once.
4. **Undo on failure.** If a slice fails (Neo4j refuses it, the connection drops, Ctrl-C), what
   the earlier slices wrote is undone from the journal (:func:`servicegraph.graph.bulk.undo_plan`)
   with entries whose reason names the bulk write and the cause, then the lease is released and the
   error raised: the graph is as before.
5. **Recover after a crash.** If the process dies, the lease stays; after :data:`STALE` seconds
   without a heartbeat writers are told the import was interrupted and to run ``servicegraph
   recover``, which (:func:`recover`) takes the lease over and undoes the same way.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from servicegraph.errors import StoreBusy, StoreUnavailable, ValidationFailed
from servicegraph.graph.bulk import SLICE, slices, undo_plan
from servicegraph.graph.cypher import query
from servicegraph.graph.gcpause import paused_gc, scanning_new_only
from servicegraph.graph.records import Batch, WriteResult
from servicegraph.graph.store import Plan, Progress, utc_now
from servicegraph.graph.streamed import (
    Across,
    ChunkCheck,
    Source,
    collected,
    planned,
)
from servicegraph.graph.validation import check_batch, check_write_names

if TYPE_CHECKING:
    from servicegraph.graph.neo4j_store import Neo4jStore, _Neo4jWriteTx

__all__ = ["STALE", "ImportLease", "bulk_stream", "bulk_write", "recover"]

WORKERS = 2  # slices written side by side (Neo4j runs each transaction on one core)
STALE = 300  # seconds without a heartbeat after which a bulk write counts as interrupted


@dataclass(frozen=True)
class ImportLease:
    """The bulk write holding the store, as the journal head records it."""

    id: str
    actor: str
    started: str
    heartbeat: str
    state: str  # checking | writing | rolling back
    first: int  # the first journal seq it may have written

    @classmethod
    def from_record(cls, row: Any) -> ImportLease | None:
        if row["import_id"] is None:
            return None
        return cls(
            row["import_id"], row["import_actor"], row["import_started"],
            row["import_heartbeat"], row["import_state"], int(row["import_first"]),
        )  # fmt: skip

    def silent_for(self) -> float:
        """Seconds since its last heartbeat."""
        beat = dt.datetime.fromisoformat(self.heartbeat.replace("Z", "+00:00"))
        return (dt.datetime.now(dt.UTC) - beat).total_seconds()

    @property
    def interrupted(self) -> bool:
        return self.silent_for() > STALE

    def busy(self) -> StoreBusy:
        """The error a writer gets while this bulk write holds the store."""
        who = f"bulk write {self.id} by {self.actor!r}, started {self.started}"
        if self.interrupted:
            return StoreBusy(
                f"{who}, was interrupted while {self.state} (last heard {self.heartbeat}); run "
                "`servicegraph recover` to roll back what it wrote, then write again"
            )
        return StoreBusy(
            f"{who}, holds the store ({self.state}, last heard {self.silent_for():.0f} s ago); "
            "graph writes wait until it ends: try again when it has finished (if its process "
            "died, `servicegraph recover --force` rolls it back)"
        )


def bulk_write(
    store: Neo4jStore,
    batch: Batch,
    actor: str,
    progress: Progress | None,
    reason: str | None,
    size: int = SLICE,
) -> WriteResult:
    """Write ``batch`` in slices of ``size`` mutations with one transaction's outcome (see the
    module's docstring). A batch of at most ``size`` items, or one that retires or deletes, is
    written by :meth:`GraphStore.write` in one transaction."""
    if len(batch) <= size or batch.retire or batch.delete_cis or batch.delete_relationships:
        return store.write(batch, actor, progress=progress, reason=reason)
    report = progress or (lambda done, total: None)
    with paused_gc():  # checking and planning a million items builds objects by the million
        problems = check_write_names(actor, reason)
        named = bool(problems)  # an actor the lease cannot record: refused before it is taken
        problems += check_batch(store.model, batch)  # raised with the graph's, below
        if named:
            raise ValidationFailed(problems)
        lease = _claim(store, actor)
        try:
            plan = store._run_read(lambda tx: store._prepare(tx, batch, problems))
        except BaseException:
            _release(store, lease)
            raise
        if not plan.mutations:
            _release(store, lease)
            return WriteResult(unchanged=plan.unchanged)
    written = _Written(len(plan.mutations), report)
    # Writing makes garbage the planning did not (the driver's results are cycles): collected
    # as it goes, without the collector scanning the plan's millions of objects each time.
    with scanning_new_only():
        try:
            # Its entries name it (the caller's reason first): slices have their own times, and
            # a rollback names the same id.
            tagged = f"{reason} (bulk write {lease.id})" if reason else f"bulk write {lease.id}"
            _write_all(store, lease, plan, actor, tagged[:2_000], "writing", written, size)
        except BaseException as exc:
            _undo_after(store, lease, actor, exc, written.done, written.total)
            raise
        _release(store, lease)
    return plan.result(written.first, written.last)


def bulk_stream(
    store: Neo4jStore,
    source: Source,
    actor: str,
    progress: Progress | None,
    reason: str | None,
    check: ChunkCheck | None,
    size: int = SLICE,
) -> WriteResult:
    """Write what ``source`` yields a chunk at a time (:mod:`servicegraph.graph.streamed`),
    its slices written as :func:`bulk_write` writes them, under the same lease and with the
    same undo — the difference is when problems are found: a chunk is checked against the
    model and the graph just before its slices are written, so a problem in a later chunk
    stops the writing there, every remaining chunk is still checked (the error lists all), and
    what was written is undone from the journal. :data:`WORKERS` slices are written side by
    side while the next chunk is read and planned."""
    if problems := check_write_names(actor, reason):
        raise ValidationFailed(problems)
    report = progress or (lambda done, total: None)
    across = Across(store.model)
    lease = _claim(store, actor)
    tagged = (f"{reason} (bulk write {lease.id})" if reason else f"bulk write {lease.id}")[:2_000]
    written = _Written(0, lambda done, total: None)
    result = WriteResult()
    try:
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="bulk-write") as pool:
            writing = _Slices(pool, written)
            try:
                for chunk in collected(source.chunks(store.stream_chunk)):
                    plan = planned(store, store._run_read, across, chunk, check)
                    if plan is None or not plan.mutations:  # still here: nothing else says so
                        _beat(store, lease, "checking" if across.problems else "writing")
                    if plan is not None:
                        result = result.then(plan.result(None, None))
                        for phase in _phases(plan):
                            for part in slices(phase, size):
                                writing.submit(
                                    part.mutations[0].op.endswith("_ci"),
                                    lambda part=part: _write_slice(  # type: ignore[misc]
                                        store, lease, part, actor, tagged, "writing"
                                    ),
                                    len(part.mutations),
                                )
                    elif across.problems:
                        writing.stop()  # no more slices: the ones in flight finish
                    report(chunk.done, source.total)
                writing.finish()
            finally:
                writing.stop()
        if across.problems:
            raise ValidationFailed(across.problems)
    except BaseException as exc:
        _undo_after(store, lease, actor, exc, written.done, result.created + result.updated)
        raise
    _release(store, lease)
    return replace(result, first_seq=written.first, last_seq=written.last)


def _beat(store: Neo4jStore, lease: ImportLease, state: str) -> None:
    """The lease's heartbeat, from a chunk that wrote no slice (each slice beats it): a long run
    of unchanged or refused chunks would otherwise look like a dead import after STALE s."""
    store._run_write(lambda tx: None, lease=lease.id, state=state)


class _Slices:
    """The slices in flight of a streamed bulk write: at most two per worker (so reading runs
    ahead by about a chunk), a relationship slice only once every CI slice before it has
    committed (its ``MATCH`` must find its ends). The first failure is raised by the next
    :meth:`submit` or :meth:`finish`; :meth:`stop` waits for what runs and counts what
    committed."""

    def __init__(self, pool: ThreadPoolExecutor, written: _Written) -> None:
        self.pool, self.written = pool, written
        self.flying: list[tuple[Future[tuple[int, int]], int]] = []
        self.kind: bool | None = None  # True: the slices in flight write CIs

    def submit(self, cis: bool, work: Callable[[], tuple[int, int]], count: int) -> None:
        if self.kind is not None and cis != self.kind:
            self.finish()
        self.kind = cis
        while len(self.flying) >= 2 * WORKERS:
            self._collect(self.flying.pop(0))
        self.flying.append((self.pool.submit(work), count))

    def finish(self) -> None:
        while self.flying:
            self._collect(self.flying.pop(0))

    def stop(self) -> None:
        for future, _ in self.flying:
            future.cancel()
        wait([f for f, _ in self.flying])
        for future, count in self.flying:
            if not future.cancelled() and future.exception() is None:
                self.written.add(count, *future.result())
        self.flying = []

    def _collect(self, flying: tuple[Future[tuple[int, int]], int]) -> None:
        future, count = flying
        try:
            result = future.result()
        except BaseException:
            self.stop()
            raise
        self.written.add(count, *result)


def recover(store: Neo4jStore, actor: str, force: bool = False) -> WriteResult | None:
    """Roll back the bulk write holding the store if it was interrupted (``force``: even if its
    heartbeat is recent — only when its process is known dead); None when there is none."""
    held: ImportLease | None = store._run_write(lambda tx: tx.lease, graph=False)
    if held is None:
        return None
    if not held.interrupted and not force:
        raise held.busy()
    lease = _claim(store, actor, take_over=held)
    return _undo(store, lease, actor, f"recovered by {actor}: {held.id} was interrupted")


def _claim(store: Neo4jStore, actor: str, take_over: ImportLease | None = None) -> ImportLease:
    ident = f"import-{utc_now()[:19].replace(':', '')}-{secrets.token_hex(3)}"

    def work(tx: _Neo4jWriteTx) -> ImportLease:
        now = utc_now()
        if take_over is None:
            if tx.lease is not None:
                raise tx.lease.busy()
            assert tx.head is not None  # locked when the transaction began
            first, state = tx.head + 1, "checking"
        else:
            if tx.lease is None or tx.lease.heartbeat != take_over.heartbeat:
                raise StoreBusy(f"bulk write {take_over.id} is being recovered by another process")
            first, state = take_over.first, "rolling back"
        tx.tx.run(
            query("claim_import"), id=ident, actor=actor, now=now, state=state, first=first
        ).consume()
        return ImportLease(ident, actor, now, now, state, first)

    return store._run_write(work, graph=False)


class _Written:
    """What the slices of one plan have written so far (updated from the writing threads)."""

    def __init__(self, total: int, report: Progress) -> None:
        self.total, self.done, self._report = total, 0, report
        self.first: int | None = None
        self.last: int | None = None
        self._lock = threading.Lock()

    def add(self, count: int, first: int, last: int) -> None:
        with self._lock:
            self.done += count
            self.first = first if self.first is None else min(self.first, first)
            self.last = last if self.last is None else max(self.last, last)
            done = self.done
        self._report(done, self.total)


def _write_all(
    store: Neo4jStore,
    lease: ImportLease,
    plan: Plan,
    actor: str,
    reason: str | None,
    state: str,
    written: _Written,
    size: int,
) -> None:
    """Write ``plan`` in slices of ``size``, :data:`WORKERS` slices at a time within a phase.

    A phase is a run of CI mutations or of relationship mutations: a relationship slice starts
    only once every CI slice before it has committed (its MATCH must see its ends). Within a
    phase slices are independent; each takes the journal lock only after its data, so one slice
    writes while the one before appends its entries and commits (two cores busy instead of one).
    On the first failure nothing more starts; slices already running finish (the undo then sees
    them in the journal) and the failure is raised."""
    for phase in _phases(plan):
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="bulk-write") as pool:
            parts = list(slices(phase, size))
            futures = [
                pool.submit(_write_slice, store, lease, part, actor, reason, state)
                for part in parts
            ]
            counted: set[int] = set()
            try:
                for i, future in enumerate(futures):
                    written.add(len(parts[i].mutations), *future.result())
                    counted.add(i)
            except BaseException:
                for future in futures:
                    future.cancel()
                wait(futures)  # the slices already running finish: count those that committed
                for i, future in enumerate(futures):
                    if i not in counted and not future.cancelled() and not future.exception():
                        written.add(len(parts[i].mutations), *future.result())
                raise


def _phases(plan: Plan) -> list[Plan]:
    """``plan`` cut where its mutations turn from CIs to relationships or back."""
    out: list[Plan] = []
    for m in plan.mutations:
        kind = m.op.endswith("_ci")
        if not out or out[-1].mutations[-1].op.endswith("_ci") != kind:
            out.append(Plan())
        out[-1].mutations.append(m)
    return out


def _write_slice(
    store: Neo4jStore, lease: ImportLease, part: Plan, actor: str, reason: str | None, state: str
) -> tuple[int, int]:
    seqs: tuple[int, int] = store._run_write(
        lambda tx: tx.apply(part, actor, utc_now(), lambda done, total: None, reason),
        lease=lease.id,
        late=True,
        state=state,
    )
    return seqs


def _release(store: Neo4jStore, lease: ImportLease) -> None:
    store._run_write(
        lambda tx: tx.tx.run(query("release_import"), id=lease.id).consume(), lease=lease.id
    )


def _undo_after(
    store: Neo4jStore, lease: ImportLease, actor: str, exc: BaseException, done: int, total: int
) -> None:
    """Undo a failed bulk write; note on ``exc`` what happened to what it had written."""
    cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    try:
        undone = _undo(store, lease, actor, f"failed after {done:,} of {total:,} items: {cause}")
    except BaseException as undo_exc:
        exc.add_note(
            f"bulk write {lease.id} wrote {done:,} of {total:,} items and could not undo them "
            f"({undo_exc}); run `servicegraph recover` to roll them back"
        )
        raise StoreUnavailable(
            f"bulk write {lease.id} failed after {done:,} of {total:,} items ({cause}) and "
            f"its rollback failed too ({undo_exc}); the store refuses graph writes until "
            "`servicegraph recover` has rolled it back"
        ) from exc
    if undone.first_seq is None:
        exc.add_note(f"bulk write {lease.id}: it had written nothing; nothing of it remains")
        return
    exc.add_note(
        f"bulk write {lease.id}: the {done:,} items written before the failure were rolled back "
        f"(journal {undone.first_seq}..{undone.last_seq}); nothing of it remains"
    )


def _undo(store: Neo4jStore, lease: ImportLease, actor: str, why: str) -> WriteResult:
    """Give everything written since the lease's first seq its record from before, then free
    the store. Safe to run again on what a broken undo left: it reads the journal afresh."""
    changes = store.range_changes(lease.first - 1, store.head_seq())
    plan = undo_plan(changes)
    reason = f"rollback of bulk write {lease.id}, {why}"[:2_000]
    written = _Written(len(plan.mutations), lambda done, total: None)
    _write_all(store, lease, plan, actor, reason, "rolling back", written, store.bulk_slice)
    _release(store, lease)
    return plan.result(written.first, written.last)
