"""How much one request may cost the server, decided before any work is done.

* **Query cost**: every field a response may contain, counted once per instance: a list field
  counts as many instances as its page size (its ``first`` argument or that argument's default,
  the enclosing field's ``first`` for ``impacted`` and connection ``edges``, else an estimate from
  :data:`LIST_SIZES`), and every input list item counts one. Checked before execution against
  ``SERVICEGRAPH_MAX_QUERY_COST``; refused with ``QUERY_TOO_COSTLY`` naming the cost and the limit.
* **Mutation items**: list items across every mutation field of a request (aliases included),
  at most ``SERVICEGRAPH_MAX_MUTATION_ITEMS``; refused with ``TOO_MANY_ITEMS``.
* **Time**: a request stops at its deadline (``SERVICEGRAPH_REQUEST_TIMEOUT`` seconds): the
  executor checks it before each field and each long list, and the request ends with
  ``QUERY_TIMEOUT``.
* **Body size** (``SERVICEGRAPH_MAX_BODY_BYTES``) is checked by the server before the body is read;
  the **query text** (``SERVICEGRAPH_MAX_QUERY_CHARS``) before it is parsed (parsed documents are
  kept per text: long texts padded with comments would fill memory).
* **Introspection** (``SERVICEGRAPH_INTROSPECTION``): ``public`` (default: GraphiQL shows the
  schema before a token is set), ``authenticated`` (any valid token) or ``off``.

Nothing here imports a store: the API layer decides, the processes never see a refused request.
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
)

from servicegraph.api.memo import Memo, text_key
from servicegraph.errors import ServiceGraphError

T = TypeVar("T")

__all__ = [
    "LIST_SIZES",
    "QUICK_MAX_IMPACTED",
    "Limits",
    "OffTheLoop",
    "QueryTimeout",
    "SmallRequests",
    "check_deadline",
    "deadline",
    "estimate",
    "estimate_text",
    "give_way_if_large",
    "on_the_loop",
    "paced",
    "refusal",
]

# Estimated sizes of lists without a page argument of their own, by "Type.field".
LIST_SIZES: dict[str, int | str] = {
    "Impact.impacted": "first",  # sized by impact(first:)
    "CIConnection.edges": "first",
    "RelationshipConnection.edges": "first",
    "Impact.services": 200,
    "Impact.slas": 200,
    "Impact.customers": 200,
    "DependencyMap.nodes": 1_000,
    "DependencyMap.edges": 2_000,
    "CI.relationships": 20,
    "Availability.importance": 500,  # one per component of the closure
    "Availability.assumed": 500,
    "Availability.cutSets": 20,
    "Query.slaRisk": 200,
}
DEFAULT_LIST_SIZE = 50
_MAX_FIRST = 10_000_000  # a page argument beyond this counts as this (the resolver refuses it)


@dataclass(frozen=True)
class Limits:
    """The server's per-request limits, from the environment (see the README)."""

    max_query_cost: int = 1_000_000
    max_mutation_items: int = 1_000
    max_body_bytes: int = 4 * 1024 * 1024
    max_query_chars: int = 100_000  # a query text; 2,000 tokens need far less but for padding
    request_timeout: float = 30.0
    introspection: str = "public"  # public | authenticated | off

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Limits:
        env = os.environ if env is None else env
        introspection = env.get("SERVICEGRAPH_INTROSPECTION", cls.introspection).strip().lower()
        if introspection not in ("public", "authenticated", "off"):
            raise ServiceGraphError(
                f"SERVICEGRAPH_INTROSPECTION={introspection!r}: use public, authenticated or off"
            )
        return cls(
            max_query_cost=_env_int(env, "SERVICEGRAPH_MAX_QUERY_COST", cls.max_query_cost),
            max_mutation_items=_env_int(
                env, "SERVICEGRAPH_MAX_MUTATION_ITEMS", cls.max_mutation_items
            ),
            max_body_bytes=_env_int(env, "SERVICEGRAPH_MAX_BODY_BYTES", cls.max_body_bytes),
            max_query_chars=_env_int(env, "SERVICEGRAPH_MAX_QUERY_CHARS", cls.max_query_chars),
            request_timeout=float(
                _env_int(env, "SERVICEGRAPH_REQUEST_TIMEOUT", int(cls.request_timeout))
            ),
            introspection=introspection,
        )


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise ServiceGraphError(f"{name}={text!r}: expected a positive integer") from None
    if value <= 0:
        raise ServiceGraphError(f"{name}={text!r}: expected a positive integer")
    return value


class LimitExceeded(ServiceGraphError):
    """A request asked for more than the server's limits allow; nothing was executed."""

    exit_code = 1

    def __init__(self, code: str, message: str, **details: Any) -> None:
        self.code = code
        self.details = details
        super().__init__(message)

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


class QueryTimeout(BaseException):
    """The request's deadline passed. A BaseException on purpose: graphql-core turns every
    Exception of a field into one error for that field and goes on with the next thousand; this
    one stops the whole execution, and the server answers ``QUERY_TIMEOUT``."""

    def __init__(self, budget: float) -> None:
        self.budget = budget
        super().__init__(budget)


PAUSE = 0.003  # seconds a large request gives way while small ones are in flight …
WORK = 0.001  # … after each this many seconds of work (it keeps a quarter of its speed or more)


class OffTheLoop(BaseException):
    """A query running on the server's event loop found its answer larger than a quick one
    (see :func:`give_way_if_large`): the server runs it again in a worker thread. A
    BaseException, as :class:`QueryTimeout`, so that graphql-core does not make it a field
    error; a query writes nothing, so running it again is harmless."""


QUICK_MAX_IMPACTED = 10_000  # CIs an impact on the event loop may reach before it moves off
_on_loop: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "servicegraph_on_loop", default=False
)


class on_the_loop:
    """``with on_the_loop():`` — the work inside runs on the server's event loop."""

    def __enter__(self) -> None:
        self._token = _on_loop.set(True)

    def __exit__(self, *exc: object) -> None:
        _on_loop.reset(self._token)


def give_way_if_large(impacted: int) -> None:
    """On the event loop, an impact reaching more than QUICK_MAX_IMPACTED CIs stops here (its
    services, SLAs and rows would hold the loop for a large share of a second at a million CIs)."""
    if impacted > QUICK_MAX_IMPACTED and _on_loop.get():
        raise OffTheLoop


class SmallRequests:
    """How many small requests are in flight (counted by the server's event loop). A large
    request pauses at :func:`check_deadline` while there are any: the threads of one process
    share the interpreter lock, and a 10,000-row impact would otherwise take its half of the
    CPU from the hundreds of small requests answered meanwhile."""

    in_flight = 0


class _Budget:
    __slots__ = ("courteous", "ends", "next_pause", "seconds")

    def __init__(self, seconds: float, courteous: bool) -> None:
        now = time.monotonic()
        self.seconds, self.ends, self.courteous = seconds, now + seconds, courteous
        self.next_pause = now + WORK


_deadline: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "servicegraph_deadline", default=None
)


class deadline:
    """``with deadline(seconds):`` — the work inside stops at :func:`check_deadline` once
    ``seconds`` have passed (the context variable follows tasks and worker threads); with
    ``courteous`` it also gives way there to small requests (see :class:`SmallRequests`)."""

    def __init__(self, seconds: float, courteous: bool = False) -> None:
        self.seconds = seconds
        self.courteous = courteous

    def __enter__(self) -> None:
        self._token = _deadline.set(_Budget(self.seconds, self.courteous))

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


def check_deadline() -> None:
    budget = _deadline.get()
    if budget is None:
        return
    now = time.monotonic()
    if budget.courteous and SmallRequests.in_flight and now >= budget.next_pause:
        time.sleep(PAUSE)  # the small requests' thread takes the interpreter lock meanwhile
        now = time.monotonic()
        budget.next_pause = now + WORK
    if now > budget.ends:
        raise QueryTimeout(budget.seconds)


PACE = 1_000  # items a large answer builds between two deadline checks (about a millisecond)


def paced(build: Callable[[int, int], list[T]], total: int) -> list[T]:
    """``build(start, stop)`` over ``0..total`` in pieces of PACE, with a deadline check before
    each: a large answer's Python work gives way to small requests every millisecond or so (a
    10,000-row impact built in one piece held the interpreter lock for tens of them)."""
    out: list[T] = []
    for start in range(0, total, PACE):
        check_deadline()
        out += build(start, min(start + PACE, total))
    return out


def estimate(
    schema: GraphQLSchema,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> tuple[int, int, bool]:
    """(cost, mutation items, introspects) of the operation a request would execute."""
    variables = variables or {}
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [
        o
        for o in operations
        if operation_name is None or (o.name and o.name.value == operation_name)
    ]
    if len(chosen) != 1:
        return 0, 0, False  # graphql-core reports the ambiguity itself
    operation = chosen[0]
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0, 0, False
    walker = _Walker(fragments, variables)
    cost = walker.selection_cost(operation.selection_set, root, 1, None)
    items = 0
    if operation.operation == OperationType.MUTATION:
        items = sum(walker.input_items(f) for f in walker.fields(operation.selection_set))
    return cost, items, walker.introspects


_COSTS: Memo[tuple[int, int, bool]] = Memo(4096)


def estimate_text(
    schema: GraphQLSchema,
    query: str | None,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    digest: bytes | None = None,
) -> tuple[int, int, bool]:
    """:func:`estimate`, kept per query text (``digest``: its :func:`text_key`, when the caller
    has it) and the shape of the variables it reads (integers, list lengths): the server sorts a
    request into a lane by its cost and the limits check it again, and clients send the same
    texts again and again with other ids."""
    if query is None:
        return estimate(schema, document, operation_name, variables)
    key = (schema, digest or text_key(query), operation_name, _shape(variables))
    return _COSTS.get(key, lambda: estimate(schema, document, operation_name, variables))


def _shape(variables: Mapping[str, Any] | None) -> tuple[tuple[str, object], ...]:
    """What :func:`estimate` reads of the variables: integers (page sizes) and list lengths."""
    shape: list[tuple[str, object]] = []
    for name, value in sorted((variables or {}).items()):
        if isinstance(value, bool):
            shape.append((name, "bool"))
        elif isinstance(value, int):
            shape.append((name, value))
        elif isinstance(value, list):
            shape.append((name, ("list", len(value))))
        else:
            shape.append((name, type(value).__name__))
    return tuple(shape)


class _Walker:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode], variables: Mapping[str, Any]):
        self.fragments = fragments
        self.variables = variables
        self.introspects = False

    def fields(
        self, selection_set: SelectionSetNode, seen: frozenset[str] = frozenset()
    ) -> Iterator[FieldNode]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                yield from self.fields(selection.selection_set, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is not None and name not in seen:  # cycles: the validator refuses
                    yield from self.fields(fragment.selection_set, seen | {name})

    def selection_cost(
        self, selection_set: SelectionSetNode, parent: Any, multiplier: int, page: int | None
    ) -> int:
        cost = 0
        for field in self.fields(selection_set):
            name = field.name.value
            if name.startswith("__"):
                if name != "__typename":
                    self.introspects = True
                cost += multiplier
                continue
            definition = getattr(parent, "fields", {}).get(name)
            if definition is None:
                continue  # the validator reports unknown fields
            own_page = self.page_argument(field, definition)
            field_type = definition.type
            if isinstance(field_type, GraphQLNonNull):
                field_type = field_type.of_type
            size = 1
            child_page = own_page
            if isinstance(field_type, GraphQLList):
                size = self.list_size(parent, name, own_page, page)
                child_page = None
                field_type = field_type.of_type
                while isinstance(field_type, GraphQLNonNull | GraphQLList):
                    field_type = field_type.of_type
            count = multiplier * size
            cost += count + multiplier * self.input_items(field)
            if field.selection_set is not None:
                cost += self.selection_cost(field.selection_set, field_type, count, child_page)
        return cost

    def list_size(self, parent: Any, name: str, own_page: int | None, page: int | None) -> int:
        if own_page is not None:
            return own_page
        rule = LIST_SIZES.get(f"{getattr(parent, 'name', '')}.{name}", DEFAULT_LIST_SIZE)
        if rule == "first":
            return page if page is not None else DEFAULT_LIST_SIZE
        return int(rule)

    def page_argument(self, field: FieldNode, definition: Any) -> int | None:
        if "first" not in definition.args:
            return None
        value: Any = definition.args["first"].default_value
        for argument in field.arguments or ():
            if argument.name.value == "first":
                value = self.value(argument.value)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(0, min(value, _MAX_FIRST))
        return DEFAULT_LIST_SIZE  # not an int: coercion refuses it during execution

    def input_items(self, field: FieldNode) -> int:
        """List items among the field's arguments (one level: ids, CIs, relationships)."""
        total = 0
        for argument in field.arguments or ():
            value = argument.value
            if isinstance(value, ListValueNode):
                total += len(value.values)
            elif isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, list):
                    total += len(given)
        return total

    def value(self, node: Any) -> Any:
        if isinstance(node, IntValueNode):
            try:
                return int(node.value)
            except ValueError:
                return None
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        return None


def refusal(
    schema: GraphQLSchema,
    query: str | None,
    document: Any,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
    limits: Limits,
    context: Any,
    digest: bytes | None = None,
) -> GraphQLError | None:
    """Why a request must not be executed (over the cost or item limits, introspection the server
    does not allow), or None: checked before execution, on the parsed and validated document.
    ``context``: the request's, whose ``actor`` authenticates the caller; ``digest``: the text's
    :func:`text_key`, when the caller has it."""
    if document is None:
        return None
    cost, items, introspects = estimate_text(
        schema, query, document, operation_name, variables, digest
    )
    refused: ServiceGraphError | None = None
    if cost > limits.max_query_cost:
        refused = LimitExceeded(
            "QUERY_TOO_COSTLY",
            f"the query may return about {cost:,} fields, more than the limit of "
            f"{limits.max_query_cost:,}; ask for smaller pages (first:), fewer aliases or "
            "less nesting",
            cost=cost,
            limit=limits.max_query_cost,
        )
    elif items > limits.max_mutation_items:
        refused = LimitExceeded(
            "TOO_MANY_ITEMS",
            f"the request writes {items:,} items, more than {limits.max_mutation_items:,} "
            "per request (aliases count together); split it, or import a file with the CLI",
            items=items,
            limit=limits.max_mutation_items,
        )
    elif introspects and limits.introspection != "public":
        if limits.introspection == "off":
            refused = LimitExceeded(
                "INTROSPECTION_DISABLED",
                "introspection is turned off on this server (SERVICEGRAPH_INTROSPECTION=off)",
            )
        else:
            try:
                context.actor("read")
            except ServiceGraphError as exc:
                refused = exc
    if refused is None:
        return None
    return GraphQLError(str(refused), original_error=refused)


def timeout_error(budget: float) -> GraphQLError:
    """What a request stopped at its deadline answers."""
    return GraphQLError(
        f"the request ran longer than its time budget of {budget:g} s and was stopped; ask for "
        "less (smaller first:, fewer aliases) or raise SERVICEGRAPH_REQUEST_TIMEOUT",
        extensions={"code": "QUERY_TIMEOUT", "budgetSeconds": budget},
    )
