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


def _live(sg: ServiceGraph, cls: str, first: int | None) -> list[CI]:
    classes = sg.store.model.concrete(cls)
    if first is not None:
        return sg.store.find_cis(classes, first=first).items
    wanted = set(classes)
    return [c for c in sg.store.iter_cis() if c.cls in wanted]


def seed_config_history(
    sg: ServiceGraph,
    rng: random.Random,
    now: dt.datetime,
    first: int | None = 1000,
    sweeps: bool = True,
) -> int:
    """Monthly writes between a year ago and now (journaled at their dates); returns how many.
    ``first`` caps the CIs of each class it touches (None: all, for the benchmark's estate);
    ``sweeps`` adds what a discovery tool does every month: it sees every live machine again
    (``last_seen``), the bulk of a real CMDB's journal — but one VM in 200, switched off half a
    year ago without telling anyone (stale now)."""
    start = now - YEAR
    hosts, vms = _live(sg, "host", first), _live(sg, "vm", first)
    everything = _live(sg, "ci", first)
    writes = 0

    def write(batch: Batch, actor: str, when: dt.datetime, reason: str) -> None:
        nonlocal writes
        if len(batch):
            sg.store.write(batch, actor, reason=reason, at=iso(when))
            writes += 1

    # month 1: discovery fills in what identifies the machines
    batch = Batch()
    for n, host in enumerate(hosts):
        batch.add_ci(CI(host.id, host.cls, host.name, {
            "serial_number": f"SN{100000 + n}", "fqdn": f"{host.id}.dc.example",
            "last_seen": iso(start)}))  # fmt: skip
    for n, vm in enumerate(vms):
        batch.add_ci(CI(vm.id, vm.cls, vm.name, {
            "fqdn": f"{vm.id}.apps.example", "last_seen": iso(start),
            "ip_address": f"10.{n // 250 % 250}.{n % 250}.{10 + n % 7}",
            "os": rng.choice(["RHEL 8.6", "RHEL 9.2", "Ubuntu 22.04"])}))  # fmt: skip
    write(batch, "discovery", start + dt.timedelta(days=20), "first discovery run")
    order = list(everything)
    rng.shuffle(order)
    per_month = max(1, len(order) // 14)
    retired: set[str] = set()
    lost = {vm.id for vm in vms[100::200]}
    born: list[CI] = []  # vCenter's new VMs: discovery finds them too
    new_vm = 0
    for month in range(1, 12):
        when = start + dt.timedelta(days=30 * month + 3)
        # the clean-up: owners and support groups, a slice a month
        batch = Batch()
        for ci in order[(month - 1) * per_month : month * per_month]:
            batch.add_ci(CI(ci.id, ci.cls, ci.name,
                            {"owner": f"owner{rng.randint(1, 40):02d}@example",
                             "support_group": rng.choice(TEAMS)}))  # fmt: skip
        write(batch, "cmdb.team", when, "CMDB clean-up")
        # vCenter: OS upgrades and a few new VMs on the first hosts
        batch = Batch()
        for vm in rng.sample(vms, k=min(len(vms), max(6, len(vms) // 50))):
            batch.add_ci(CI(vm.id, vm.cls, vm.name, {
                "os": rng.choice(["RHEL 9.4", "Ubuntu 24.04"]), "last_seen": iso(when)}))  # fmt: skip
        for _ in range(max(2, len(vms) // 500) if hosts else 0):
            new_vm += 1
            ident = f"vm-new-{new_vm:05d}"
            batch.add_ci(CI(ident, "vm", f"new VM {new_vm}", {
                "status": "active", "environment": "production", "os": "RHEL 9.4",
                "fqdn": f"{ident}.apps.example",
                "ip_address": f"10.{200 + new_vm // 62500}.{new_vm // 250 % 250}.{new_vm % 250}",
                "last_seen": iso(when)}))  # fmt: skip
            batch.add_relationship(Relationship(ident, "HOSTED_ON", rng.choice(hosts).id))
            born.append(CI(ident, "vm", f"new VM {new_vm}"))
        write(batch, "vcenter", when + dt.timedelta(days=1), "vCenter sync")
        # engineers retire VMs now and then
        if month % 3 == 0 and vms:
            victims = [
                v.id for v in vms[-month * max(1, len(vms) // 400) :][: max(1, len(vms) // 400)]
            ]
            retired.update(victims)
            sg.store.write(Batch(retire=victims), "ana.engineer", reason="decommissioned",
                           at=iso(when + dt.timedelta(days=2)))  # fmt: skip
            writes += 1
        if sweeps:  # discovery sees every live machine again (not the ones switched off)
            seen = iso(when + dt.timedelta(days=5))
            batch = Batch()
            for ci in hosts + vms + born:
                if ci.id not in retired and not (month >= 6 and ci.id in lost):
                    batch.add_ci(CI(ci.id, ci.cls, ci.name, {"last_seen": seen}))
            write(batch, "discovery", when + dt.timedelta(days=5), "discovery run")
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
