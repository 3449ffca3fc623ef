"""A realistic, reproducible demo estate (``servicegraph demo --size N``).

Shape: datacentres with redundant core routers, firewalls, load balancers and top-of-rack switch pairs;
storage arrays (shared hubs, single points of failure on purpose); hypervisor clusters of hosts
(``min_up`` = size - 1) and a few standalone hosts; VMs with volumes; applications deployed as 1-4
instances; shared databases (primary + replica), middleware clusters, a DNS service and a single
sign-on application that everything depends on; technical and business services composed of them;
SLAs agreeing business services with customers; licences and documents; a monitoring platform
watching every host, VM and switch and a backup platform protecting every volume (about four
relationships per CI in all). The same ``size`` and ``seed``
always give the same estate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from servicegraph.graph.records import CI, Batch, Relationship

__all__ = ["generate_estate"]

_RECORDS = ("customer", "sla")
_WORDS = [
    "billing",
    "payments",
    "orders",
    "catalogue",
    "search",
    "checkout",
    "loyalty",
    "crm",
    "hr",
    "payroll",
    "ledger",
    "invoicing",
    "shipping",
    "tracking",
    "inventory",
    "pricing",
    "claims",
    "policy",
    "quotes",
    "portal",
    "mobile",
    "reporting",
    "analytics",
    "identity",
    "mail",
    "calendar",
    "wiki",
    "tickets",
    "monitoring",
    "backup",
    "scheduler",
    "gateway",
    "notifications",
]


@dataclass
class _Estate:
    rng: random.Random
    batch: Batch = field(default_factory=Batch)
    counters: dict[str, int] = field(default_factory=dict)
    monitored: list[str] = field(default_factory=list)  # hosts, VMs, network devices
    backed_up: list[str] = field(default_factory=list)  # volumes

    def ci(self, cls: str, name: str | None = None, **attributes: Any) -> str:
        n = self.counters[cls] = self.counters.get(cls, 0) + 1
        ident = f"{cls.replace('_', '-')}-{n:06d}"
        if cls not in _RECORDS:
            attributes.setdefault("status", "active")
        if cls not in (*_RECORDS, "datacentre", "licence", "document"):
            attributes.setdefault("environment", "production")
        self.batch.add_ci(CI(ident, cls, name or ident, attributes))
        return ident

    def rel(self, source: str, rel_type: str, target: str) -> None:
        self.batch.add_relationship(Relationship(source, rel_type, target))

    def cluster(self, name: str, members: list[str], min_up: int, kind: str) -> str:
        ident = self.ci("cluster", name, min_up=min_up, cluster_type=kind)
        for member in members:
            self.rel(ident, "HAS_MEMBER", member)
        return ident


@dataclass
class _Site:
    dc: str
    core: str
    lb: str
    arrays: list[str]
    os_licence: str = ""
    tor: str = ""
    tor_left: int = 0
    compute: str = ""
    compute_left: int = 0


def generate_estate(size: int, seed: int = 7) -> Batch:
    """About ``size`` CIs and records (at least a small complete estate) with their relationships."""
    e = _Estate(random.Random(seed))
    sites = [_site(e, i, size) for i in range(2 if size < 50_000 else 3)]
    dns_vms = [_vm(e, sites[i % len(sites)], f"dns{i + 1}") for i in range(2)]
    dns = e.ci("dns", "corp.example DNS", zone="corp.example", criticality=5)
    e.rel(dns, "DEPENDS_ON", e.cluster("dns servers", dns_vms, 1, "compute"))
    sso = _application(e, sites, "single-sign-on", dns, None, instances=3)
    licences = [
        e.ci("licence", f"{p} licence", product=p, seats=500) for p in ("RHEL", "Oracle", "Java")
    ]
    docs: list[str] = []
    databases: list[str] = []
    middleware: list[str] = []
    apps: list[str] = [sso]
    budget = max(size, 200)
    while len(e.batch.cis) < budget * 0.94:
        rng = e.rng
        if not databases or rng.random() < 0.25:
            databases.append(_database(e, sites))
        if not middleware or rng.random() < 0.04:
            middleware.append(_middleware(e, sites))
        app = _application(e, sites, f"{rng.choice(_WORDS)}-{len(apps)}", dns, sso)
        apps.append(app)
        if rng.random() < 0.7:
            e.rel(app, "DEPENDS_ON", rng.choice(databases[-4:]))
        if rng.random() < 0.35:
            e.rel(app, "DEPENDS_ON", rng.choice(middleware))
        if rng.random() < 0.5:
            e.rel(app, "DEPENDS_ON", rng.choice(sites).lb)
        if rng.random() < 0.3:
            e.rel(app, "LICENSED_BY", rng.choice(licences))
        if rng.random() < 0.15:
            doc = e.ci("document", f"runbook {app}", doc_status="approved", doc_version="1.0")
            docs.append(doc)
            e.rel(app, "DOCUMENTED_BY", doc)
    _services(e, apps, dns)
    _operations(e, sites, dns, sso)
    return e.batch


def _site(e: _Estate, i: int, size: int) -> _Site:
    city = ["Frankfurt", "Dublin", "Paris"][i]
    dc = e.ci("datacentre", f"DC {city}", city=city, tier=3)
    firewalls = [e.ci("firewall", f"fw{j} {city}") for j in (1, 2)]
    fw = e.cluster(f"firewalls {city}", firewalls, 1, "network")
    routers = [e.ci("router", f"core{j} {city}") for j in (1, 2)]
    for device in (*firewalls, *routers):
        e.rel(device, "LOCATED_IN", dc)
    for router in routers:
        e.rel(router, "CONNECTS_TO", fw)
    core = e.cluster(f"core routers {city}", routers, 1, "network")
    lbs = [e.ci("load_balancer", f"lb{j} {city}") for j in (1, 2)]
    for lb in lbs:
        e.rel(lb, "CONNECTS_TO", core)
    lb_pair = e.cluster(f"load balancers {city}", lbs, 1, "network")
    arrays = []
    for j in range(max(1, size // 40_000)):
        array = e.ci("storage_array", f"array{j + 1} {city}", capacity_tb=500.0, criticality=5)
        e.rel(array, "CONNECTS_TO", core)
        e.rel(array, "LOCATED_IN", dc)
        arrays.append(array)
    licence = e.ci("licence", f"RHEL {city}", product="RHEL", seats=100_000)
    return _Site(dc, core, lb_pair, arrays, licence)


def _host(e: _Estate, site: _Site) -> str:
    if site.tor_left == 0:
        switches = [e.ci("switch", f"tor{j} {site.dc}") for j in (1, 2)]
        for sw in switches:
            e.rel(sw, "CONNECTS_TO", site.core)
            e.rel(sw, "LOCATED_IN", site.dc)
        e.monitored.extend(switches)
        site.tor = e.cluster(f"tor pair {switches[0]}", switches, 1, "network")
        site.tor_left = 20
    site.tor_left -= 1
    host = e.ci("host", cpu_cores=64, memory_gb=512.0, os="ESXi 8")
    e.monitored.append(host)
    e.rel(host, "CONNECTS_TO", site.tor)
    e.rel(host, "LOCATED_IN", site.dc)
    return host


def _vm(e: _Estate, site: _Site, name: str | None = None) -> str:
    rng = e.rng
    if rng.random() < 0.05:
        target = _host(e, site)  # a standalone host: a single point of failure
    else:
        if site.compute_left == 0:
            n = rng.randint(4, 8)
            site.compute = e.cluster(
                f"hypervisors {site.dc}", [_host(e, site) for _ in range(n)], n - 1, "compute"
            )
            site.compute_left = n * 15
        site.compute_left -= 1
        target = site.compute
    vm = e.ci("vm", name, cpu_cores=rng.choice([2, 4, 8]), memory_gb=float(rng.choice([8, 16, 32])))
    e.rel(vm, "HOSTED_ON", target)
    e.rel(vm, "CONNECTS_TO", site.tor)  # its virtual switch uplinks through the rack's pair
    e.rel(vm, "LOCATED_IN", site.dc)
    e.rel(vm, "LICENSED_BY", site.os_licence)
    volume = e.ci("storage_volume", size_gb=float(rng.choice([100, 250, 500])))
    e.rel(volume, "ALLOCATED_FROM", rng.choice(site.arrays))
    e.rel(volume, "LOCATED_IN", site.dc)
    e.rel(vm, "USES_STORAGE", volume)
    e.monitored.append(vm)
    e.backed_up.append(volume)
    return vm


def _application(
    e: _Estate, sites: list[_Site], name: str, dns: str, sso: str | None, instances: int = 0
) -> str:
    rng = e.rng
    app = e.ci("application", name, criticality=rng.randint(1, 5), software_version="1.0")
    for i in range(instances or rng.choice([1, 2, 2, 3, 4])):
        inst = e.ci("application_instance", f"{name} #{i + 1}", port=8443)
        site = sites[i % len(sites)]
        e.rel(inst, "RUNS_ON", _vm(e, site))
        e.rel(inst, "LOCATED_IN", site.dc)
        e.rel(inst, "DEPENDS_ON", dns)  # resolves its peers' names
        e.rel(app, "DEPLOYED_AS", inst)
    e.rel(app, "DEPENDS_ON", dns)
    if sso:
        e.rel(app, "DEPENDS_ON", sso)
    return app


def _database(e: _Estate, sites: list[_Site]) -> str:
    engine = e.rng.choice(["postgresql", "oracle", "mysql", "sqlserver"])
    db = e.ci("database", engine=engine, criticality=4)
    for i, role in enumerate(("primary", "replica")):
        inst = e.ci("database_instance", role=role, port=5432)
        e.rel(inst, "RUNS_ON", _vm(e, sites[i % len(sites)]))
        e.rel(db, "DEPLOYED_AS", inst)
    return db


def _middleware(e: _Estate, sites: list[_Site]) -> str:
    mw = e.ci("middleware", product=e.rng.choice(["Kafka", "RabbitMQ", "Tomcat", "Redis"]))
    vms = [_vm(e, sites[i % len(sites)]) for i in range(3)]
    e.rel(mw, "RUNS_ON", e.cluster(f"{mw} nodes", vms, 2, "application"))
    return mw


def _operations(e: _Estate, sites: list[_Site], dns: str, sso: str) -> None:
    """The monitoring and backup platforms and what they watch and protect (added last, so the
    rest of the estate is the same as without them)."""
    watched, protected = list(e.monitored), list(e.backed_up)
    monitoring = _application(e, sites, "monitoring platform", dns, sso, instances=2)
    backup = _application(e, sites, "backup platform", dns, sso, instances=2)
    for ci in watched:
        e.rel(ci, "MONITORED_BY", monitoring)
    for volume in protected:
        e.rel(volume, "BACKED_UP_BY", backup)


def _services(e: _Estate, apps: list[str], dns: str) -> None:
    rng = e.rng
    technical = []
    for i in range(0, len(apps), 5):
        ts = e.ci("technical_service", f"technical service {i // 5 + 1}", criticality=3)
        for app in apps[i : i + 5]:
            e.rel(ts, "COMPOSED_OF", app)
        technical.append(ts)
    customers = [
        e.ci("customer", f"customer {i + 1}", segment=rng.choice(["retail", "corporate", "public"]))
        for i in range(max(3, len(apps) // 40))
    ]
    for i in range(0, len(technical), 3):
        bs = e.ci(
            "business_service",
            f"business service {i // 3 + 1}",
            criticality=rng.randint(2, 5),
            availability_target=rng.choice([0.99, 0.995, 0.999]),
            service_level=rng.choice(["gold", "silver", "bronze"]),
        )
        for ts in technical[i : i + 3]:
            e.rel(bs, "COMPOSED_OF", ts)
        sla = e.ci(
            "sla",
            f"SLA {bs}",
            availability_target=0.995,
            response_minutes=30,
            resolution_minutes=480,
        )
        e.rel(sla, "COVERS", bs)
        for customer in rng.sample(customers, k=min(len(customers), rng.randint(1, 3))):
            e.rel(sla, "AGREED_WITH", customer)
    e.rel(e.ci("technical_service", "name resolution", criticality=5), "COMPOSED_OF", dns)
