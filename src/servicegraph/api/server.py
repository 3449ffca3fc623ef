"""The HTTP server: FastAPI with the GraphQL endpoint (``/graphql``, GraphiQL in a browser) and a
health check."""

from __future__ import annotations

from fastapi import FastAPI, Request
from strawberry.fastapi import GraphQLRouter

from servicegraph.api.graphql.context import Context
from servicegraph.api.graphql.schema import build_schema
from servicegraph.api.python import ServiceGraph

__all__ = ["create_app"]


def create_app(sg: ServiceGraph) -> FastAPI:
    """An app serving ``sg``; the topology engine is built before the first request."""
    sg.engine  # noqa: B018 - build the projection at start-up, not on the first query

    async def get_context(request: Request) -> Context:
        return Context(sg, request.headers.get("authorization"))

    app = FastAPI(title="servicegraph", version="0.1.0")
    router: GraphQLRouter[Context, None] = GraphQLRouter(
        build_schema(), context_getter=get_context, graphql_ide="graphiql"
    )
    app.include_router(router, prefix="/graphql")

    @app.get("/health")
    def health() -> dict[str, object]:
        return {"status": "ok", "store": sg.store.uri, "journal_head": sg.store.head_seq()}

    return app
