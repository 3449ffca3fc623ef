"""Fast completion of long lists of plain objects (an impact of 10k CIs is ~80k field values).

graphql-core completes every field of every list item through its full resolver machinery, a few
microseconds a field. For an object whose selected fields are all *plain* — strawberry fields
without a resolver, permission or extension, read as an attribute — that machinery computes
nothing but the attribute, coerced by the field's scalar or enum type. :class:`FastListExecutor`
compiles the selection set of such a list into a :class:`_Plan` and completes every item with
it, in the same order and with the same coercions. A plan depends only on the type and where
the list stands in the query (when no directive there reads a variable): it is kept across
requests that send the same query text, so a small request does not compile it again. Whenever
the plan meets anything else — a field with a resolver or arguments, an abstract type, a
deferred fragment, a middleware, a null in a non-null position, a value its scalar refuses — the
list is completed by graphql-core as usual, so errors and their paths are exactly graphql-core's.

Tests run queries through both executors and compare the responses.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.field import StrawberryField

from servicegraph.api.limits import check_deadline
from servicegraph.api.memo import Memo, text_key

__all__ = ["FastListExecutor"]

_DEFINITION = "strawberry-definition"
_CHUNK = 100  # list items completed between two deadline checks


# Plans kept across requests, by the item type and where the list stands: the query text (by
# digest), the operation and the list's response path. Nothing of the document is kept.
_PLANS: Memo[Complete | None] = Memo(4096)


class _Fallback(Exception):
    """The plan met something it does not complete: let graphql-core do this list."""


Complete = Callable[[Any], Any]


class _Plan:
    """Completes one object of a fixed type and selection set: (response key, getter, completer)."""

    def __init__(self, fields: list[tuple[str, Callable[[Any], Any], Complete]]) -> None:
        self.fields = fields

    def __call__(self, source: Any) -> dict[str, Any]:
        return {key: complete(get(source)) for key, get, complete in self.fields}


class FastListExecutor(StrawberryGraphQLCoreExecutionContext):
    """strawberry's executor, completing lists of plain objects with compiled plans."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: dict[tuple[int, int], tuple[Any, Complete | None]] = {}
        self._text_at: tuple[bytes, str | None] | tuple[()] | None = None
        self.fast_lists = 0  # lists completed by a plan (tests read it)

    def execute_field(self, *args: Any, **kwargs: Any) -> Any:
        check_deadline()  # the request's time budget, before every field
        return super().execute_field(*args, **kwargs)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        check_deadline()
        middleware = self.middleware_manager
        if isinstance(result, list | tuple) and (middleware is None or not middleware.middlewares):
            complete = self._plan(return_type.of_type, field_details_list, path)
            if complete is not None:
                try:
                    completed = []
                    for start in range(0, len(result), _CHUNK):
                        check_deadline()  # in time, and giving way to small requests
                        completed += [complete(item) for item in result[start : start + _CHUNK]]
                except Exception:  # _Fallback, or an attribute the plan could not read
                    pass
                else:
                    self.fast_lists += 1
                    return completed
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _plan(
        self, item_type: GraphQLOutputType, details: FieldDetailsList, path: Path
    ) -> Complete | None:
        key = (id(item_type), id(details))
        cached = self._plans.get(key)
        if cached is None:
            where = self._where()
            sets = [d.node.selection_set for d in details]
            if where is None or _has_directives(sets, self.fragments):
                plan = self._compile(item_type, details)  # @skip/@include read variables
            else:
                at = tuple(k for k in path.as_list() if isinstance(k, str))  # not list indices
                kept = (item_type, *where, at)
                plan = _PLANS.get(kept, lambda: self._compile(item_type, details))
            cached = self._plans[key] = (details, plan)
        return cached[1]

    def _where(self) -> tuple[bytes, str | None] | None:
        """(digest of the query text, operation name), or None without a source to name."""
        if self._text_at is None:
            loc = self.operation.loc
            name = self.operation.name.value if self.operation.name else None
            self._text_at = (text_key(loc.source.body), name) if loc is not None else ()
        return self._text_at or None

    def _compile(self, type_: GraphQLOutputType, details: FieldDetailsList) -> Complete | None:
        """A completer for values of ``type_`` selected by ``details``; None if not plain."""
        non_null = isinstance(type_, GraphQLNonNull)
        inner = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        complete: Complete | None
        if isinstance(inner, GraphQLList):
            item = self._compile(inner.of_type, details)
            complete = None if item is None else _list_of(item)
        elif isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            return _leaf(inner, non_null)
        elif isinstance(inner, GraphQLObjectType) and inner.is_type_of is None:
            complete = self._object_plan(inner, details)
        else:
            return None  # interfaces and unions resolve their runtime type: not plain
        return None if complete is None else _with_null(complete, non_null)

    def _object_plan(self, type_: GraphQLObjectType, details: FieldDetailsList) -> _Plan | None:
        grouped, defers, forbidden = self.collect_subfields(type_, details)
        if defers or forbidden:
            return None
        fields: list[tuple[str, Callable[[Any], Any], Complete]] = []
        for key, sub_details in grouped.items():
            node = sub_details[0].node
            name = node.name.value
            if name == "__typename":
                fields.append((key, _constant(type_.name), _identity))
                continue
            field_def = type_.fields.get(name)
            if field_def is None or field_def.args or node.arguments:
                return None
            definition = field_def.extensions.get(_DEFINITION)
            if not isinstance(definition, StrawberryField) or not getattr(
                field_def.resolve, "_is_default", False
            ):
                return None  # a resolver of its own
            complete = self._compile(field_def.type, sub_details)
            if complete is None:
                return None
            fields.append((key, _getter(definition), complete))
        return _Plan(fields)


def _has_directives(sets: list[SelectionSetNode | None], fragments: dict[str, Any]) -> bool:
    """Whether any selection below these sets (through fragments) carries a directive or
    fragment arguments: what makes the fields collected depend on the variables."""
    seen: set[str] = set()
    stack = [s for s in sets if s is not None]
    while stack:
        for selection in stack.pop().selections:
            if selection.directives:
                return True
            if isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                details = fragments.get(name)
                if details is None or getattr(selection, "arguments", None):
                    return True
                fragment = details.definition
                if fragment.directives or details.variable_signatures:
                    return True
                if name not in seen:
                    seen.add(name)
                    stack.append(fragment.selection_set)
            elif (
                isinstance(selection, FieldNode | InlineFragmentNode)
                and selection.selection_set is not None
            ):
                stack.append(selection.selection_set)
    return False


def _getter(definition: StrawberryField) -> Callable[[Any], Any]:
    name = definition.python_name
    resolver = definition.default_resolver
    if resolver is getattr:
        return attrgetter(name)
    return lambda source: resolver(source, name)


def _with_null(inner: Complete, non_null: bool) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise _Fallback  # graphql-core reports the null with its path
            return None
        if isinstance(value, Exception):
            raise _Fallback
        return inner(value)

    return complete


def _list_of(item: Complete) -> Complete:
    def complete(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _Fallback
        return [item(v) for v in value]

    return complete


# Built-in scalars return a value of exactly this type unchanged (Int also checks its 32-bit range).
_UNCHANGED: dict[str, type] = {
    GraphQLString.name: str,
    GraphQLID.name: str,
    GraphQLBoolean.name: bool,
    GraphQLInt.name: int,
}
_INT_RANGE = range(-(2**31), 2**31)


def _leaf(type_: GraphQLScalarType | GraphQLEnumType, non_null: bool) -> Complete:
    coerce = type_.coerce_output_value
    builtin = type_ in (GraphQLString, GraphQLID, GraphQLBoolean, GraphQLInt)
    exact = _UNCHANGED[type_.name] if builtin else None
    is_int = type_ is GraphQLInt
    memo: dict[tuple[type, Any], Any] = {}  # enums: member -> name, once per request

    def coerced(value: Any) -> Any:
        if value is None or value is Undefined:
            if non_null:
                raise _Fallback
            return None
        if isinstance(type_, GraphQLEnumType):
            try:
                return memo[type(value), value]
            except (KeyError, TypeError):
                pass
        try:
            out = coerce(value)
        except Exception as error:
            raise _Fallback from error
        if out is None or out is Undefined:
            raise _Fallback
        if isinstance(type_, GraphQLEnumType):
            memo[type(value), value] = out
        return out

    if exact is None:
        return coerced

    def complete(value: Any) -> Any:
        if type(value) is exact and (not is_int or value in _INT_RANGE):
            return value
        return coerced(value)

    return complete


def _constant(value: str) -> Callable[[Any], Any]:
    return lambda _source: value


def _identity(value: Any) -> Any:
    return value
