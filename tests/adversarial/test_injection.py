"""Stored text cannot drive the terminal or a spreadsheet that shows it."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from servicegraph.graph.model import Model
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes import interchange
from tests.adversarial.conftest import cli

MARKUP = "[/x] [red]admin[/red] [link=http://evil]click[/link]"


def test_markup_and_escapes_in_stored_text_are_shown_as_text(tmp_path: Path, model: Model) -> None:
    path = tmp_path / "inj.db"
    with SqliteStore(path, model) as store:
        store.upsert(
            [CI("vm-[/x]", "vm", MARKUP, {"os": "[bold]RHEL[/bold]"}), CI("host-1", "host", "h")],
            [Relationship("vm-[/x]", "HOSTED_ON", "host-1")],
            actor="[red]admin[/red]",
        )
    # What an older version may have stored: escapes that validation refuses today.
    db = sqlite3.connect(path)
    db.execute("UPDATE cis SET name = ? WHERE id = 'host-1'", ("h\x1b[2J\x1b]0;owned\x07\u202e",))
    db.commit()
    db.close()
    for command in (
        ["show", "vm-[/x]"],
        ["show", "host-1"],
        ["history", "vm-[/x]"],
        ["journal"],
        ["impact", "host-1"],
        ["summary"],
    ):
        result = cli(*command, "--db", str(path))
        assert result.returncode == 0, (command, result.stderr)
        shown = result.stdout + result.stderr
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, command
        if command[0] in ("show", "history", "journal", "impact") and "vm" in " ".join(command):
            assert "[/x]" in shown, command
    journal = cli("journal", "--db", str(path)).stdout
    assert "[red]admin[/red]" in journal  # the actor as written, not shown as a red "admin"
    shown = cli("show", "vm-[/x]", "--db", str(path)).stdout
    assert "".join(MARKUP.split()) in "".join(shown.split())  # as written (the title wraps)


def test_csv_export_neutralises_formulas_and_the_round_trip_is_exact(
    tmp_path: Path, model: Model
) -> None:
    dangerous = ["=cmd|' /C calc'!A0", "@SUM(1+1)", "+HYPERLINK(\"http://x\")", "-2+3", "'=x",
                 "''@y", "'plain", "\tTAB", "=", "ok"]  # fmt: skip
    with SqliteStore(tmp_path / "a.db", model) as store:
        store.upsert(
            [
                CI(f"vm-{i}", "vm", name if "\t" not in name else "tab", {"os": name})
                for i, name in enumerate(dangerous)
            ]
            + [CI("=host", "host", "=host")],
            [Relationship("vm-0", "HOSTED_ON", "=host")],
        )
        interchange.export_csv(store, tmp_path / "out")
        original = interchange.snapshot(store)
    with (tmp_path / "out" / "cis.csv").open(newline="", encoding="utf-8") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    with SqliteStore(tmp_path / "b.db", model) as copy:
        copy.write(interchange.read_batch(model, [tmp_path / "out"]))
        assert interchange.snapshot(copy) == original
