"""Lock contention, a damaged file, and concurrent writers through the server and the CLI at once."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicegraph.api import limits, quick, server
from servicegraph.api.graphql import schema as schema_module
from servicegraph.api.limits import Limits, SmallRequests
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate
from tests.adversarial.conftest import Api, cli, codes, make_api


@pytest.fixture
def busy_api(tmp_path: Path, model: Model, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    monkeypatch.setenv("SERVICEGRAPH_WRITE_TIMEOUT", "0.5")
    yield from make_api(tmp_path / "busy.db", model, Limits())


def test_reads_answer_while_another_process_holds_the_write_lock(busy_api: Api) -> None:
    holder = sqlite3.connect(busy_api.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process, mid-write
    try:
        started = time.perf_counter()
        read = busy_api.post(
            '{ ci(id: "vm-000001") { id name } impact(ciIds: ["host-000001"]) { totalImpacted } }',
            role="viewer",
        )
        assert "errors" not in read and read["data"]["ci"]["id"] == "vm-000001"
        assert time.perf_counter() - started < 0.5  # did not wait for the writer

        started = time.perf_counter()
        body = busy_api.post(
            "mutation($c: [CIInput!]!) { upsertCis(cis: $c) { created } }",
            c=[{"id": "vm-new", "class": "vm", "name": "new"}],
        )
        waited = time.perf_counter() - started
        assert (
            codes(body) == ["STORE_BUSY"] and "nothing was written" in body["errors"][0]["message"]
        )
        assert 0.4 < waited < 3

        result = cli(
            "retire",
            "vm-000002",
            "--db",
            str(busy_api.path),
            env={"SERVICEGRAPH_WRITE_TIMEOUT": "0.3"},
        )
        assert (
            result.returncode == 3 and "busy" in result.stderr and "Traceback" not in result.stderr
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    ok = busy_api.post(
        "mutation($c: [CIInput!]!) { upsertCis(cis: $c) { created } }",
        c=[{"id": "vm-new", "class": "vm", "name": "new"}],
    )
    assert ok["data"]["upsertCis"]["created"] == 1


def test_a_damaged_file_is_a_clear_error_and_check_finds_it(tmp_path: Path, model: Model) -> None:
    path = tmp_path / "damaged.db"
    store = SqliteStore(path, model)
    store.write(generate_estate(200, seed=1))
    store.close()
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):  # scribble over every page after the header
        data[offset + 100 : offset + 400] = b"\xa5" * 300
    path.write_bytes(bytes(data))
    for command in (["summary"], ["check"], ["impact", "host-000001"]):
        result = cli(*command, "--db", str(path))
        assert result.returncode == 3, (command, result.stderr)
        assert "damaged" in result.stderr and "Traceback" not in result.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    result = cli("summary", "--db", str(garbage))
    assert result.returncode == 3 and "damaged" in result.stderr


def test_check_passes_a_healthy_store(tmp_path: Path, model: Model) -> None:
    path = tmp_path / "ok.db"
    with SqliteStore(path, model) as store:
        store.write(generate_estate(200, seed=1))
    result = cli("check", "--db", str(path))
    assert result.returncode == 0 and "integrity ok" in result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_writers_through_the_server_and_the_cli_lose_nothing(
    tmp_path: Path, model: Model
) -> None:
    """Read-modify-write increments with version checks, from HTTP clients and CLI imports at
    once, while readers keep reading: every increment lands once, and no request waits longer
    than the write timeout (plus the time to do its own work)."""
    path = tmp_path / "shared.db"
    with SqliteStore(path, model) as store:
        store.write(generate_estate(200, seed=1))
        store.upsert(
            [CI(f"counter-{i}", "licence", f"counter {i}", {"seats": 0}) for i in range(3)]
        )
        token = create_token(store, "writer", "cmdb_editor")
    port = _free_port()
    env = {**os.environ, "SERVICEGRAPH_WRITE_TIMEOUT": "5"}
    server = subprocess.Popen(
        [sys.executable, "-m", "servicegraph.api.cli", "serve", "--db", str(path), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/graphql"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        increments: dict[str, int] = {f"counter-{i}": 0 for i in range(3)}
        lock = threading.Lock()
        slowest: list[float] = []
        failures: list[str] = []

        def http_increment(counter: str, times: int) -> None:
            with httpx.Client(timeout=30) as client:
                done = 0
                while done < times:
                    started = time.perf_counter()
                    read = client.post(
                        url,
                        headers=headers,
                        json={"query": f'{{ ci(id: "{counter}") {{ version attributes }} }}'},
                    ).json()
                    ci = read["data"]["ci"]
                    seats = ci["attributes"]["seats"] + 1
                    body = client.post(url, headers=headers, json={
                        "query": "mutation($c: [CIInput!]!) { upsertCis(cis: $c) { updated } }",
                        "variables": {"c": [{"id": counter, "class": "licence", "name": f"counter {counter[-1]}",
                                             "attributes": {"seats": seats}, "version": ci["version"]}]},
                    }).json()  # fmt: skip
                    with lock:
                        slowest.append(time.perf_counter() - started)
                    if body.get("errors"):
                        code = body["errors"][0]["extensions"]["code"]
                        if code not in ("STALE_VERSION", "STORE_BUSY"):
                            failures.append(str(body))
                            return
                        continue  # someone else wrote first: read again and retry
                    done += 1
                    with lock:
                        increments[counter] += 1

        def reader() -> None:
            with httpx.Client(timeout=30) as client:
                for _ in range(40):
                    started = time.perf_counter()
                    body = client.post(
                        url,
                        headers=headers,
                        json={"query": '{ impact(ciIds: ["host-000001"]) { totalImpacted } }'},
                    ).json()
                    with lock:
                        slowest.append(time.perf_counter() - started)
                    if "errors" in body:
                        failures.append(str(body))

        def cli_writer() -> None:
            for i in range(4):
                data = tmp_path / f"cli-{i}.json"
                data.write_text(
                    json.dumps({"cis": [{"id": f"cli-vm-{i}", "class": "vm", "name": f"cli {i}"}]})
                )
                result = cli(
                    "import", str(data), "--db", str(path), env={"SERVICEGRAPH_WRITE_TIMEOUT": "5"}
                )
                if result.returncode != 0:
                    failures.append(result.stderr)

        threads = [
            threading.Thread(target=http_increment, args=(f"counter-{i % 3}", 10)) for i in range(6)
        ]
        threads += [threading.Thread(target=reader) for _ in range(2)]
        threads += [threading.Thread(target=cli_writer)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not failures, failures[:3]
        with SqliteStore(path, model) as store:
            for counter, n in increments.items():
                assert n == 20
                stored = store.get_ci(counter)
                assert stored is not None and stored.attributes["seats"] == n  # no lost update
            assert all(store.get_ci(f"cli-vm-{i}") is not None for i in range(4))
        assert max(slowest) < 5 + 5  # write timeout + generous room for the work itself
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_small_queries_take_turns_and_one_stuck_in_the_lane_holds_up_no_other(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small queries take turns on one lane while large ones give way: every answer is still
    the Python API's; a small query stuck in the lane (here: its store read blocked until the
    others are done) does not hold the others up, they run beside it, and quick impacts go on
    answering from the event loop meanwhile."""
    monkeypatch.setattr(server, "LANE_WAIT", 0.05)
    sg = api.sg
    listing = "query($c: String!) { cis(filter: {class: $c}, first: 3) { edges { node { id } } } }"
    quick = "query($id: [ID!]!) { impact(ciIds: $id, first: 5) { totalImpacted impacted { ci { id } } } }"
    large = (
        '{ impact(ciIds: ["cluster-000008"], first: 100000) { totalImpacted '
        "impacted { ci { id name } status path } } }"
    )
    release = threading.Event()
    real = sg.store.find_cis

    def find_cis(classes: Any, *args: Any, **kwargs: Any) -> Any:
        if list(classes) == ["host"]:
            assert release.wait(60), "the other small queries never finished"
        return real(classes, *args, **kwargs)

    monkeypatch.setattr(sg.store, "find_cis", find_cis)
    listed = {c: [ci.id for ci in real([c], first=3).items] for c in ("vm", "application")}
    seeds = [c for c in sg.engine.ids if c.startswith("vm-")][:3]
    expected = {s: [r["id"] for r in sg.impact([s]).impacted(limit=5)] for s in seeds}
    big = sg.impact(["cluster-000008"]).impacted()
    with ThreadPoolExecutor(8) as pool:
        stuck = pool.submit(api.post, listing, role="viewer", c="host")
        time.sleep(0.2)  # it holds the lane now
        larges = [pool.submit(api.post, large, role="viewer") for _ in range(2)]
        lists = [(c, pool.submit(api.post, listing, role="viewer", c=c)) for c in listed] * 3
        quicks = [(s, pool.submit(api.post, quick, role="viewer", id=[s])) for s in seeds * 5]
        for cls, future in lists:
            edges = future.result(timeout=60)["data"]["cis"]["edges"]
            assert [e["node"]["id"] for e in edges] == listed[cls]
        for seed, future in quicks:
            rows = future.result(timeout=60)["data"]["impact"]["impacted"]
            assert [r["ci"]["id"] for r in rows] == expected[seed]
        assert not stuck.done()
        release.set()
        edges = stuck.result(60)["data"]["cis"]["edges"]
        assert [e["node"]["id"] for e in edges] == [ci.id for ci in real(["host"], first=3).items]
        for future in larges:
            rows = future.result(timeout=60)["data"]["impact"]["impacted"]
            assert [(r["ci"]["id"], r["path"]) for r in rows] == [(r["id"], r["path"]) for r in big]
    assert SmallRequests.in_flight == 0


def test_a_quick_query_never_makes_the_event_loop_wait_for_a_busy_engine(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Quick impacts run on the event loop only while no one writes the topology engine: while
    it applies the journal (here: another thread keeps it for writing), they wait in a thread
    instead, the server answers other requests meanwhile, and the impact is answered once the
    engine is free."""
    monkeypatch.setattr(quick, "QUICK_WAIT", 0.05)
    engine = api.sg.engine
    seed = next(c for c in engine.ids if c.startswith("host-"))
    expected = api.sg.impact([seed]).total_impacted
    small = "query($id: [ID!]!) { impact(ciIds: $id, first: 5) { totalImpacted } }"
    # what applying a long journal tail does
    with held_by_another_thread(engine._gate.writing) as (free, _):
        with ThreadPoolExecutor(2) as pool:
            waiting = pool.submit(api.post, small, role="viewer", id=[seed])
            time.sleep(0.3)
            started = time.perf_counter()
            health = api.client.get("/health")
            assert health.status_code == 200 and time.perf_counter() - started < 5
            me = api.post("{ me { role } }", role="viewer")  # quick too: waits for the engine
            assert not waiting.done()
            free.set()
            assert waiting.result(60)["data"]["impact"]["totalImpacted"] == expected
        assert me["data"]["me"]["role"] == "viewer"
    assert SmallRequests.in_flight == 0


@contextlib.contextmanager
def held_by_another_thread(
    enter: Callable[[], AbstractContextManager[Any]],
) -> Iterator[tuple[threading.Event, threading.Thread]]:
    """Another thread stays inside ``enter()`` until the event given is set or the block ends."""
    taken, free = threading.Event(), threading.Event()

    def hold() -> None:
        with enter():
            taken.set()
            free.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        yield free, holder
    finally:
        free.set()
        holder.join(10)


def impact_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the threads that run each impact analysis from now on, in order."""
    threads: list[str] = []
    real = schema_module.analyse_impact

    def recording(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(schema_module, "analyse_impact", recording)
    return threads


def test_quick_queries_are_answered_on_the_loop_beside_a_large_analysis(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large analysis reads the engine; it does not have it alone: while one is inside (here:
    another thread stays inside to read), quick impacts are answered on the event loop, with
    the answers they have alone."""
    engine = api.sg.engine
    seeds = [c for c in engine.ids if c.startswith("host-")][:5]
    quick = "query($id: [ID!]!) { impact(ciIds: $id, first: 5) { totalImpacted } }"
    expected = [api.sg.impact([s]).total_impacted for s in seeds]
    threads = impact_threads(monkeypatch)
    with held_by_another_thread(engine._gate.reading) as (free, holder):  # as a large analysis
        got = [api.post(quick, role="viewer", id=[s])["data"]["impact"] for s in seeds]
        assert not free.is_set() and holder.is_alive()  # answered while it was inside
    assert [g["totalImpacted"] for g in got] == expected
    assert len(threads) == len(seeds)
    assert not any(t.startswith("AnyIO worker") for t in threads)  # all on the loop's thread


def test_a_quick_impact_that_turns_out_large_moves_off_the_event_loop(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quick query runs on the event loop until its blast radius proves larger than a quick
    one: then it is answered in a worker thread (the loop never builds a large answer), with the
    same answer — the CI it also asked for included, loaded again on the thread's loop."""
    monkeypatch.setattr(limits, "QUICK_MAX_IMPACTED", 10)
    sg = api.sg
    threads = impact_threads(monkeypatch)
    query = (
        "query($ids: [ID!]!, $ci: ID!) { ci(id: $ci) { id name } "
        "impact(ciIds: $ids, first: 5) { totalImpacted impacted { ci { id } } } }"
    )
    small = next(c for c in sg.engine.ids if 1 <= sg.impact([c]).total_impacted <= 10)
    large = next(c for c in sg.engine.ids if sg.impact([c]).total_impacted > 10)
    for seed in (small, large):
        body = api.post(query, role="viewer", ids=[seed], ci=seed)
        assert "errors" not in body, body
        assert body["data"]["ci"] == {"id": seed, "name": sg.store.get_ci(seed).name}  # type: ignore[union-attr]
        expected = sg.impact([seed])
        assert body["data"]["impact"]["totalImpacted"] == expected.total_impacted
        rows = [r["ci"]["id"] for r in body["data"]["impact"]["impacted"]]
        assert rows == [r["id"] for r in expected.impacted(limit=5)]
    assert len(threads) == 2 and threads[0] != threads[1]
    assert threads[1].startswith("AnyIO worker")  # the loop's thread ran the small one
    assert SmallRequests.in_flight == 0
