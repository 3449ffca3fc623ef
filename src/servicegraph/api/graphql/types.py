"""GraphQL object and input types (named for the domain: CI, Relationship, Impact …)."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from servicegraph.api.graphql.context import Context
from servicegraph.errors import NotFound
from servicegraph.graph.records import CI, JournalEntry, Relationship, WriteResult

Info = strawberry.Info[Context, None]


@strawberry.enum
class RelationshipDirection(Enum):
    OUTGOING = "outgoing"  # this CI is the source (what it depends on)
    INCOMING = "incoming"  # this CI is the target (what depends on it)


@strawberry.enum(description="How an update treats attributes it does not name.")
class WriteMode(Enum):
    MERGE = "MERGE"  # given attributes change, absent ones stay, null removes one
    REPLACE = "REPLACE"  # the given attributes are the record's whole set


@strawberry.enum
class ImpactStatus(Enum):
    DOWN = "DOWN"
    DEGRADED = "DEGRADED"


@strawberry.type(name="CI", description="A configuration item or record of the graph.")
class CIType:
    """Id, name and class are always at hand; the rest of the record is read on demand (one
    batched load per request), so a list of thousands of CIs by name decodes no attributes."""

    id: strawberry.ID
    name: str
    class_: str = strawberry.field(name="class")
    record: strawberry.Private[CI | None] = None
    # as of a past point: the relationships it had then (the live ones are not its)
    past_relationships: strawberry.Private[list[Relationship] | None] = None

    @classmethod
    def of(cls, ci: CI, past_relationships: list[Relationship] | None = None) -> CIType:
        return cls(id=strawberry.ID(ci.id), name=ci.name, class_=ci.cls, record=ci,
                   past_relationships=past_relationships)  # fmt: skip

    @classmethod
    def labelled(cls, ident: str, label: tuple[str, str]) -> CIType:
        """From :meth:`GraphStore.labels` (class, name)."""
        return cls(id=strawberry.ID(ident), name=label[1], class_=label[0])

    async def _record(self, info: Info) -> CI:
        if self.record is None:
            self.record = await info.context.loaders.cis.load(str(self.id))
            if self.record is None:
                raise NotFound("CI", str(self.id))
        return self.record

    @strawberry.field
    async def version(self, info: Info) -> int:
        return (await self._record(info)).version or 0

    @strawberry.field
    async def attributes(self, info: Info) -> JSON:
        return as_json((await self._record(info)).attributes)

    @strawberry.field
    async def status(self, info: Info) -> str:
        return (await self._record(info)).status

    @strawberry.field(description="Relationships of this CI (one batched load per request).")
    async def relationships(
        self,
        info: Info,
        direction: RelationshipDirection | None = None,
        types: list[str] | None = None,
    ) -> list[RelationshipType]:
        if self.past_relationships is not None:
            rels = self.past_relationships
        else:
            rels = await info.context.loaders.relationships.load(str(self.id))
        out = []
        for rel in rels:
            if direction is RelationshipDirection.OUTGOING and rel.source != self.id:
                continue
            if direction is RelationshipDirection.INCOMING and rel.target != self.id:
                continue
            if types is not None and rel.type not in types:
                continue
            out.append(RelationshipType.of(rel))
        return out


@strawberry.type(name="Relationship")
class RelationshipType:
    source_id: strawberry.ID
    type: str
    target_id: strawberry.ID
    attributes: JSON

    @classmethod
    def of(cls, rel: Relationship) -> RelationshipType:
        return cls(
            source_id=strawberry.ID(rel.source),
            type=rel.type,
            target_id=strawberry.ID(rel.target),
            attributes=as_json(rel.attributes),
        )

    @strawberry.field
    async def source(self, info: Info) -> CIType | None:
        ci = await info.context.loaders.cis.load(str(self.source_id))
        return CIType.of(ci) if ci else None

    @strawberry.field
    async def target(self, info: Info) -> CIType | None:
        ci = await info.context.loaders.cis.load(str(self.target_id))
        return CIType.of(ci) if ci else None


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class CIEdge:
    cursor: str
    node: CIType


@strawberry.type
class CIConnection:
    edges: list[CIEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], int] | None] = None

    @strawberry.field(description="How many CIs match the filter, over all pages.")
    def total_count(self) -> int:
        return self.counter() if self.counter is not None else len(self.edges)


@strawberry.type
class RelationshipEdge:
    cursor: str
    node: RelationshipType


@strawberry.type
class RelationshipConnection:
    edges: list[RelationshipEdge]
    page_info: PageInfo
    counter: strawberry.Private[Callable[[], int] | None] = None

    @strawberry.field(description="How many relationships match the filter, over all pages.")
    def total_count(self) -> int:
        return self.counter() if self.counter is not None else len(self.edges)


@strawberry.input
class CIFilter:
    class_: str | None = strawberry.field(
        default=None, name="class", description="A class; its subclasses match too."
    )
    attributes: JSON | None = strawberry.field(
        default=None,
        description="Attribute values that must all be equal, compared as the model types them "
        '(criticality: "5" finds criticality 5); unknown names are refused.',
    )
    text: str | None = strawberry.field(
        default=None,
        description="A case-insensitive substring of the id or the name (indexed).",
    )


@strawberry.enum
class CISortField(Enum):
    ID = "id"
    NAME = "name"
    CLASS = "class"


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class CISort:
    field: CISortField = CISortField.ID
    direction: SortDirection = SortDirection.ASC


CIPath = NewType("CIPath", list[str])
SCALARS: dict[object, ScalarDefinition] = {
    CIPath: strawberry.scalar(
        name="CIPath",
        description="CI ids from a failing seed to the impacted CI (seed first), as a JSON list.",
        serialize=lambda value: value,
        parse_value=lambda value: value,
    )
}  # the schema's StrawberryConfig.scalar_map


@strawberry.type
class ImpactedCI:
    ci: CIType
    status: ImpactStatus
    distance: int
    path: CIPath


@strawberry.type
class ImpactedService:
    service: CIType
    status: ImpactStatus


@strawberry.type
class ImpactedSLA:
    sla: CIType
    status: ImpactStatus
    services: list[strawberry.ID]


@strawberry.type
class ImpactedCustomer:
    customer: CIType
    slas: list[strawberry.ID]


@strawberry.type(description="A stored value the engine could not use; it was read as a default.")
class DataWarning:
    ci: strawberry.ID
    attribute: str
    detail: str
    fix: str


@strawberry.type
class Impact:
    total_impacted: int
    impacted: list[ImpactedCI]
    services: list[ImpactedService]
    slas: list[ImpactedSLA]
    customers: list[ImpactedCustomer]
    warnings: list[DataWarning] = strawberry.field(
        default_factory=list,
        description="Stored values of CIs the analysis reached that could not be used as they "
        "are (named, with the fix); the answer treats them as the default.",
    )


@strawberry.type
class JournalEntryType:
    seq: int
    at: str
    actor: str
    op: str
    entity: str
    before: JSON | None
    after: JSON | None

    @classmethod
    def of(cls, e: JournalEntry) -> JournalEntryType:
        return cls(
            seq=e.seq, at=e.at, actor=e.actor, op=e.op, entity=e.entity,
            before=as_json(e.before), after=as_json(e.after),
        )  # fmt: skip


@strawberry.type
class Me:
    user: str
    role: str


@strawberry.type
class WriteResultType:
    created: int
    updated: int
    deleted: int
    unchanged: int
    first_seq: int | None
    last_seq: int | None

    @classmethod
    def of(cls, r: WriteResult) -> WriteResultType:
        return cls(
            created=r.created, updated=r.updated, deleted=r.deleted, unchanged=r.unchanged,
            first_seq=r.first_seq, last_seq=r.last_seq,
        )  # fmt: skip


@strawberry.input
class CIInput:
    id: strawberry.ID
    class_: str = strawberry.field(name="class")
    name: str
    attributes: JSON = strawberry.field(default_factory=dict)
    version: int | None = strawberry.field(
        default=None, description="The version you read: the write fails if it is stale."
    )


@strawberry.input
class RelationshipInput:
    source: strawberry.ID
    type: str
    target: strawberry.ID
    attributes: JSON = strawberry.field(default_factory=dict)


@strawberry.input
class RelationshipKeyInput:
    source: strawberry.ID
    type: str
    target: strawberry.ID


def as_ci(value: CIInput) -> CI:
    attributes: Any = value.attributes
    return CI(str(value.id), value.class_, value.name, attributes, value.version)


def as_json(value: Any) -> Any:
    """Plain data for a JSON scalar field (typed Any, as the scalar takes any JSON value)."""
    return value
