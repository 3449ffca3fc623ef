"""The topology as columns: what the engine builds from.

A store reads its CIs and relationship keys in one snapshot and hands them over as
:class:`TopologyColumns` — node ids in sorted order, per-node arrays, and relationship endpoints
already turned into node positions. Any store can make them from rows (:func:`from_rows`, a dict
look-up per endpoint); SQLite makes them from one NUL-joined text per column
(:func:`from_joined`), without a Python object per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from servicegraph.graph import tokens

__all__ = ["TopologyColumns", "from_joined", "from_rows"]

Row = tuple[str, str, str | None, Any, str]  # id, class, status, min_up, name (store.TopologyNode)


@dataclass(frozen=True)
class TopologyColumns:
    """One snapshot of the topology. Codes index the name lists; -1 is a class or type the
    lists do not hold, or an endpoint that is not a node of the snapshot."""

    ids: list[str]  # sorted (code point order, as ``sorted``)
    ids_joined: np.ndarray | None  # the same NUL-joined (uint8), when the store read them so
    names: list[str] | None  # by node, or else:
    names_joined: np.ndarray | None  # the names NUL-joined (uint8)
    class_names: Sequence[str]
    cls: np.ndarray  # int32 code per node
    retired: np.ndarray  # bool per node
    # nodes whose min_up is set or whose attributes are unreadable: (position, min_up as stored)
    min_up: list[tuple[int, Any]]
    type_names: Sequence[str]
    src: np.ndarray  # int32 node position per relationship
    typ: np.ndarray  # int32 type code
    dst: np.ndarray  # int32
    seq: int  # the journal seq the snapshot is consistent with


def from_rows(nodes: list[Row], edges: Sequence[tuple[str, str, str]], seq: int) -> TopologyColumns:
    """The columns of rows: nodes as (id, class, status, min_up, name), edges as keys."""
    nodes = sorted(nodes)  # the same node positions whichever store read them
    ids = [row[0] for row in nodes]
    class_names = sorted({row[1] for row in nodes})
    code = {name: i for i, name in enumerate(class_names)}
    type_names = sorted({e[1] for e in edges})
    kind = {name: i for i, name in enumerate(type_names)}
    at, count = {ident: i for i, ident in enumerate(ids)}.get, len(edges)
    return TopologyColumns(
        ids=ids,
        ids_joined=None,
        names=[row[4] for row in nodes],
        names_joined=None,
        class_names=class_names,
        cls=np.array([code[row[1]] for row in nodes], dtype=np.int32),
        retired=np.array([row[2] == "retired" for row in nodes], dtype=bool),
        min_up=[(i, row[3]) for i, row in enumerate(nodes) if row[3] is not None],
        type_names=type_names,
        src=np.fromiter((at(e[0], -1) for e in edges), dtype=np.int32, count=count),
        typ=np.fromiter((kind[e[1]] for e in edges), dtype=np.int32, count=count),
        dst=np.fromiter((at(e[2], -1) for e in edges), dtype=np.int32, count=count),
        seq=seq,
    )


def from_joined(
    nodes: tuple[int, bytes | None, bytes | None, bytes | None, bytes | None],
    edges: tuple[int, bytes | None, bytes | None, bytes | None],
    min_up: list[tuple[str, Any]],
    class_names: Sequence[str],
    type_names: Sequence[str],
    seq: int,
) -> TopologyColumns | None:
    """The columns of NUL-joined texts: ``nodes`` as (count, ids ascending, names, classes,
    flags: one digit per node, 1 retired + 2 "min_up set or attributes unreadable"), ``edges``
    as (count, sources, types, targets), ``min_up`` the stored values of the flagged nodes.
    None when a text does not split into its count (a value holding a NUL byte), the ids are
    not ascending or not UTF-8: the caller reads rows instead."""
    n, m = nodes[0], edges[0]
    id_data, names, classes, flag = (_bytes(x) for x in nodes[1:])
    sources, types, targets = (_bytes(x) for x in edges[1:])
    id_at, name_at, class_at = (tokens.starts(x, n) for x in (id_data, names, classes))
    src_at, typ_at, dst_at = (tokens.starts(x, m) for x in (sources, types, targets))
    if id_at is None or name_at is None or class_at is None or flag.size != n:
        return None
    if src_at is None or typ_at is None or dst_at is None or not tokens.ascending(id_data, id_at):
        return None
    try:
        ids_list = bytes(id_data).decode().split("\0") if n else []
    except UnicodeDecodeError:  # not UTF-8 (a hand edit): the rows' read names the problem
        return None
    flagged = np.flatnonzero(flag >= ord("2")).tolist()
    if [ids_list[p] for p in flagged] != [ident for ident, _ in min_up]:
        return None

    def coded(known: Sequence[str], data: np.ndarray, where: np.ndarray) -> np.ndarray:
        return tokens.positions(*tokens.joined(known), (data, where))[0]

    src, dst = tokens.positions(id_data, id_at, (sources, src_at), (targets, dst_at))
    return TopologyColumns(
        ids=ids_list,
        ids_joined=id_data,
        names=None,
        names_joined=names,
        class_names=class_names,
        cls=coded(class_names, classes, class_at),
        retired=(flag - ord("0")) % 2 == 1,
        min_up=[(p, v) for (_, v), p in zip(min_up, flagged, strict=True) if v is not None],
        type_names=type_names,
        src=src,
        typ=coded(type_names, types, typ_at),
        dst=dst,
        seq=seq,
    )


def _bytes(blob: bytes | None) -> np.ndarray:
    return np.frombuffer(blob or b"", dtype=np.uint8)
