"""The incident, problem, rca and report commands through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import run


def test_the_desk_and_the_analyst_from_the_cli(tmp_path: Path) -> None:
    db = str(tmp_path / "a.db")
    assert run("demo", "--size", "300", "--db", db).returncode == 0
    ranked = run("rca", "--format", "json", "--db", db)
    assert ranked.returncode == 0, ranked.stderr
    answer = json.loads(ranked.stdout)
    best = answer["groups"][0]["candidates"][0]
    assert answer["incidents"] and set(best["explains"]) <= set(answer["incidents"])
    table = run("rca", "--db", db)
    assert best["id"] in table.stdout and "incidents_explained" in table.stdout
    made = run("problem", "create", "prb-9", "--from-group", "1", "--db", db)
    assert made.returncode == 0, made.stderr
    problem = json.loads(made.stdout)
    assert problem["root_causes"] == [best["id"]]
    assert problem["incidents"] == answer["groups"][0]["incidents"]
    assert problem["evidence"]["candidate"]["id"] == best["id"]

    alerts = tmp_path / "alerts.json"
    alerts.write_text(json.dumps({"incidents": [
        {"id": "mon-1", "summary": "ping lost", "affects": [best["id"]], "urgency": "high"}]}))  # fmt: skip
    first = run("incident", "import", str(alerts), "--db", db)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created_ids"] == ["mon-1"]
    assert json.loads(run("incident", "import", str(alerts), "--db", db).stdout)["existing"] == 1
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "mon-2", "affects": ["nope"]}')
    bad = run("incident", "import", str(broken), "--db", db)
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr
    broken.write_text('[{"id": "mon-2", "summary": "x", "affects": ["nope"], "urgency": "asap"}]')
    bad = run("incident", "import", str(broken), "--db", db)
    assert bad.returncode == 1 and "nope" in bad.stderr and "urgency" in bad.stderr

    refused = run("incident", "do", "mon-1", "close", "--db", db)
    assert refused.returncode == 8 and "illegal_transition" in refused.stderr
    shown = json.loads(run("incident", "show", "mon-1", "--db", db).stdout)
    assert shown["state"] == "new" and shown["timers"]["response"]["target_minutes"] > 0
    assert shown["suggestions"] and shown["history"]

    report = tmp_path / "trends.html"
    made = run("report", "incidents", "--html", str(report), "--db", db)
    assert made.returncode == 0, made.stderr
    html = report.read_text()
    assert (
        "Incidents per week by service hit" in html
        and "cdn.plot.ly" not in html.split("<script", 2)[1][:200]
    )
