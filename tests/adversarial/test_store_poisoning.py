"""Values that used to poison the store: refused at every entrance, and survived when already stored."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from servicegraph.errors import ValidationFailed
from servicegraph.graph.records import CI
from servicegraph.graph.store import GraphStore
from servicegraph.processes.impact import analyse_impact
from tests.adversarial.conftest import Api, cli, codes

UPSERT = "mutation($cis: [CIInput!]!) { upsertCis(cis: $cis) { created updated } }"


def still_analysable(api: Api) -> None:
    body = api.post('{ impact(ciIds: ["cluster-000008"], first: 5) { totalImpacted } }')
    assert body["data"]["impact"]["totalImpacted"] > 0, body


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_graphql_variables_are_refused(api: Api, literal: str) -> None:
    body = (
        '{"query": "mutation($a: JSON!) { upsertCis(cis: [{id: \\"host-x\\", class: \\"host\\", '
        'name: \\"x\\", attributes: $a}]) { created } }", "variables": {"a": {"memory_gb": '
        + literal
        + "}}}"
    )
    response = api.client.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {api.tokens['admin']}",
            "content-type": "application/json",
        },
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert api.sg.store.get_ci("host-x") is None
    still_analysable(api)


def test_an_overflowing_literal_is_refused_by_name(api: Api) -> None:
    query = 'mutation { upsertCis(cis: [{id: "host-x", class: "host", name: "x", attributes: {memory_gb: 1e400}}]) { created } }'
    body = api.post(query)
    assert codes(body) == ["VALIDATION_FAILED"]
    problem = body["errors"][0]["extensions"]["problems"][0]
    assert problem["field"] == "attributes.memory_gb" and "Infinity" in problem["reason"]
    still_analysable(api)


@pytest.mark.parametrize(
    ("attribute", "value", "why"),
    [
        ("min_up", 2**40, "above the maximum 10000"),
        ("min_up", 10_001, "above the maximum 10000"),
        ("min_up", 0, "below the minimum 1"),
    ],
)
def test_min_up_is_bounded_by_the_model(api: Api, attribute: str, value: int, why: str) -> None:
    cis = [
        {"id": "cluster-000008", "class": "cluster", "name": "c", "attributes": {attribute: value}}
    ]
    body = api.post(UPSERT, cis=cis)
    assert codes(body) == ["VALIDATION_FAILED"]
    assert why in body["errors"][0]["extensions"]["problems"][0]["reason"]
    still_analysable(api)


def test_integers_beyond_2_53_are_refused_where_the_model_is_silent(store: GraphStore) -> None:
    with pytest.raises(ValidationFailed, match="outside"):
        store.upsert([CI("lic-1", "licence", "L", {"seats": 2**60})])
    store.upsert([CI("lic-1", "licence", "L", {"seats": 2**53 - 1})])


@pytest.mark.parametrize(
    ("ident", "why"),
    [
        ("vm-\ud800", "lone surrogate"),
        ("vm-\x00", "U+0000"),
        ("vm-\x1b[31m", "U+001B"),
        ("vm-\u202e", "U+202E"),
    ],
)
def test_ids_must_be_clean_text(store: GraphStore, ident: str, why: str) -> None:
    with pytest.raises(ValidationFailed, match=why.replace("+", r"\+")):
        store.upsert([CI(ident, "vm", "vm")])
    assert store.head_seq() == 0


def test_names_and_actors_must_be_single_clean_lines(store: GraphStore) -> None:
    with pytest.raises(ValidationFailed, match="name"):
        store.upsert([CI("vm-1", "vm", "evil\x1b]8;;http://x\x07")])
    with pytest.raises(ValidationFailed, match="actor"):
        store.upsert([CI("vm-1", "vm", "vm")], actor="mallory\ud800")
    assert store.head_seq() == 0


def test_json_attributes_are_bounded_in_depth(store: GraphStore) -> None:
    deep: object = "bottom"
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ValidationFailed, match="deeper than 32"):
        store.upsert([CI("rfc-1", "change", "RFC", {"cmdb_updates": {"x": deep}})])


def test_a_deeply_nested_import_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"cis": ' + "[" * 5000 + "]" * 5000 + "}")
    result = cli("import", str(path), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1
    assert "depth limit" in result.stderr and "Traceback" not in result.stderr


def test_non_finite_numbers_in_an_import_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text(
        '{"cis": [{"id": "h", "class": "host", "name": "h", "attributes": {"memory_gb": NaN}}]}'
    )
    result = cli("import", str(path), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1 and "malformed at line 1" in result.stderr


def test_csv_cells_are_typed_as_strictly_as_json(tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "cis.csv").write_text(
        "id,class,name,memory_gb,cpu_cores,tags\n"
        "h1,host,h1,nan,4,\n"
        "h2,host,h2,inf,1_000,\n"
        "h3,host,h3,1e400,8,\n"
        'h4,host,h4,1.5,8,"[1, 2]"\n'
    )
    (folder / "relationships.csv").write_text("source,type,target\n")
    result = cli("import", str(folder), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 1
    err = result.stderr
    assert "row 2: attributes.memory_gb" in err and "row 3: attributes.memory_gb" in err
    assert "row 3: attributes.cpu_cores" in err and "row 4: attributes.memory_gb" in err
    assert "row 5: attributes.tags" in err


def test_stored_bad_values_are_reported_not_fatal(tmp_path: Path, api: Api) -> None:
    """What an older version (or a hand edit) left in the file: the analysis names it and goes on."""
    db = sqlite3.connect(api.path)
    db.execute(
        "UPDATE cis SET attributes = ? WHERE id = 'cluster-000008'",
        ('{"min_up": NaN, "status": "active"}',),
    )
    db.execute(
        "UPDATE cis SET attributes = json_set(attributes, '$.min_up', 1099511627776) "
        "WHERE id = 'cluster-000009'"
    )
    db.commit()
    db.close()
    api.sg.engine.rebuild()
    result = analyse_impact(api.sg.engine, ["host-000001", "switch-000003"])
    warned = {w["ci"]: w for w in result.warnings}
    assert "not valid JSON" in warned["cluster-000008"]["detail"]
    assert warned["cluster-000009"]["attribute"] == "min_up"
    assert "upsertCis" in warned["cluster-000008"]["fix"]
    body = api.post(
        '{ impact(ciIds: ["host-000001"]) { totalImpacted } cis(first: 5) { edges { cursor } } }'
    )
    assert "errors" not in body
    # Setting the value again heals the engine on its next refresh.
    fixed = CI("cluster-000009", "cluster", "c9", {"min_up": 1})
    api.sg.store.upsert([fixed])
    assert api.sg.engine.refresh() >= 1
    assert "cluster-000009" not in api.sg.engine.data_problems


def test_bad_min_up_stored_in_neo4j_is_reported(
    neo4j_store: GraphStore, neo4j_driver: object
) -> None:
    from servicegraph.graph.engine import TopologyEngine
    from servicegraph.graph.records import Relationship

    neo4j_store.upsert(
        [CI("c", "cluster", "c", {"min_up": 1}), CI("h1", "host", "h1"), CI("h2", "host", "h2")],
        [Relationship("c", "HAS_MEMBER", "h1"), Relationship("c", "HAS_MEMBER", "h2")],
    )
    neo4j_driver.execute_query("MATCH (n:Node {id: 'c'}) SET n.min_up = 1099511627776")  # type: ignore[attr-defined]
    engine = TopologyEngine(neo4j_store)
    result = analyse_impact(engine, ["h1"])
    assert [w["ci"] for w in result.warnings] == ["c"]
    assert json.dumps(result.to_dict())  # the whole answer still encodes
