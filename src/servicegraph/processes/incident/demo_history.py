"""A year of incident history for the demo estate, made through the processes themselves, with
the patterns an analyst looks for:

* a base rate with weekday/weekend and seasonal swings (more in winter), mostly in office hours;
* a **flapping VM** that fails again and again, with an open problem and its known error;
* a host whose recurring failures stopped when its problem was **resolved** (effectiveness);
* a **bad change** on a host followed by incidents in its blast radius (change-induced);
* a **burst** of open incidents in the last hours from one failure (what ``rca`` is for).

Every incident is recorded by the incident process (so its priority, impact snapshot and SLA
targets are the real thing) in one import; problems are recorded by the problem process.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from typing import TYPE_CHECKING, Any

from servicegraph.processes.access import Actor
from servicegraph.processes.times import iso

if TYPE_CHECKING:
    from servicegraph.api.python import ServiceGraph

__all__ = ["seed_incident_history"]

MONITORING = Actor("monitoring", "service_desk")
PROBLEMS = Actor("pia.problem", "problem_manager")
CAB = Actor("carl.cab", "change_manager")
SYMPTOMS = ["not responding", "slow responses", "error rate above threshold", "health check failing",
            "high latency", "disk latency alarm", "connection refused"]  # fmt: skip
NOISE_CLASSES = ["application_instance", "vm", "host", "database_instance", "storage_volume",
                 "switch"]  # fmt: skip


def seed_incident_history(
    sg: ServiceGraph, rng: random.Random, now: dt.datetime, days: int = 365
) -> dict[str, int]:
    pools = {c: _ids(sg, c) for c in NOISE_CLASSES}
    vms, hosts = pools["vm"], pools["host"]
    if not vms or not hosts:
        return {"incidents": 0, "problems": 0}
    noise = [ci for c in NOISE_CLASSES for ci in pools[c]]
    flapping = vms[2 % len(vms)]
    fixed_host = hosts[1 % len(hosts)]
    bad_host = hosts[3 % len(hosts)]
    events: list[tuple[dt.datetime, list[str], str]] = []  # (opened, CIs, symptom)
    for day in range(days, 0, -1):
        date = now - dt.timedelta(days=day)
        weekday = 1.0 if date.weekday() < 5 else 0.35
        season = 1.0 + 0.35 * math.cos(2 * math.pi * (date.timetuple().tm_yday - 15) / 365)
        for _ in range(_poisson(rng, 1.6 * weekday * season)):
            events.append((_office_hours(rng, date), [rng.choice(noise)], rng.choice(SYMPTOMS)))
        if rng.random() < 0.12:  # the flapping VM, all year round
            events.append((_office_hours(rng, date), [flapping], "storage path lost"))
        if day > days * 0.55 and rng.random() < 0.08:  # the host whose problem gets fixed
            events.append((_office_hours(rng, date), [fixed_host], "machine check exception"))
    # the bad change: implemented 45 days ago, incidents in its blast radius the next days
    change_at = (now - dt.timedelta(days=45)).replace(hour=21)
    radius = [r["id"] for r in sg.impact([bad_host]).impacted(limit=40)] or [bad_host]
    for k in range(6):
        opened = change_at + dt.timedelta(hours=4 + 9 * k + rng.randint(0, 5))
        events.append((opened, [radius[(k * 5) % len(radius)]], "errors since the maintenance"))
    # the burst: a CI failed three hours ago; what it takes DOWN alarms over the next minutes
    source, dependents = _burst_source(sg)
    if source:
        start = now - dt.timedelta(hours=3)
        events.append((start, [source], "not responding"))
        step = max(1, len(dependents) // 6)
        for k, ci in enumerate(dependents[::step][:6]):
            events.append((start + dt.timedelta(minutes=3 + 2 * k), [ci], "health check failing"))
    events.sort(key=lambda e: e[0])
    items = [_incident(rng, n, opened, cis, symptom, now)
             for n, (opened, cis, symptom) in enumerate(events, 1)]  # fmt: skip
    sg.incidents.import_incidents(items, MONITORING, now=now)
    _bad_change(sg, bad_host, change_at)
    by_ci: dict[str, list[str]] = {}
    for item in items:
        for ci in item["affects"]:
            by_ci.setdefault(ci, []).append(item["id"])
    problems = _problems(sg, flapping, fixed_host, by_ci, now - dt.timedelta(days=int(days * 0.55)))
    return {"incidents": len(items), "problems": problems}


def _ids(sg: ServiceGraph, cls: str) -> list[str]:
    page = sg.store.find_cis(sg.store.model.concrete(cls), first=200)
    return [c.id for c in page.items if c.status != "retired"]


def _burst_source(sg: ServiceGraph) -> tuple[str, list[str]]:
    """A database, application or storage volume whose failure takes a handful to a few dozen
    monitored CIs (applications, instances, services) DOWN: the burst's cause and its alarms."""
    watched = ("application", "application_instance", "database_instance", "technical_service",
               "business_service")  # fmt: skip
    best: tuple[int, str, list[str]] = (-1, "", [])
    for cls in ("database", "application", "storage_volume"):
        for ci in _ids(sg, cls)[:60]:
            down = [r for r in sg.impact([ci]).impacted() if r["status"] == "DOWN"]
            hit = [r["id"] for r in down if r["class"] in watched]
            if len(down) <= 40 and len(hit) > best[0]:
                best = (len(hit), ci, hit)
    return best[1], best[2]


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _office_hours(rng: random.Random, date: dt.datetime) -> dt.datetime:
    hour = int(rng.triangular(0, 23.99, 13)) if rng.random() < 0.8 else rng.randint(0, 23)
    return date.replace(hour=hour, minute=rng.randint(0, 59), second=0, microsecond=0)


def _incident(
    rng: random.Random, n: int, opened: dt.datetime, cis: list[str], symptom: str, now: dt.datetime
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"inc-{n:05d}", "summary": f"{cis[0]}: {symptom}", "affects": cis,
        "opened_at": iso(opened), "source": rng.choice(["monitoring", "monitoring", "phone", "portal"]),
        "urgency": rng.choices(["high", "medium", "low"], weights=[2, 5, 3])[0],
    }  # fmt: skip
    if now - opened < dt.timedelta(hours=4):
        item["urgency"] = "high"  # the burst: customers are calling
    age = now - opened
    responded = opened + dt.timedelta(minutes=min(240.0, 1 + rng.lognormvariate(2.4, 0.8)))
    resolved = responded + dt.timedelta(hours=min(96.0, rng.lognormvariate(0.9, 0.9)))
    if age < dt.timedelta(hours=4) or resolved > now:
        return item  # still new
    item["responded_at"] = iso(responded)
    if age < dt.timedelta(days=1) and rng.random() < 0.5:
        item["state"] = "in_progress"
        return item
    item.update(state="resolved", resolved_at=iso(resolved), resolution="service restored")
    closed = resolved + dt.timedelta(days=rng.randint(1, 3))
    if closed < now:
        item.update(state="closed", closed_at=iso(closed))
    return item


def _bad_change(sg: ServiceGraph, host: str, at: dt.datetime) -> None:
    cm = sg.changes
    cm.create("rfc-0008", f"Kernel upgrade of {host}", "normal", [host], CAB,
              remediation_plan="boot the previous kernel",
              acceptance_criteria="VMs back within 15 minutes", test_evidence="staging rehearsal")  # fmt: skip
    window = {"window_start": iso(at - dt.timedelta(hours=2)), "window_end": iso(at)}
    for action, fields in (("submit", {}), ("assess", {}), ("approve", {}), ("schedule", window),
                           ("start", {}), ("complete", {})):  # fmt: skip
        cm.transition("rfc-0008", action, CAB, reason=f"demo: {action}", now=at, **fields)


def _problems(
    sg: ServiceGraph,
    flapping: str,
    fixed_host: str,
    by_ci: dict[str, list[str]],
    fixed_at: dt.datetime,
) -> int:
    pm = sg.problems
    pm.create("prb-0001", f"{flapping} loses its storage path under load", PROBLEMS,
              incidents=by_ci.get(flapping, [])[-20:], root_causes=[flapping],
              description="multipath failover stalls on the old HBA driver")  # fmt: skip
    pm.transition("prb-0001", "known_error", PROBLEMS, known_error_id="ke-0001",
                  workaround="restart multipathd on the VM")  # fmt: skip
    pm.create("prb-0002", f"{fixed_host} machine check exceptions", PROBLEMS,
              incidents=by_ci.get(fixed_host, []), root_causes=[fixed_host],
              now=fixed_at - dt.timedelta(days=20))  # fmt: skip
    pm.transition("prb-0002", "resolve", PROBLEMS, resolution="replaced a faulty DIMM",
                  now=fixed_at)  # fmt: skip
    return 2
