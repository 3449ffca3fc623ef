"""The root Query and Mutation, and the schema with its safety limits.

Limits: query depth, aliases and tokens; page sizes capped; unexpected errors masked. Expected
failures (not found, validation, stale version, unauthenticated, forbidden) reach the client as
errors whose ``extensions.code`` names the failure (validation failures also list their problems).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    parse,
    specified_rules,
)
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext, validate_document
from strawberry.types import ExecutionContext
from strawberry.types.graphql import OperationType
from strawberry.types.nodes import SelectedField

from servicegraph.api.graphql.audit import AuditMutation, AuditQuery
from servicegraph.api.graphql.availability import AvailabilityQuery
from servicegraph.api.graphql.changes import ChangeMutation, ChangeQuery
from servicegraph.api.graphql.fast_lists import FastListExecutor
from servicegraph.api.graphql.incidents import IncidentMutation, IncidentQuery
from servicegraph.api.graphql.maps import MapQuery
from servicegraph.api.graphql.types import (
    SCALARS,
    CIConnection,
    CIEdge,
    CIFilter,
    CIInput,
    CISort,
    CIType,
    DataWarning,
    Impact,
    ImpactedCI,
    ImpactedCustomer,
    ImpactedService,
    ImpactedSLA,
    ImpactStatus,
    Info,
    JournalEntryType,
    Me,
    PageInfo,
    RelationshipConnection,
    RelationshipEdge,
    RelationshipInput,
    RelationshipKeyInput,
    RelationshipType,
    SortDirection,
    WriteMode,
    WriteResultType,
    as_ci,
)
from servicegraph.api.limits import (
    Limits,
    give_way_if_large,
    paced,
    refusal,
)
from servicegraph.api.memo import Memo, text_key
from servicegraph.errors import NotFound, Problem, ServiceGraphError, ValidationFailed
from servicegraph.graph.engine import one_refresh
from servicegraph.graph.records import Batch, Relationship, encode_cursor
from servicegraph.processes.configuration import guarded_write
from servicegraph.processes.impact import analyse_impact
from servicegraph.processes.listing import CIQuery, check_relationship_types

MAX_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000
MAX_PAGE = 500
MAX_IMPACTED = 100_000
MAX_MUTATION_ITEMS = 1000
DOCUMENT_CACHE = 512  # distinct query texts whose parse and validation are kept
CACHED_TEXT = 20_000  # characters up to which a text's document is kept (a document holds its
# text: 512 bodies of 4 MiB would be 2 GiB)
MAX_SEEDS = 10_000  # CIs failing together in one impact


_STATUS = {status.value: status for status in ImpactStatus}  # a dict look-up per row, not Enum()


def _limit(name: str, value: int, cap: int) -> None:
    if not 1 <= value <= cap:
        raise ValidationFailed(
            [Problem("arguments", name, f"must be between 1 and {cap:,}, got {value:,}")],
            wrote=False,
        )


def _impact_ids(result: Any, rows: list[dict[str, Any]]) -> list[str]:
    ids = [r["id"] for r in rows]
    ids += [s["id"] for s in result.services] + [s["id"] for s in result.slas]
    return ids + [c["id"] for c in result.customers]


def _past_cis(store: Any, ids: list[str]) -> dict[str, CIType]:
    """CIs as a past picture holds them, with their relationships then (read now: the picture
    is gone when the request's fields resolve)."""
    found = store.get_cis(list(dict.fromkeys(ids)))
    rels: dict[str, list[Relationship]] = {i: [] for i in found}
    for rel in store.relationships_of(list(found)):
        for end in (rel.source, rel.target):
            if end in rels:
                rels[end].append(rel)
    return {i: CIType.of(ci, rels[i]) for i, ci in found.items()}


def _asks_for(selections: Sequence[Any], *path: str) -> bool:
    """Whether the request selects the field at ``path`` (names, fragments looked through), so
    work only it needs — the paths of a blast radius — is skipped when no one reads it."""
    name, rest = path[0], path[1:]
    for selection in selections:
        if isinstance(selection, SelectedField):
            if selection.name == name and (not rest or _asks_for(selection.selections, *rest)):
                return True
        elif _asks_for(selection.selections, *path):  # inline fragment or fragment spread
            return True
    return False


_ASKED: Memo[bool] = Memo(4096)


def _selects(info: Info, *path: str) -> bool:
    """:func:`_asks_for` on the current field, kept per query text, operation and response path
    (strawberry's ``selected_fields`` converts the whole selection on every request)."""
    query = info.query
    if query is None:
        return _asks_for(info.selected_fields, info.field_name, *path)
    operation = info.operation.name.value if info.operation.name else None
    key = (text_key(query), operation, tuple(info.path.as_list()), path)
    return _ASKED.get(key, lambda: _asks_for(info.selected_fields, info.field_name, *path))


def _labelled(info: Info, ids: list[str]) -> dict[str, CIType]:
    """CIs by id with class and name, from the engine's memory (other fields load on demand)."""
    labels = info.context.sg.engine.labels  # from memory: no store round trip

    def some(start: int, stop: int) -> list[tuple[str, CIType]]:
        found = labels(ids[start:stop])
        return [(ident, CIType.labelled(ident, label)) for ident, label in found.items()]

    return dict(paced(some, len(ids)))


@strawberry.type
class CMDBQuery:
    @strawberry.field(description="The caller, as the bearer token identifies them.")
    def me(self, info: Info) -> Me:
        actor = info.context.actor("read")
        return Me(user=actor.user, role=actor.role)

    @strawberry.field(description="One CI by id (NOT_FOUND error if there is none).")
    async def ci(self, info: Info, id: strawberry.ID, as_of: str | None = None) -> CIType:
        info.context.actor("read")
        if as_of is not None:  # a journal seq, an ISO 8601 time or a baseline id
            from servicegraph.processes.audit.timetravel import ci_as_of

            past = ci_as_of(info.context.sg.store, str(id), as_of)
            return CIType.of(past["ci"], past["relationships"])
        ci = await info.context.loaders.cis.load(str(id))
        if ci is None:
            raise NotFound("CI", str(id))
        return CIType.of(ci)

    @strawberry.field(
        description=f"CIs filtered by class, attributes and text, in the order asked for (id by "
        f"default), a page at a time (at most {MAX_PAGE}); totalCount counts every page."
    )
    def cis(
        self,
        info: Info,
        filter: CIFilter | None = None,
        first: int = 50,
        after: str | None = None,
        sort: CISort | None = None,
    ) -> CIConnection:
        info.context.actor("read")
        _limit("first", first, MAX_PAGE)
        store = info.context.sg.store
        attributes: Any = filter.attributes if filter is not None else None
        query = CIQuery(
            cls=filter.class_ if filter is not None else None,
            attributes=attributes,
            text=filter.text if filter is not None else None,
            sort=sort.field.value if sort is not None else "id",
            descending=sort is not None and sort.direction is SortDirection.DESC,
        )
        page = query.page(store, first, after)
        return CIConnection(
            edges=[CIEdge(cursor=query.cursor(ci), node=CIType.of(ci)) for ci in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            counter=lambda: query.count(store),
        )

    @strawberry.field(description="Relationships ordered by (source, type, target).")
    def relationships(
        self,
        info: Info,
        source: strawberry.ID | None = None,
        target: strawberry.ID | None = None,
        types: list[str] | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> RelationshipConnection:
        info.context.actor("read")
        _limit("first", first, MAX_PAGE)
        store = info.context.sg.store
        check_relationship_types(store.model, types)
        source_id = None if source is None else str(source)
        target_id = None if target is None else str(target)
        page = store.find_relationships(source_id, target_id, types, first, after)
        return RelationshipConnection(
            edges=[
                RelationshipEdge(
                    cursor=encode_cursor("\0".join(r.key)), node=RelationshipType.of(r)
                )
                for r in page.items
            ],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
            counter=lambda: store.count_relationships(source_id, target_id, types),
        )

    @strawberry.field(
        description="What goes DOWN or DEGRADED if these CIs fail, with the path from a seed "
        "to each impacted CI, and the services, SLAs and customers hit."
    )
    async def impact(
        self,
        info: Info,
        ci_ids: list[strawberry.ID],
        max_depth: int | None = None,
        first: int = 10_000,
        as_of: str | None = None,
    ) -> Impact:
        info.context.actor("read")
        _limit("first", first, MAX_IMPACTED)
        if len(ci_ids) > MAX_SEEDS:
            raise ValidationFailed(
                [
                    Problem(
                        "arguments",
                        "ciIds",
                        f"{len(ci_ids):,} ids; at most {MAX_SEEDS:,} CIs may fail together",
                    )
                ],
                wrote=False,
            )
        seeds = [str(i) for i in ci_ids]
        paths = _selects(info, "impacted", "path")
        if as_of is not None:  # the blast radius on the day, in a picture of the graph then
            with info.context.sg.as_of(as_of) as past:
                result = analyse_impact(past.engine, seeds, max_depth)
                rows = result.impacted(limit=first, paths=paths)
                cis = _past_cis(past.store, _impact_ids(result, rows))
        else:
            engine = info.context.sg.engine
            propagation = engine.propagate(seeds, max_depth)
            give_way_if_large(propagation.nodes.size)  # before the Python work a large one needs
            result = analyse_impact(engine, seeds, max_depth, propagation)
            # here and below, in pieces: a large answer gives way to small requests
            rows = paced(lambda a, b: result.impacted(b - a, start=a, paths=paths),
                         min(first, result.total_impacted))  # fmt: skip
            cis = _labelled(info, _impact_ids(result, rows))

        def impacted(start: int, stop: int) -> list[ImpactedCI]:
            return [
                ImpactedCI(
                    ci=cis[r["id"]],
                    status=_STATUS[r["status"]],
                    distance=r["distance"],
                    path=r.get("path", []),
                )
                for r in rows[start:stop]
            ]

        return Impact(
            total_impacted=result.total_impacted,
            impacted=paced(impacted, len(rows)),
            services=[
                ImpactedService(service=cis[s["id"]], status=_STATUS[s["status"]])
                for s in result.services
            ],
            slas=[
                ImpactedSLA(
                    sla=cis[s["id"]],
                    status=_STATUS[s["status"]],
                    services=[strawberry.ID(x) for x in s["services"]],
                )
                for s in result.slas
            ],
            customers=[
                ImpactedCustomer(customer=cis[c["id"]], slas=[strawberry.ID(x) for x in c["slas"]])
                for c in result.customers
            ],
            warnings=[
                DataWarning(
                    ci=strawberry.ID(w["ci"]),
                    attribute=w["attribute"],
                    detail=w["detail"],
                    fix=w["fix"],
                )
                for w in result.warnings
            ],
        )

    @strawberry.field(description="Journal entries after a seq (optionally of one entity).")
    def journal(
        self, info: Info, entity: str | None = None, since: int = 0, first: int = 100
    ) -> list[JournalEntryType]:
        info.context.actor("read")
        _limit("first", first, MAX_PAGE)
        entries = info.context.sg.store.journal(entity=entity, since=since, limit=first)
        return [JournalEntryType.of(e) for e in entries]


def _items(name: str, items: list[Any]) -> None:
    if not items or len(items) > MAX_MUTATION_ITEMS:
        raise ValidationFailed(
            [Problem("arguments", name, f"give between 1 and {MAX_MUTATION_ITEMS} items")]
        )


@strawberry.type
class CMDBMutation:
    @strawberry.mutation(
        description="Create or update CIs (validated like an import). Updates merge by default: "
        "given attributes change, absent ones stay, null removes one; mode REPLACE makes the "
        "given attributes the whole set."
    )
    def upsert_cis(
        self, info: Info, cis: list[CIInput], mode: WriteMode = WriteMode.MERGE
    ) -> WriteResultType:
        actor = info.context.actor("write_cmdb")
        _items("cis", cis)
        batch = Batch(replace=mode is WriteMode.REPLACE)
        for i, value in enumerate(cis):
            batch.add_ci(as_ci(value), f"cis[{i}]")
        return WriteResultType.of(guarded_write(info.context.sg.store, batch, actor))

    @strawberry.mutation(
        description="Mark CIs retired; they keep their history. Refused for CIs that approved, "
        "scheduled or implementing RFCs target, unless an admin forces it with a reason."
    )
    def retire_cis(
        self,
        info: Info,
        ids: list[strawberry.ID],
        force: bool = False,
        reason: str | None = None,
    ) -> WriteResultType:
        actor = info.context.actor("write_cmdb")
        _items("ids", ids)
        batch = Batch(retire=[str(i) for i in ids])
        return WriteResultType.of(
            guarded_write(info.context.sg.store, batch, actor, force=force, reason=reason)
        )

    @strawberry.mutation(
        description="Add (or update the attributes of) relationships; attributes merge like "
        "upsertCis unless mode is REPLACE."
    )
    def add_relationships(
        self,
        info: Info,
        relationships: list[RelationshipInput],
        mode: WriteMode = WriteMode.MERGE,
    ) -> WriteResultType:
        actor = info.context.actor("write_cmdb")
        _items("relationships", relationships)
        batch = Batch(replace=mode is WriteMode.REPLACE)
        for i, r in enumerate(relationships):
            attributes: Any = r.attributes
            batch.add_relationship(
                Relationship(str(r.source), r.type, str(r.target), attributes),
                f"relationships[{i}]",
            )
        return WriteResultType.of(info.context.sg.store.write(batch, actor.user))

    @strawberry.mutation(description="Remove relationships.")
    def remove_relationships(
        self, info: Info, relationships: list[RelationshipKeyInput]
    ) -> WriteResultType:
        actor = info.context.actor("write_cmdb")
        _items("relationships", relationships)
        keys = [(str(r.source), r.type, str(r.target)) for r in relationships]
        return WriteResultType.of(info.context.sg.store.delete_relationships(keys, actor.user))


def _is_unexpected(error: GraphQLError) -> bool:
    """A bug or an outage, not the client's mistake: a request's own errors (invalid variables,
    refused values) come from graphql-core as GraphQLErrors and are the client's to read."""
    original = error.original_error
    return original is not None and not isinstance(original, ServiceGraphError | GraphQLError)


# strawberry's limiters make a new rule class per request, which defeats the validation cache
# (keyed by the rules): the rule classes are made once here.
_DEPTH_RULE = depth_validator(MAX_DEPTH, None)
_ALIAS_RULE = alias_validator(MAX_ALIASES)
# the rules a request's document is validated by: graphql-core's, then depth and aliases
VALIDATION_RULES = (*specified_rules, _DEPTH_RULE, _ALIAS_RULE)
UNEXPECTED = "Unexpected error."  # what a client reads of an error that is not its own
_PARSED: Memo[DocumentNode] = Memo(DOCUMENT_CACHE)
_VALIDATED: Memo[list[GraphQLError]] = Memo(DOCUMENT_CACHE)


def parsed(query: str, digest: bytes | None = None, **options: Any) -> DocumentNode:
    """The document of a query text, parsed once per text (and parse options) while it is among
    the last :data:`DOCUMENT_CACHE` asked for; a text that does not parse raises its
    ``GraphQLError`` each time. ``digest``: the text's :func:`text_key`, when the caller has it."""
    if len(query) > CACHED_TEXT:
        return parse(query, **options)
    key = (digest or text_key(query), tuple(sorted(options.items())))
    return _PARSED.get(key, lambda: parse(query, **options))


def validation_errors(
    schema: GraphQLSchema,
    query: str,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    digest: bytes | None = None,
) -> list[GraphQLError]:
    """The document's validation errors by ``rules``, kept per query text and rules while the
    text is among the last :data:`DOCUMENT_CACHE` validated."""

    def validate() -> list[GraphQLError]:
        return validate_document(schema, document, rules)

    if len(query) > CACHED_TEXT:
        return validate()
    return _VALIDATED.get((digest or text_key(query), rules), validate)


def masked(errors: list[GraphQLError]) -> list[GraphQLError]:
    """The errors a client reads: unexpected ones (a bug, an outage) keep their place in the
    query and lose their message (strawberry's MaskErrors, the same way)."""
    return [
        GraphQLError(UNEXPECTED, e.nodes, e.source, e.positions, e.path) if _is_unexpected(e) else e
        for e in errors
    ]


class Guard(SchemaExtension):
    """Every request's safety and caching in one extension (strawberry builds each extension's
    hooks anew per request: six extensions cost ~7 % of a small request in that machinery alone).

    - operation: the depth and alias rules and the token limit apply; afterwards, unexpected
      errors are masked (:func:`masked`);
    - parse and validation: kept by the digest of the query text (strawberry's ParserCache and
      ValidationCache key theirs by the text and by the document, and hashing a document walks
      every node of it on every request);
    - execution: a request over the cost or item limits is refused before it runs
      (:func:`~servicegraph.api.limits.refusal`); a query reads the journal once for all its
      fields, which then answer from one state of the graph (a small impact made four reads).
    """

    limits: Limits = Limits()

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = VALIDATION_RULES
        context.parse_options["max_tokens"] = MAX_TOKENS
        yield
        # a result here is an ExecutionResult or None (nothing is streamed)
        result = context.result
        if result is not None and result.errors:
            result.errors = masked(result.errors)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None  # strawberry refuses a request without one before
        context.graphql_document = parsed(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        query, document = context.query, context.graphql_document
        assert query is not None and document is not None
        rules = tuple(context.validation_rules)
        context.pre_execution_errors = validation_errors(
            context.schema._schema, query, document, rules
        )
        yield

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        error = refusal(
            context.schema._schema,
            context.query,
            context.graphql_document,
            context.operation_name,
            context.variables,
            self.limits,
            context.context,
        )
        if error is not None:
            context.result = ExecutionResult(data=None, errors=[error])
        query = context.operation_type is OperationType.QUERY
        with one_refresh() if query else nullcontext():
            yield


def guarded(limits: Limits) -> type[Guard]:
    """The extension class bound to ``limits`` (strawberry takes extensions as classes)."""
    return type("BoundGuard", (Guard,), {"limits": limits})


@strawberry.type
class Query(CMDBQuery, ChangeQuery, AvailabilityQuery, IncidentQuery, AuditQuery, MapQuery):
    """The root query: the CMDB, change and release, availability, incidents and problems,
    configuration audit."""


@strawberry.type
class Mutation(CMDBMutation, ChangeMutation, IncidentMutation, AuditMutation):
    """The root mutation."""


class ServiceGraphSchema(strawberry.Schema):
    """Logs only unexpected errors: expected failures are answers to the client, not incidents."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        super().process_errors([e for e in errors if _is_unexpected(e)], execution_context)


def build_schema(
    executor: type[StrawberryGraphQLCoreExecutionContext] = FastListExecutor,
    limits: Limits | None = None,
) -> strawberry.Schema:
    """The schema; ``executor`` is replaceable so tests can compare against graphql-core's own."""
    return ServiceGraphSchema(
        query=Query,
        mutation=Mutation,
        # parsed and validated documents cached by query text (the limits' rules included):
        # validation was ~60 % of a small request; bounded, so new texts only evict old ones
        extensions=[guarded(limits or Limits())],
        execution_context_class=executor,
        config=StrawberryConfig(scalar_map=SCALARS),
    )
