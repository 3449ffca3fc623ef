"""Approvals cannot be bypassed, active RFCs cannot be stranded, tokens can be withdrawn, nothing is
lost for good: backup/restore and undelete give back exactly what was there."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from servicegraph.api.python import ServiceGraph
from servicegraph.api.server import create_app
from servicegraph.errors import Forbidden, NotFound, RuleViolation, ValidationFailed
from servicegraph.graph.backup import backup, restore
from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Batch
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes.access import Actor, authenticate, create_token, revoke_tokens
from servicegraph.processes.configuration import guarded_write, undelete
from servicegraph.processes.demo import generate_estate
from tests.adversarial.conftest import Api, cli, codes

STEP = (
    "mutation($id: ID!, $a: ChangeAction!, $f: JSON) "
    "{ transitionChange(id: $id, action: $a, fields: $f) { state } }"
)
ADMIN = Actor("root", "admin")
EDITOR = Actor("ed", "cmdb_editor")


def approved_rfc(api: Api, target: str = "vm-000005") -> None:
    sg = api.sg
    sg.changes.create("rfc-1", "patch", "normal", [target], ADMIN,
                      cmdb_updates={target: {"cpu_cores": 8}},
                      remediation_plan="snapshot back")  # fmt: skip
    for action in ("submit", "assess", "approve"):
        sg.changes.transition("rfc-1", action, ADMIN)


def test_complete_applies_what_was_approved_and_nothing_else(api: Api) -> None:
    approved_rfc(api)
    for action in ("SCHEDULE",):
        window = {"window_start": "2026-12-10T20:00:00Z", "window_end": "2026-12-10T22:00:00Z"}
        assert api.post(STEP, id="rfc-1", a=action, f=window)["data"]
    api.post(STEP, role="change_manager", id="rfc-1", a="START")
    attack = {"cmdb_updates": {"vm-000005": {"cpu_cores": 64, "owner": "attacker"}}}
    refused = api.post(STEP, role="change_manager", id="rfc-1", a="COMPLETE", f=attack)
    assert codes(refused) == ["RULE_VIOLATION"]
    assert refused["errors"][0]["extensions"]["rule"] == "approved_content_frozen"
    assert api.sg.store.get_ci("vm-000005").attributes["cpu_cores"] != 64  # type: ignore[union-attr]
    done = api.post(STEP, role="change_manager", id="rfc-1", a="COMPLETE")
    assert done["data"]["transitionChange"]["state"] == "implemented"
    vm = api.sg.store.get_ci("vm-000005")
    assert vm is not None and vm.attributes["cpu_cores"] == 8 and "owner" not in vm.attributes


def test_the_approver_cannot_slip_in_cmdb_updates(api: Api) -> None:
    sg = api.sg
    sg.changes.create("rfc-2", "patch", "normal", ["vm-000006"], ADMIN, remediation_plan="x")
    sg.changes.transition("rfc-2", "submit", ADMIN)
    sg.changes.transition("rfc-2", "assess", ADMIN)
    with pytest.raises(RuleViolation, match="cmdb_updates"):
        sg.changes.transition("rfc-2", "approve", ADMIN, cmdb_updates={"vm-000006": {"os": "x"}})


def test_retiring_or_deleting_a_ci_under_an_active_rfc_is_refused(api: Api) -> None:
    approved_rfc(api)
    store = api.sg.store
    for batch in (Batch(retire=["vm-000005"]), Batch(delete_cis=["vm-000005"])):
        with pytest.raises(RuleViolation, match="rfc-1") as info:
            guarded_write(store, batch, EDITOR)
        assert info.value.rule == "ci_under_active_change"
    retired_by_upsert = Batch()
    retired_by_upsert.add_ci(CI("vm-000005", "vm", "v", {"status": "retired"}))
    with pytest.raises(RuleViolation):
        guarded_write(store, retired_by_upsert, EDITOR)
    body = api.post('mutation { retireCis(ids: ["vm-000005"]) { updated } }', role="cmdb_editor")
    assert codes(body) == ["RULE_VIOLATION"] and "rfc-1" in body["errors"][0]["message"]
    forced = (
        'mutation { retireCis(ids: ["vm-000005"], force: true, reason: "host burnt") { updated } }'
    )
    assert codes(api.post(forced, role="cmdb_editor")) == ["FORBIDDEN"]
    no_reason = 'mutation { retireCis(ids: ["vm-000005"], force: true) { updated } }'
    assert codes(api.post(no_reason)) == ["VALIDATION_FAILED"]
    assert store.get_ci("vm-000005").status == "active"  # type: ignore[union-attr]
    assert api.post(forced)["data"]["retireCis"]["updated"] == 1
    entry = store.journal(entity="vm-000005")[-1]
    assert (entry.op, entry.actor, entry.reason) == ("retire_ci", "admin-user", "host burnt")
    with pytest.raises(Forbidden):
        guarded_write(store, Batch(delete_cis=["vm-000005"]), EDITOR, force=True, reason="x")


def test_the_cli_refuses_too_and_delete_asks_first(api: Api) -> None:
    approved_rfc(api)

    def on_store(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--db", str(api.path))

    refused = on_store("retire", "vm-000005")
    assert refused.returncode == 8 and "rfc-1" in refused.stderr
    dry = on_store("delete", "vm-000007", "--dry-run")
    assert dry.returncode == 0 and "HOSTED_ON" in dry.stdout and "nothing was written" in dry.stdout
    assert on_store("delete", "vm-000007").returncode == 2  # no terminal, no --yes: refused
    assert api.sg.store.get_ci("vm-000007") is not None
    assert on_store("delete", "vm-000007", "--yes").returncode == 0
    assert api.sg.store.get_ci("vm-000007") is None
    forced = on_store("delete", "vm-000005", "--yes", "--force", "--reason", "decommissioned early")
    assert forced.returncode == 0, forced.stderr


def test_tokens_expire_are_listed_and_revoked_everywhere_at_once(api: Api) -> None:
    store = api.sg.store
    short = create_token(store, "temp", "viewer", expires_in=dt.timedelta(seconds=1))
    assert authenticate(store, f"Bearer {short}").user == "temp"
    db = __import__("sqlite3").connect(api.path)
    db.execute(
        "UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE user = 'temp'"
    )
    db.commit()
    db.close()
    body = api.client.post("/graphql", json={"query": "{ me { user } }"},
                           headers={"Authorization": f"Bearer {short}"}).json()  # fmt: skip
    assert codes(body) == ["UNAUTHENTICATED"] and "expired" in body["errors"][0]["message"]

    # A second replica on the same store: a revocation through the first is refused by both.
    replica_store = SqliteStore(api.path, store.model)
    with TestClient(create_app(ServiceGraph(replica_store))) as replica:
        token = api.tokens["viewer"]
        headers = {"Authorization": f"Bearer {token}"}
        assert replica.post("/graphql", json={"query": "{ me { user } }"}, headers=headers).json()[
            "data"
        ]
        listed = {t.user: t for t in store.list_tokens()}
        assert listed["viewer-user"].last_used_at is not None
        revoke_tokens(store, [listed["viewer-user"].id], actor="security")
        for client in (api.client, replica):
            refused = client.post(
                "/graphql", json={"query": "{ me { user } }"}, headers=headers
            ).json()
            assert (
                codes(refused) == ["UNAUTHENTICATED"]
                and "revoked" in refused["errors"][0]["message"]
            )
    replica_store.close()
    with pytest.raises(NotFound):
        revoke_tokens(store, ["nosuchtoken"])
    entry = store.journal(entity=f"token:{listed['viewer-user'].id}")[-1]
    assert (entry.op, entry.actor) == ("revoke_token", "security")


def test_token_cli_creates_lists_and_revokes(tmp_path: Path, model: Model) -> None:
    db = str(tmp_path / "t.db")
    SqliteStore(db, model).close()

    def on_store(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--db", db)

    created = on_store(
        "token", "create", "--user", "ops", "--role", "viewer", "--expires-in", "30d"
    )
    assert created.returncode == 0 and created.stdout.startswith("sg_")
    assert (
        on_store(
            "token", "create", "--user", "x", "--role", "viewer", "--expires-in", "soon"
        ).returncode
        == 1
    )
    listed = on_store("token", "list", "--format", "json")
    import json

    (token,) = json.loads(listed.stdout)
    assert token["user"] == "ops" and token["expires_at"] > "2026" and "hash" not in token
    assert created.stdout.strip() not in listed.stdout
    revoked = on_store("token", "revoke", "--user", "ops")
    assert revoked.returncode == 0 and "revoked 1" in revoked.stdout


def _populated(store: GraphStore) -> None:
    store.write(generate_estate(150, seed=4), "demo")
    store.upsert([CI("vm-000001", "vm", "renamed", {"os": "RHEL 9"})], actor="alice")
    store.delete(["vm-000002"], actor="bob")
    create_token(store, "ops", "admin", expires_in=dt.timedelta(days=1))
    token = create_token(store, "gone", "viewer")
    revoke_tokens(store, user="gone")
    assert token


def test_backup_and_restore_give_back_the_identical_store(
    store: GraphStore, reopen_empty: Any, tmp_path: Path
) -> None:
    _populated(store)
    before = store.dump()
    counts = backup(store, tmp_path / "backup.db")
    assert counts["journal_entries"] == len(before.journal) and counts["tokens"] == 2
    with pytest.raises(RuleViolation, match="exists"):
        backup(store, tmp_path / "backup.db")
    target = reopen_empty()
    restore(target, tmp_path / "backup.db")
    assert target.dump() == before  # CIs with versions, relationships, journal, tokens
    with pytest.raises(RuleViolation, match="not empty"):
        restore(target, tmp_path / "backup.db")
    target.upsert([CI("extra", "vm", "extra")])
    restore(target, tmp_path / "backup.db", replace=True)
    assert target.dump() == before
    target.upsert([CI("after-restore", "vm", "x")])  # the journal goes on from its head
    assert target.head_seq() == before.journal[-1].seq + 1


def test_undelete_rebuilds_a_ci_and_its_relationships(store: GraphStore) -> None:
    store.write(generate_estate(150, seed=4), "demo")
    original = store.get_ci("vm-000003")
    rels = store.relationships_of(["vm-000003"])
    assert original is not None and rels
    store.delete(["vm-000003"], actor="oops")
    done = undelete(store, "vm-000003", ADMIN)
    back = store.get_ci("vm-000003")
    assert back is not None and (back.name, back.attributes) == (original.name, original.attributes)
    assert {r.key for r in store.relationships_of(["vm-000003"])} == {r.key for r in rels}
    assert done["skipped"] == [] and "seq" in store.journal(entity="vm-000003")[-1].reason  # type: ignore[operator]
    with pytest.raises(RuleViolation):
        undelete(store, "vm-000003", ADMIN)
    with pytest.raises(NotFound):
        undelete(store, "never-existed", ADMIN)


def test_a_forced_write_needs_a_reason(store: GraphStore) -> None:
    store.upsert([CI("vm-1", "vm", "v")])
    with pytest.raises(ValidationFailed, match="reason"):
        guarded_write(store, Batch(retire=["vm-1"]), ADMIN, force=True)
    guarded_write(store, Batch(retire=["vm-1"]), ADMIN, force=True, reason="no RFC involved")


def test_compose_has_no_password_binds_to_localhost_and_runs_real_commands() -> None:
    from typer.testing import CliRunner

    from servicegraph.api.cli import app

    text = Path("docker-compose.yml").read_text()
    assert "change-me" not in text and not re.search(r"NEO4J_AUTH:\s*neo4j/[^$]", text)
    compose = yaml.safe_load(text)
    services = compose["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port.startswith("${BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    assert (
        "${NEO4J_PASSWORD:?"
        in services["servicegraph"]["environment"]["SERVICEGRAPH_NEO4J_PASSWORD"]
    )
    assert (
        services["servicegraph"]["depends_on"]["demo-loader"]["condition"]
        == "service_completed_successfully"
    )
    assert "/health" in str(services["servicegraph"]["healthcheck"]["test"])
    assert "NUMBA_CACHE_DIR" in services["servicegraph"]["environment"]
    assert "./data:/data:ro" in services["servicegraph"]["volumes"]
    runner = CliRunner()
    for name in ("demo-loader", "servicegraph"):
        command = [
            re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", part) for part in services[name]["command"]
        ]
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (name, command, result.output)
    for documented in re.findall(
        r"docker compose run --rm servicegraph ([a-z ]+?) (--[a-z]+|/data)", text
    ):
        assert runner.invoke(app, [*documented[0].split(), "--help"]).exit_code == 0, documented
    readme = Path("README.md").read_text()
    for variable in ("NEO4J_PASSWORD", "BIND_ADDRESS", ".env.example"):
        assert variable in readme, variable
