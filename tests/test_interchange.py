"""Import/export: exact round trips on both stores, idempotence, and all-or-nothing bad input."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from servicegraph.errors import StoreBusy, StoreUnavailable, ValidationFailed
from servicegraph.graph.records import CI, Relationship
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.graph.store import GraphStore
from servicegraph.processes import interchange
from servicegraph.processes.demo import generate_estate


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_then_import_into_an_empty_store_round_trips_exactly(
    store: GraphStore, reopen_empty: Callable[[], GraphStore], tmp_path: Path, fmt: str
) -> None:
    store.write(generate_estate(400, seed=3))
    before = interchange.snapshot(store)
    target = tmp_path / ("estate.json" if fmt == "json" else "estate")
    (interchange.export_json if fmt == "json" else interchange.export_csv)(store, target)
    empty = reopen_empty()
    assert empty.counts() == {"relationships": 0}
    result = interchange.import_files(empty, [target])
    assert result.created == len(before["cis"]) + len(before["relationships"])
    assert interchange.snapshot(empty) == before


def test_the_json_export_is_the_snapshot_and_never_half_written(
    sqlite_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The export streams item by item: the file must still be exactly the snapshot (an empty
    store too), and a failure while writing must leave the file that was there."""
    path = tmp_path / "estate.json"
    assert interchange.export_json(sqlite_store, path) == {"cis": 0, "relationships": 0}
    assert json.loads(path.read_text("utf-8")) == {"cis": [], "relationships": []}
    sqlite_store.write(generate_estate(200, seed=5))
    sqlite_store.upsert(
        [CI("odd", "vm", 'quote " back\\slash \N{SNOWMAN}', {"description": "two\nlines"})]
    )
    counts = interchange.export_json(sqlite_store, path)
    assert json.loads(path.read_text("utf-8")) == interchange.snapshot(sqlite_store)
    assert counts["cis"] == len(interchange.snapshot(sqlite_store)["cis"])
    before = path.read_bytes()

    relationships = list(sqlite_store.iter_relationships())[:5]

    def broken(chunk: int = 10_000) -> Iterator[Relationship]:
        yield from relationships
        raise StoreUnavailable("the store went away")

    monkeypatch.setattr(sqlite_store, "iter_relationships", broken)
    with pytest.raises(StoreUnavailable):
        interchange.export_json(sqlite_store, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "estate" in p.name] == ["estate.json"]


def test_a_csv_export_that_a_write_overtakes_stops_instead_of_dropping_a_value(
    sqlite_store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CSV export finds its columns in a first pass and writes in a second: a write between
    them that adds an attribute nobody had would lose that value, so the export stops."""
    sqlite_store.upsert([CI("vm-1", "vm", "one"), CI("vm-2", "vm", "two")])
    passes = 0
    real_iter_cis = sqlite_store.iter_cis

    def iter_cis(chunk: int = 10_000) -> Iterator[CI]:
        nonlocal passes
        passes += 1
        if passes == 2:  # another client writes while the export runs
            sqlite_store.upsert([CI("vm-2", "vm", "two", {"owner": "ops"})])
        return real_iter_cis(chunk)

    monkeypatch.setattr(sqlite_store, "iter_cis", iter_cis)
    folder = tmp_path / "csv"
    with pytest.raises(StoreBusy, match=r"vm-2 gained attribute\(s\) \['owner'\]"):
        interchange.export_csv(sqlite_store, folder)
    assert list(folder.iterdir()) == []  # no file, not even a partial one
    monkeypatch.undo()
    interchange.export_csv(sqlite_store, folder)
    assert "owner" in (folder / "cis.csv").read_text("utf-8").splitlines()[0]


def test_a_csv_export_with_a_cell_over_128_kib_imports_again(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    """Python's csv reader refuses cells over 128 KiB by default; a JSON attribute may hold up to
    1 MiB (the demo store's change assessments are larger than 128 KiB), and such a CSV export
    could not be imported back."""
    assessment = {"notes": ["x" * 1_000] * 200}  # ~200 KB of JSON in one cell
    sqlite_store.upsert(
        [CI("rfc-1", "change", "RFC", {"state": "draft", "assessment": assessment})]
    )
    interchange.export_csv(sqlite_store, tmp_path / "csv")
    with SqliteStore(tmp_path / "copy.db", sqlite_store.model) as copy:
        assert interchange.import_files(copy, [tmp_path / "csv"]).created == 1
        assert copy.get_ci("rfc-1").attributes["assessment"] == assessment


def test_reimporting_the_same_file_changes_and_journals_nothing(
    store: GraphStore, tmp_path: Path
) -> None:
    path = tmp_path / "estate.json"
    store.write(generate_estate(300))
    interchange.export_json(store, path)
    head = store.head_seq()
    result = interchange.import_files(store, [path])
    assert (result.created, result.updated, result.first_seq) == (0, 0, None)
    assert result.unchanged > 300
    assert store.head_seq() == head


def _write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_a_bad_file_lists_every_problem_with_location_and_writes_nothing(
    store: GraphStore, tmp_path: Path
) -> None:
    bad = _write_json(
        tmp_path / "bad.json",
        {
            "cis": [
                {"id": "vm-1", "class": "vm", "name": "ok"},
                {"id": "x-1", "class": "spaceship", "name": "unknown class"},
                {"id": "vm-2", "class": "vm"},
                {"id": "vm-3", "class": "vm", "name": "t", "attributes": {"cpu_cores": "four"}},
                {"id": "vm-4", "class": "vm", "name": "e", "attributes": {"status": "broken"}},
                {"id": "vm-1", "class": "vm", "name": "duplicate"},
                {"id": "vm-5", "class": "vm", "name": "u", "attributes": {"colour": "red"}},
                {"id": "c-1", "class": "cluster", "name": "c", "attributes": {"min_up": 0}},
                {"id": "s-1", "class": "compute", "name": "abstract"},
                {"id": ["vm-9"], "class": "vm", "name": "an id that is a list"},
            ],
            "relationships": [
                {"source": "vm-1", "type": "HOSTED_ON", "target": "host-404"},
                {"source": "vm-1", "type": "FLIES_TO", "target": "vm-4"},
                {"source": "vm-1", "type": "HAS_MEMBER", "target": "vm-4"},
                {"source": ["vm-1"], "type": "HOSTED_ON", "target": "vm-4"},
                {"source": "vm-1", "type": ["HOSTED_ON"], "target": "vm-4"},
                {"source": "vm-1", "type": 7, "target": {"id": "vm-4"}},
                {"source": "vm-4", "type": "HOSTED_ON", "target": "vm-5"},
                {"source": "vm-4", "type": "HOSTED_ON", "target": "vm-5"},
            ],
        },
    )
    with pytest.raises(ValidationFailed) as info:
        interchange.import_files(store, [bad])
    found = {(p.location, p.field) for p in info.value.problems}
    reasons_at = {(p.location, p.field): p.reason for p in info.value.problems}
    # a duplicate names where the first one is
    assert "also at bad.json: cis[0]" in reasons_at["bad.json: cis[5]", "id"]
    assert "also at bad.json: relationships[6]" in reasons_at["bad.json: relationships[7]", "type"]
    assert found == {
        ("bad.json: cis[1]", "class"),
        ("bad.json: cis[2]", "name"),
        ("bad.json: cis[3]", "attributes.cpu_cores"),
        ("bad.json: cis[4]", "attributes.status"),
        ("bad.json: cis[5]", "id"),
        ("bad.json: cis[6]", "attributes.colour"),
        ("bad.json: cis[7]", "attributes.min_up"),
        ("bad.json: cis[8]", "class"),
        ("bad.json: cis[9]", "id"),
        ("bad.json: relationships[0]", "target"),
        ("bad.json: relationships[1]", "type"),
        ("bad.json: relationships[2]", "type"),
        ("bad.json: relationships[3]", "source"),
        ("bad.json: relationships[4]", "type"),
        ("bad.json: relationships[5]", "type"),
        ("bad.json: relationships[5]", "target"),
        ("bad.json: relationships[7]", "type"),  # the duplicate of [6]
    }
    reasons = {p.field: p.reason for p in info.value.problems}
    assert "expected an integer" in reasons["attributes.cpu_cores"]
    assert "'broken' is not one of" in reasons["attributes.status"]
    assert "below the minimum 1" in reasons["attributes.min_up"]
    assert store.counts() == {"relationships": 0} and store.head_seq() == 0


def test_a_relationship_may_point_at_a_ci_already_in_the_store(
    store: GraphStore, tmp_path: Path
) -> None:
    store.write(generate_estate(100))
    host = store.find_cis(classes=["host"], first=1).items[0].id
    path = _write_json(
        tmp_path / "more.json",
        {
            "cis": [{"id": "vm-new", "class": "vm", "name": "new"}],
            "relationships": [{"source": "vm-new", "type": "HOSTED_ON", "target": host}],
        },
    )
    assert interchange.import_files(store, [path]).created == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"cis": [', "malformed at line 1 column 10"),
        ('["not", "an", "object"]', "expected an object"),
        ('{"cis": [{"id": "a", "class": "vm", "name": "a", "colour": 1}]}', "unknown key"),
        # the document's shape, walked around the items a chunk at a time
        ('{"cis": [], "cis": []}', '"cis" is given twice'),
        ('{"cis": {}}', "expected a list"),
        ('{"cis": []} []', "extra data after the document"),
        ('{"cis": [{"id": "a", "class": "vm", "name": "a"} {"id": "b"}]}', "',' or ']'"),
    ],
)
def test_malformed_json_is_reported(
    sqlite_store: GraphStore, tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(ValidationFailed, match=expected):
        interchange.import_files(sqlite_store, [path])
    assert sqlite_store.head_seq() == 0


@pytest.mark.parametrize(
    ("raw", "field", "expected"),
    [
        (b'{"cis": [{"id": "h", "class": "host", "name": "h\xff"}]}', "json", "not UTF-8 text"),
        (b'{"cis": [], "x": NaN}', "json", "malformed at line 1 column 18"),
        (b'{"cis": [{"id": "h", "class": "host", "name": "h\\ud800"}]}', "name", "lone surrogate"),
        (
            b'{"cis": [{"id": "h", "class": "host", "name": "h", '
            b'"attributes": {"cpu_cores": 1180591620717411303424}}]}',
            "attributes.cpu_cores",
            "above the maximum",
        ),
    ],
)
def test_what_the_json_parser_lets_through_is_still_refused_by_name(
    sqlite_store: GraphStore, tmp_path: Path, raw: bytes, field: str, expected: str
) -> None:
    """The import decodes items with the standard library's scanner: NaN and bytes that are not
    UTF-8 are refused as malformed; lone surrogates and integers beyond 64 bits, which it reads
    (a streaming C parser replaced the surrogate by '?'), are refused by validation naming the
    field; nothing is written."""
    path = tmp_path / "f.json"
    path.write_bytes(raw)
    with pytest.raises(ValidationFailed) as info:
        interchange.import_files(sqlite_store, [path])
    assert [p.field for p in info.value.problems] == [field]
    assert expected in info.value.problems[0].reason
    assert sqlite_store.head_seq() == 0


def test_escaped_surrogate_pairs_import_as_the_character(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b'{"cis": [{"id": "h", "class": "host", "name": "h \\ud83d\\ude00"}]}')
    interchange.import_files(sqlite_store, [path])
    assert sqlite_store.get_ci("h").name == "h \N{GRINNING FACE}"


def test_csv_rows_are_typed_by_the_model_and_bad_cells_named(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    (tmp_path / "cis.csv").write_text(
        "id,class,name,cpu_cores,memory_gb,tags,min_up\n"
        'h-1,host,Host,64,512.5,"[""a"",""b""]",\n'
        "vm-1,vm,VM,two,,,\n"
        "c-1,cluster,C,,,,2\n"
    )
    (tmp_path / "relationships.csv").write_text("source,type,target\nc-1,HAS_MEMBER,h-1\n")
    with pytest.raises(ValidationFailed) as info:
        interchange.import_files(sqlite_store, [tmp_path])
    assert [(p.location, p.field) for p in info.value.problems] == [
        ("cis.csv: row 3", "attributes.cpu_cores")
    ]
    (tmp_path / "cis.csv").write_text(
        "id,class,name,cpu_cores,memory_gb,tags,min_up\n"
        'h-1,host,Host,64,512.5,"[""a"",""b""]",\n'
        "c-1,cluster,C,,,,2\n"
    )
    interchange.import_files(sqlite_store, [tmp_path / "cis.csv", tmp_path / "relationships.csv"])
    host = sqlite_store.get_ci("h-1")
    assert host.attributes == {"cpu_cores": 64, "memory_gb": 512.5, "tags": ["a", "b"]}
    assert sqlite_store.get_ci("c-1").attributes == {"min_up": 2}


def test_malformed_csv_is_reported(sqlite_store: GraphStore, tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("id,class,name\nvm-1,vm\n")
    with pytest.raises(ValidationFailed, match="has 2 cells, the header has 3"):
        interchange.import_files(sqlite_store, [path])
    path.write_text("name,id\n")
    with pytest.raises(ValidationFailed, match="must start with id,class,name"):
        interchange.import_files(sqlite_store, [path])


def test_items_after_one_that_could_not_be_read_keep_their_places(
    sqlite_store: GraphStore, tmp_path: Path
) -> None:
    """Places are numbered as the file numbers them, whatever was skipped before them."""
    path = _write_json(
        tmp_path / "f.json",
        {
            "cis": [
                {"id": "h-1", "class": "host", "name": "h"},
                7,
                {"id": "x-1", "class": "spaceship", "name": "x"},
                {"id": "h-1", "class": "host", "name": "again"},
            ],
            "relationships": [{"source": "h-1", "type": "FLIES_TO", "target": "x-1"}],
        },
    )
    (tmp_path / "cis.csv").write_text("id,class,name\nh-2,host,h\n\n,,\nx-2,spaceship,x\n")
    with pytest.raises(ValidationFailed) as info:
        interchange.import_files(sqlite_store, [path, tmp_path / "cis.csv"])
    assert [(p.location, p.field) for p in info.value.problems] == [
        ("f.json: cis[1]", "cis"),  # not an object: read no further
        ("f.json: cis[2]", "class"),
        ("f.json: cis[3]", "id"),
        ("cis.csv: row 5", "class"),  # after a blank row and a row of empty cells
        ("f.json: relationships[0]", "type"),
    ]
    duplicate = next(p for p in info.value.problems if p.field == "id")
    assert "also at f.json: cis[0]" in duplicate.reason
    assert sqlite_store.head_seq() == 0
