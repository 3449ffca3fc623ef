"""The GraphQL API (strawberry): types, per-request context with DataLoaders, and the schema."""

from servicegraph.api.graphql.schema import build_schema

__all__ = ["build_schema"]
