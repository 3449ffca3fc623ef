"""The CLI through its real entry point: exit codes and messages scripts and people rely on."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from servicegraph.api.cli import main; main()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd or Path.home()), "COLUMNS": "200"},
    )


def test_demo_import_export_round_trip_through_the_cli(tmp_path: Path) -> None:
    db, copy = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    demo = run("demo", "--size", "300", "--db", db)
    assert demo.returncode == 0, demo.stderr
    assert "relationships" in demo.stdout and "journal head" in demo.stdout
    assert run("export", str(tmp_path / "x.json"), "--db", db).returncode == 0
    imported = run("import", str(tmp_path / "x.json"), "--db", copy)
    assert imported.returncode == 0, imported.stderr
    assert run("export", str(tmp_path / "y.json"), "--db", copy).returncode == 0
    assert json.loads((tmp_path / "x.json").read_text()) == json.loads(
        (tmp_path / "y.json").read_text()
    )
    again = run("import", str(tmp_path / "x.json"), "--db", copy)
    assert "0 created, 0 updated" in again.stdout
    nowhere = run("export", str(tmp_path / "missing" / "z.json"), "--db", db)
    assert nowhere.returncode == 2 and "Traceback" not in nowhere.stderr
    assert "cannot write" in nowhere.stderr and "No such file or directory" in nowhere.stderr


def test_the_default_store_is_servicegraph_db_in_the_working_directory(tmp_path: Path) -> None:
    assert run("demo", "--size", "100", cwd=tmp_path).returncode == 0
    assert (tmp_path / "servicegraph.db").exists()


def test_bad_input_exits_1_listing_problems_and_writes_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "cis": [{"id": "vm-1", "class": "vm", "name": "ok"}],
                "relationships": [{"source": "vm-1", "type": "RUNS_ON", "target": "nowhere"}],
            }
        )
    )
    result = run("import", str(bad), "--db", db)
    assert result.returncode == 1
    assert "relationships[0]: target: no CI 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr
    summary = run("summary", "--json", "--db", db)
    assert json.loads(summary.stdout) == {"relationships": 0, "journal_head": 0}


def test_history_shows_who_changed_what(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run("demo", "--size", "100", "--db", db)
    assert run("retire", "vm-000001", "--db", db, "--actor", "erin").returncode == 0
    history = run("history", "vm-000001", "--db", db)
    assert "create_ci" in history.stdout and "retire_ci" in history.stdout
    assert "erin" in history.stdout
    assert "attributes.status: 'active' → 'retired'" in history.stdout
    assert run("show", "nope", "--db", db).returncode == 4


def test_an_unreachable_neo4j_is_named_without_a_traceback(tmp_path: Path) -> None:
    result = run("summary", "--db", "bolt://127.0.0.1:9")
    assert result.returncode == 3
    assert "cannot reach Neo4j at bolt://127.0.0.1:9" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_command_or_option_is_a_usage_error(tmp_path: Path) -> None:
    assert run("frobnicate").returncode == 2
    assert run("demo", "--size", "ten").returncode == 2


def test_impact_json_is_the_python_dict(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run("demo", "--size", "400", "--db", db)
    result = run("impact", "storage-array-000001", "--format", "json", "--db", db)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"impacted", "services", "slas", "customers", "warnings"}
    assert data["impacted"] and all(
        r["distance"] == len(r["path"]) - 1 and r["path"][0] == "storage-array-000001"
        for r in data["impacted"]
    )
    shallow = json.loads(
        run(
            "impact", "storage-array-000001", "--max-depth", "1", "--format", "json", "--db", db
        ).stdout
    )
    assert {r["distance"] for r in shallow["impacted"]} == {1}
    assert {"id", "name", "class", "status", "distance", "path"} == set(data["impacted"][0])
    table = run("impact", "storage-array-000001", "--db", db)
    assert "CIs impacted" in table.stderr  # the summary; stdout is the rows
    lines = table.stdout.splitlines()  # not a terminal: tab-separated, ids never cut
    assert lines[0].split("\t") == ["id", "name", "class", "status", "hops", "path"]
    assert {line.split("\t")[0] for line in lines[1:]} <= {r["id"] for r in data["impacted"]}
    as_csv = run("impact", "storage-array-000001", "--format", "csv", "--db", db).stdout
    assert len(as_csv.splitlines()) == len(data["impacted"]) + 1  # every impacted CI
    missing = run("impact", "nope", "--db", db)
    assert missing.returncode == 4 and "'nope'" in missing.stderr


def test_serve_demo_prints_a_token_that_the_server_accepts(tmp_path: Path) -> None:
    import socket
    import time

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from servicegraph.api.cli import main; main()",
            "serve",
            "--demo",
            "--demo-size",
            "300",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "300"},
    )
    try:
        token = None
        printed = []
        assert proc.stdout is not None
        for line in proc.stdout:
            printed.append(line)
            if line.strip().startswith("export SG_TOKEN="):
                token = line.strip().split("=", 1)[1]
            if "GraphQL on" in line:
                break
        assert token and token.startswith("sg_")
        assert "".join(printed).count(token) == 1  # shown once; the curl line uses $SG_TOKEN
        assert any('curl -s -H "Authorization: Bearer $SG_TOKEN"' in line for line in printed)
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={
                        "query": '{ me { role } impact(ciIds: ["dns-000001"]) { totalImpacted } }'
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        data = response.json()["data"]
        assert data["me"]["role"] == "admin" and data["impact"]["totalImpacted"] > 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_token_create_prints_a_token_once(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    first = run("token", "create", "--user", "ann", "--role", "viewer", "--db", db, "--create")
    second = run("token", "create", "--user", "ann", "--role", "viewer", "--db", db)
    assert first.returncode == 0 and first.stdout.strip().startswith("sg_")
    assert first.stdout != second.stdout
    assert run("token", "create", "--user", "ann", "--role", "root", "--db", db).returncode == 1
    assert "create_token" in run("journal", "--db", db).stdout


def test_change_and_release_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    run("demo", "--size", "500", "--db", db)
    created = run(
        "change",
        "create",
        "rfc-1",
        "--name",
        "patch",
        "--target",
        "vm-000005",
        "--set",
        'cmdb_updates={"vm-000005": {"os": "RHEL 9"}}',
        "--db",
        db,
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["state"] == "draft"
    for action in ("submit", "assess"):
        assert run("change", "do", "rfc-1", action, "--db", db).returncode == 0
    refused = run("change", "do", "rfc-1", "approve", "--db", db)
    assert refused.returncode == 8 and "rule: remediation_plan_required" in refused.stderr
    viewer = run("change", "do", "rfc-1", "approve", "--role", "viewer", "--db", db)
    assert viewer.returncode == 7
    run("change", "amend", "rfc-1", "--set", "remediation_plan=revert", "--db", db)
    approved = run(
        "change", "do", "rfc-1", "approve", "--reason", "CAB 7", "--user", "carol", "--db", db
    )
    assert json.loads(approved.stdout)["approved_by"] == "carol"
    # a day a year ahead: the demo's own RFCs are scheduled within days of today
    day = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).date().isoformat()
    bad_window = run(
        "change",
        "do",
        "rfc-1",
        "schedule",
        "--set",
        f"window_start={day}T20:00:00Z",
        "--set",
        f"window_end={day}T19:00:00Z",
        "--db",
        db,
    )
    assert bad_window.returncode == 8 and "window_order" in bad_window.stderr
    run(
        "change",
        "do",
        "rfc-1",
        "schedule",
        "--set",
        f"window_start={day}T20:00:00Z",
        "--set",
        f"window_end={day}T21:00:00Z",
        "--db",
        db,
    )
    plan = json.loads(
        run(
            "change",
            "schedule",
            "--from",
            f"{day}T00:00:00Z",
            "--to",
            f"{day}T23:59:59Z",
            "--db",
            db,
        ).stdout
    )
    assert [c["id"] for c in plan["changes"]] == ["rfc-1"] and plan["collisions"] == []
    shown = json.loads(run("change", "show", "rfc-1", "--db", db).stdout)
    assert shown["targets"] == ["vm-000005"] and shown["history"][-1]["actor"] == "cli"
    assert (
        run(
            "release", "create", "rel-1", "--name", "R1", "--change", "rfc-1", "--db", db
        ).returncode
        == 0
    )
    no_baseline = run("release", "deploy", "rel-1", "--db", db)
    assert no_baseline.returncode == 8 and "baseline_before_deployment" in no_baseline.stderr
    baseline = json.loads(run("release", "baseline", "rel-1", "--db", db).stdout)
    assert baseline["cis"] > 1
    assert json.loads(run("release", "deploy", "rel-1", "--db", db).stdout)["state"] == "deployed"
    report = json.loads(run("release", "incidents", "rel-1", "--days", "3", "--db", db).stdout)
    assert report["incidents"] == [] and report["blast_radius"] == baseline["cis"]
    assert "normal" in run("change", "trends", "--db", db).stdout


def test_a_mistyped_db_is_an_error_not_a_new_empty_store(tmp_path: Path) -> None:
    run("demo", "--size", "100", "--db", str(tmp_path / "cmdb.db"))
    for command in (["summary"], ["show", "vm-000001"], ["token", "create", "--user", "u",
                    "--role", "viewer"], ["impact", "vm-000001"], ["journal"]):  # fmt: skip
        result = run(*command, "--db", str(tmp_path / "cmbd.db"))
        assert result.returncode == 3, (command, result.stderr)
        assert "there is no store at" in result.stderr and "cmbd.db" in result.stderr
    assert not (tmp_path / "cmbd.db").exists()
    assert run("summary", "--db", str(tmp_path / "cmdb.db")).returncode == 0
