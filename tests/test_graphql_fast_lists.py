"""Lists of plain objects are completed by compiled plans: the responses must be exactly
graphql-core's, errors and their paths included, and the plans must really be used."""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any, ClassVar

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from servicegraph.api.graphql.context import Context
from servicegraph.api.graphql.fast_lists import FastListExecutor
from servicegraph.api.graphql.schema import build_schema
from servicegraph.api.python import ServiceGraph
from servicegraph.graph.sqlite_store import SqliteStore
from servicegraph.processes.access import create_token
from servicegraph.processes.demo import generate_estate


class Recording(FastListExecutor):
    """Keeps every executor it creates, to see how many lists the plans completed."""

    made: ClassVar[list[Recording]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        Recording.made.append(self)


def run(schema: strawberry.Schema, query: str, context: Any = None, **variables: Any) -> Any:
    result = asyncio.run(schema.execute(query, variable_values=variables, context_value=context))
    errors = [(e.message, e.path) for e in result.errors or []]
    return result.data, errors


def fast_lists(schema: strawberry.Schema, query: str, context: Any, **variables: Any) -> Any:
    Recording.made.clear()
    answer = run(schema, query, context, **variables)
    return answer, sum(e.fast_lists for e in Recording.made)


QUERIES = {
    "impact, with aliases, fragments, __typename and @include": """
        query($ids: [ID!]!, $names: Boolean!) {
          impact(ciIds: $ids) {
            totalImpacted
            impacted { __typename ci { ...who } how: status distance path }
            services { service { ...who } status }
            slas { sla { id } status services }
            customers { customer { id name @include(if: $names) } slas }
          }
        }
        fragment who on CI { id name kind: class }""",
    "impacted CIs with fields read on demand (attributes, version, status)": """
        query($ids: [ID!]!) {
          impact(ciIds: $ids, first: 30) { impacted { ci { id attributes version status } } }
        }""",
    "a page of CIs with their relationships (resolvers)": """
        { cis(first: 40) { edges { cursor node { id name relationships { type targetId } } }
                          pageInfo { hasNextPage endCursor } } }""",
    "a dependency map": """
        query($root: ID!) {
          dependencyMap(rootId: $root, direction: UPSTREAM, maxDepth: 4) {
            nodes { id name class distance } edges { source target type }
          }
        }""",
}


@pytest.mark.parametrize("label", list(QUERIES))
def test_responses_are_graphql_cores_own(sqlite_store: SqliteStore, label: str) -> None:
    sqlite_store.write(generate_estate(800, seed=5))
    sg = ServiceGraph(sqlite_store)
    context = Context(sg, f"Bearer {create_token(sqlite_store, 'u', 'viewer')}")
    variables = {"ids": ["storage-array-000001"], "names": True, "root": "router-000001"}
    plain = build_schema(StrawberryGraphQLCoreExecutionContext)
    expected = run(plain, QUERIES[label], context, **variables)
    (got, used) = fast_lists(build_schema(Recording), QUERIES[label], context, **variables)
    assert got == expected
    assert not expected[1], expected[1]
    # Plain lists go through the plans; a CI field read on demand has a resolver: not plain.
    assert (used > 0) == ("on demand" not in label)


def test_plans_kept_across_requests_follow_the_variables_of_directives(
    sqlite_store: SqliteStore,
) -> None:
    """The same query text again (its parsed document cached) with an @include that flips: each
    answer is graphql-core's, so a plan kept from the first request is not reused blindly."""
    sqlite_store.write(generate_estate(300, seed=5))
    sg = ServiceGraph(sqlite_store)
    context = Context(sg, f"Bearer {create_token(sqlite_store, 'u', 'viewer')}")
    query = QUERIES["impact, with aliases, fragments, __typename and @include"]
    plain = build_schema(StrawberryGraphQLCoreExecutionContext)
    fast = build_schema(Recording)
    for names in (True, False, True):
        variables = {"ids": ["storage-array-000001"], "names": names}
        (got, used) = fast_lists(fast, query, context, **variables)
        assert got == run(plain, query, context, **variables) and used > 0
        customers = got[0]["impact"]["customers"]
        assert customers and all(("name" in c["customer"]) == names for c in customers)


@strawberry.enum
class Kind(Enum):
    HOST = "host"
    VM = "vm"


@strawberry.type
class Item:
    name: str
    count: int
    kind: Kind
    tags: list[str] | None


def item(name: Any, count: Any, kind: Any, tags: Any) -> Item:
    return Item(name=name, count=count, kind=kind, tags=tags)


def _items(rows: list[Item]) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def items(self) -> list[Item] | None:
            return rows

        @strawberry.field
        def loose(self) -> list[Item | None]:
            return [*rows, None]

    return strawberry.Schema(Query, execution_context_class=Recording)


def _plain_items(rows: list[Item]) -> strawberry.Schema:
    schema = _items(rows)
    return strawberry.Schema(
        schema.query, execution_context_class=StrawberryGraphQLCoreExecutionContext
    )


GOOD = [item("a", 1, Kind.HOST, ["x"]), item("b", -(2**31), Kind.VM, None)]


def test_plain_values_are_coerced_like_graphql_core() -> None:
    query = "{ items { name count kind tags } loose { kind } }"
    (got, used) = fast_lists(_items(GOOD), query, None)
    assert got == run(_plain_items(GOOD), query)
    assert got[0]["items"][1] == {"name": "b", "count": -(2**31), "kind": "VM", "tags": None}
    assert got[0]["loose"][2] is None
    assert used == 2


@pytest.mark.parametrize(
    "bad",
    [
        item(None, 1, Kind.HOST, None),  # null in a non-null field
        item("c", 2**40, Kind.HOST, None),  # beyond GraphQL's 32-bit Int
        item("c", 1, "nonsense", None),  # not a value of the enum
        item("c", 1, Kind.HOST, [None]),  # null in a list of non-null strings
    ],
)
def test_a_value_the_plan_cannot_complete_gets_graphql_cores_error(bad: Item) -> None:
    rows = [*GOOD, bad]
    query = "{ items { name count kind tags } }"
    (got, _) = fast_lists(_items(rows), query, None)
    assert got == run(_plain_items(rows), query)
    assert got[1] and got[1][0][1][:2] == ["items", 2]  # reported where graphql-core does
