"""Incident management (ISO/IEC 20000-1 8.1): recording, prioritising from the graph, the
lifecycle, bulk intake from monitoring, and the queries the desk works from.

An incident is an ``incident`` record that ``AFFECTS`` CIs. Recording it runs the impact analysis
of those CIs failing and stores the snapshot that set its priority (:mod:`.priority`); its
lifecycle is a state machine (:data:`TRANSITIONS`): a refused step names its rule (exit 8) and
writes nothing. Every write is one journaled transaction through the store's write path.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from servicegraph.errors import NotFound, Problem, RuleViolation, ValidationFailed
from servicegraph.graph.records import CI, Batch, Page, Relationship
from servicegraph.graph.store import GraphStore
from servicegraph.graph.validation import check_name
from servicegraph.processes.access import Actor, require
from servicegraph.processes.incident.policy import URGENCIES, IncidentPolicy, load_incident_policy
from servicegraph.processes.incident.records import (
    OPEN_STATES,
    affected_cis,
    incident_state,
)
from servicegraph.processes.listing import CIQuery, record_of, records_of_class
from servicegraph.processes.times import iso, parse, time_of

if TYPE_CHECKING:
    from servicegraph.graph.engine import TopologyEngine

__all__ = ["ACTIONS", "TRANSITIONS", "IncidentManager"]

# action: (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"new"}), "in_progress"),
    "hold": (frozenset({"in_progress"}), "on_hold"),
    "resume": (frozenset({"on_hold"}), "in_progress"),
    "resolve": (frozenset({"new", "in_progress"}), "resolved"),
    "reopen": (frozenset({"resolved"}), "in_progress"),
    "close": (frozenset({"resolved"}), "closed"),
}
ACTIONS = tuple(TRANSITIONS)
HISTORY_STATES = ("new", "in_progress", "resolved", "closed")  # what an import may bring
_CLOCK_SKEW = dt.timedelta(minutes=5)  # an opened_at this far ahead of now is accepted
_IMPORT_KEYS = {"id", "name", "summary", "affects", "cis", "opened_at", "urgency", "description",
                "source", "state", "responded_at", "resolved_at", "closed_at", "resolution"}  # fmt: skip


@dataclass
class IncidentManager:
    """The incident process on a store and its topology engine."""

    store: GraphStore
    engine: TopologyEngine
    policy: IncidentPolicy | None = None

    def __post_init__(self) -> None:
        self.policy = self.policy or load_incident_policy()

    @property
    def rules(self) -> IncidentPolicy:
        assert self.policy is not None
        return self.policy

    # -- reading --------------------------------------------------------------------------------
    def get(self, incident_id: str) -> CI:
        return record_of(self.store, "incident", incident_id)

    def affects(self, incident_id: str) -> list[str]:
        return sorted(ci for _, ci in affected_cis(self.engine, [incident_id]))

    def problem_of(self, incident_id: str) -> str | None:
        self.engine.refresh()
        if incident_id not in self.engine.index:
            return None
        linked = self.engine.outgoing([incident_id], "LINKED_TO")
        return linked[0][1] if linked else None

    def find(
        self,
        states: Collection[str] | None = None,
        priority: int | None = None,
        major: bool | None = None,
        ci: str | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Page:
        """A page of incidents by id; filters: states (any), priority, major, an affected CI."""
        attributes: dict[str, Any] = {}
        if priority is not None:
            attributes["priority"] = priority
        if major is not None:
            attributes["major"] = major
        wanted = set(states or ())
        if ci is not None:
            return self._find_by_ci(ci, wanted, attributes, first, after)
        if len(wanted) == 1:
            attributes["state"] = next(iter(wanted))
            wanted = set()
        if not wanted:
            return CIQuery("incident", attributes).page(self.store, first, after)
        # several states: the matching records, paged by id
        rows = [inc for inc in records_of_class(self.store, "incident")
                if incident_state(inc) in wanted
                and all(inc.attributes.get(k) == v for k, v in attributes.items())]  # fmt: skip
        return _page(rows, first, after)

    def _find_by_ci(
        self, ci: str, states: set[str], attributes: dict[str, Any], first: int, after: str | None
    ) -> Page:
        self.engine.refresh()
        if ci not in self.engine.index:
            raise NotFound("CI", ci)
        ids = sorted({s for s, _ in self.engine.incoming([ci], "AFFECTS")
                      if self.engine.class_of(s) == "incident"})  # fmt: skip
        rows = [inc for inc in self.store.get_cis(ids).values()
                if (not states or incident_state(inc) in states)
                and all(inc.attributes.get(k) == v for k, v in attributes.items())]  # fmt: skip
        return _page(rows, first, after)

    def major(self, open_only: bool = True) -> list[CI]:
        """Major incidents (by the policy's criteria when recorded), newest first."""
        found = [inc for inc in records_of_class(self.store, "incident")
                 if inc.attributes.get("major")
                 and (not open_only or incident_state(inc) in OPEN_STATES)]  # fmt: skip
        return sorted(found, key=lambda i: (str(i.attributes.get("opened_at") or ""), i.id),
                      reverse=True)  # fmt: skip

    def breaches(
        self, open_only: bool = False, now: dt.datetime | None = None
    ) -> list[dict[str, Any]]:
        """Every breached response or resolution target, computed now (most overdue first)."""
        from servicegraph.processes.incident.timers import breaches

        return breaches(records_of_class(self.store, "incident"), now or _now(), open_only)

    def timers(self, incident_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
        from servicegraph.processes.incident.timers import timers

        return timers(self.get(incident_id), now or _now())

    def suggestions(self, incident_id: str) -> list[dict[str, Any]]:
        """Open known errors and problems on the incident's CIs or their dependencies."""
        from servicegraph.processes.incident.correlation import suggestions

        return suggestions(self.engine, self.store, self.affects(incident_id))

    def suspect_changes(self, incident_id: str) -> list[dict[str, Any]]:
        """Changes implemented within the policy window before the incident whose blast radius
        contains one of its CIs (change-induced incidents), with the path."""
        from servicegraph.processes.incident.correlation import suspect_changes

        return suspect_changes(self.engine, self.store, self.get(incident_id),
                               self.affects(incident_id), self.rules.change_window_hours)  # fmt: skip

    def after_change(self, change_id: str, hours: float | None = None) -> dict[str, Any]:
        """Incidents in a change's blast radius opened within the window after it."""
        from servicegraph.processes.incident.correlation import incidents_after_change

        if self.store.get_ci(change_id) is None:
            raise NotFound("change", change_id)
        window = self.rules.change_window_hours if hours is None else hours
        return incidents_after_change(self.engine, self.store, change_id, window)

    def details(self, incident_id: str, now: dt.datetime | None = None) -> dict[str, Any]:
        """The incident with its CIs, timers, problem, suggestions and suspect changes."""
        inc = self.get(incident_id)
        return {
            "id": inc.id, "name": inc.name, "version": inc.version, **inc.attributes,
            "state": incident_state(inc), "affects": self.affects(incident_id),
            "problem": self.problem_of(incident_id), "timers": self.timers(incident_id, now),
            "suggestions": self.suggestions(incident_id),
            "suspect_changes": self.suspect_changes(incident_id),
        }  # fmt: skip

    # -- recording ------------------------------------------------------------------------------
    def record(
        self,
        name: str,
        ci_ids: Collection[str],
        actor: Actor,
        incident_id: str | None = None,
        urgency: str | None = None,
        opened_at: str | None = None,
        description: str | None = None,
        source: str | None = None,
        now: dt.datetime | None = None,
    ) -> CI:
        """Record a new incident (state ``new``) on ``ci_ids``, prioritised from the graph."""
        require(actor, "work_incidents")
        spec = {"id": incident_id or _new_id(now), "name": name, "affects": list(ci_ids),
                "urgency": urgency, "opened_at": opened_at, "description": description,
                "source": source}  # fmt: skip
        batch, problems = Batch(), list[Problem]()
        self._prepare(spec, "incident", now or _now(), batch, problems)
        if problems:
            raise ValidationFailed(problems)
        self.store.write(batch, actor.user)
        return self.get(str(spec["id"]))

    def import_incidents(
        self, items: Sequence[Any], actor: Actor, now: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Bulk intake (monitoring alerts, or history from another tool): every item checked,
        every problem listed, all written in one transaction or nothing. Idempotent: an id that
        already exists is left as it is and reported under ``existing``."""
        require(actor, "work_incidents")
        now = now or _now()
        if not isinstance(items, list):
            raise ValidationFailed(
                [Problem("file", "incidents", 'a JSON list of incidents, or {"incidents": [...]}')]
            )
        ids = [item.get("id") for item in items if isinstance(item, dict)]
        existing = self.store.get_cis([i for i in ids if isinstance(i, str)])
        batch, problems = Batch(), []
        created, skipped, seen = [], [], set()
        for n, item in enumerate(items):
            where = f"incidents[{n}]"
            if not isinstance(item, dict):
                problems.append(Problem(where, "item", "an object with id, affects, opened_at …"))
                continue
            ident = item.get("id")
            if isinstance(ident, str):
                if ident in seen:
                    problems.append(Problem(where, "id", f"{ident!r} appears twice in the file"))
                    continue
                seen.add(ident)
            if isinstance(ident, str) and ident in existing:
                if existing[ident].cls != "incident":
                    problems.append(Problem(where, "id", f"{ident!r} is a {existing[ident].cls}"))
                else:
                    skipped.append(ident)
                continue
            before = len(problems)
            self._prepare(item, where, now, batch, problems)
            if len(problems) == before:
                created.append(ident)
        if problems:
            raise ValidationFailed(problems)
        if created:
            self.store.write(batch, actor.user, reason="incident import")
        return {"created": created, "existing": skipped}

    def _prepare(
        self,
        item: dict[str, Any],
        where: str,
        now: dt.datetime,
        batch: Batch,
        problems: list[Problem],
    ) -> None:
        """Check one incident spec, assess it and add it to ``batch`` (or list its problems)."""
        from servicegraph.processes.incident.priority import assess_incident

        start = len(problems)
        stray = sorted(set(item) - _IMPORT_KEYS)
        for key in stray:
            problems.append(Problem(where, key, f"unknown field; known: {sorted(_IMPORT_KEYS)}"))
        ident = item.get("id")
        if not isinstance(ident, str) or not ident:
            problems.append(Problem(where, "id", "a non-empty text id"))
        name = item.get("name") or item.get("summary")
        if not isinstance(name, str) or not name.strip():
            problems.append(Problem(where, "summary", "a short text saying what is wrong"))
        else:
            problems += check_name(where, "summary", name)
        urgency = item.get("urgency") or self.rules.default_urgency
        if urgency not in URGENCIES:
            problems.append(Problem(where, "urgency", f"one of {', '.join(URGENCIES)}"))
        cis = item.get("affects", item.get("cis"))
        if not isinstance(cis, list) or not cis or not all(isinstance(c, str) for c in cis):
            problems.append(
                Problem(where, "affects", "a list of the affected CI ids (one or more)")
            )
            cis = []
        found = self.store.get_cis(cis)
        ci_classes = self.store.model.descendants("ci")
        for ci in cis:
            rec = found.get(ci)
            if rec is None:
                problems.append(Problem(where, "affects", f"no CI with id {ci!r}; check the id"))
            elif rec.cls not in ci_classes:
                problems.append(Problem(where, "affects", f"{ci!r} is a {rec.cls}, not a CI"))
            elif rec.status == "retired":
                problems.append(Problem(where, "affects", f"{ci!r} is retired"))
        times = self._times(item, where, now, problems)
        state = item.get("state") or "new"
        if state not in HISTORY_STATES:
            problems.append(Problem(where, "state", f"one of {', '.join(HISTORY_STATES)} "
                                    "(history from another tool); default new"))  # fmt: skip
        elif state in ("resolved", "closed") and "resolved_at" not in times:
            problems.append(Problem(where, "resolved_at", f"a {state} incident needs resolved_at"))
        elif state == "closed" and "closed_at" not in times:
            problems.append(Problem(where, "closed_at", "a closed incident needs closed_at"))
        for key in ("description", "source", "resolution"):
            if item.get(key) is not None and not isinstance(item[key], str):
                problems.append(Problem(where, key, "text"))
        if len(problems) > start:
            return
        assert isinstance(ident, str) and isinstance(name, str)
        snapshot = assess_incident(self.engine, self.store, self.rules, cis, urgency)
        attrs: dict[str, Any] = {
            "state": state, "urgency": urgency, "impact_level": snapshot["level"],
            "priority": snapshot["priority"], "major": snapshot["major"], "impact": snapshot,
            "services": snapshot.pop("service_ids"), **times,
        }  # fmt: skip
        for key in ("description", "source", "resolution"):
            if item.get(key):
                attrs[key] = item[key]
        batch.add_ci(CI(ident, "incident", name.strip(), attrs, version=0), where)
        for ci in dict.fromkeys(cis):
            batch.add_relationship(Relationship(ident, "AFFECTS", ci), f"{where}.affects[{ci}]")

    def _times(
        self, item: dict[str, Any], where: str, now: dt.datetime, problems: list[Problem]
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        parsed: dict[str, dt.datetime] = {}
        for key in ("opened_at", "responded_at", "resolved_at", "closed_at"):
            value = item.get(key)
            if value is None:
                continue
            try:
                parsed[key] = parse(value)
            except ValidationFailed:
                problems.append(
                    Problem(where, key, "an ISO 8601 datetime, e.g. 2026-11-25T09:30:00Z")
                )
        opened = parsed.setdefault("opened_at", now)
        if opened > now + _CLOCK_SKEW:
            problems.append(Problem(where, "opened_at", f"{iso(opened)} is in the future"))
        for key in ("responded_at", "resolved_at", "closed_at"):
            if key in parsed and parsed[key] < opened:
                problems.append(Problem(where, key, f"before opened_at ({iso(opened)})"))
        if (
            "closed_at" in parsed
            and "resolved_at" in parsed
            and parsed["closed_at"] < parsed["resolved_at"]
        ):
            problems.append(Problem(where, "closed_at", "before resolved_at"))
        for key, value in parsed.items():
            out[key] = iso(value)
        return out

    # -- the state machine ----------------------------------------------------------------------
    def transition(
        self,
        incident_id: str,
        action: str,
        actor: Actor,
        reason: str = "",
        resolution: str | None = None,
        now: dt.datetime | None = None,
    ) -> CI:
        """Move an incident through its lifecycle; every rule is checked before anything is
        written."""
        if action not in TRANSITIONS:
            raise ValidationFailed(
                [Problem("transition", "action", f"one of {', '.join(ACTIONS)}")]
            )
        require(actor, "work_incidents")
        now = now or _now()
        incident = self.get(incident_id)
        state = incident_state(incident)
        sources, target = TRANSITIONS[action]
        if state not in sources:
            raise RuleViolation(
                "illegal_transition",
                f"{incident_id} is {state}; '{action}' is allowed from {', '.join(sorted(sources))}",
            )
        attrs = {**incident.attributes, "state": target}
        if action in ("start", "resume", "reopen") and not attrs.get("responded_at"):
            attrs["responded_at"] = iso(now)
        if action == "hold":
            if not reason.strip():
                raise RuleViolation("hold_reason_required",
                                    "say why the incident waits (--reason): the customer, a "
                                    "supplier, a change …")  # fmt: skip
            attrs["on_hold_since"] = iso(now)
        if action == "resume":
            since = time_of(attrs.pop("on_hold_since", None))
            if since is not None:
                held = max(0.0, (now - since).total_seconds() / 60)
                attrs["on_hold_minutes"] = round(float(attrs.get("on_hold_minutes") or 0) + held, 2)
        if action == "resolve":
            text = resolution or attrs.get("resolution")
            if not str(text or "").strip():
                raise RuleViolation("resolution_required",
                                    "record how it was resolved (--resolution '…')")  # fmt: skip
            attrs["resolution"] = text
            attrs["resolved_at"] = iso(now)
            attrs.setdefault("responded_at", iso(now))
        if action == "reopen":
            attrs["reopened"] = int(attrs.get("reopened") or 0) + 1
            attrs.pop("resolved_at", None)
        if action == "close":
            attrs["closed_at"] = iso(now)
        attrs["last_reason"] = reason or action
        batch = Batch(replace=True)  # the process owns the whole incident record
        batch.add_ci(CI(incident.id, "incident", incident.name, attrs, incident.version))
        self.store.write(batch, actor.user, reason=reason or action)
        return self.get(incident_id)

    def reprioritise(self, incident_id: str, actor: Actor, urgency: str | None = None) -> CI:
        """Assess the incident again on today's graph (and a new urgency, if given)."""
        from servicegraph.processes.incident.priority import assess_incident

        require(actor, "work_incidents")
        incident = self.get(incident_id)
        urgency = urgency or incident.attributes.get("urgency") or self.rules.default_urgency
        if urgency not in URGENCIES:
            raise ValidationFailed(
                [Problem("incident", "urgency", f"one of {', '.join(URGENCIES)}")]
            )
        snapshot = assess_incident(self.engine, self.store, self.rules,
                                   self.affects(incident_id), urgency)  # fmt: skip
        attrs = {**incident.attributes, "urgency": urgency, "impact_level": snapshot["level"],
                 "priority": snapshot["priority"], "major": snapshot["major"], "impact": snapshot,
                 "services": snapshot.pop("service_ids"), "last_reason": "reprioritised"}  # fmt: skip
        batch = Batch(replace=True)
        batch.add_ci(CI(incident.id, "incident", incident.name, attrs, incident.version))
        self.store.write(batch, actor.user, reason="reprioritised")
        return self.get(incident_id)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _new_id(now: dt.datetime | None) -> str:
    return f"inc-{(now or _now()):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _page(rows: Iterable[CI], first: int, after: str | None) -> Page:
    """A page of ``rows`` (sorted by id) after the cursor ``after`` (as the store's cursors)."""
    from servicegraph.graph.records import ci_page, decode_sort_cursor

    items = sorted(rows, key=lambda c: c.id)
    last = decode_sort_cursor(after, "id", False)
    if last is not None:
        items = [c for c in items if c.id > last[1]]
    return ci_page(items[:first], len(items) > first, "id", False)
