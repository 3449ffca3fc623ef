"""The topology engine: an in-memory projection of the graph for traversals at a million CIs.

Nodes are integers (``ids[i]`` ↔ ``index[id]``); edges point from the dependent to its dependency
and live in CSR form in both directions, with their relationship type as a small integer. Writes
after the build are applied from the journal (:meth:`TopologyEngine.refresh`): node changes in
place, new edges in a small overlay, deleted edges masked; a large backlog rebuilds the CSR.

Failure propagation (:meth:`TopologyEngine.propagate`) runs in compiled loops (``kernels.py``) over
a reverse CSR of the ``required``/``redundant`` edges (plus the overlay's):

* DOWN is the least fixpoint of: a seed; or a ``required`` dependency DOWN; or at least one
  ``redundant`` dependency DOWN and fewer than ``min_up`` (default 1) redundant dependencies not DOWN.
  The level at which a node turns DOWN is its distance; the dependency that turned it is its cause.
* Every other node reached against the arrows over ``required``/``redundant`` edges is DEGRADED; its
  distance is its breadth-first hop count and its cause the node it was reached from.

Following causes back always ends at a seed, in exactly ``distance`` steps. Retired CIs take no
part: they are never impacted, never propagate, and do not count as up members of a group.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from servicegraph.errors import NotFound, Problem, ValidationFailed
from servicegraph.graph import kernels, projection
from servicegraph.graph.gate import Gate
from servicegraph.graph.kernels import (
    Csr,
    Reached,
    Scratch,
    closure_csr,
    down_set_csr,
    expand_csr,
    propagate_csr,
    stable_order,
)
from servicegraph.graph.model import Model
from servicegraph.graph.records import JournalEntry, RelKey
from servicegraph.graph.store import UNREADABLE, GraphStore
from servicegraph.graph.topology import TopologyColumns

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["DataProblem", "Propagation", "TopologyEngine", "one_refresh"]

I32 = np.int32
REQUIRED, REDUNDANT, NONE = 0, 1, 2
DOWN, DEGRADED = "DOWN", "DEGRADED"
Direction = Literal["up", "down"]
_REBUILD_AFTER = 50_000  # journal entries or overlay edges before a full rebuild
_MAX_MIN_UP = 2**31 - 1  # the kernels count members in int32
_SEARCH_UP_TO = 50_000  # ids looked up by binary search before the index is built
_IDLE_SCRATCHES = 2  # sets of working arrays kept between analyses (32 MB each at 1M CIs)


_refreshed: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar(
    "servicegraph_refreshed", default=None
)


@contextlib.contextmanager
def one_refresh() -> Iterator[None]:
    """Within it, an engine reads the journal once: for a unit of work that writes nothing (one
    GraphQL query), whose analyses then answer from the state of the graph at its start and
    spare a store round trip each (four for a small impact)."""
    token = _refreshed.set(set())
    try:
        yield
    finally:
        _refreshed.reset(token)


@dataclass(frozen=True)
class DataProblem:
    """A stored value the engine cannot use as it is: which CI, which attribute, what is wrong
    and how to fix it. Analyses that reach the CI list it instead of failing."""

    ci: str
    attribute: str
    detail: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return {"ci": self.ci, "attribute": self.attribute, "detail": self.detail, "fix": self.fix}


@dataclass(frozen=True)
class Propagation:
    """Raw result of a failure propagation over node indices (seeds excluded from ``nodes``)."""

    seeds: np.ndarray
    nodes: np.ndarray  # impacted node indices, by (distance, index)
    down: np.ndarray  # bool per impacted node
    distance: np.ndarray
    cause: np.ndarray  # node index each impacted node was reached from
    _engine: TopologyEngine
    _reached: Reached  # every impacted node's causes, for paths

    @classmethod
    def of(cls, seeds: np.ndarray, reached: Reached, engine: TopologyEngine) -> Propagation:
        order = reached.order
        down = reached.down[order]
        cause = np.where(down, reached.down_cause[order], reached.parent[order])
        return cls(seeds, reached.nodes[order], down, reached.distance[order], cause, engine,
                   reached)  # fmt: skip

    def head(self, limit: int) -> Propagation:
        """The nearest ``limit`` impacted nodes (paths still lead back to the seeds)."""
        return self.rows(0, limit)

    def rows(self, start: int, stop: int | None) -> Propagation:
        """Impacted nodes ``start`` to ``stop`` in order (paths still lead back to the seeds)."""
        if start == 0 and (stop is None or stop >= self.nodes.size):
            return self
        cut = slice(start, stop)
        return replace(self, nodes=self.nodes[cut], down=self.down[cut],
                       distance=self.distance[cut], cause=self.cause[cut])  # fmt: skip

    def paths(self) -> list[list[str]]:
        """The chain of CI ids from a seed to each impacted node (seed first)."""
        ids = self._engine.id_array()
        known = self._reached.nodes  # ascending: a node's facts are found by binary search
        out: list[list[str]] = [[] for _ in range(self.nodes.size)]
        # One vectorised pointer walk per distance: nodes at distance d need d steps back.
        for d in np.unique(self.distance).tolist():
            rows = np.flatnonzero(self.distance == d)
            nodes = self.nodes[rows]
            steps = np.empty((rows.size, d + 1), dtype=I32)
            steps[:, d] = nodes
            is_down = self.down[rows]  # DOWN: the chain of causes; DEGRADED: breadth-first parents
            current = nodes
            for k in range(d - 1, -1, -1):
                at = np.searchsorted(known, current)
                current = np.where(is_down, self._reached.down_cause[at], self._reached.parent[at])
                steps[:, k] = current
            for row, chain in zip(rows.tolist(), ids[steps].tolist(), strict=True):
                out[row] = chain
        return out


class TopologyEngine:
    """An in-memory, journal-refreshed projection of one store's topology."""

    ids: list[str]  # node index -> CI id
    _index: dict[str, int] | None  # CI id -> node index (None: not built yet, ids still sorted)
    _names: list[str] | None  # names at build time (None: still in the projection's blob)
    _names_blob: np.ndarray | None
    _names_array: np.ndarray | None
    _name_changes: dict[int, str]  # since the build: new CIs and renames

    def __init__(self, store: GraphStore) -> None:
        kernels.warm_up_soon()  # beside opening the projection or building
        self.store = store
        self.model: Model = store.model
        self.type_names = sorted(store.model.relationship_types)
        self.type_code = {name: i for i, name in enumerate(self.type_names)}
        self._all_types = np.ones(len(self.type_names), dtype=bool)  # a type mask letting all by
        kinds = {"required": REQUIRED, "redundant": REDUNDANT, "none": NONE}
        self.type_kind = np.array(
            [kinds[store.model.impact(t)] for t in self.type_names], dtype=np.int8
        )
        # the relationship types failure travels over (required or redundant)
        self.impact_type_names = [t for t in self.type_names if store.model.impact(t) != "none"]
        self.class_names = sorted(store.model.classes)
        self.class_code = {name: i for i, name in enumerate(self.class_names)}
        self._family_masks: dict[str, np.ndarray] = {}  # class -> bool per class code
        self._type_masks: dict[str, np.ndarray] = {}  # relationship type -> bool per type code
        self._gate = Gate()  # analyses share the engine; applying the journal has it alone
        self._id_array: np.ndarray | None = None
        self._scratches: list[Scratch] = []  # the kernels' per-node arrays, idle between analyses
        self._scratch_lock = threading.Lock()
        self.data_problems: dict[str, DataProblem] = {}  # stored values it could not use
        self.opened_from: str = "store"  # or "projection" (the file beside the store)
        path = projection.projection_path(store)
        if path is not None and self._open_projection(path):
            self.refresh()
        else:
            self.rebuild()

    # -- building -------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Load the whole topology from the store, build the CSR arrays and persist them —
        unless another process (a server worker, a CLI call) already did after a large write:
        its projection, closer to the journal's head than this engine, is opened instead."""
        path = projection.projection_path(self.store)
        seq: int | None = getattr(self, "seq", None)  # None: the first build (__init__ looked)
        if path is not None and seq is not None and self._open_projection(path, newer_than=seq):
            self.refresh()
            return
        columns = self.store.topology_columns()
        with self._gate.writing():
            self._load(columns)
            self.seq = columns.seq
            self.opened_from = "store"
            self._save_projection(columns)
            self.refresh()

    def _fingerprint(self) -> str:
        return projection.model_fingerprint(self.type_names, self.type_kind.tolist(),
                                            self.class_names)  # fmt: skip

    def _save_projection(self, columns: TopologyColumns) -> None:
        """Persist the state just built from ``columns`` (before any journal entry is applied); a
        folder that cannot be written only costs the next process a build."""
        path = projection.projection_path(self.store)
        ids, names = columns.ids_joined, columns.names_joined  # as the store read them, or:
        ids = ids if ids is not None else _joined(self.ids)
        names = names if names is not None else _joined(self._name_list())
        if path is None or ids is None or names is None:  # a NUL byte in an id or a name
            return
        header = {"fingerprint": self._fingerprint(), "seq": self.seq, "n": self.n,
                  "journal": projection.journal_mark(self.store, self.seq),
                  "data_problems": [p.to_dict() for p in self.data_problems.values()]}  # fmt: skip
        arrays = {  # written in a thread: copies of the arrays the journal changes in place
            "ids": ids, "names": names, "cls": self.cls.copy(), "alive": self.alive.copy(),
            "min_up": self.min_up.copy(), "nred": self.nred.copy(),
            "f_src": self.f_src, "f_dst": self.f_dst, "f_type": self.f_type, "f_ptr": self.f_ptr,
            "r_ptr": self.reverse.ptr, "r_nbr": self.reverse.nbr, "r_typ": self.reverse.typ,
            "r_eid": self.reverse.eid, "i_ptr": self.impact_reverse.ptr,
            "i_nbr": self.impact_reverse.nbr, "i_typ": self.impact_reverse.typ,
            "i_eid": self.impact_reverse.eid,
        }  # fmt: skip
        projection.write_soon(path, header, arrays)

    def wait_saved(self) -> None:
        """Return once the projection file this process writes for the store is written (it is
        written in a thread while the engine answers)."""
        path = projection.projection_path(self.store)
        if path is not None:
            projection.wait_written(path)

    def _open_projection(self, path: Path, newer_than: int | None = None) -> bool:
        """Take the arrays from the projection file when it is this store's and this model's at a
        seq the journal still has — with ``newer_than``, only at a later seq than that and
        near enough to the head to catch up by replaying (False: build instead)."""
        found = projection.read(path)
        if found is None:
            return False
        header, a = found
        if header.get("fingerprint") != self._fingerprint():
            return False
        seq = int(header["seq"])
        if newer_than is not None and (
            seq <= newer_than or self.store.head_seq() - seq > _REBUILD_AFTER
        ):
            return False
        if header.get("journal") != projection.journal_mark(self.store, seq):
            return False
        n = int(header["n"])
        with self._gate.writing():
            self.ids = bytes(a["ids"]).decode().split("\0") if n else []
            self._names, self._names_blob = None, a["names"]  # decoded when first asked for
            self._names_array = None
            self._name_changes = {}
            self._index = None  # built when first needed: 0.3 s of hashing at 1M CIs
            self.n = n
            self._scratches = []
            self._id_array = None
            self.cls, self.alive, self.min_up = a["cls"], a["alive"], a["min_up"]
            self.data_problems = {d["ci"]: DataProblem(**d) for d in header["data_problems"]}
            self.f_src, self.f_dst, self.f_type, self.f_ptr = (a["f_src"], a["f_dst"],
                                                               a["f_type"], a["f_ptr"])  # fmt: skip
            self.forward = _Adjacency(self.f_ptr, self.f_dst, self.f_type,
                                      np.arange(len(self.f_src)))  # fmt: skip
            self.reverse = _Adjacency(a["r_ptr"], a["r_nbr"], a["r_typ"], a["r_eid"])
            self.impact_reverse = _Adjacency(a["i_ptr"], a["i_nbr"], a["i_typ"], a["i_eid"])
            self._fresh_edges()
            self.nred = a["nred"]
            self.seq = seq
            self.opened_from = "projection"
        return True

    def _load(self, columns: TopologyColumns) -> None:
        n = len(columns.ids)
        cap = max(16, int(n * 1.25))
        self.ids = columns.ids  # sorted: positions in id order, whichever store read them
        self._id_array = None  # the same count of other ids after deletes and creates
        self._index = None  # built when first needed (ids are sorted until then)
        self._names, self._names_blob = columns.names, columns.names_joined
        self._names_array = None
        self._name_changes = {}
        self.n = n
        self._scratches = []
        self.cls = np.zeros(cap, dtype=np.int16)
        self.cls[:n] = _recoded(columns.class_names, self.class_code, 0)[columns.cls]
        self.alive = np.zeros(cap, dtype=bool)
        self.alive[:n] = ~columns.retired
        self.min_up = np.ones(cap, dtype=I32)
        self.data_problems = {}
        for i, value in columns.min_up:
            self.min_up[i] = self._checked_min_up(self.ids[i], value)
        typ = _recoded(columns.type_names, self.type_code, -1)[columns.typ]
        src, dst = columns.src, columns.dst
        ok = (src >= 0) & (dst >= 0) & (typ >= 0)  # edges of nodes not loaded yet come from replay
        self._build_csr(src[ok], dst[ok], typ[ok])

    def _build_csr(self, src: np.ndarray, dst: np.ndarray, typ: np.ndarray) -> None:
        size = len(self.cls)
        by_dst = stable_order(dst, size)  # then by source: np.lexsort((dst, src)), by counting
        order = by_dst[stable_order(src[by_dst], size)]
        self.f_src, self.f_dst, self.f_type = src[order], dst[order], typ[order]
        self.f_ptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.f_src, minlength=size), out=self.f_ptr[1:])
        self.forward = _Adjacency(self.f_ptr, self.f_dst, self.f_type, np.arange(len(src)))
        rorder = stable_order(self.f_dst, size)
        self.reverse = _Adjacency.of(self.f_dst[rorder], self.f_src[rorder], self.f_type[rorder],
                                     rorder, size)  # fmt: skip
        # Against the arrows over required/redundant edges only: what failure propagation walks.
        hot = self.type_kind[self.f_type[rorder]] != NONE
        rimp = rorder[hot]
        self.impact_reverse = _Adjacency.of(self.f_dst[rimp], self.f_src[rimp], self.f_type[rimp],
                                            rimp, size)  # fmt: skip
        self._fresh_edges()
        self._recount_redundant()

    def _fresh_edges(self) -> None:
        """The edge state of CSR arrays just built or opened: every edge alive, no overlay."""
        self.impact_kind = self.type_kind[self.impact_reverse.typ]  # per edge, for the kernels
        self.impact_alive = np.ones(len(self.impact_reverse.nbr), dtype=bool)
        self.edge_alive = np.ones(len(self.f_src), dtype=bool)
        self.deleted_edges = 0
        self.base_nodes = self.n
        self._overlay: dict[tuple[int, int, int], None] = {}
        self._overlay_arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._overlay_csr: Csr | None = None
        self._forward_cache: tuple[np.ndarray, object, Csr, Csr] | None = None

    def _recount_redundant(self) -> None:
        """nred[v]: live redundant dependencies of v whose CI is not retired."""
        src, dst, typ, alive = self._all_edges()
        live = alive & (self.type_kind[typ] == REDUNDANT) & self.alive[dst]
        self.nred = np.bincount(src[live], minlength=len(self.cls)).astype(I32)

    def _all_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        o_src, o_dst, o_typ = self._overlay_edges()
        return (
            np.concatenate([self.f_src, o_src]),
            np.concatenate([self.f_dst, o_dst]),
            np.concatenate([self.f_type, o_typ]),
            np.concatenate([self.edge_alive, np.ones(len(o_src), dtype=bool)]),
        )

    def _overlay_impact(self) -> Csr:
        """The overlay's impact edges as a reverse CSR over every node, for the kernels."""
        if self._overlay_csr is None or self._overlay_csr[0].size < self.n + 1:
            o_src, o_dst, o_typ = self._overlay_edges()
            hot = self.type_kind[o_typ] != NONE
            order = np.argsort(o_dst[hot], kind="stable")
            dst, src, kind = o_dst[hot][order], o_src[hot][order], self.type_kind[o_typ[hot]][order]
            ptr = np.zeros(len(self.cls) + 1, dtype=np.int64)
            np.cumsum(np.bincount(dst, minlength=len(self.cls)), out=ptr[1:])
            self._overlay_csr = (ptr, src, kind, np.ones(src.size, dtype=bool))
        return self._overlay_csr

    def _overlay_edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._overlay_arrays is None:
            rows = np.array(list(self._overlay), dtype=np.int64).reshape(-1, 3)
            self._overlay_arrays = (
                rows[:, 0].astype(I32),
                rows[:, 1].astype(I32),
                rows[:, 2].astype(np.int16),
            )
        return self._overlay_arrays

    # -- journal refresh ------------------------------------------------------------------------
    def hold_if_free(self, max_behind: int) -> bool:
        """Enter the engine to read for a short unit of work on this thread, without waiting:
        False while the journal is being applied (or waits to be), when it is more than
        ``max_behind`` entries ahead (catching up could take long), or when entries wait that
        this thread cannot apply (it is inside already, for another quick query). Analyses of
        other threads do not stand in the way: they share the engine. Brings the engine up to
        date first; pair with :meth:`let_go`. A server runs small queries on its event loop only
        when this says yes."""
        gate = self._gate
        if gate.busy():
            return False
        behind = self.store.head_seq() - self.seq
        if behind > max_behind:
            return False
        if behind > 0:
            if gate.reading_here() or not gate.acquire_write(blocking=False):
                return False
            try:
                self.refresh()
            finally:
                gate.release_write()
        return gate.acquire_read(blocking=False)

    def let_go(self) -> None:
        """Leave what :meth:`hold_if_free` entered."""
        self._gate.release_read()

    def refresh(self) -> int:
        """Apply journal entries written since the last refresh; return how many were applied
        (within :func:`one_refresh`, only the first call reads the journal; a thread inside the
        engine to read answers from the state it entered at, and applies nothing)."""
        done = _refreshed.get()
        if (done is not None and id(self) in done) or self._gate.reading_here():
            return 0
        entries = self.store.journal(since=self.seq, limit=_REBUILD_AFTER + 1)
        if entries:  # analyses in flight finish first; new ones wait for these entries
            with self._gate.writing():
                if entries[0].seq <= self.seq:  # another thread applied some meanwhile
                    entries = self.store.journal(since=self.seq, limit=_REBUILD_AFTER + 1)
                if len(entries) > _REBUILD_AFTER:
                    self.rebuild()
                else:
                    for entry in entries:
                        self._apply(entry)
                        self.seq = entry.seq
                    if len(self._overlay) > _REBUILD_AFTER:  # compact the overlay into the CSR
                        src, dst, typ, alive = self._all_edges()
                        self._build_csr(src[alive], dst[alive], typ[alive])
        if done is not None:
            done.add(id(self))
        return len(entries)

    @contextlib.contextmanager
    def _current(self) -> Iterator[None]:
        """Up to date with the journal, then inside to read."""
        self.refresh()
        with self._gate.reading():
            yield

    def _apply(self, entry: JournalEntry) -> None:
        """Apply one journal entry; idempotent, so a replay over a fresh snapshot is harmless."""
        if not entry.op.endswith(("_ci", "_relationship")):
            return  # not topology (e.g. create_token)
        if entry.op.endswith("_ci"):
            if entry.after is None:  # deleted: its relationships went in earlier entries
                self.data_problems.pop(entry.entity, None)
                self._set_alive(entry.entity, False)
                self.index.pop(entry.entity, None)
                return
            after = entry.after
            i = self.index.get(after["id"])
            if i is None:
                i = self._add_node(after["id"], after["class"], str(after.get("name", "")))
            elif after.get("name") is not None:
                self._name_changes[i] = str(after["name"])
            attrs = after.get("attributes") or {}
            self.min_up[i] = self._checked_min_up(after["id"], attrs.get("min_up"))
            self._set_alive(after["id"], attrs.get("status") != "retired")
            return
        record = entry.after or entry.before
        assert record is not None
        s, d = self.index.get(record["source"]), self.index.get(record["target"])
        t = self.type_code.get(record["type"])
        if s is None or d is None or t is None:
            return
        present = self._edge_present(s, d, t)
        if entry.after is not None and not present:
            self._overlay[(s, d, t)] = None
            self._overlay_arrays = self._overlay_csr = None
            if self.type_kind[t] == REDUNDANT and self.alive[d]:
                self.nred[s] += 1
        elif entry.after is None and present:
            if (s, d, t) in self._overlay:
                del self._overlay[(s, d, t)]
                self._overlay_arrays = self._overlay_csr = None
            else:
                self.edge_alive[self._base_edge(s, d, t)] = False
                self.deleted_edges += 1
                if self.type_kind[t] != NONE:
                    self.impact_alive[self._impact_position(s, d, t)] = False
            if self.type_kind[t] == REDUNDANT and self.alive[d]:
                self.nred[s] -= 1

    def _checked_min_up(self, ident: str, value: object) -> int:
        """A stored ``min_up`` the kernels can use (1 when absent); a value no write would accept
        today (stored by an older version, or by hand) is reported and read as 1, so one bad
        record cannot take every analysis down."""
        self.data_problems.pop(ident, None)
        if value is None:
            return 1
        if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= _MAX_MIN_UP:
            return value
        if value == UNREADABLE:
            problem = DataProblem(
                ident, "attributes", "the stored attributes are not valid JSON (e.g. NaN written "
                "by an older version)", "write the CI again with valid values "
                "(upsertCis or servicegraph import); min_up is read as 1 until then",
            )  # fmt: skip
        else:
            problem = DataProblem(
                ident, "min_up", f"{value!r} is not an integer between 1 and {_MAX_MIN_UP:,}",
                "set min_up to the number of members that must be up (or remove it); it is "
                "read as 1 until then",
            )  # fmt: skip
        self.data_problems[ident] = problem
        return 1

    def problems_among(self, nodes: np.ndarray) -> list[DataProblem]:
        """The data problems of these node indices (for an analysis that reached them)."""
        if not self.data_problems:
            return []
        ids = self.id_array()[nodes]
        return [self.data_problems[i] for i in ids.tolist() if i in self.data_problems]

    def _add_node(self, ident: str, cls: str, name: str) -> int:
        if self.n == len(self.cls):
            grow = max(16, self.n // 2)
            self.cls = np.concatenate([self.cls, np.zeros(grow, dtype=np.int16)])
            self.alive = np.concatenate([self.alive, np.zeros(grow, dtype=bool)])
            self.min_up = np.concatenate([self.min_up, np.ones(grow, dtype=I32)])
            self.nred = np.concatenate([self.nred, np.zeros(grow, dtype=I32)])
            self.f_ptr = _extend(self.f_ptr, grow)
            for adjacency in (self.forward, self.reverse, self.impact_reverse):
                adjacency.ptr = _extend(adjacency.ptr, grow)
        i = self.n
        self.n += 1
        self.ids.append(ident)
        self.index[ident] = i
        self._name_changes[i] = name
        self.cls[i] = self.class_code.get(cls, 0)
        self.alive[i] = True
        return i

    def _set_alive(self, ident: str, alive: bool) -> None:
        i = self.index.get(ident)
        if i is None or bool(self.alive[i]) == alive:
            return
        self.alive[i] = alive
        mark = I32(-1 if alive else -2)
        for scratch in self._scratches:  # the kernels' arrays mark who takes part (all idle now)
            if i < scratch.level.size:
                scratch.level[i] = scratch.hops[i] = mark
        # dependents that count i as a redundant member gain or lose one
        _, dependents, types = self._expand(np.array([i], dtype=I32), reverse=True)
        red = dependents[self.type_kind[types] == REDUNDANT]
        np.add.at(self.nred, red, 1 if alive else -1)

    def _impact_position(self, s: int, d: int, t: int) -> int:
        """Where the live base edge s -t-> d sits in the reverse CSR of impact edges."""
        ptr, adj = self.impact_reverse.ptr, self.impact_reverse
        lo, hi = int(ptr[d]), int(ptr[d + 1])
        hits = np.flatnonzero((adj.nbr[lo:hi] == s) & (adj.typ[lo:hi] == t))
        return int(lo + hits[self.impact_alive[lo + hits]][0])

    def _edge_present(self, s: int, d: int, t: int) -> bool:
        return (s, d, t) in self._overlay or self._base_edge(s, d, t) >= 0

    def _base_edge(self, s: int, d: int, t: int) -> int:
        if s >= self.base_nodes:
            return -1
        lo, hi = int(self.f_ptr[s]), int(self.f_ptr[s + 1])
        hits = np.flatnonzero((self.f_dst[lo:hi] == d) & (self.f_type[lo:hi] == t))
        hits = hits[self.edge_alive[lo + hits]]
        return int(lo + hits[0]) if hits.size else -1

    # -- traversal ------------------------------------------------------------------------------
    def _expand(
        self, frontier: np.ndarray, reverse: bool, types: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All live edges at the frontier: (frontier node, neighbour, type) triples.

        ``reverse`` walks against the arrows (from a dependency to its dependents)."""
        adj = self.reverse if reverse else self.forward
        frontier = np.asarray(frontier, dtype=np.int64)
        wanted = self._all_types if types is None else types
        here, there, typ = expand_csr(adj.ptr, adj.nbr, adj.typ, adj.eid, self.edge_alive,
                                      bool(self.deleted_edges), frontier, self.base_nodes,
                                      wanted)  # fmt: skip
        if self._overlay:
            o_src, o_dst, o_typ = self._overlay_edges()
            key, other = (o_dst, o_src) if reverse else (o_src, o_dst)
            hit = np.isin(key, frontier) & wanted[o_typ]
            here = np.concatenate([here, key[hit]])
            there = np.concatenate([there, other[hit]])
            typ = np.concatenate([typ, o_typ[hit]])
        return here, there, typ

    def propagate(self, ids: Collection[str], max_depth: int | None = None) -> Propagation:
        """Failure propagation from seed CIs (see the module docstring for the exact rules)."""
        _check_depth(max_depth)
        if not ids:
            raise ValidationFailed(
                [Problem("ciIds", "ciIds", "give at least one CI id")], wrote=False
            )
        with self._current():
            seeds = np.unique(self._seed_indices(ids))
            limit = max_depth if max_depth is not None else 1 << 30
            n = self.n
            base = (self.impact_reverse.ptr, self.impact_reverse.nbr, self.impact_kind,
                    self.impact_alive)  # fmt: skip
            with self._scratch_arrays() as scratch:
                reached = propagate_csr(
                    base, self._overlay_impact(), self.alive[:n], self.nred[:n], self.min_up[:n],
                    seeds, limit, scratch,
                )  # fmt: skip
            return Propagation.of(seeds, reached, self)

    def down_set(self, node: int, cap: int = 1 << 62) -> tuple[np.ndarray, bool]:
        """The node indices the failure of node ``node`` takes DOWN (itself first, then level by
        level); with ``cap`` the walk stops at about that size and says so (the set is then at
        least that large). Used to bound candidates in root-cause ranking."""
        with self._current(), self._scratch_arrays() as scratch:
            return down_set_csr(
                (self.impact_reverse.ptr, self.impact_reverse.nbr, self.impact_kind,
                 self.impact_alive), self._overlay_impact(), self.alive[: self.n],
                self.nred[: self.n], self.min_up[: self.n], node, cap, scratch,
            )  # fmt: skip

    def dependency_closures(
        self, nodes: Collection[int]
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """For each node: what it depends on over ``required``/``redundant`` relationships,
        breadth first — node indices (itself first), hop counts, and the node each was reached
        from (so the chain from any of them back to the start is a walk over the third array).
        The failure of exactly these nodes can impact the start node."""
        with self._current(), self._scratch_arrays() as scratch:
            base, over = self._forward_impact()
            alive = self.alive[: self.n]
            return [closure_csr(base, over, alive, int(v), scratch) for v in nodes]

    def _forward_impact(self) -> tuple[Csr, Csr]:
        """The forward CSR (dependent → dependency) with impact kinds, and the overlay's edges
        the same way; cached until the CSR is rebuilt or the overlay changes."""
        arrays = self._overlay_edges()
        cached = self._forward_cache
        if cached is None or cached[0] is not self.f_ptr or cached[1] is not arrays:
            o_src, o_dst, o_typ = arrays
            order = np.argsort(o_src, kind="stable")
            ptr = np.zeros(len(self.cls) + 1, dtype=np.int64)
            np.cumsum(np.bincount(o_src, minlength=len(self.cls)), out=ptr[1:])
            over = (ptr, o_dst[order], self.type_kind[o_typ[order]], np.ones(order.size, bool))
            base = (self.f_ptr, self.f_dst, self.type_kind[self.f_type], self.edge_alive)
            cached = self._forward_cache = (self.f_ptr, arrays, base, over)
        return cached[2], cached[3]

    @contextlib.contextmanager
    def _scratch_arrays(self) -> Iterator[Scratch]:
        """Working arrays for the kernels, this analysis's alone (analyses run side by side):
        an idle set when one fits, else a new one; kept for the next one after."""
        n = self.n
        with self._scratch_lock:
            scratch = self._scratches.pop() if self._scratches else None
        if scratch is None or scratch.level.size != n:
            scratch = Scratch.of(self.alive[:n])
        try:
            yield scratch
        finally:
            with self._scratch_lock:
                if len(self._scratches) < _IDLE_SCRATCHES and scratch.level.size == self.n:
                    self._scratches.append(scratch)

    def index_of(self, ids: Collection[str]) -> np.ndarray:
        """Node indices of CI ids (an unknown id is refused naming it)."""
        with self._current():
            return self._seed_indices(ids)

    @property
    def index(self) -> dict[str, int]:
        """CI id -> node index. Opened from the projection, it is built on first use: an analysis
        of a few CIs finds them in the sorted ids instead (:meth:`_seed_indices`)."""
        if self._index is None:
            with self._gate.reading():  # not while the journal adds CIs to the ids
                if self._index is None:
                    self._index = dict(zip(self.ids, range(len(self.ids)), strict=True))
        return self._index

    def _seed_indices(self, ids: Collection[str]) -> np.ndarray:
        if self._index is None and len(ids) <= _SEARCH_UP_TO:
            return self._searched(ids)
        index = self.index
        unknown = [i for i in ids if i not in index]
        if unknown:
            self._unknown(unknown)
        return np.array([index[i] for i in ids], dtype=I32)

    def _searched(self, ids: Collection[str]) -> np.ndarray:
        """Node indices by binary search: until the index is built (nothing applied from the
        journal since the projection was opened) the ids are in sorted order."""
        ordered = self.id_array()
        wanted = np.empty(len(ids), dtype=object)
        wanted[:] = list(ids)
        at = np.minimum(np.searchsorted(ordered, wanted), max(len(ordered) - 1, 0))
        hit = ordered[at] == wanted if len(ordered) else np.zeros(len(ids), dtype=bool)
        if not hit.all():
            self._unknown([i for i, ok in zip(ids, hit.tolist(), strict=True) if not ok])
        return at.astype(I32)

    @staticmethod
    def _unknown(unknown: list[str]) -> None:
        if len(unknown) == 1:
            raise NotFound("CI", unknown[0])
        raise ValidationFailed(
            [Problem("ciIds", ident, "no CI with this id; check the id") for ident in unknown],
            wrote=False,
        )

    def reach(
        self,
        ids: Collection[str],
        direction: Direction = "up",
        max_depth: int | None = None,
        types: Collection[str] | None = None,
    ) -> dict[str, int]:
        """CI ids reachable from ``ids`` with their hop distance (the start nodes at 0).

        ``down`` follows the arrows (what they depend on), ``up`` goes against them (what depends
        on them); ``types`` restricts the relationship types (default: all)."""
        _check_depth(max_depth)
        with self._current():
            mask = self._type_mask(types)
            start = np.unique(self._seed_indices(ids))
            dist = np.full(self.n, -1, dtype=I32)
            dist[start] = 0
            frontier, level = start, 0
            limit = max_depth if max_depth is not None else 1 << 30
            while frontier.size and level < limit:
                _, nxt, _ = self._expand(frontier, reverse=direction == "up", types=mask)
                nxt = nxt[(dist[nxt] < 0) & self.alive[nxt]]
                frontier = np.unique(nxt)
                level += 1
                dist[frontier] = level
            found = np.flatnonzero(dist >= 0)
            return {self.ids[i]: int(dist[i]) for i in found.tolist()}

    def edges_among(
        self, ids: Collection[str], types: Collection[str] | None = None
    ) -> list[RelKey]:
        """Every live relationship whose two ends are among ``ids``."""
        with self._current():
            idx = np.unique(self._seed_indices(ids))
            here, there, typ = self._expand(idx, reverse=False, types=self._type_mask(types))
            inside = np.isin(there, idx)
            return [
                (self.ids[s], self.type_names[t], self.ids[d])
                for s, d, t in zip(
                    here[inside].tolist(), there[inside].tolist(), typ[inside].tolist(), strict=True
                )
            ]

    def incoming(self, ids: Collection[str], rel_type: str) -> list[tuple[str, str]]:
        """(source, target) of live ``rel_type`` relationships pointing at ``ids``."""
        return self._neighbours(ids, rel_type, reverse=True)

    def outgoing(self, ids: Collection[str], rel_type: str) -> list[tuple[str, str]]:
        """(source, target) of live ``rel_type`` relationships leaving ``ids``."""
        return self._neighbours(ids, rel_type, reverse=False)

    def _neighbours(
        self, ids: Collection[str], rel_type: str, reverse: bool
    ) -> list[tuple[str, str]]:
        with self._current():
            here, there = self._linked(self._seed_indices(ids), rel_type, reverse)
            pairs = zip(here.tolist(), there.tolist(), strict=True)
            if reverse:
                return [(self.ids[b], self.ids[a]) for a, b in pairs]
            return [(self.ids[a], self.ids[b]) for a, b in pairs]

    def linked(
        self, nodes: np.ndarray, rel_type: str, reverse: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(node, neighbour) index pairs of the live ``rel_type`` relationships leaving ``nodes``
        (``reverse``: pointing at them) — :meth:`outgoing` and :meth:`incoming` by node index,
        for an analysis that holds indices already (no round trip through the ids)."""
        with self._current():
            return self._linked(nodes, rel_type, reverse)

    def _linked(
        self, nodes: np.ndarray, rel_type: str, reverse: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = self._type_masks.get(rel_type)
        if mask is None:  # one relationship type's mask, made once
            mask = self._type_masks[rel_type] = np.asarray(self._type_mask([rel_type]))
        here, there, _ = self._expand(np.unique(nodes), reverse, mask)
        return here, there

    def family_mask(self, cls: str) -> np.ndarray:
        """A bool per class code: ``cls`` or one of its descendants (index it with ``cls``
        codes, e.g. ``family_mask("service")[engine.cls[nodes]]``)."""
        mask = self._family_masks.get(cls)
        if mask is None:
            mask = np.zeros(len(self.class_names), dtype=bool)
            mask[[self.class_code[c] for c in self.model.descendants(cls)]] = True
            self._family_masks[cls] = mask
        return mask

    def out_edges(self, ids: Collection[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every live relationship leaving ``ids``: (source, target, type code) as node-index
        arrays (``type_names[code]`` names the type; ``alive[target]`` says if it is retired)."""
        with self._current():
            return self._expand(np.unique(self._seed_indices(ids)), reverse=False)

    def subgraph(self, ids: Collection[str], types: Collection[str] | None = None) -> nx.DiGraph:
        """The induced subgraph as networkx (node attribute ``class``, edge attribute ``type``)."""
        import networkx as nx  # 80 ms to import: not on every CLI call's path

        graph = nx.DiGraph()
        with self._current():
            graph.add_nodes_from((i, {"class": self.class_of(i)}) for i in ids)
            graph.add_edges_from((s, d, {"type": t}) for s, t, d in self.edges_among(ids, types))
        return graph

    def _name_list(self) -> list[str]:
        """The names at build time (from the store, or decoded from the projection once)."""
        if self._names is None:
            blob = self._names_blob
            self._names = (  # "replace": bytes a hand edit left that are not UTF-8
                bytes(blob).decode(errors="replace").split("\0")
                if blob is not None and self.base_nodes
                else []
            )
        return self._names

    def names_of(self, nodes: np.ndarray) -> np.ndarray:
        """The CIs' names by node index (an object array): the engine keeps them, so a large
        answer needs no store round trip for its labels."""
        with self._gate.reading():
            if self._names_array is None:
                self._names_array = np.array(self._name_list(), dtype=object)
            known = self._names_array
            out = known[np.minimum(nodes, max(len(known) - 1, 0))] if len(known) else (
                np.full(len(nodes), "", dtype=object))  # fmt: skip
            if self._name_changes:
                for row, node in enumerate(nodes.tolist()):
                    changed = self._name_changes.get(node)
                    if changed is not None:
                        out[row] = changed
            return out

    def labels(self, ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """``id: (class, name)`` of the CIs among ``ids`` the engine knows (as ``store.labels``),
        from memory, brought up to date from the journal first."""
        with self._current():
            index = self.index
            present = [i for i in dict.fromkeys(ids) if i in index]
            nodes = [index[i] for i in present]
            # plain lists: callers ask for a page at a time (PACE), where numpy's fancy indexing
            # of object arrays cost more than it saved (~9 % of a small GraphQL impact)
            built, changed, class_names = self._name_list(), self._name_changes, self.class_names
            size = len(built)
            names = [changed[n] if n in changed else built[n] if n < size else "" for n in nodes]
            classes = [class_names[c] for c in self.cls[nodes].tolist()]
            return dict(zip(present, zip(classes, names, strict=True), strict=True))

    def id_array(self) -> np.ndarray:
        """CI ids by node index as a numpy object array (cached until nodes are added)."""
        known = self._id_array
        if known is None or len(known) != len(self.ids):
            with self._gate.reading():  # not while the journal adds CIs to the ids
                known = self._id_array = np.array(self.ids, dtype=object)
        return known

    def min_up_of(self, ident: str) -> int:
        """The ``min_up`` the engine uses for a CI (1 when unset or unusable)."""
        with self._gate.reading():
            return int(self.min_up[self.index[ident]])

    def is_retired(self, ident: str) -> bool:
        with self._gate.reading():
            return not bool(self.alive[self.index[ident]])

    def class_of(self, ident: str) -> str:
        return self.class_names[int(self.cls[self.index[ident]])]

    def _type_mask(self, types: Collection[str] | None) -> np.ndarray | None:
        if types is None:
            return None
        unknown = sorted(set(types) - set(self.type_code))
        if unknown:
            known = ", ".join(self.type_names)
            raise ValidationFailed(
                [
                    Problem("types", t, f"unknown relationship type; known: {known}")
                    for t in unknown
                ],
                wrote=False,
            )
        mask = np.zeros(len(self.type_names), dtype=bool)
        mask[[self.type_code[t] for t in types]] = True
        return mask

    def memory_bytes(self) -> int:
        """Bytes held by the numpy arrays (ids and index dictionary not counted)."""
        arrays = [
            self.cls, self.alive, self.min_up, self.nred, self.f_src, self.f_dst, self.f_type,
            self.f_ptr, self.edge_alive, self.impact_kind, self.impact_alive,
        ]  # fmt: skip
        adjacencies = (self.reverse, self.impact_reverse)
        extra = sum(a.nbytes() for a in adjacencies) + self.forward.eid.nbytes
        return int(sum(a.nbytes for a in arrays) + extra)


@dataclass
class _Adjacency:
    """One CSR direction: ``nbr[ptr[i]:ptr[i+1]]`` are i's neighbours, ``typ`` their relationship
    types and ``eid`` the forward edge index (for the deleted-edge mask)."""

    ptr: np.ndarray
    nbr: np.ndarray
    typ: np.ndarray
    eid: np.ndarray

    @classmethod
    def of(
        cls, key: np.ndarray, nbr: np.ndarray, typ: np.ndarray, eid: np.ndarray, size: int
    ) -> _Adjacency:
        ptr = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(np.bincount(key, minlength=size), out=ptr[1:])
        return cls(ptr, nbr, typ, eid)

    def nbytes(self) -> int:
        return int(self.ptr.nbytes + self.nbr.nbytes + self.typ.nbytes + self.eid.nbytes)


def _joined(texts: list[str]) -> np.ndarray | None:
    """The texts NUL-joined as bytes (uint8), or None when one holds a NUL."""
    return None if any("\0" in t for t in texts) else np.frombuffer(
        "\0".join(texts).encode(), dtype=np.uint8)  # fmt: skip


def _recoded(names: Sequence[str], code: dict[str, int], missing: int) -> np.ndarray:
    """From the codes of ``names`` (-1: none) to the engine's ``code`` (``missing``: none)."""
    return np.array([code.get(x, missing) for x in names] + [missing], dtype=np.int16)


def _extend(ptr: np.ndarray, grow: int) -> np.ndarray:
    return np.concatenate([ptr, np.full(grow, ptr[-1], dtype=np.int64)])


def _check_depth(max_depth: int | None) -> None:
    if max_depth is not None and max_depth < 0:
        raise ValidationFailed(
            [Problem("maxDepth", "maxDepth", f"must be 0 or more, got {max_depth}")], wrote=False
        )
