"""Published topologies to test analyses on real shapes, not only our generator's.

Online Boutique (GoogleCloudPlatform/microservices-demo, Apache-2.0): 11 services that call each
other over gRPC. The calls below are the ``*_SERVICE_ADDR`` / ``REDIS_ADDR`` environment variables
of each deployment in its ``kubernetes-manifests`` (frontend → 7 services, checkout → 6,
recommendation → product catalog, cart → redis-cart); loadgenerator only drives traffic and is
left out. Each service runs as pods (replicas) on three cluster nodes.
"""

from __future__ import annotations

from servicegraph.graph.records import CI, Batch, Relationship

BOUTIQUE_CALLS: dict[str, list[str]] = {
    "frontend": ["productcatalogservice", "currencyservice", "cartservice",
                 "recommendationservice", "shippingservice", "checkoutservice", "adservice"],
    "checkoutservice": ["productcatalogservice", "shippingservice", "paymentservice",
                        "emailservice", "currencyservice", "cartservice"],
    "recommendationservice": ["productcatalogservice"],
    "cartservice": ["redis-cart"],
    "productcatalogservice": [], "currencyservice": [], "paymentservice": [],
    "shippingservice": [], "emailservice": [], "adservice": [], "redis-cart": [],
}  # fmt: skip
NODES = ["gke-node-1", "gke-node-2", "gke-node-3"]


def boutique_batch(replicas: int = 2) -> Batch:
    """The boutique as CIs: a business service composed of the frontend, each microservice an
    application (redis-cart a database) deployed as ``replicas`` pods spread over the nodes."""
    batch = Batch()
    batch.add_ci(CI("online-boutique", "business_service", "Online Boutique",
                    {"criticality": 5}))  # fmt: skip
    batch.add_relationship(Relationship("online-boutique", "COMPOSED_OF", "frontend"))
    for node in NODES:
        batch.add_ci(CI(node, "host", node))
    for n, service in enumerate(sorted(BOUTIQUE_CALLS)):
        is_db = service == "redis-cart"
        batch.add_ci(CI(service, "database" if is_db else "application", service))
        for r in range(replicas):
            pod = f"{service}-pod-{r}"
            batch.add_ci(CI(pod, "database_instance" if is_db else "application_instance", pod))
            batch.add_relationship(Relationship(service, "DEPLOYED_AS", pod))
            batch.add_relationship(Relationship(pod, "RUNS_ON", NODES[(n + r) % len(NODES)]))
    for caller, callees in BOUTIQUE_CALLS.items():
        for callee in callees:
            batch.add_relationship(Relationship(caller, "DEPENDS_ON", callee))
    return batch
