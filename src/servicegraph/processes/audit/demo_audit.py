"""A year of configuration history for the demo estate, and a discovery feed with drift, so the
audit (health over time, diff, as-of, reconciliation) shows something real on a fresh demo.

The estate is journaled a year ago; then, month by month, with the actors who would do it:
discovery fills in serial numbers, FQDNs and IP addresses; a CMDB clean-up names owners and
support groups (health rises); vCenter creates VMs and upgrades operating systems; engineers
retire VMs. :func:`discovery_feed` is what a discovery tool would report today: most CIs as they
are, some hosts renamed, some IP addresses changed, some VMs gone, a few new hosts.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import TYPE_CHECKING, Any

from servicegraph.graph.records import CI, Batch, Relationship
from servicegraph.processes.times import iso

if TYPE_CHECKING:
    from servicegraph.api.python import ServiceGraph

__all__ = ["YEAR", "discovery_feed", "seed_config_history"]

YEAR = dt.timedelta(days=365)
TEAMS = ["platform-ops", "database-team", "network-team", "storage-team", "app-support"]


def _ids(sg: ServiceGraph, cls: str, first: int = 1000) -> list[str]:
    return [c.id for c in sg.store.find_cis(sg.store.model.concrete(cls), first=first).items]


def seed_config_history(sg: ServiceGraph, rng: random.Random, now: dt.datetime) -> int:
    """Monthly writes between a year ago and now (journaled at their dates); returns how many."""
    start = now - YEAR
    hosts, vms = _ids(sg, "host"), _ids(sg, "vm")
    everything = [c.id for c in sg.store.find_cis(sg.store.model.concrete("ci"), first=1000).items]
    writes = 0

    def write(batch: Batch, actor: str, when: dt.datetime, reason: str) -> None:
        nonlocal writes
        if len(batch):
            sg.store.write(batch, actor, reason=reason, at=iso(when))
            writes += 1

    # month 1: discovery fills in what identifies the machines
    batch = Batch()
    for n, host in enumerate(hosts):
        batch.add_ci(CI(host, "host", host, {"serial_number": f"SN{100000 + n}",
                                             "fqdn": f"{host}.dc.example", "last_seen": iso(start)}))  # fmt: skip
    for n, vm in enumerate(vms):
        batch.add_ci(CI(vm, "vm", vm, {"fqdn": f"{vm}.apps.example", "last_seen": iso(start),
                                       "ip_address": f"10.{n // 250 % 250}.{n % 250}.{10 + n % 7}",
                                       "os": rng.choice(["RHEL 8.6", "RHEL 9.2", "Ubuntu 22.04"])}))  # fmt: skip
    write(batch, "discovery", start + dt.timedelta(days=20), "first discovery run")
    order = list(everything)
    rng.shuffle(order)
    per_month = max(1, len(order) // 14)
    new_vm = 0
    for month in range(1, 12):
        when = start + dt.timedelta(days=30 * month + 3)
        # the clean-up: owners and support groups, a slice a month
        batch = Batch()
        for ident in order[(month - 1) * per_month : month * per_month]:
            batch.add_ci(CI(ident, sg.engine.class_of(ident), ident,
                            {"owner": f"owner{rng.randint(1, 40):02d}@example",
                             "support_group": rng.choice(TEAMS)}))  # fmt: skip
        write(batch, "cmdb.team", when, "CMDB clean-up")
        # vCenter: OS upgrades and a few new VMs on the first hosts
        batch = Batch()
        for vm in rng.sample(vms, k=min(len(vms), 6)):
            batch.add_ci(CI(vm, "vm", vm, {"os": rng.choice(["RHEL 9.4", "Ubuntu 24.04"]),
                                           "last_seen": iso(when)}))  # fmt: skip
        for _ in range(2 if hosts else 0):
            new_vm += 1
            ident = f"vm-new-{new_vm:04d}"
            batch.add_ci(CI(ident, "vm", f"new VM {new_vm}", {
                "status": "active", "environment": "production", "os": "RHEL 9.4",
                "fqdn": f"{ident}.apps.example", "ip_address": f"10.99.{new_vm // 250}.{new_vm % 250}",
                "last_seen": iso(when)}))  # fmt: skip
            batch.add_relationship(Relationship(ident, "HOSTED_ON", rng.choice(hosts)))
        write(batch, "vcenter", when + dt.timedelta(days=1), "vCenter sync")
        # engineers retire a VM now and then
        if month % 3 == 0 and vms:
            victim = vms[-month]
            sg.store.write(Batch(retire=[victim]), "ana.engineer", reason="decommissioned",
                           at=iso(when + dt.timedelta(days=2)))  # fmt: skip
            writes += 1
    return writes


def discovery_feed(sg: ServiceGraph, seed: int = 11) -> dict[str, Any]:
    """What a discovery tool reports today, in its own ids: hosts and live VMs as they are, with
    drift — two hosts renamed, three VMs with a new IP address, two VMs gone, two new hosts."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    hosts = [c for c in sg.store.find_cis(["host"], first=1000).items if c.status != "retired"]
    vms = [c for c in sg.store.find_cis(["vm"], first=1000).items if c.status != "retired"]
    gone = {v.id for v in vms[1:3]}
    moved = {v.id for v in vms[5:8]}
    renamed = {h.id for h in hosts[2:4]}
    for n, host in enumerate(hosts):
        a = host.attributes
        records.append({"id": f"disc-h{n:04d}", "class": "host",
                        "name": f"{host.name}-renamed" if host.id in renamed else host.name,
                        "attributes": {k: a[k] for k in ("serial_number", "os") if k in a}})  # fmt: skip
    for n, vm in enumerate(vms):
        if vm.id in gone:
            continue
        a = dict(vm.attributes)
        if vm.id in moved and a.get("ip_address"):
            a["ip_address"] = f"172.16.{n % 250}.{rng.randint(2, 250)}"
        records.append({"id": f"disc-v{n:05d}", "class": "vm", "name": vm.name,
                        "attributes": {k: a[k] for k in ("fqdn", "ip_address", "os") if k in a}})  # fmt: skip
    for n in range(2):
        records.append({"id": f"disc-new{n}", "class": "host", "name": f"new-host-{n}",
                        "attributes": {"serial_number": f"SN9{n:05d}", "os": "ESXi 8"}})  # fmt: skip
    return {"source": "discovery", "taken_at": iso(), "records": records}
