"""Impact results as columns: the frame, the dict and the streamed ndjson say the same as the rows
(names from the store, the compact ``cause`` column is the path's last step)."""

from __future__ import annotations

import json
from typing import Any

import orjson

from servicegraph.api.python import ServiceGraph
from servicegraph.graph.records import Batch, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.processes.demo import generate_estate
from tests.test_cli import run


def test_columns_frame_and_dict_agree_with_the_rows(store: GraphStore) -> None:
    store.write(generate_estate(400, seed=2), "load")
    sg = ServiceGraph(store)
    seed = next(i for i in sg.engine.ids if i.startswith("host-"))
    result = sg.impact([seed])
    rows = result.impacted(names=True)
    assert len(rows) == result.total_impacted > 10
    frame = result.to_frame()
    assert list(frame.columns) == ["id", "name", "class", "status", "distance", "cause"]
    assert frame["id"].tolist() == [r["id"] for r in rows]
    assert frame["name"].tolist() == [r["name"] for r in rows]
    assert frame["cause"].tolist() == [r["path"][-2] for r in rows]  # the path's last step
    # class and status as categoricals: the same values, a small code per row
    assert frame["class"].tolist() == [r["class"] for r in rows]
    assert frame["status"].tolist() == [r["status"] for r in rows]
    assert frame["status"].dtype == "category" and frame["class"].dtype == "category"
    assert (frame["status"] == "DOWN").sum() == sum(r["status"] == "DOWN" for r in rows)
    with_paths = result.to_frame(paths=True, names=False)
    assert "name" not in with_paths and with_paths["path"].tolist() == [r["path"] for r in rows]
    assert result.to_dict()["impacted"] == rows
    assert result.impacted(limit=5, names=True, start=3) == rows[3:8]
    chunks = list(result.impacted_chunks(7))
    assert [r for c in chunks for r in c] == rows and all(len(c) <= 7 for c in chunks)


def test_impact_streams_as_ndjson_from_the_cli(sqlite_store: GraphStore) -> None:
    sqlite_store.write(generate_estate(400, seed=2), "load")
    sg = ServiceGraph(sqlite_store)
    seed = next(i for i in sg.engine.ids if i.startswith("host-"))
    expected = sg.impact([seed]).to_dict()
    db = str(sqlite_store.path)  # type: ignore[attr-defined]
    done = run("impact", seed, "--format", "ndjson", "--db", db)
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    summary = lines[0]["summary"]
    assert summary["total_impacted"] == len(lines) - 1 == len(expected["impacted"])
    assert summary["services"] == expected["services"] and summary["slas"] == expected["slas"]
    assert lines[1:] == expected["impacted"]
    whole = run("impact", seed, "--format", "json", "--db", db)
    assert json.loads(whole.stdout) == expected


def test_the_json_written_in_pieces_is_the_indented_dict_byte_for_byte(
    sqlite_store: GraphStore,
) -> None:
    sqlite_store.write(generate_estate(400, seed=2), "load")
    sg = ServiceGraph(sqlite_store)
    leaf = next(i for i in sg.engine.ids if not sg.engine.reach([i], "up").keys() - {i})
    seeds = [next(i for i in sg.engine.ids if i.startswith("host-")), leaf]
    for result in (sg.impact(seeds[:1]), sg.impact(seeds[1:])):
        whole = orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2)
        for size in (1, 7, 10**6):  # a row a piece, pieces of seven, all rows in one
            assert b"".join(result.json_chunks(size)) == whole
    assert sg.impact(seeds[1:]).total_impacted == 0  # the empty blast radius is in the loop


def test_the_services_slas_and_customers_hit_follow_the_stored_relationships(
    sqlite_store: GraphStore,
) -> None:
    """An impact's services, SLAs and customers against the relationships read from the store,
    also after changes the engine applied from the journal (a new COVERS edge and a deleted one
    live outside the engine's compact arrays until its next build)."""
    sqlite_store.write(generate_estate(400, seed=2), "load")
    sg = ServiceGraph(sqlite_store)
    hubs = [i for i in sg.engine.ids if i.startswith(("cluster-", "host-", "storage-array-"))]
    seed = next(  # services DOWN and DEGRADED, more than one SLA
        h for h in hubs
        if {s["status"] for s in sg.impact([h]).services} == {"DOWN", "DEGRADED"}
        and len(sg.impact([h]).slas) > 1
    )  # fmt: skip

    def expected() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        service_classes = sqlite_store.model.descendants("service")
        rows = sg.impact([seed]).impacted()
        status = {r["id"]: r["status"] for r in rows if r["class"] in service_classes}
        services = [{"id": r["id"], "status": r["status"]} for r in rows if r["id"] in status]
        covers: dict[str, list[str]] = {}
        for rel in sqlite_store.relationships_of(list(status)):
            if rel.type == "COVERS" and rel.target in status:
                covers.setdefault(rel.source, []).append(rel.target)
        slas = [
            {"id": sla, "services": sorted(hit),
             "status": "DOWN" if any(status[s] == "DOWN" for s in hit) else "DEGRADED"}
            for sla, hit in sorted(covers.items())
        ]  # fmt: skip
        agreed: dict[str, list[str]] = {}
        for rel in sqlite_store.relationships_of(list(covers)):
            if rel.type == "AGREED_WITH" and rel.source in covers:
                agreed.setdefault(rel.target, []).append(rel.source)
        customers = [{"id": c, "slas": sorted(s)} for c, s in sorted(agreed.items())]
        return services, slas, customers

    def got() -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        result = sg.impact([seed])
        return result.services, result.slas, result.customers

    services, slas, customers = expected()
    assert len(services) > 1 and len(slas) > 1 and customers
    assert got() == (services, slas, customers)
    # an SLA covers a service of the other status too (DOWN: any service it covers is), and
    # another loses its service: journaled, applied by the engine
    status = {s["id"]: s["status"] for s in services}
    first, other = slas[0], slas[1]
    mixed = next(x for x in status if status[x] != status[first["services"][0]])
    more = Batch()
    more.add_relationship(Relationship(first["id"], "COVERS", mixed))
    sqlite_store.write(more, "t")
    sqlite_store.delete_relationships([(other["id"], "COVERS", other["services"][0])], "t")
    services, slas_after, customers = expected()
    changed = next(s for s in slas_after if s["id"] == first["id"])
    assert changed["status"] == "DOWN"
    assert {status[x] for x in changed["services"]} == {"DOWN", "DEGRADED"}
    assert other["id"] not in [s["id"] for s in slas_after]
    assert got() == (services, slas_after, customers)
