"""GraphQL for dependency maps and the model a frontend needs to draw them: ``dependencyMap``
(downstream, upstream or both; each CI with its family, status and ``min_up``, each relationship
with its impact kind; the map as GraphML, DOT or Cytoscape JSON text) and ``model`` (classes with
their family, relationship types with their impact)."""

from __future__ import annotations

from enum import Enum

import strawberry
from strawberry.scalars import JSON

from servicegraph.api.graphql.types import Info, as_json
from servicegraph.api.maps import MapView, family_of, map_view
from servicegraph.errors import Problem, ValidationFailed

MAX_MAP_NODES = 20_000


@strawberry.enum
class MapDirection(Enum):
    UPSTREAM = "UPSTREAM"  # against the arrows: what depends on the root, towards the services
    DOWNSTREAM = "DOWNSTREAM"  # with the arrows: what the root depends on, towards infrastructure
    BOTH = "BOTH"  # the union of the two


@strawberry.type
class MapNode:
    id: strawberry.ID
    name: str
    class_: str = strawberry.field(name="class")
    family: str = strawberry.field(description="The class's branch of the model (service, "
                                   "software, compute, storage, network_device, location, …).")  # fmt: skip
    status: str
    distance: int = strawberry.field(description="Hops from the root.")
    min_up: int | None = strawberry.field(
        description="A redundancy group (its members are in the map): members that must be up."
    )
    members: int | None = strawberry.field(
        description="A redundancy group: its members in the whole graph (the map may show fewer)."
    )


@strawberry.type
class MapEdge:
    source: strawberry.ID
    target: strawberry.ID
    type: str
    impact: str = strawberry.field(description="required, redundant or none (the model's).")


@strawberry.type
class DependencyMap:
    view: strawberry.Private[MapView]

    @strawberry.field
    def nodes(self) -> list[MapNode]:
        return [MapNode(id=strawberry.ID(n["id"]), name=n["name"], class_=n["class"],
                        family=n["family"], status=n["status"], distance=n["distance"],
                        min_up=n["min_up"], members=n["members"])
                for n in self.view.nodes]  # fmt: skip

    @strawberry.field
    def edges(self) -> list[MapEdge]:
        return [MapEdge(source=strawberry.ID(e["source"]), target=strawberry.ID(e["target"]),
                        type=e["type"], impact=e["impact"]) for e in self.view.edges]  # fmt: skip

    @strawberry.field(description="The map as GraphML (yEd, Gephi).")
    def graphml(self) -> str:
        return self.view.to_graphml()

    @strawberry.field(description="The map as Graphviz DOT.")
    def dot(self) -> str:
        return self.view.to_dot()

    @strawberry.field(description="The map as Cytoscape JSON.")
    def cytoscape(self) -> JSON:
        return as_json(self.view.to_cyjs())


@strawberry.type
class ModelClass:
    name: str
    family: str
    abstract: bool
    description: str


@strawberry.type
class ModelRelationshipType:
    name: str
    impact: str
    description: str


@strawberry.type
class ModelInfo:
    classes: list[ModelClass]
    relationship_types: list[ModelRelationshipType]


@strawberry.type
class MapQuery:
    @strawberry.field(
        description="The CIs around a root and the relationships among them, for a graph view "
        f"(at most {MAX_MAP_NODES:,} CIs)."
    )
    def dependency_map(
        self,
        info: Info,
        root_id: strawberry.ID,
        direction: MapDirection = MapDirection.DOWNSTREAM,
        max_depth: int | None = 3,
        types: list[str] | None = None,
    ) -> DependencyMap:
        info.context.actor("read")
        sg = info.context.sg
        view = map_view(sg.engine, sg.store, str(root_id), direction.value, max_depth, types)
        if len(view.nodes) > MAX_MAP_NODES:
            raise ValidationFailed([Problem(
                "arguments", "maxDepth", f"the map has {len(view.nodes):,} CIs, more than "
                f"{MAX_MAP_NODES:,}; lower maxDepth or filter types")], wrote=False)  # fmt: skip
        return DependencyMap(view=view)

    @strawberry.field(description="The model's classes and relationship types (for a frontend).")
    def model(self, info: Info) -> ModelInfo:
        info.context.actor("read")
        model = info.context.sg.store.model
        return ModelInfo(
            classes=[ModelClass(name=n, family=family_of(model, n), abstract=c.abstract,
                                description=c.description) for n, c in sorted(model.classes.items())],
            relationship_types=[ModelRelationshipType(name=n, impact=t.impact,
                                                      description=t.description)
                                for n, t in sorted(model.relationship_types.items())],
        )  # fmt: skip
