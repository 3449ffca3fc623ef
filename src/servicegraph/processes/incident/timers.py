"""SLA timers of incidents (8.1, 6.1): response and resolution clocks against the targets set when
the incident was prioritised (from the SLAs covering its impacted services, or the policy's
defaults). Breaches are computed when asked, never stored as flags that go stale: the response
clock runs from ``opened_at`` to the first response (or resolution), the resolution clock to
``resolved_at`` minus the time spent on hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

from servicegraph.graph.records import CI
from servicegraph.processes.incident.records import incident_state
from servicegraph.processes.times import iso, time_of

__all__ = ["breaches", "timers"]


def timers(incident: CI, now: dt.datetime) -> dict[str, Any]:
    """``{"response": {...}, "resolution": {...}}``: target, elapsed and remaining minutes, due
    time, whether breached, and the SLA (or policy default) the target came from."""
    a = incident.attributes
    targets = (a.get("impact") or {}).get("targets") or {}
    opened = time_of(a.get("opened_at"))
    out: dict[str, Any] = {}
    if opened is None:
        return out
    responded = time_of(a.get("responded_at")) or time_of(a.get("resolved_at"))
    resolved = time_of(a.get("resolved_at"))
    hold = float(a.get("on_hold_minutes") or 0)
    since = time_of(a.get("on_hold_since"))
    if since is not None and incident_state(incident) == "on_hold":
        hold += max(0.0, (now - since).total_seconds() / 60)
    clocks = {
        "response": (responded or now, 0.0, responded is not None),
        "resolution": (resolved or now, hold, resolved is not None),
    }
    for kind, (stop, paused, stopped) in clocks.items():
        target = targets.get(f"{kind}_minutes")
        if target is None:
            continue
        elapsed = max(0.0, (stop - opened).total_seconds() / 60 - paused)
        out[kind] = {
            "target_minutes": target,
            "elapsed_minutes": round(elapsed, 1),
            "remaining_minutes": round(target - elapsed, 1),
            "due_at": iso(opened + dt.timedelta(minutes=target + paused)),
            "breached": elapsed > target,
            "stopped": stopped,
            "from": targets.get(f"{kind}_from"),
        }
    return out


def breaches(
    incidents: list[CI], now: dt.datetime, open_only: bool = False
) -> list[dict[str, Any]]:
    """Every breached response or resolution target, most overdue first."""
    out = []
    for inc in incidents:
        if open_only and incident_state(inc) in ("resolved", "closed"):
            continue
        for kind, clock in timers(inc, now).items():
            if clock["breached"]:
                out.append({
                    "incident": inc.id, "name": inc.name, "state": incident_state(inc),
                    "priority": inc.attributes.get("priority"), "kind": kind,
                    "target_minutes": clock["target_minutes"],
                    "elapsed_minutes": clock["elapsed_minutes"],
                    "overdue_minutes": round(-clock["remaining_minutes"], 1),
                    "still_running": not clock["stopped"], "from": clock["from"],
                })  # fmt: skip
    return sorted(out, key=lambda b: (-b["overdue_minutes"], b["incident"], b["kind"]))
