"""GraphQL for incident and problem management and root-cause ranking (8.1, 8.2): typed answers
(a frontend never parses a JSON blob to show why an incident is P1 or why a CI ranks first)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from servicegraph.api.graphql.changes import ChangeType, _fields
from servicegraph.api.graphql.types import CIType, Info, JournalEntryType, PageInfo, as_json
from servicegraph.errors import Problem, ValidationFailed
from servicegraph.graph.records import CI
from servicegraph.processes.incident.lifecycle import ACTIONS
from servicegraph.processes.incident.problem import PROBLEM_ACTIONS
from servicegraph.processes.incident.records import incident_state
from servicegraph.processes.incident.trends import BY

MAX_INCIDENT_PAGE = 500
MAX_IMPORT = 1000


@strawberry.enum(description="A step of the incident lifecycle.")
class IncidentAction(Enum):
    START = "start"
    HOLD = "hold"
    RESUME = "resume"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


@strawberry.enum(description="A step of the problem lifecycle.")
class ProblemAction(Enum):
    KNOWN_ERROR = "known_error"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


@strawberry.enum(description="What incident trends are counted by.")
class TrendBy(Enum):
    SERVICE = "service"
    CLASS = "class"
    PRIORITY = "priority"
    CI = "ci"
    STATE = "state"
    IMPACT_LEVEL = "impact_level"


assert tuple(a.value for a in IncidentAction) == ACTIONS, "keep IncidentAction in step"
assert tuple(a.value for a in ProblemAction) == PROBLEM_ACTIONS, "keep ProblemAction in step"
assert tuple(a.value for a in TrendBy) == BY, "keep TrendBy in step"


def _ids(values: Any) -> list[strawberry.ID]:
    return [strawberry.ID(v) for v in values or []]


@strawberry.type
class SnapshotService:
    id: strawberry.ID
    status: str
    criticality: int | None


@strawberry.type
class IncidentTargets:
    response_minutes: int | None
    response_from: str | None = strawberry.field(description="The SLA, or the policy default.")
    resolution_minutes: int | None
    resolution_from: str | None


@strawberry.type(description="The impact snapshot that set the incident's priority.")
class IncidentImpact:
    level: str
    level_because: list[str]
    urgency: str
    priority: int
    priority_because: str
    major: bool
    major_because: list[str]
    impacted: int
    down: int
    services: list[SnapshotService] = strawberry.field(description="Hit services (≤ 100).")
    service_count: int
    slas: list[strawberry.ID]
    customers: list[strawberry.ID]
    targets: IncidentTargets
    assessed_at: str

    @classmethod
    def of(cls, s: dict[str, Any]) -> IncidentImpact:
        t = s.get("targets") or {}
        return cls(
            level=s.get("level", ""), level_because=list(s.get("level_because") or []),
            urgency=s.get("urgency", ""), priority=int(s.get("priority") or 0),
            priority_because=s.get("priority_because", ""), major=bool(s.get("major")),
            major_because=list(s.get("major_because") or []), impacted=int(s.get("impacted") or 0),
            down=int(s.get("down") or 0),
            services=[SnapshotService(id=strawberry.ID(v["id"]), status=v["status"],
                                      criticality=v.get("criticality"))
                      for v in s.get("services") or []],
            service_count=int(s.get("service_count") or 0), slas=_ids(s.get("slas")),
            customers=_ids(s.get("customers")),
            targets=IncidentTargets(
                response_minutes=t.get("response_minutes"), response_from=t.get("response_from"),
                resolution_minutes=t.get("resolution_minutes"),
                resolution_from=t.get("resolution_from")),
            assessed_at=s.get("assessed_at", ""),
        )  # fmt: skip


@strawberry.type
class SlaTimer:
    kind: str = strawberry.field(description="response or resolution")
    target_minutes: int
    elapsed_minutes: float
    remaining_minutes: float
    due_at: str
    breached: bool
    stopped: bool = strawberry.field(description="The clock stopped (responded / resolved).")
    from_: str | None = strawberry.field(name="from")


@strawberry.type
class Suggestion:
    id: strawberry.ID
    class_: str = strawberry.field(name="class")
    name: str
    state: str | None
    ci: strawberry.ID = strawberry.field(description="The CI it affects.")
    distance: int = strawberry.field(description="Hops from the incident's CIs.")
    workaround: str | None


@strawberry.type
class SuspectChange:
    change: strawberry.ID
    name: str
    implemented_at: str
    outcome: str | None
    hours_before: float
    ci: strawberry.ID
    status: str = strawberry.field(description="TARGET, DOWN or DEGRADED")
    path: list[strawberry.ID]


@strawberry.type(name="Incident", description="An incident (8.1).")
class IncidentType:
    id: strawberry.ID
    name: str
    version: int
    state: str
    priority: int | None
    urgency: str | None
    impact_level: str | None
    major: bool
    opened_at: str | None
    responded_at: str | None
    resolved_at: str | None
    closed_at: str | None
    resolution: str | None
    attributes: JSON

    @classmethod
    def of(cls, c: CI) -> IncidentType:
        a = c.attributes
        return cls(
            id=strawberry.ID(c.id), name=c.name, version=c.version or 0,
            state=incident_state(c), priority=a.get("priority"), urgency=a.get("urgency"),
            impact_level=a.get("impact_level"), major=bool(a.get("major")),
            opened_at=a.get("opened_at"), responded_at=a.get("responded_at"),
            resolved_at=a.get("resolved_at"), closed_at=a.get("closed_at"),
            resolution=a.get("resolution"), attributes=as_json(a),
        )  # fmt: skip

    @strawberry.field(description="The impact snapshot that set its priority (null if none).")
    def impact(self) -> IncidentImpact | None:
        attributes: Any = self.attributes
        data = attributes.get("impact")
        return IncidentImpact.of(data) if isinstance(data, dict) else None

    @strawberry.field(description="The CIs it affects.")
    async def affects(self, info: Info) -> list[CIType]:
        ids = info.context.sg.incidents.affects(str(self.id))
        found = await info.context.loaders.cis.load_many(ids)
        return [CIType.of(ci) for ci in found if ci is not None]

    @strawberry.field(description="Response and resolution clocks, computed now.")
    def timers(self, info: Info) -> list[SlaTimer]:
        clocks = info.context.sg.incidents.timers(str(self.id))
        return [SlaTimer(kind=k, target_minutes=v["target_minutes"],
                         elapsed_minutes=v["elapsed_minutes"],
                         remaining_minutes=v["remaining_minutes"], due_at=v["due_at"],
                         breached=v["breached"], stopped=v["stopped"], from_=v["from"])
                for k, v in clocks.items()]  # fmt: skip

    @strawberry.field(description="The problem it is linked to.")
    def problem(self, info: Info) -> strawberry.ID | None:
        found = info.context.sg.incidents.problem_of(str(self.id))
        return strawberry.ID(found) if found else None

    @strawberry.field(description="Open known errors and problems on its CIs or their "
                      "dependencies, nearest first: try their workaround first.")  # fmt: skip
    def suggestions(self, info: Info) -> list[Suggestion]:
        return [Suggestion(id=strawberry.ID(s["id"]), class_=s["class"], name=s["name"],
                           state=s["state"], ci=strawberry.ID(s["ci"]), distance=s["distance"],
                           workaround=s["workaround"])
                for s in info.context.sg.incidents.suggestions(str(self.id))]  # fmt: skip

    @strawberry.field(description="Changes implemented shortly before it with one of its CIs "
                      "in their blast radius (change-induced?), with the path.")  # fmt: skip
    def suspect_changes(self, info: Info) -> list[SuspectChange]:
        return [SuspectChange(change=strawberry.ID(s["change"]), name=s["name"],
                              implemented_at=s["implemented_at"], outcome=s["outcome"],
                              hours_before=s["hours_before"], ci=strawberry.ID(s["ci"]),
                              status=s["status"], path=_ids(s["path"]))
                for s in info.context.sg.incidents.suspect_changes(str(self.id))]  # fmt: skip

    @strawberry.field(description="Every journaled write of the incident, with actor and reason.")
    def history(self, info: Info) -> list[JournalEntryType]:
        return [JournalEntryType.of(e) for e in info.context.sg.store.journal(entity=str(self.id))]


@strawberry.type
class IncidentEdge:
    cursor: str
    node: IncidentType


@strawberry.type
class IncidentConnection:
    edges: list[IncidentEdge]
    page_info: PageInfo


@strawberry.input
class IncidentFilter:
    states: list[str] | None = None
    priority: int | None = None
    major: bool | None = None
    ci: strawberry.ID | None = strawberry.field(default=None, description="Affecting this CI.")


@strawberry.type
class SlaBreach:
    incident: strawberry.ID
    name: str
    state: str
    priority: int | None
    kind: str
    target_minutes: int
    elapsed_minutes: float
    overdue_minutes: float
    still_running: bool
    from_: str | None = strawberry.field(name="from")


@strawberry.type
class KnownErrorType:
    id: strawberry.ID
    name: str
    state: str | None
    workaround: str | None


@strawberry.type
class Effectiveness:
    verdict: str = strawberry.field(description="effective, recurring, not resolved yet …")
    resolved_at: str | None
    incidents_before: list[strawberry.ID]
    incidents_after: list[strawberry.ID]
    period_days: float | None


@strawberry.type(name="Problem", description="A problem (8.2).")
class ProblemType:
    id: strawberry.ID
    name: str
    version: int
    state: str
    attributes: JSON

    @classmethod
    def of(cls, c: CI) -> ProblemType:
        return cls(id=strawberry.ID(c.id), name=c.name, version=c.version or 0,
                   state=c.attributes.get("state", ""), attributes=as_json(c.attributes))  # fmt: skip

    @strawberry.field
    def root_causes(self, info: Info) -> list[strawberry.ID]:
        return _ids(info.context.sg.problems.root_causes(str(self.id)))

    @strawberry.field
    def incidents(self, info: Info) -> list[strawberry.ID]:
        return _ids(info.context.sg.problems.incidents(str(self.id)))

    @strawberry.field
    def known_errors(self, info: Info) -> list[KnownErrorType]:
        return [KnownErrorType(id=strawberry.ID(k.id), name=k.name, state=k.attributes.get("state"),
                               workaround=k.attributes.get("workaround"))
                for k in info.context.sg.problems.known_errors(str(self.id))]  # fmt: skip

    @strawberry.field(description="RFCs raised from it.")
    def changes(self, info: Info) -> list[strawberry.ID]:
        return _ids(info.context.sg.problems.details(str(self.id))["changes"])

    @strawberry.field(description="Incidents on its root-cause CIs before and after it was "
                      "resolved.")  # fmt: skip
    def effectiveness(self, info: Info) -> Effectiveness:
        e = info.context.sg.problems.effectiveness(str(self.id))
        return Effectiveness(verdict=e["verdict"], resolved_at=e["resolved_at"],
                             incidents_before=_ids(e["incidents_before"]),
                             incidents_after=_ids(e["incidents_after"]),
                             period_days=e.get("period_days"))  # fmt: skip


@strawberry.type
class ScoreFactor:
    factor: str
    value: JSON | None
    points: float
    meaning: str


@strawberry.type
class IncidentPath:
    incident: strawberry.ID
    path: list[strawberry.ID] = strawberry.field(description="[candidate … affected CI]")


@strawberry.type
class RecentChange:
    change: strawberry.ID
    implemented_at: str
    outcome: str | None


@strawberry.type
class RootCauseCandidate:
    id: strawberry.ID
    class_: str = strawberry.field(name="class")
    name: str
    score: float
    factors: list[ScoreFactor]
    explains: list[strawberry.ID]
    degraded: list[strawberry.ID] = strawberry.field(
        description="Incidents it explains only as DEGRADED (through redundancy)."
    )
    paths: list[IncidentPath]
    distance: float = strawberry.field(description="Mean hops to the CIs it explains.")
    silent: list[strawberry.ID]
    silent_count: int
    recent_changes: list[RecentChange]
    known_errors: list[Suggestion]
    ties_with: list[strawberry.ID]
    ties_count: int

    @classmethod
    def of(cls, c: dict[str, Any]) -> RootCauseCandidate:
        return cls(
            id=strawberry.ID(c["id"]), class_=c["class"], name=c["name"], score=c["score"],
            factors=[ScoreFactor(factor=f["factor"], value=as_json(f["value"]),
                                 points=f["points"], meaning=f["meaning"]) for f in c["factors"]],
            explains=_ids(c["explains"]), degraded=_ids(c["degraded"]),
            paths=[IncidentPath(incident=strawberry.ID(i), path=_ids(p))
                   for i, p in c["paths"].items()],
            distance=c["distance"], silent=_ids(c["silent"]), silent_count=c["silent_count"],
            recent_changes=[RecentChange(change=strawberry.ID(r["change"]),
                                         implemented_at=r["implemented_at"], outcome=r["outcome"])
                            for r in c["recent_changes"]],
            known_errors=[Suggestion(id=strawberry.ID(k["id"]), class_=k["class"], name=k["name"],
                                     state=k.get("state"), ci=strawberry.ID(c["id"]), distance=0,
                                     workaround=k.get("workaround"))
                          for k in c["known_errors"]],
            ties_with=_ids(c["ties_with"]), ties_count=c["ties_count"],
        )  # fmt: skip


@strawberry.type
class RootCauseGroup:
    group: int
    incidents: list[strawberry.ID]
    unexplained: bool
    candidates: list[RootCauseCandidate]


@strawberry.type
class RootCauses:
    incidents: list[strawberry.ID]
    window_from: str | None
    window_to: str | None
    candidates: list[RootCauseCandidate]
    groups: list[RootCauseGroup]


@strawberry.type
class IncidentTrendRow:
    period: str
    key: str
    incidents: int


@strawberry.type
class ChangeIncident:
    incident: strawberry.ID
    name: str
    opened_at: str
    hours_after: float
    priority: int | None
    ci: strawberry.ID
    status: str
    path: list[strawberry.ID]


@strawberry.input
class IncidentInput:
    summary: str
    affects: list[strawberry.ID]
    id: strawberry.ID | None = None
    urgency: str | None = None
    opened_at: str | None = None
    description: str | None = None
    source: str | None = None


@strawberry.type
class ImportResult:
    created: list[strawberry.ID]
    existing: list[strawberry.ID]


@strawberry.input
class ProblemInput:
    id: strawberry.ID
    name: str
    incident_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    root_cause_ids: list[strawberry.ID] = strawberry.field(default_factory=list)
    description: str | None = None
    evidence: JSON | None = strawberry.field(
        default=None, description="E.g. the rootCauses group it was recorded from."
    )


def _check_page(first: int, cap: int) -> None:
    if not 1 <= first <= cap:
        raise ValidationFailed(
            [Problem("arguments", "first", f"must be between 1 and {cap:,}, got {first:,}")],
            wrote=False,
        )


@strawberry.type
class IncidentQuery:
    @strawberry.field(description="One incident (NOT_FOUND if there is none).")
    def incident(self, info: Info, id: strawberry.ID) -> IncidentType:
        info.context.actor("read")
        return IncidentType.of(info.context.sg.incidents.get(str(id)))

    @strawberry.field(description="Incidents by id, filtered, a page at a time.")
    def incidents(
        self,
        info: Info,
        filter: IncidentFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> IncidentConnection:
        info.context.actor("read")
        _check_page(first, MAX_INCIDENT_PAGE)
        f = filter or IncidentFilter()
        page = info.context.sg.incidents.find(f.states, f.priority, f.major,
                                              str(f.ci) if f.ci else None, first, after)  # fmt: skip
        from servicegraph.graph.records import ci_cursor

        return IncidentConnection(
            edges=[IncidentEdge(cursor=ci_cursor(c, "id", False), node=IncidentType.of(c))
                   for c in page.items],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )  # fmt: skip

    @strawberry.field(description="Major incidents, newest first (open ones unless all).")
    def major_incidents(self, info: Info, all: bool = False) -> list[IncidentType]:
        info.context.actor("read")
        return [IncidentType.of(c) for c in info.context.sg.incidents.major(open_only=not all)]

    @strawberry.field(description="Breached response/resolution targets, computed now.")
    def sla_breaches(self, info: Info, open_only: bool = False) -> list[SlaBreach]:
        info.context.actor("read")
        return [SlaBreach(incident=strawberry.ID(b["incident"]), name=b["name"], state=b["state"],
                          priority=b["priority"], kind=b["kind"],
                          target_minutes=b["target_minutes"], elapsed_minutes=b["elapsed_minutes"],
                          overdue_minutes=b["overdue_minutes"], still_running=b["still_running"],
                          from_=b["from"])
                for b in info.context.sg.incidents.breaches(open_only)]  # fmt: skip

    @strawberry.field(description="One problem (NOT_FOUND if there is none).")
    def problem(self, info: Info, id: strawberry.ID) -> ProblemType:
        info.context.actor("read")
        return ProblemType.of(info.context.sg.problems.get(str(id)))

    @strawberry.field(description="Root-cause ranking of the given incidents, or of those opened "
                      "in [from, to) and not closed (default: the last 24 h).")  # fmt: skip
    def root_causes(
        self,
        info: Info,
        incident_ids: list[strawberry.ID] | None = None,
        from_: Annotated[str | None, strawberry.argument(name="from")] = None,
        to: str | None = None,
        limit: int = 10,
    ) -> RootCauses:
        info.context.actor("read")
        _check_page(limit, 100)
        ids = [str(i) for i in incident_ids] if incident_ids else None
        r = info.context.sg.root_causes(ids, from_, to, limit)
        return RootCauses(
            incidents=_ids(r.incidents), window_from=r.window["from"], window_to=r.window["to"],
            candidates=[RootCauseCandidate.of(c) for c in r.candidates],
            groups=[RootCauseGroup(group=g["group"], incidents=_ids(g["incidents"]),
                                   unexplained=g["unexplained"],
                                   candidates=[RootCauseCandidate.of(c) for c in g["candidates"]])
                    for g in r.groups],
        )  # fmt: skip

    @strawberry.field(description="Incidents per period (freq: D, W, M …) and key.")
    def incident_trends(
        self,
        info: Info,
        by: TrendBy = TrendBy.SERVICE,
        freq: str = "W",
        from_: Annotated[str | None, strawberry.argument(name="from")] = None,
        to: str | None = None,
    ) -> list[IncidentTrendRow]:
        info.context.actor("read")
        frame = info.context.sg.incident_trends(by.value, freq, from_, to)
        return [IncidentTrendRow(period=p.date().isoformat(), key=str(k), incidents=int(n))
                for p, k, n in frame.itertuples(index=False, name=None)]  # fmt: skip

    @strawberry.field(description="Incidents in a change's blast radius opened within the "
                      "window after it was implemented (default: the policy's hours).")  # fmt: skip
    def incidents_after_change(
        self, info: Info, id: strawberry.ID, hours: float | None = None
    ) -> list[ChangeIncident]:
        info.context.actor("read")
        found = info.context.sg.incidents.after_change(str(id), hours)["incidents"]
        return [ChangeIncident(incident=strawberry.ID(i["incident"]), name=i["name"],
                               opened_at=i["opened_at"], hours_after=i["hours_after"],
                               priority=i["priority"], ci=strawberry.ID(i["ci"]),
                               status=i["status"], path=_ids(i["path"]))
                for i in found]  # fmt: skip


@strawberry.type
class IncidentMutation:
    @strawberry.mutation(description="Record an incident, prioritised from the graph.")
    def record_incident(self, info: Info, incident: IncidentInput) -> IncidentType:
        actor = info.context.actor("work_incidents")
        i = incident
        created = info.context.sg.incidents.record(
            i.summary, [str(c) for c in i.affects], actor, str(i.id) if i.id else None,
            i.urgency, i.opened_at, i.description, i.source,
        )  # fmt: skip
        return IncidentType.of(created)

    @strawberry.mutation(description="Bulk intake in one transaction; existing ids are left "
                         "alone (idempotent); every problem is listed.")  # fmt: skip
    def import_incidents(self, info: Info, incidents: list[IncidentInput]) -> ImportResult:
        actor = info.context.actor("work_incidents")
        if len(incidents) > MAX_IMPORT:
            raise ValidationFailed([Problem("arguments", "incidents",
                                            f"at most {MAX_IMPORT:,} per request")], wrote=False)  # fmt: skip
        items = [{k: v for k, v in {
            "id": str(i.id) if i.id else None, "summary": i.summary,
            "affects": [str(c) for c in i.affects], "urgency": i.urgency,
            "opened_at": i.opened_at, "description": i.description, "source": i.source,
        }.items() if v is not None} for i in incidents]  # fmt: skip
        result = info.context.sg.incidents.import_incidents(items, actor)
        return ImportResult(created=_ids(result["created"]), existing=_ids(result["existing"]))

    @strawberry.mutation(description="Move an incident through its lifecycle (RULE_VIOLATION "
                         "names the rule).")  # fmt: skip
    def transition_incident(
        self,
        info: Info,
        id: strawberry.ID,
        action: IncidentAction,
        reason: str = "",
        resolution: str | None = None,
    ) -> IncidentType:
        actor = info.context.actor("work_incidents")
        return IncidentType.of(info.context.sg.incidents.transition(
            str(id), action.value, actor, reason, resolution))  # fmt: skip

    @strawberry.mutation(description="Assess the incident again on today's graph.")
    def reprioritise_incident(
        self, info: Info, id: strawberry.ID, urgency: str | None = None
    ) -> IncidentType:
        actor = info.context.actor("work_incidents")
        return IncidentType.of(info.context.sg.incidents.reprioritise(str(id), actor, urgency))

    @strawberry.mutation(description="Record a problem linked to incidents and root-cause CIs "
                         "(e.g. a rootCauses group and its best candidate).")  # fmt: skip
    def record_problem(self, info: Info, problem: ProblemInput) -> ProblemType:
        actor = info.context.actor("manage_problems")
        p = problem
        evidence: Any = p.evidence
        created = info.context.sg.problems.create(
            str(p.id), p.name, actor, [str(i) for i in p.incident_ids],
            [str(c) for c in p.root_cause_ids], p.description, evidence,
        )  # fmt: skip
        return ProblemType.of(created)

    @strawberry.mutation(description="Link incidents and root-cause CIs to a problem.")
    def link_problem(
        self,
        info: Info,
        id: strawberry.ID,
        incident_ids: list[strawberry.ID] | None = None,
        root_cause_ids: list[strawberry.ID] | None = None,
    ) -> ProblemType:
        actor = info.context.actor("manage_problems")
        return ProblemType.of(info.context.sg.problems.link(
            str(id), actor, [str(i) for i in incident_ids or []],
            [str(c) for c in root_cause_ids or []]))  # fmt: skip

    @strawberry.mutation(description="Move a problem through its lifecycle.")
    def transition_problem(
        self,
        info: Info,
        id: strawberry.ID,
        action: ProblemAction,
        reason: str = "",
        workaround: str | None = None,
        known_error_id: strawberry.ID | None = None,
        resolution: str | None = None,
    ) -> ProblemType:
        actor = info.context.actor("manage_problems")
        return ProblemType.of(info.context.sg.problems.transition(
            str(id), action.value, actor, reason, known_error_id=str(known_error_id)
            if known_error_id else None, workaround=workaround, resolution=resolution))  # fmt: skip

    @strawberry.mutation(description="Raise an RFC to remove a problem's cause (targets its "
                         "root-cause CIs unless given), RAISED_FROM the problem.")  # fmt: skip
    def raise_change_from_problem(
        self,
        info: Info,
        problem_id: strawberry.ID,
        change_id: strawberry.ID,
        name: str,
        change_type: str = "normal",
        targets: list[strawberry.ID] | None = None,
        fields: JSON | None = None,
    ) -> ChangeType:
        actor = info.context.actor("manage_problems")
        sg = info.context.sg
        created = sg.problems.raise_change(sg.changes, str(problem_id), str(change_id), name,
                                           actor, change_type, [str(t) for t in targets or []],
                                           **_fields(fields or {}))  # fmt: skip
        return ChangeType.of(created)
