"""The process records of the demo estate, made by the processes themselves.

After the estate (:mod:`.demo`) is loaded, RFCs are raised and walked through the change process
(so their assessments, risk factors and schedule collisions are the real thing), a release is
created and baselined, a year of incident history is recorded by the incident process with its
problems and known errors (:mod:`.incident.demo_history`), and blackout windows cover business
services. Every README example
and notebook then shows real output on a fresh demo. Times are relative to ``now``.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.processes.access import Actor
from servicegraph.processes.incident.demo_history import seed_incident_history
from servicegraph.processes.times import iso

if TYPE_CHECKING:
    from servicegraph.api.python import ServiceGraph

__all__ = ["seed_process_records"]

REQUESTER = Actor("ana.requester", "cmdb_editor")
CAB = Actor("carl.cab", "change_manager")
AUTHORITY = Actor("eva.emergency", "admin")


def seed_process_records(
    sg: ServiceGraph, seed: int = 7, now: dt.datetime | None = None
) -> dict[str, int]:
    """Add RFCs in several states, a release, incidents, a problem with its known error and
    blackout windows to a freshly loaded demo estate; return how many of each."""
    now = (now or dt.datetime.now(dt.UTC)).replace(minute=0, second=0, microsecond=0)
    rng = random.Random(seed)
    counts = {"changes": 0, "releases": 0, "incidents": 0, "problems": 0, "blackouts": 0,
              "contracts": 0}  # fmt: skip
    hosts = _ids(sg, "host")
    vms = _ids(sg, "vm")
    services = _ids(sg, "business_service")
    if not hosts or not vms:
        return counts
    counts["blackouts"] = _blackouts(sg, services, now)
    counts["contracts"] = _contracts(sg, now)
    counts["changes"] = _changes(sg, hosts, vms, now)
    history = seed_incident_history(sg, rng, now)
    counts["changes"] += 1  # the bad change the history tells of
    counts["incidents"], counts["problems"] = history["incidents"], history["problems"]
    counts["releases"] = _release(sg)
    return counts


class _Cycle:
    def __init__(self, items: list[str]) -> None:
        self.items = items

    def __getitem__(self, i: int) -> str:
        return self.items[i % len(self.items)]


def _ids(sg: ServiceGraph, cls: str) -> list[str]:
    page = sg.store.find_cis(sg.store.model.concrete(cls), first=200)
    return [c.id for c in page.items if c.status != "retired"]  # the year's decommissions


def _window(start: dt.datetime, hours: int = 2) -> dict[str, str]:
    return {"window_start": iso(start), "window_end": iso(start + dt.timedelta(hours=hours))}


def _changes(sg: ServiceGraph, host_ids: list[str], vm_ids: list[str], now: dt.datetime) -> int:
    hosts, vms = _Cycle(host_ids), _Cycle(vm_ids)  # small estates reuse CIs
    cm = sg.changes
    soon = (now + dt.timedelta(days=3)).replace(hour=22)
    plan = "snapshot and roll back; service owner on call"

    def raise_rfc(ident: str, name: str, kind: str, targets: list[str], **fields: Any) -> None:
        # what clause 5 asks of a change with potentially major impact, recorded up front
        evidence = {"acceptance_criteria": "services answer their health checks within 15 min",
                    "test_evidence": "rehearsed on the staging twin"}  # fmt: skip
        cm.create(ident, name, kind, targets, REQUESTER, **{**evidence, **fields})

    def walk(ident: str, *steps: tuple[str, Actor, dict[str, Any]]) -> None:
        for action, actor, fields in steps:
            cm.transition(ident, action, actor, reason=f"demo: {action}", now=now, **fields)

    # Scheduled, and colliding with the next one (the host runs the VM's cluster).
    raise_rfc("rfc-0001", f"Patch the OS of {vms[4]}", "normal", [vms[4]],
              description="Monthly OS patch", remediation_plan=plan,
              cmdb_updates={vms[4]: {"os": "RHEL 9.4"}})  # fmt: skip
    walk("rfc-0001", ("submit", REQUESTER, {}), ("assess", CAB, {}), ("approve", CAB, {}),
         ("schedule", CAB, _window(soon)))  # fmt: skip
    raise_rfc("rfc-0002", f"Replace a power supply of {hosts[2]}", "normal", [hosts[2]],
              remediation_plan="move the VMs back; keep the old PSU until tested")  # fmt: skip
    walk("rfc-0002", ("submit", REQUESTER, {}), ("assess", CAB, {}), ("approve", CAB, {}),
         ("schedule", CAB, _window(soon + dt.timedelta(hours=1))))  # fmt: skip
    # Assessed, waiting for the CAB.
    raise_rfc("rfc-0003", f"Firmware upgrade of {hosts[0]}", "normal", [hosts[0]],
              description="BIOS and BMC firmware", **_window(soon + dt.timedelta(days=4)))  # fmt: skip
    walk("rfc-0003", ("submit", REQUESTER, {}), ("assess", CAB, {}))
    # A standard change, done and closed, that updated the CMDB.
    raise_rfc("rfc-0004", f"Add memory to {vms[7]}", "standard", [vms[7]],
              remediation_plan="remove the memory again",
              cmdb_updates={vms[7]: {"memory_gb": 64.0}})  # fmt: skip
    past = now - dt.timedelta(days=10)
    walk("rfc-0004", ("submit", REQUESTER, {}), ("approve", CAB, {}),
         ("schedule", CAB, _window(past)), ("start", CAB, {}), ("complete", CAB, {}),
         ("review", CAB, {"review": "Done in the window; no incident."}),
         ("close", CAB, {}))  # fmt: skip
    # An emergency change that failed and was remediated, awaiting review.
    raise_rfc("rfc-0005", f"Emergency fix of {hosts[5]}'s NIC driver", "emergency", [hosts[5]],
              remediation_plan="reinstall the previous driver")  # fmt: skip
    walk("rfc-0005", ("submit", REQUESTER, {}), ("assess", CAB, {}), ("approve", AUTHORITY, {}),
         ("start", AUTHORITY, {}), ("fail", AUTHORITY, {}),
         ("remediate", AUTHORITY, {"remediation_result": "previous driver reinstalled"}))  # fmt: skip
    # A draft, and a rejected one.
    raise_rfc("rfc-0006", f"Decommission {vms[9]}", "normal", [vms[9]],
              description="No longer used", cmdb_updates={vms[9]: {"status": "retired"}})  # fmt: skip
    raise_rfc("rfc-0007", f"Resize {vms[11]}", "normal", [vms[11]], remediation_plan=plan)
    walk("rfc-0007", ("submit", REQUESTER, {}), ("reject", CAB, {}))
    return 7


def _release(sg: ServiceGraph) -> int:
    rm = sg.releases
    rm.create("rel-0001", "December maintenance release", "minor", ["rfc-0001", "rfc-0002"], CAB,
              resolves=["prb-0001"], acceptance_criteria="all services up within 30 minutes")  # fmt: skip
    rm.take_baseline("rel-0001", CAB)
    return 1


def _contracts(sg: ServiceGraph, now: dt.datetime) -> int:
    """Supplier contracts: the storage vendor commits less than the SLAs need, the network vendor
    enough, and a switch support contract has expired."""
    arrays = _ids(sg, "storage_array")
    routers = _ids(sg, "router")
    switches = _ids(sg, "switch")
    if not (arrays and routers and switches):
        return 0
    today = now.date()
    batch = Batch()
    batch.add_ci(
        CI("sup-storage", "supplier", "Storage vendor", {"contact": "support@storage.example"})
    )
    batch.add_ci(
        CI("sup-network", "supplier", "Network vendor", {"contact": "noc@network.example"})
    )
    contracts = [
        ("ctr-0001", "Storage array support", arrays[0], "sup-storage", 0.99, 365),
        ("ctr-0002", "Core router support", routers[0], "sup-network", 0.99999, 365),
        ("ctr-0003", "Switch support (lapsed)", switches[0], "sup-network", 0.9999, -30),
    ]
    for ident, name, ci, supplier, commitment, days in contracts:
        start = today - dt.timedelta(days=400)
        batch.add_ci(CI(ident, "supplier_contract", name, {
            "availability_commitment": commitment, "response_minutes": 240,
            "valid_from": start.isoformat(),
            "valid_to": (today + dt.timedelta(days=days)).isoformat()}))  # fmt: skip
        batch.add_relationship(Relationship(ident, "UNDERPINS", ci))
        batch.add_relationship(Relationship(ident, "SUPPLIED_BY", supplier))
    sg.store.write(batch, "supplier.manager")
    return len(contracts)


def _blackouts(sg: ServiceGraph, services: list[str], now: dt.datetime) -> int:
    batch = Batch()
    start = (now + dt.timedelta(days=3)).replace(hour=0)
    batch.add_ci(CI("bw-0001", "blackout_window", "Quarter close", {
        "start": iso(start), "end": iso(start + dt.timedelta(days=2)),
        "reason": "finance quarter close: no changes to billing services"}))  # fmt: skip
    for service in services[:2]:
        batch.add_relationship(Relationship("bw-0001", "APPLIES_TO", service))
    sg.store.write(batch, "change.manager")
    return 1
