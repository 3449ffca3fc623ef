"""The topology engine shared by threads: analyses side by side (each with working arrays of its
own) give the answers they give one at a time; applying the journal waits for the analyses
inside and has the engine alone; a waiting writer goes before new readers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from servicegraph.graph.engine import TopologyEngine
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.demo import generate_estate


def answer(engine: TopologyEngine, seeds: list[str]) -> list[tuple[int, bool, int, int]]:
    p = engine.propagate(seeds)
    return list(
        zip(p.nodes.tolist(), p.down.tolist(), p.distance.tolist(), p.cause.tolist(), strict=True)
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> TopologyEngine:
    from servicegraph.graph.model import load_model
    from servicegraph.graph.sqlite_store import SqliteStore

    store = SqliteStore(tmp_path_factory.mktemp("engine") / "estate.db", load_model())
    store.write(generate_estate(20_000, seed=3))
    return TopologyEngine(store)


def test_analyses_side_by_side_answer_as_one_at_a_time(shared: TopologyEngine) -> None:
    """Four threads propagate at once (the loops run without the interpreter lock, so they truly
    overlap on two cores): with one set of working arrays between them, marks of one walk would
    leak into another's answer."""
    engine = shared
    seeds = [[i] for i in engine.ids if i.startswith(("host-", "storage-array-", "dns-"))][:40]
    alone = {tuple(s): answer(engine, s) for s in seeds}
    assert sum(len(a) > 100 for a in alone.values()) >= 5  # walks long enough to overlap

    def many(offset: int) -> list[bool]:
        order = seeds[offset:] + seeds[:offset]
        return [answer(engine, s) == alone[tuple(s)] for s in order * 3]

    with ThreadPoolExecutor(4) as pool:
        results = [f.result(120) for f in [pool.submit(many, k * 10) for k in range(4)]]
    assert all(all(r) for r in results)
    # and the closures and DOWN sets beside each other likewise
    nodes = engine.index_of([s[0] for s in seeds[:8]]).tolist()
    closures = [(c[0].tolist(), c[1].tolist()) for c in engine.dependency_closures(nodes)]
    downs = [engine.down_set(v)[0].tolist() for v in nodes]
    with ThreadPoolExecutor(4) as pool:
        both = [
            pool.submit(lambda: [(c[0].tolist(), c[1].tolist())
                                 for c in engine.dependency_closures(nodes)])
            if k % 2 else pool.submit(lambda: [engine.down_set(v)[0].tolist() for v in nodes])
            for k in range(8)
        ]  # fmt: skip
        for k, future in enumerate(both):
            assert future.result(120) == (closures if k % 2 else downs)


@pytest.fixture
def small(sqlite_store: GraphStore) -> GraphStore:
    sqlite_store.write(generate_estate(300, seed=5))
    return sqlite_store


def test_the_journal_waits_for_analyses_inside_and_then_is_applied(small: GraphStore) -> None:
    """A new relationship is applied only once the analysis inside has left (it answers from
    the state it entered at); the analysis that waited for it sees it."""
    engine = TopologyEngine(small)
    host = next(i for i in engine.ids if i.startswith("host-"))
    vm = "vm-new"
    before = engine.seq
    inside, leave = threading.Event(), threading.Event()
    seen_inside: list[int] = []

    def analysis() -> None:
        with engine._gate.reading():
            inside.set()
            leave.wait(30)
            engine.refresh()  # inside: applies nothing
            seen_inside.append(len(engine.reach([host])))

    reader = threading.Thread(target=analysis)
    reader.start()
    assert inside.wait(10)
    reached_before = len(engine.reach([host]))  # a second reader enters beside the first
    small.upsert([CI(vm, "vm", "a new VM")], [Relationship(vm, "HOSTED_ON", host)])
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(lambda: engine.reach([host]))  # refreshes: must write first
        time.sleep(0.3)
        try:
            assert not waiting.done() and engine.seq == before
            assert not engine.hold_if_free(1_000)  # a writer waits: no quick reader enters
        finally:
            leave.set()
        reader.join(10)
        assert vm in waiting.result(30)
    assert seen_inside == [reached_before]
    assert engine.seq > before and engine.hold_if_free(1_000)
    engine.let_go()


def test_a_waiting_writer_goes_before_new_readers(small: GraphStore) -> None:
    engine = TopologyEngine(small)
    gate = engine._gate
    order: list[str] = []
    inside, leave = threading.Event(), threading.Event()

    def first_reader() -> None:
        with gate.reading():
            inside.set()
            leave.wait(30)

    def writer() -> None:
        with gate.writing():
            order.append("writer")

    def late_reader() -> None:
        with gate.reading():
            order.append("reader")

    threads = [threading.Thread(target=first_reader)]
    threads[0].start()
    assert inside.wait(10)
    threads.append(threading.Thread(target=writer))
    threads[1].start()
    waited = time.monotonic() + 10
    while not gate.busy() and time.monotonic() < waited:
        time.sleep(0.01)
    assert order == [] and gate.busy()  # the writer waits for the first reader
    threads.append(threading.Thread(target=late_reader))
    threads[2].start()
    time.sleep(0.2)
    assert order == []  # … and the late reader for the writer
    leave.set()
    for t in threads:
        t.join(10)
    assert order == ["writer", "reader"]


def test_a_reader_cannot_start_writing_and_says_so(small: GraphStore) -> None:
    engine = TopologyEngine(small)
    with engine._gate.reading(), pytest.raises(RuntimeError, match="cannot start writing"):
        engine._gate.acquire_write()
    # a writer may read what it writes, and write again
    with engine._gate.writing(), engine._gate.reading(), engine._gate.writing():
        assert engine._gate.reading_here()
    assert not engine._gate.busy() and not engine._gate.reading_here()


def test_working_arrays_follow_a_ci_retired_while_idle(small: GraphStore) -> None:
    """The idle working arrays mark which CIs take part; retiring one through the journal updates
    every idle set, so the next analyses (whichever set they take) leave it out."""
    engine = TopologyEngine(small)
    host = next(i for i in engine.ids if i.startswith("host-"))
    vm = next(iter(set(engine.reach([host])) - {host}))
    with ThreadPoolExecutor(2) as pool:  # two sets of arrays in use at once, both kept after
        inside = threading.Barrier(2)

        def hold() -> None:
            with engine._gate.reading(), engine._scratch_arrays():
                inside.wait(10)

        list(pool.map(lambda _: hold(), range(2)))
    assert len(engine._scratches) == 2
    record = small.get_ci(vm)
    assert record is not None
    small.upsert([CI(vm, record.cls, record.name, {**record.attributes, "status": "retired"})], [])
    for _ in range(2):
        p = engine.propagate([host])
        assert engine.index_of([vm])[0] not in p.nodes.tolist()
    at = int(engine.index_of([vm])[0])
    assert [int(s.level[at]) for s in engine._scratches] == [-2, -2]


def test_the_ids_are_read_whole_not_while_the_journal_adds_cis(small: GraphStore) -> None:
    """The ids by node index and the id → index map are built (after a new CI, or on first use
    after opening the projection) only while no one writes the engine: a build beside the
    journal appending a CI failed half-way in a server (numpy: "content of sequences
    changed"), or would have kept a map without the new CI."""
    engine = TopologyEngine(small)
    inside, leave = threading.Event(), threading.Event()

    def journal_adds_a_ci() -> None:
        with engine._gate.writing():
            inside.set()
            leave.wait(30)
            engine._add_node("vm-late", "vm", "late")  # what applying its entry does

    engine._id_array, engine._index = None, None
    writer = threading.Thread(target=journal_adds_a_ci)
    writer.start()
    assert inside.wait(10)
    with ThreadPoolExecutor(2) as pool:
        ids = pool.submit(engine.id_array)
        index = pool.submit(lambda: engine.index)
        time.sleep(0.3)
        try:
            assert not ids.done() and not index.done()  # they wait for the writer
        finally:
            leave.set()
        writer.join(10)
        assert ids.result(10)[-1] == "vm-late" and len(ids.result()) == len(engine.ids)
        assert index.result(10)["vm-late"] == len(engine.ids) - 1
