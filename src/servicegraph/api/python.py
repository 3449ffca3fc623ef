"""The Python interface: ``servicegraph.connect(...)`` returns a handle on the same processes the
CLI and GraphQL use, answering with pandas DataFrames and networkx graphs for notebooks.

>>> import tempfile, os
>>> sg = connect(os.path.join(tempfile.mkdtemp(), "doc.db"))
>>> _ = sg.load_demo(300)
>>> result = sg.impact(["dns-000001"])
>>> result.total_impacted > 20 and result.to_dict()["impacted"][0]["path"][0] == "dns-000001"
True
>>> sg.close()
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servicegraph.graph.connection import open_store, resolve_model
from servicegraph.graph.records import WriteResult
from servicegraph.graph.store import GraphStore
from servicegraph.processes import interchange
from servicegraph.processes.demo import generate_estate
from servicegraph.processes.listing import CIQuery

if TYPE_CHECKING:  # numpy, pandas, networkx and numba load when an analysis needs them
    import networkx as nx
    import pandas as pd

    from servicegraph.api.maps import MapView
    from servicegraph.graph.engine import Direction, TopologyEngine
    from servicegraph.processes.audit.health import HealthResult
    from servicegraph.processes.availability import AvailabilityResult
    from servicegraph.processes.change import ChangeManager
    from servicegraph.processes.impact import ImpactResult
    from servicegraph.processes.incident.lifecycle import IncidentManager
    from servicegraph.processes.incident.problem import ProblemManager
    from servicegraph.processes.incident.rca import RootCauseResult
    from servicegraph.processes.release import ReleaseManager
    from servicegraph.processes.topology import MapDirection

__all__ = ["ServiceGraph", "connect"]


class ServiceGraph:
    """A connected servicegraph: store, topology engine and the processes on them."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._engine: TopologyEngine | None = None
        self._changes: ChangeManager | None = None
        self._incidents: IncidentManager | None = None
        self._cleanup: Path | None = None

    @property
    def engine(self) -> TopologyEngine:
        """The topology engine, built on first use and refreshed from the journal before each
        analysis."""
        if self._engine is None:
            from servicegraph.graph.engine import TopologyEngine

            self._engine = TopologyEngine(self.store)
        return self._engine

    @property
    def changes(self) -> ChangeManager:
        """Change management (RFC lifecycle, assessment, schedule, trends)."""
        if self._changes is None:
            from servicegraph.processes.change import ChangeManager

            self._changes = ChangeManager(self.store, self.engine)
        return self._changes

    @property
    def releases(self) -> ReleaseManager:
        """Release management (baselines, deployment, rollback, incidents after)."""
        from servicegraph.processes.release import ReleaseManager

        return ReleaseManager(self.store, self.engine)

    @property
    def incidents(self) -> IncidentManager:
        """Incident management: record (prioritised from the graph), lifecycle, bulk intake,
        SLA breaches, major incidents, suggestions, change-induced incidents."""
        if self._incidents is None:
            from servicegraph.processes.incident.lifecycle import IncidentManager

            self._incidents = IncidentManager(self.store, self.engine)
        return self._incidents

    @property
    def problems(self) -> ProblemManager:
        """Problem management: problems, root causes, known errors, RFCs, effectiveness."""
        from servicegraph.processes.incident.problem import ProblemManager

        return ProblemManager(self.store, self.engine)

    def root_causes(
        self,
        incidents: Collection[str] | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int = 10,
    ) -> RootCauseResult:
        """Which CI's failure best explains these incidents (or those opened in [start, end)
        and not closed; default the last 24 h): candidates best first with every factor of
        their score, paths and silent CIs, and the incidents grouped by best explanation."""
        from servicegraph.processes.incident.rca import root_causes

        return root_causes(self.engine, self.store, self.incidents.rules, incidents, start, end,
                           limit)  # fmt: skip

    def incident_frame(self, start: str | None = None, end: str | None = None) -> pd.DataFrame:
        """One row per incident: priority, times, hours to resolve, CIs and their class, services
        hit, SLA breach (computed now), linked problem, change-induced."""
        from servicegraph.processes.incident.trends import incident_frame

        return incident_frame(self.engine, self.store, self.incidents.rules, start, end)

    def incident_trends(
        self,
        by: str = "service",
        freq: str = "W",
        start: str | None = None,
        end: str | None = None,
    ) -> pd.DataFrame:
        """Incidents per period (pandas ``freq``: D, W, M …) and ``by`` (service, class,
        priority, ci, state, impact_level): period, key, incidents."""
        from servicegraph.processes.incident.trends import incident_trends

        return incident_trends(self.incident_frame(start, end), by, freq)

    def service_reliability(self, start: str | None = None, end: str | None = None) -> pd.DataFrame:
        """Per service: incidents, MTTR and MTBF (hours)."""
        from servicegraph.processes.incident.trends import service_reliability

        return service_reliability(self.incident_frame(start, end))

    def recurring_cis(
        self, minimum: int | None = None, start: str | None = None, end: str | None = None
    ) -> pd.DataFrame:
        """CIs with at least ``minimum`` incidents (default: the policy's), most first."""
        from servicegraph.processes.incident.trends import recurring_cis

        least = minimum if minimum is not None else self.incidents.rules.recurring_min_incidents
        return recurring_cis(self.incident_frame(start, end), least)

    def incident_figures(
        self, start: str | None = None, end: str | None = None, top: int = 8
    ) -> dict[str, Any]:
        """The analyst's plotly figures: incidents per week by service (stacked), heat map
        service × week, Pareto of root-cause classes, MTTR trend."""
        from servicegraph.api.incident_figures import incident_figures

        return incident_figures(self.incident_frame(start, end), top)

    def health(
        self, cls: str | None = None, service: str | None = None, policy: str | None = None
    ) -> HealthResult:
        """CMDB health (9.1): completeness, correctness and compliance scores 0..100 of the live
        CIs (of ``cls``; in ``service``'s dependency closure), per class, with every finding
        (rule, CI, detail, fix); ``.to_dict()``, ``.to_frame()``, ``.figure()``. Rules: the audit
        policy (``policy`` or ``SERVICEGRAPH_AUDIT_POLICY`` over the shipped one)."""
        from servicegraph.processes.audit.health import cmdb_health
        from servicegraph.processes.audit.policy import load_audit_policy

        rules = load_audit_policy(self.store.model, policy)
        return cmdb_health(self.engine, self.store, rules, cls, service)

    def reconcile(
        self, feed: Any, source: str, apply: bool = False, policy: str | None = None
    ) -> dict[str, Any]:
        """Identify a discovery feed's records against the CMDB (matched, new, missing, drift,
        ambiguous); with ``apply``, write what the reconciliation rules allow ``source`` (one
        transaction, ``source`` as actor). ``feed``: {"records": [...]} or the list."""
        from servicegraph.processes.audit.policy import load_audit_policy
        from servicegraph.processes.audit.reconcile import reconcile

        rules = load_audit_policy(self.store.model, policy)
        return reconcile(self.store, rules, feed, source, apply)

    def health_trend(
        self, points: list[str], cls: str | None = None, policy: str | None = None
    ) -> pd.DataFrame:
        """CMDB health as of each point (seq, ISO 8601 time or baseline id), from the journal
        alone (one replay for all points; each judged at its own time): point, seq, at, score,
        completeness, correctness, compliance, CIs."""
        import pandas as pd

        from servicegraph.processes.audit.policy import load_audit_policy
        from servicegraph.processes.audit.timetravel import health_over_time

        rules = load_audit_policy(self.store.model, policy)
        return pd.DataFrame(health_over_time(self.store, rules, points, cls))

    def diff(self, start: str | int, end: str | int | None = None) -> dict[str, Any]:
        """What changed from ``start`` to ``end`` (default now): each a journal seq, an ISO 8601
        time or a baseline id. CIs created, updated (attribute by attribute), retired, deleted;
        relationships added, removed; each with who changed it, when and why."""
        from servicegraph.processes.audit.timetravel import diff

        return diff(self.store, start, end)

    def as_of(self, point: str | int) -> ServiceGraph:
        """The graph as it was at ``point`` (a seq, an ISO 8601 time or a baseline id), rebuilt
        from the journal into a temporary store: ``sg.as_of(t).impact([...])`` is the blast
        radius on the day. Close it (or use ``with``) to remove the temporary store."""
        import shutil
        import tempfile

        from servicegraph.processes.audit.timetravel import open_as_of

        directory = Path(tempfile.mkdtemp(prefix="servicegraph-as-of-"))
        try:
            past = ServiceGraph(open_as_of(self.store, point, directory))
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        past._cleanup = directory
        return past

    def dependency_map(
        self,
        root: str,
        direction: str = "DOWNSTREAM",
        max_depth: int | None = 3,
        types: list[str] | None = None,
    ) -> MapView:
        """The CIs around ``root`` (``DOWNSTREAM``: what it needs, ``UPSTREAM``: what needs it,
        ``BOTH``) within ``max_depth`` hops, labelled (``.nodes``, ``.edges``, ``.ids``); ``.to_graphml()``, ``.to_dot()``,
        ``.to_cyjs()``, ``.to_html()`` (the interactive map in one file), ``.to_networkx()``."""
        from servicegraph.api.maps import map_view
        from servicegraph.errors import Problem, ValidationFailed

        if direction not in ("DOWNSTREAM", "UPSTREAM", "BOTH"):
            raise ValidationFailed([Problem("map", "direction",
                                            f"{direction!r}: DOWNSTREAM, UPSTREAM or BOTH")])  # fmt: skip
        return map_view(self.engine, self.store, root, direction, max_depth, types)  # type: ignore[arg-type]

    def impact(self, ci_ids: Collection[str], max_depth: int | None = None) -> ImpactResult:
        from servicegraph.processes.impact import analyse_impact

        return analyse_impact(self.engine, ci_ids, max_depth)

    def availability(
        self,
        service_id: str,
        overrides: dict[str, dict[str, Any]] | None = None,
        detail: bool = True,
    ) -> AvailabilityResult:
        """The availability ``service_id`` can reach from its model: exact (BDD) with shared
        components and k-of-n groups, its SPOFs, minimal cut sets (order ≤ 3) and component
        importance; ``overrides = {ci: {"availability": 0.999, "min_up": 2}}`` is a what-if;
        ``detail=False`` computes availability and SPOFs only (to sweep many services)."""
        from servicegraph.processes.availability import availability

        return availability(self.engine, self.store, service_id, overrides, detail=detail)

    def sla_risk(self) -> pd.DataFrame:
        """Every SLA's covered services: computed availability vs target, gap, causes."""
        import pandas as pd

        from servicegraph.processes.availability.sla import sla_risk

        return pd.DataFrame(sla_risk(self.engine, self.store))

    def supplier_alignment(self) -> dict[str, Any]:
        """Supplier commitments against the live SLAs that depend on them, with the commitment
        each SLA would need, and expired contracts under live SLAs."""
        from servicegraph.processes.availability.sla import supplier_alignment

        return supplier_alignment(self.engine, self.store)

    def achieved_availability(
        self, start: str, end: str, services: list[str] | None = None
    ) -> pd.DataFrame:
        """Per service and month in [start, end): outage minutes (the union of the incidents
        that took it DOWN), achieved, SLA target and designed availability."""
        from servicegraph.processes.availability.achieved import achieved_availability

        return achieved_availability(self.engine, self.store, start, end, services)

    def achieved_figure(self, start: str, end: str, service: str) -> Any:
        """The plotly figure of :meth:`achieved_availability` for one service."""
        from servicegraph.api.figures import achieved_figure

        return achieved_figure(self.achieved_availability(start, end, [service]), service)

    def reach(
        self,
        ci_ids: Collection[str],
        direction: Direction = "up",
        max_depth: int | None = None,
        types: Collection[str] | None = None,
    ) -> dict[str, int]:
        return self.engine.reach(ci_ids, direction, max_depth, types)

    def map_figure(
        self, root: str, direction: MapDirection = "DOWNSTREAM", max_depth: int | None = 3
    ) -> Any:
        """The dependency map of ``root`` as a plotly figure (layers by hops, colour by class)."""
        from servicegraph.api.figures import dependency_map_figure
        from servicegraph.processes.topology import dependency_map

        found = dependency_map(self.engine, root, direction, max_depth)
        return dependency_map_figure(found, self.store.labels(list(found.nodes)))

    def subgraph(self, ci_ids: Collection[str]) -> nx.DiGraph:
        """The induced subgraph of ``ci_ids`` as networkx, nodes with ``class`` and ``name``."""
        graph = self.engine.subgraph(ci_ids)
        for ci in self.store.get_cis(list(ci_ids)).values():
            graph.nodes[ci.id]["name"] = ci.name
        return graph

    def cis(
        self,
        cls: str | None = None,
        text: str | None = None,
        sort: str = "id",
        descending: bool = False,
        **attributes: Any,
    ) -> pd.DataFrame:
        """CIs (of ``cls`` and its subclasses; whose id or name contains ``text``; with these
        attribute values, typed by the model) as a frame: id, class, name, version, attributes."""
        import pandas as pd

        query = CIQuery(cls, attributes, text, sort, descending)
        rows, after = [], None
        while True:
            page = query.page(self.store, first=1000, after=after)
            rows += [
                {"id": c.id, "class": c.cls, "name": c.name, "version": c.version, **c.attributes}
                for c in page.items
            ]
            if not page.has_next:
                return pd.DataFrame(rows, columns=None if rows else ["id", "class", "name"])
            after = page.end_cursor

    def search(self, text: str, cls: str | None = None) -> pd.DataFrame:
        """CIs whose id or name contains ``text`` (case-insensitive), by name."""
        return self.cis(cls, text=text, sort="name")

    def relationships(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [r.to_dict() for r in self.store.iter_relationships()],
            columns=["source", "type", "target", "attributes"],
        )

    def history(self, entity: str) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([e.to_dict() for e in self.store.journal(entity=entity)])

    def import_files(
        self, *paths: str | Path, actor: str = "python", replace: bool = False
    ) -> WriteResult:
        """Import files; existing records merge unless ``replace``."""
        return interchange.import_files(self.store, paths, actor, replace=replace)

    def load_demo(
        self,
        size: int = 2000,
        seed: int = 7,
        progress: Callable[[int, int], None] | None = None,
    ) -> WriteResult:
        """Load the demo estate (journaled a year ago, with a year of configuration history since:
        discovery, a CMDB clean-up, vCenter syncs, retirements), then the records every process
        needs (RFCs in several states with real assessments, a release, a year of incidents,
        problems, blackout windows)."""
        import datetime as dt
        import random

        from servicegraph.processes.audit.demo_audit import YEAR, seed_config_history
        from servicegraph.processes.demo_records import seed_process_records
        from servicegraph.processes.times import iso

        now = dt.datetime.now(dt.UTC)
        # journaled a year ago, then a year of configuration history up to now
        result = self.store.write(generate_estate(size, seed), "demo", progress=progress,
                                  at=iso(now - YEAR))  # fmt: skip
        seed_config_history(self, random.Random(seed + 1), now - dt.timedelta(days=1))
        seed_process_records(self, seed)
        return result

    def close(self) -> None:
        self.store.close()
        if self._cleanup is not None:  # an as-of picture: its temporary store goes with it
            import shutil

            shutil.rmtree(self._cleanup, ignore_errors=True)
            self._cleanup = None

    def __enter__(self) -> ServiceGraph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    target: str | Path | None = None,
    model_files: Collection[str | Path] = (),
    create: bool = True,
) -> ServiceGraph:
    """Open a store: a SQLite path, a ``bolt://``/``neo4j://`` URI, or (None) the environment's.

    A SQLite file that does not exist is created, unless ``create=False``."""
    model = resolve_model([str(m) for m in model_files])
    return ServiceGraph(open_store(target, model, create=create))
