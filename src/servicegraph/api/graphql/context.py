"""Per-request context: the caller (from the bearer token) and DataLoaders created per request."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from servicegraph.api.python import ServiceGraph
from servicegraph.graph.records import CI, Relationship
from servicegraph.processes.access import Actor, authenticate, require


@dataclass
class Loaders:
    cis: DataLoader[str, CI | None]
    relationships: DataLoader[str, list[Relationship]]


def make_loaders(sg: ServiceGraph) -> Loaders:
    async def load_cis(ids: Sequence[str]) -> list[CI | None]:
        found = sg.store.get_cis(list(ids))
        return [found.get(i) for i in ids]

    async def load_relationships(ids: Sequence[str]) -> list[list[Relationship]]:
        by_ci: dict[str, list[Relationship]] = {i: [] for i in ids}
        for rel in sg.store.relationships_of(list(ids)):
            for end in (rel.source, rel.target):
                if end in by_ci:
                    by_ci[end].append(rel)
        return [by_ci[i] for i in ids]

    return Loaders(DataLoader(load_cis), DataLoader(load_relationships))


@dataclass
class Context(BaseContext):
    sg: ServiceGraph
    authorization: str | None
    loaders: Loaders = field(init=False)
    # where the server runs the request when it already knows (a quick query the event loop
    # declined: "small" while the engine is busy, "large" when its answer proved large)
    lane: str | None = field(default=None, init=False)
    _actor: Actor | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.loaders = make_loaders(self.sg)

    def renew_loaders(self) -> None:
        """Fresh DataLoaders, for a request executed again on another event loop (a loader's
        futures belong to the loop that made them)."""
        self.loaders = make_loaders(self.sg)

    def actor(self, permission: str = "read") -> Actor:
        """The authenticated caller, checked for ``permission`` (typed errors otherwise)."""
        if self._actor is None:
            self._actor = authenticate(self.sg.store, self.authorization)
        require(self._actor, permission)
        return self._actor
