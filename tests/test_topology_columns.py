"""The topology as columns: SQLite's joined texts give exactly what rows give (ids, names,
classes, retired, stored min_up, endpoints) — on texts that sort, escape or collide awkwardly,
on values the model does not know, and when a NUL byte forces the read by rows — and the
compiled look-ups behind them agree with ``dict``, ``sorted`` and ``argsort``."""

from __future__ import annotations

import itertools
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servicegraph.errors import StoreUnavailable
from servicegraph.graph import tokens, topology
from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.kernels import stable_order
from servicegraph.graph.model import load_model
from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.demo import generate_estate

AWKWARD = ["a", "ab", "aB", "A", "é", "e\u0301", "zz é 😀", "host-1", "host-10", "host-9", "x y"]


@pytest.fixture(autouse=True)
def no_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVICEGRAPH_PROJECTION", "off")  # raw SQL edits bypass the journal


def decoded(c: topology.TopologyColumns) -> dict[str, Any]:
    """The columns as plain values (codes resolved; a class or type the model lacks as None),
    to compare two ways of reading them."""
    model = load_model()
    names = c.names if c.names is not None else bytes(c.names_joined).decode().split("\0")  # type: ignore[arg-type]
    cls = [c.class_names[k] if k >= 0 and c.class_names[k] in model.classes else None
           for k in c.cls.tolist()]  # fmt: skip
    typ = [c.type_names[k] if k >= 0 and c.type_names[k] in model.relationship_types else None
           for k in c.typ.tolist()]  # fmt: skip
    edges = sorted(zip(c.src.tolist(), typ, c.dst.tolist(), strict=True), key=repr)
    return {"ids": c.ids, "names": names[: len(c.ids)], "cls": cls, "edges": edges,
            "retired": c.retired.tolist(), "min_up": c.min_up, "seq": c.seq}  # fmt: skip


def awkward_store(path: Path) -> SqliteStore:
    store = SqliteStore(path, load_model())
    estate = generate_estate(200, seed=5)
    cis = [CI(f"odd-{t}", "application", f"{t} {t}", {}) for t in AWKWARD]
    cis.append(CI("odd-retired", "host", "gone", {"status": "retired"}))
    cis.append(CI("odd-cluster", "cluster", "c", {"min_up": 2, "status": "retired"}))
    rels = [Relationship(f"odd-{a}", "DEPENDS_ON", f"odd-{b}")
            for a, b in itertools.pairwise(AWKWARD)]  # fmt: skip
    rels.append(Relationship("odd-a", "RUNS_ON", "odd-retired"))
    store.write(Batch(cis=[*estate.cis, *cis], relationships=[*estate.relationships, *rels]), "t")
    db = sqlite3.connect(path, isolation_level=None)  # what an older version or a hand edit left
    db.execute("PRAGMA foreign_keys = OFF")
    db.execute("UPDATE cis SET attributes = '{\"min_up\": NaN}' WHERE id = 'odd-ab'")
    db.execute("UPDATE cis SET attributes = '{\"min_up\": \"3\"}' WHERE id = 'odd-aB'")
    db.execute("UPDATE cis SET attributes = '{\"min_up\": null}' WHERE id = 'odd-A'")
    db.execute("UPDATE cis SET class = 'no-such-class' WHERE id = 'odd-x y'")
    db.execute("INSERT INTO relationships VALUES ('odd-a', 'NO_SUCH_TYPE', 'odd-é', '{}')")
    db.execute("INSERT INTO relationships VALUES ('odd-a', 'DEPENDS_ON', 'missing', '{}')")
    db.close()
    return store


def test_joined_texts_give_the_columns_rows_give(tmp_path: Path) -> None:
    store = awkward_store(tmp_path / "a.db")
    joined = store.topology_columns()
    assert joined.ids_joined is not None  # read as texts, not by the fallback
    rows = topology.from_rows(*store.topology())
    assert decoded(joined) == decoded(rows)
    got = decoded(joined)
    at = {ident: i for i, ident in enumerate(got["ids"])}
    assert got["ids"] == sorted(got["ids"]) and got["retired"][at["odd-retired"]]
    assert got["cls"][at["odd-x y"]] is None
    assert (at["odd-a"], None, at["odd-é"]) in got["edges"]  # a type the model lacks
    assert (at["odd-a"], "DEPENDS_ON", -1) in got["edges"]  # an endpoint that is no CI
    stored = {got["ids"][i]: v for i, v in got["min_up"]}
    assert stored["odd-cluster"] == 2 and stored["odd-aB"] == "3" and "odd-A" not in stored
    assert "odd-ab" in stored  # unreadable: the engine reports it
    engine = TopologyEngine(store)
    assert set(engine.data_problems) == {"odd-ab", "odd-aB"}
    assert engine.min_up_of("odd-cluster") == 2 and engine.is_retired("odd-cluster")


def test_a_nul_in_a_name_reads_by_rows_with_the_same_answer(tmp_path: Path) -> None:
    store = awkward_store(tmp_path / "a.db")
    before = TopologyEngine(store)
    db = sqlite3.connect(tmp_path / "a.db")
    db.execute("UPDATE cis SET name = ? WHERE id = 'odd-é'", ("a\0b",))
    db.commit()
    db.close()
    columns = store.topology_columns()
    assert columns.ids_joined is None  # the joined names do not split into one per CI
    assert decoded(columns) == decoded(topology.from_rows(*store.topology()))
    engine = TopologyEngine(store)
    assert engine.labels(["odd-é"]) == {"odd-é": ("application", "a\0b")}
    assert engine.ids == before.ids


texts = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.lists(texts, unique=True, max_size=30), st.lists(texts, max_size=60))
def test_positions_are_a_dict_look_up(keys: list[str], values: list[str]) -> None:
    data, at = tokens.joined(keys)
    pool = [*values, *keys[::2]]
    for column in (pool, sorted(pool)):  # sorted: the runs of equal values
        v_data, v_at = tokens.joined(column)
        (found,) = tokens.positions(data, at, (v_data, v_at))
        index = {k: i for i, k in enumerate(keys)}
        assert found.tolist() == [index.get(v, -1) for v in column]
    assert tokens.ascending(data, at) == (keys == sorted(keys))


@given(st.lists(texts, max_size=10))
def test_starts_refuses_a_text_that_does_not_split_into_its_count(values: list[str]) -> None:
    blob = "\0".join(values).encode()
    assert tokens.starts(blob, len(values)) is not None
    assert tokens.starts(blob + b"\0x", len(values)) is None
    if len(values) > 1:
        assert tokens.starts(blob, len(values) - 1) is None


@given(st.lists(st.integers(0, 20), max_size=200))
def test_stable_order_is_a_stable_argsort(keys: list[int]) -> None:
    array = np.array(keys, dtype=np.int32)
    assert stable_order(array, 21).tolist() == np.argsort(array, kind="stable").tolist()


def test_bytes_that_are_not_utf8_name_the_problem_or_read_replaced(tmp_path: Path) -> None:
    """What a hand edit can leave: a name that is not UTF-8 reads with U+FFFD in its place (the
    build goes on); an id that is not UTF-8 fails the build with the store's error naming it."""
    store = awkward_store(tmp_path / "a.db")
    db = sqlite3.connect(tmp_path / "a.db", isolation_level=None)
    db.execute("UPDATE cis SET name = CAST(x'61ff62' AS TEXT) WHERE id = 'odd-é'")
    assert TopologyEngine(store).labels(["odd-é"]) == {"odd-é": ("application", "a\ufffdb")}
    db.execute("UPDATE cis SET id = CAST(x'6f64642dff' AS TEXT) WHERE id = 'odd-x y'")
    db.close()
    with pytest.raises(StoreUnavailable, match="UTF-8"):
        TopologyEngine(store)
