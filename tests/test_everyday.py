"""Everyday use as each user meets it: merging updates, the demo a newcomer starts, honest errors."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.graph.model import load_model
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servicegraph.api.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture
def api(sqlite_store: SqliteStore) -> Iterator[tuple[TestClient, str]]:
    sqlite_store.write(generate_estate(300, seed=2))
    token = create_token(sqlite_store, "ed", "cmdb_editor")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        yield client, token


def gql(client: TestClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.json()  # type: ignore[no-any-return]


UPSERT = "mutation($c: [CIInput!]!, $m: WriteMode) { upsertCis(cis: $c, mode: $m) { updated } }"


def test_graphql_updates_merge_unless_asked_to_replace(api: tuple[TestClient, str]) -> None:
    client, token = api
    before = gql(client, token, '{ ci(id: "vm-000001") { attributes } }')["data"]["ci"]
    assert {"os", "environment"} <= set(before["attributes"]) or "environment" in before[
        "attributes"
    ]
    gql(client, token, UPSERT, c=[{"id": "vm-000001", "class": "vm", "name": "dns1",
                                    "attributes": {"cpu_cores": 16}}])  # fmt: skip
    after = gql(client, token, '{ ci(id: "vm-000001") { attributes } }')["data"]["ci"]["attributes"]
    assert after == {**before["attributes"], "cpu_cores": 16}
    gql(client, token, UPSERT, c=[{"id": "vm-000001", "class": "vm", "name": "dns1",
                                    "attributes": {"environment": None}}])  # fmt: skip
    after = gql(client, token, '{ ci(id: "vm-000001") { attributes } }')["data"]["ci"]["attributes"]
    assert "environment" not in after and after["cpu_cores"] == 16
    gql(client, token, UPSERT, m="REPLACE", c=[{"id": "vm-000001", "class": "vm", "name": "dns1",
                                                 "attributes": {"cpu_cores": 2}}])  # fmt: skip
    after = gql(client, token, '{ ci(id: "vm-000001") { attributes } }')["data"]["ci"]["attributes"]
    assert after == {"cpu_cores": 2}


def test_a_csv_with_some_columns_changes_only_those(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    assert run("demo", "--size", "100", "--db", db).returncode == 0
    with SqliteStore(db, load_model()) as store:
        memory = store.get_ci("vm-000001").attributes["memory_gb"]  # type: ignore[union-attr]
    folder = tmp_path / "partial"
    folder.mkdir()
    (folder / "cis.csv").write_text("id,class,name,cpu_cores\nvm-000001,vm,dns1,32\n")
    (folder / "relationships.csv").write_text("source,type,target\n")
    assert run("import", str(folder), "--db", db).returncode == 0
    with SqliteStore(db, load_model()) as store:
        ci = store.get_ci("vm-000001")
        assert ci is not None and ci.attributes["cpu_cores"] == 32
        assert ci.attributes["memory_gb"] == memory  # the column the file lacks is kept
    assert run("import", str(folder), "--db", db, "--replace").returncode == 0
    with SqliteStore(db, load_model()) as store:
        ci = store.get_ci("vm-000001")
        assert ci is not None and ci.attributes == {"cpu_cores": 32}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_demo(db: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "servicegraph.api.cli", "serve", "--demo", "--demo-size", "200",
         "--db", str(db), "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "300"},
    )  # fmt: skip
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if "GraphQL on" in line:
            break
    return proc, lines


def wait_until_serving(url: str, proc: subprocess.Popen[Any], timeout: float = 120) -> None:
    """Until ``url``/health answers; a server that exits or takes too long fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, f"serve exited with {proc.returncode}"
        assert time.monotonic() < deadline, "serve did not come up"
        time.sleep(0.3)


def _token(lines: list[str]) -> str:
    (line,) = [x for x in lines if x.strip().startswith("export SG_TOKEN=")]
    return line.strip().split("=", 1)[1]


def test_the_demo_keeps_its_store_and_token_and_checks_the_port_first(tmp_path: Path) -> None:
    db = tmp_path / ".demo" / "servicegraph.db"
    port = _free_port()
    first, lines = _start_demo(db, port)
    try:
        token = _token(lines)
        assert any("demo estate loaded" in x for x in lines)
        curl = [x for x in lines if x.strip().startswith("curl ")]
        assert len(curl) == 1 and f"http://127.0.0.1:{port}/graphql" in curl[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                me = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ me { user } }"},
                                headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert me["data"]["me"]["user"] == "demo-admin"
        other = tmp_path / "other.db"  # the port is taken now: said before anything is loaded
        clash = run("serve", "--demo", "--db", str(other), "--port", str(port))
        assert clash.returncode == 1 and "cannot listen" in clash.stderr
        assert not other.exists()
    finally:
        first.terminate()
        first.wait(timeout=30)
    assert first.stdout is not None and '"POST /graphql HTTP/1.1" 200' in first.stdout.read()
    second, lines = _start_demo(db, port, "--no-access-log")
    try:
        assert any("kept" in x for x in lines) and _token(lines) == token
        wait_until_serving(f"http://127.0.0.1:{port}", second)
        me = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ me { user } }"},
                        headers={"Authorization": f"Bearer {token}"}).json()  # fmt: skip
        assert me["data"]["me"]["user"] == "demo-admin"
    finally:
        second.terminate()
        second.wait(timeout=30)
    assert second.stdout is not None and "POST /graphql" not in second.stdout.read()  # no log
    assert oct(db.with_name("servicegraph.db.demo-token").stat().st_mode & 0o777) == "0o600"


def test_graphiql_works_offline(api: tuple[TestClient, str]) -> None:
    import base64
    import hashlib
    import re

    client, _ = api
    page = client.get("/graphql", headers={"Accept": "text/html"}).text
    assert "graphiql" in page.lower() and "unpkg" not in page
    assert not re.findall(r'(?:src|href)="https?://', page)  # nothing from the network
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"\s+integrity="([^"]+)"', page)
    assert len(assets) == 7
    for path, integrity in assets:
        response = client.get(path)
        assert response.status_code == 200, path
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert integrity == f"sha384-{digest}", path  # the browser would refuse anything else


def test_lists_have_counts_search_sorting_and_typed_filters(
    api: tuple[TestClient, str], sqlite_store: SqliteStore
) -> None:
    client, token = api
    body = gql(
        client, token,
        '{ cis(filter: {class: "vm", text: "VM-00001"}, first: 3, sort: {field: ID, direction: DESC})'
        " { totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
    )  # fmt: skip
    page = body["data"]["cis"]
    ids = [e["node"]["id"] for e in page["edges"]]
    assert page["totalCount"] == 10 and ids == ["vm-000019", "vm-000018", "vm-000017"]
    after = gql(client, token, 'query($a: String) { cis(filter: {class: "vm", text: "vm-00001"}, '
                'first: 3, after: $a, sort: {field: ID, direction: DESC}) { edges { node { id } } } }',
                a=page["edges"][0]["cursor"])  # fmt: skip
    assert [e["node"]["id"] for e in after["data"]["cis"]["edges"]] == [*ids[1:], "vm-000016"]
    services = gql(client, token, '{ cis(filter: {class: "service"}) { totalCount } }')
    critical = gql(client, token, '{ cis(filter: {class: "service", attributes: {criticality: "5"}}) '
                   "{ totalCount edges { node { attributes } } } }")  # fmt: skip
    assert 0 < critical["data"]["cis"]["totalCount"] < services["data"]["cis"]["totalCount"]
    assert all(e["node"]["attributes"]["criticality"] == 5
               for e in critical["data"]["cis"]["edges"])  # fmt: skip
    typo = gql(client, token, "{ cis(filter: {attributes: {critcality: 5}}) { totalCount } }")
    assert typo["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "criticality" in typo["errors"][0]["message"]  # the known names are listed
    bad_value = gql(
        client,
        token,
        '{ cis(filter: {class: "service", attributes: {criticality: "high"}}) { totalCount } }',
    )
    assert bad_value["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    bogus = gql(client, token, '{ relationships(types: ["BOGUS"]) { totalCount } }')
    assert bogus["errors"][0]["extensions"]["code"] == "VALIDATION_FAILED"
    assert "BOGUS" in bogus["errors"][0]["message"] and "HOSTED_ON" in bogus["errors"][0]["message"]
    hosted = gql(client, token, '{ relationships(types: ["HOSTED_ON"], first: 2) { totalCount } }')
    types = [r.type for r in sqlite_store.iter_relationships()]  # every page, read directly
    assert hosted["data"]["relationships"]["totalCount"] == types.count("HOSTED_ON") > 2
    by_name = gql(
        client, token, "{ cis(first: 5, sort: {field: NAME}) { edges { node { name } } } }"
    )
    names = [e["node"]["name"] for e in by_name["data"]["cis"]["edges"]]
    assert names == sorted(names)


def test_cors_is_off_unless_configured(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    preflight = {"Origin": "https://cmdb.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization,content-type"}  # fmt: skip
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        response = client.options("/graphql", headers=preflight)
        assert "access-control-allow-origin" not in response.headers
    monkeypatch.setenv("SERVICEGRAPH_CORS_ORIGINS", "https://cmdb.example, https://other.example")
    with TestClient(create_app(ServiceGraph(sqlite_store))) as client:
        response = client.options("/graphql", headers=preflight)
        assert response.headers["access-control-allow-origin"] == "https://cmdb.example"
        evil = client.options("/graphql", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers


def test_python_lists_search_and_typed_filters(sqlite_store: SqliteStore) -> None:
    sg = ServiceGraph(sqlite_store)
    sg.load_demo(300)
    frame = sg.search("DNS")
    assert "dns-000001" in set(frame["id"])
    assert set(sg.cis("service", criticality="5")["criticality"]) == {5}


@pytest.fixture
def demo_db(tmp_path: Path) -> str:
    db = str(tmp_path / "d.db")
    assert run("demo", "--size", "300", "--db", db).returncode == 0
    return db


def test_cli_list_and_search(demo_db: str) -> None:
    import csv
    import io
    import json

    listed = run("list", "--class", "vm", "--limit", "5", "--db", demo_db)
    lines = listed.stdout.splitlines()
    assert lines[0].split("\t") == ["id", "class", "name", "status", "version"]
    assert len(lines) == 6 and all(line.split("\t")[1] == "vm" for line in lines[1:])
    assert "5 of" in listed.stderr
    services = json.loads(run("list", "--class", "service", "--attr", "criticality=5",
                              "--format", "json", "--limit", "500", "--db", demo_db).stdout)  # fmt: skip
    assert services and {s["attributes"]["criticality"] for s in services} == {5}
    found = run("search", "DNS", "--format", "csv", "--db", demo_db).stdout
    rows = list(csv.DictReader(io.StringIO(found)))
    assert "dns-000001" in {r["id"] for r in rows}
    typo = run("list", "--attr", "critcality=5", "--db", demo_db)
    assert typo.returncode == 1 and "did you mean criticality" in typo.stderr
    assert "nothing was written" not in typo.stderr  # a read: nothing to write


def test_journal_filters_and_history_with_relationships(demo_db: str) -> None:
    import json

    assert run("retire", "vm-000002", "--actor", "alice", "--db", demo_db).returncode == 0
    mine = json.loads(
        run("journal", "--actor", "alice", "--format", "json", "--db", demo_db).stdout
    )
    assert [(e["op"], e["entity"]) for e in mine] == [("retire_ci", "vm-000002")]
    today = dt.date.today().isoformat()  # the demo's own decommissions were months ago
    ops = run("journal", "--op", "retire_ci", "--since", today, "--until", "2999-01-01",
              "--format", "csv", "--db", demo_db).stdout.splitlines()  # fmt: skip
    assert len(ops) == 2 and "vm-000002" in ops[1] and "'active' → 'retired'" in ops[1]
    year = run("journal", "--op", "retire_ci", "--since", "2000-01-01", "--format", "json",
               "--db", demo_db)  # fmt: skip
    assert {e["actor"] for e in json.loads(year.stdout)} == {"alice", "ana.engineer"}
    none = json.loads(run("journal", "--until", "1", "--since", "1", "--format", "json",
                          "--db", demo_db).stdout)  # fmt: skip
    assert none == []
    history = json.loads(run("history", "vm-000002", "--format", "json", "--db", demo_db).stdout)
    entities = {e["entity"] for e in history}
    assert "vm-000002" in entities and any(e.startswith("vm-000002 -[") for e in entities)
    assert run("history", "no-such-ci", "--db", demo_db).returncode == 4
    bad = run("journal", "--since", "yesterday", "--db", demo_db)
    assert bad.returncode == 2 and "ISO date" in bad.stderr


def test_messages_say_what_happened(demo_db: str) -> None:
    from servicegraph.errors import Problem, StaleVersion

    assert str(Problem("ciIds", "ciIds", "give one")) == "ciIds: give one"
    assert "already exists (version 3)" in str(StaleVersion("vm-1", 0, 3))
    missing = run("impact", "nope-1", "nope-2", "--db", demo_db)
    assert missing.returncode == 1 and "nothing was written" not in missing.stderr


def test_quick_commands_do_not_load_the_analysis_stack(demo_db: str) -> None:
    """show, summary, list and journal start fast because they never import pandas, networkx,
    numpy or numba (the engine's stack loads only for analyses)."""
    heavy = ("pandas", "networkx", "numba", "numpy")
    for command in (["show", "vm-000001"], ["summary"], ["list", "--limit", "3"], ["journal"]):
        script = (
            "import sys\nfrom servicegraph.api.cli import main\n"
            f"sys.argv = ['servicegraph', *{command!r}, '--db', {demo_db!r}]\n"
            "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
            f"print('LOADED', sorted(m for m in {heavy!r} if m in sys.modules))"
        )
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120)  # fmt: skip
        assert "LOADED []" in result.stdout, (command, result.stdout[-300:], result.stderr)


def test_the_readme_python_block_runs_verbatim(tmp_path: Path) -> None:
    import re

    block = re.search(
        r"```python\nimport servicegraph\n(.*?)```", Path("README.md").read_text(), re.S
    )
    assert block is not None
    code = "import servicegraph\n" + block.group(1)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_demo_has_the_records_every_process_needs(demo_db: str) -> None:
    import json

    with SqliteStore(demo_db, load_model()) as store:
        counts = store.counts()
    for cls in ("incident", "problem", "known_error", "blackout_window", "release", "baseline"):
        assert counts.get(cls, 0) >= 1, cls
    listed = run("change", "list", "--format", "json", "--db", demo_db)
    assert listed.returncode == 0, listed.stderr[-2000:]  # (once seen empty: say why if again)
    agenda = json.loads(listed.stdout)
    states = {c["state"] for c in agenda}
    assert {"draft", "assessed", "scheduled", "rejected", "closed", "remediated"} <= states
    assert all(c["assessment"]["risk_factors"] for c in agenda if c["state"] == "scheduled")
    scheduled = run("change", "list", "--state", "scheduled", "--format", "csv", "--db", demo_db)
    assert len(scheduled.stdout.splitlines()) == 3  # header + two RFCs
    scheduling = run("change", "schedule", "--from", "2000-01-01T00:00:00Z", "--to",
                     "2999-01-01T00:00:00Z", "--db", demo_db)  # fmt: skip
    assert scheduling.returncode == 0, scheduling.stderr[-2000:]
    plan = json.loads(scheduling.stdout)
    kinds = {c["kind"] for c in plan["collisions"]}
    assert kinds == {"overlapping_changes", "blackout"}  # the demo shows both on a fresh clone


def test_the_cab_agenda_over_graphql_with_a_typed_assessment(sqlite_store: SqliteStore) -> None:
    sg = ServiceGraph(sqlite_store)
    sg.load_demo(300)
    token = create_token(sqlite_store, "cab", "viewer")
    with TestClient(create_app(sg)) as client:
        body = gql(
            client,
            token,
            """{ changes(filter: {states: ["scheduled", "assessed"]}) {
            id state assessment { totalImpacted riskFactors { factor points detail }
              majorImpactCriteria { criterion met } services { id status }
              impacted(first: 3) { id distance path } } } }""",
        )
        changes = body["data"]["changes"]
        assert {c["state"] for c in changes} == {"scheduled", "assessed"}
        first = changes[0]["assessment"]
        assert first["riskFactors"] and all(f["detail"] for f in first["riskFactors"])
        assert len(first["impacted"]) <= 3
        assert all(r["distance"] == len(r["path"]) - 1 for r in first["impacted"])
        windowed = gql(client, token, '{ changes(filter: {windowStart: "2000-01-01T00:00:00Z", '
                       'windowEnd: "2999-01-01T00:00:00Z"}) { id } }')  # fmt: skip
        assert {c["id"] for c in windowed["data"]["changes"]} >= {"rfc-0001", "rfc-0002"}
