"""Quick GraphQL queries: which requests are quick, and the direct way POST /graphql answers them.

A *quick* query has a response of at most ``SMALL_COST`` fields and only root fields of
``QUICK_FIELDS`` (``impact``, ``ci`` and ``me``, not as of a past time). It reads memory and a few
indexed rows, so the server runs it on its event loop — while no one writes the topology engine
and the engine is caught up (:meth:`TopologyEngine.hold_if_free`).

:func:`answer` is POST /graphql's direct path for such a query sent as JSON: the body decoded
once, the cached document and its cached validation (the same caches strawberry's path uses,
:mod:`servicegraph.api.graphql.schema`), graphql-core's executor with the schema's executor class,
then the same error masking and logging, error codes and response. Strawberry's HTTP view and its
per-request extension machinery (a context object, a hook runner and four hook context managers
per request) are what it skips: a small impact in-process 534 -> 398 µs. Everything else goes
strawberry's way, which answers exactly as before: another content type, a streaming ``Accept``,
``extensions`` in the body, a document that does not parse or validate, a request over a limit,
an engine busy being written (then the request takes the small lane), an answer that turns out
large (then it runs in a worker thread).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.types import ExecutionResult as Answered

from servicegraph.api.graphql.context import Context
from servicegraph.api.graphql.schema import (
    MAX_TOKENS,
    VALIDATION_RULES,
    masked,
    parsed,
    validation_errors,
)
from servicegraph.api.limits import (
    OffTheLoop,
    QueryTimeout,
    SmallRequests,
    deadline,
    estimate_text,
    on_the_loop,
    refusal,
    timeout_error,
)
from servicegraph.api.memo import Memo, text_key
from servicegraph.graph.engine import TopologyEngine, one_refresh

if TYPE_CHECKING:
    from servicegraph.api.server import _Router

SMALL_COST = 5_000  # response fields (limits.estimate) up to which a query takes the small lane
QUICK_FIELDS = frozenset({"impact", "ci", "me", "__typename"})  # root fields run on the loop
QUICK_BEHIND = 1_000  # journal entries the engine may lag for a quick query to run on the loop
QUICK_WAIT = 0.05  # seconds a quick query waits for the engine before it takes a thread
QUICK_POLL = 0.0005
_BODY_KEYS = frozenset({"query", "variables", "operationName", "extensions"})
_QUICK: Memo[bool] = Memo(4096)  # whether an operation is quick, by text digest and name


class Sorted(NamedTuple):
    """Where a request runs: ``quick``, ``small`` (a query whose response may hold at most
    SMALL_COST fields) or ``large`` (a request that does not parse or is odd otherwise is large:
    its execution reports the problem); with the text's digest and document when it parses."""

    kind: str
    digest: bytes
    document: DocumentNode | None


def sort(
    schema: GraphQLSchema,
    query: str | None,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> Sorted:
    """Sort a request into its lane (see :class:`Sorted`)."""
    digest = text_key(query) if query else b""
    document = _parsed(query, digest)
    if document is None:
        return Sorted("large", digest, None)
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return Sorted("large", digest, document)
    try:
        cost, _, _ = estimate_text(schema, query, document, operation_name, variables, digest)
    except Exception:
        return Sorted("large", digest, document)
    if not 0 < cost <= SMALL_COST:
        return Sorted("large", digest, document)
    quick = _QUICK.get((digest, operation_name), lambda: _quick(operation))
    return Sorted("quick" if quick else "small", digest, document)


def _parsed(query: str | None, digest: bytes) -> DocumentNode | None:
    """The query's document (None: it does not parse): the same document the execution then
    takes (:func:`parsed` with the execution's parse options)."""
    if not query:
        return None
    try:
        return parsed(query, digest, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return None


def _quick(operation: OperationDefinitionNode) -> bool:
    """Whether every root field of the operation is a quick one, none of them as of a past time
    (a replay of the journal); fragments at the root are not looked into."""
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value not in QUICK_FIELDS:
            return False
        if any(argument.name.value == "asOf" for argument in selection.arguments or ()):
            return False
    return True


async def hold(engine: TopologyEngine) -> bool:
    """Enter the engine for a quick query on the loop, waiting up to QUICK_WAIT in short sleeps
    while the journal is being applied to it; False when that goes on or the journal is far
    ahead."""
    waited = 0.0
    while True:
        if engine.hold_if_free(QUICK_BEHIND):
            return True
        if waited >= QUICK_WAIT:
            return False
        await asyncio.sleep(QUICK_POLL)
        waited += QUICK_POLL


async def answer(router: _Router, request: Request, context: Context) -> Response | None:
    """The response to a quick query POSTed as JSON, answered on the event loop; None when the
    request is not one (then ``context.lane`` may say where it runs instead)."""
    engine = router.engine
    if engine is None or not router.lane:
        return None
    headers = request.headers
    if headers.get("content-type", "").partition(";")[0].strip().lower() != "application/json":
        return None
    accept = headers.get("accept", "").lower()
    if "multipart" in accept or "event-stream" in accept:  # strawberry streams those
        return None
    try:
        data = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or not data.keys() <= _BODY_KEYS:
        return None
    query, variables, name = data.get("query"), data.get("variables"), data.get("operationName")
    if (
        type(query) is not str
        or len(query) > router.limits.max_query_chars
        or not (variables is None or type(variables) is dict)
        or not (name is None or type(name) is str)
        or data.get("extensions") is not None
    ):
        return None
    schema = router.schema._schema  # type: ignore[attr-defined]
    kind, digest, document = sort(schema, query, name, variables)
    if kind != "quick" or document is None:
        return None
    if validation_errors(schema, query, document, VALIDATION_RULES, digest):
        return None
    if refusal(schema, query, document, name, variables, router.limits, context, digest):
        return None
    if not await hold(engine):
        context.lane = "small"
        return None
    budget = router.limits.request_timeout
    SmallRequests.in_flight += 1  # large requests give way meanwhile (see check_deadline)
    try:
        with deadline(budget), on_the_loop(), one_refresh():
            try:
                result = execute(
                    schema,
                    document,
                    context_value=context,
                    variable_values=variables,
                    operation_name=name,
                    executor_class=router.schema.execution_context_class,  # type: ignore[attr-defined]
                    is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                    operation_extensions=None,  # what strawberry passes its executor class
                )
                if isawaitable(result):
                    result = await result
            except QueryTimeout:
                result = ExecutionResult(data=None, errors=[timeout_error(budget)])
            except OffTheLoop:  # its answer is large: again, in a worker thread
                context.renew_loaders()
                context.lane = "large"
                return None
    finally:
        SmallRequests.in_flight -= 1
        engine.let_go()
    assert isinstance(result, ExecutionResult) and context.response is not None
    errors = result.errors
    if errors:
        router.schema.process_errors(errors)  # logs the unexpected ones
        errors = masked(errors)
    response_data = await router.process_result(request, Answered(result.data, errors))
    return router.create_response(response_data=response_data, sub_response=context.response)
