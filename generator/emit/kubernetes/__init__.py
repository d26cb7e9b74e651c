"""Kubernetes manifests from the services catalog and AsyncAPI: a kustomize base and
dev/prod overlays under ``deploy/kubernetes/``.

- ``base/services/<service>.yaml``: ConfigMap, Deployment (probes on the health
  endpoints, resources, config from the ConfigMap and Secrets), Service (HTTP and,
  where the catalog has one, gRPC), HorizontalPodAutoscaler, PodDisruptionBudget;
- ``base/gateway.yaml``: Kong Ingress Controller resources with kong.yml's plugins;
- ``base/kafka.yaml``, ``base/kafka-topics.yaml``: Strimzi Kafka (KRaft, node pool)
  and one KafkaTopic per AsyncAPI channel with its partitions;
- ``base/postgres.yaml``: one CloudNativePG Cluster per service database;
- ``base/redis.yaml``, ``base/clickhouse.yaml``, ``base/telemetry.yaml``;
- ``overlays/{dev,prod}/``: see ``overlays``.

Deterministic, byte for byte: the catalog's order, sorted file lists, no timestamps.
"""

from __future__ import annotations

from generator.catalog import Catalog
from generator.emit import Output, header
from generator.emit.infra import _sources, _topics
from generator.emit.kubernetes import apps, gateway, overlays, platform
from generator.emit.kubernetes.manifests import (
    BASE_DIR,
    OVERLAYS_DIR,
    Manifest,
    documents,
    dump,
)
from generator.emit.kubernetes.naming import (
    CLOUDNATIVE_PG_VERSION,
    KONG_INGRESS_CONTROLLER_VERSION,
    STRIMZI_VERSION,
    uses_redis,
)
from generator.specset import SpecSet

__all__ = ["emit_kubernetes"]


def _base_files(
    catalog: Catalog, topics: list[tuple[str, int]], banner: str, topics_banner: str
) -> dict[str, str]:
    """The base's manifest files by path inside ``base/`` (kustomization excluded)."""
    files: dict[str, str] = {}

    def add(path: str, note: str, manifests: list[Manifest], banner_: str = banner) -> None:
        if manifests:
            files[path] = documents(banner_, note, manifests)

    default_partitions = catalog.infrastructure.kafka.default_partitions
    if any("kafka" in s.uses for s in catalog.services.values()):
        add(
            "kafka.yaml",
            f"Apache Kafka in KRaft mode through the Strimzi operator ({STRIMZI_VERSION}):\n"
            "one dual-role (controller + broker) node pool; the Service the services use is\n"
            "Strimzi's <cluster>-kafka-bootstrap. The prod overlay scales it to three nodes.",
            platform.kafka_manifests(catalog, default_partitions),
        )
        add(
            "kafka-topics.yaml",
            "Every topic of the catalog, partitions from the AsyncAPI channel bindings; the\n"
            "Strimzi topic operator creates them (auto-creation is off).",
            platform.topic_manifests(catalog, topics),
            topics_banner,
        )
    add(
        "postgres.yaml",
        f"One PostgreSQL cluster per service database (CloudNativePG {CLOUDNATIVE_PG_VERSION}):\n"
        "the operator makes the <name>-rw Service the service connects to. The owner's\n"
        "credentials come from the <name>-credentials Secret (dev overlay, or provided).",
        platform.postgres_manifests(catalog),
    )
    if uses_redis(catalog):
        add("redis.yaml", "Redis (no persistence).", platform.redis_manifests(catalog))
    if any("clickhouse" in s.uses for s in catalog.services.values()):
        add(
            "clickhouse.yaml",
            "ClickHouse server for the analytics read side.",
            platform.clickhouse_manifests(catalog),
        )
    add(
        "telemetry.yaml",
        "OpenTelemetry Collector (OTLP from every service) and Jaeger (traces).",
        platform.telemetry_manifests(catalog),
    )
    add(
        "gateway.yaml",
        f"Kong through its Ingress Controller ({KONG_INGRESS_CONTROLLER_VERSION}): one Ingress"
        " per route of\ninfrastructure/gateway/kong.yml with the same plugins and configs.",
        gateway.gateway_manifests(catalog),
    )
    for service in catalog.services.values():
        add(
            f"services/{service.name}.yaml",
            apps.service_note(service),
            apps.service_manifests(catalog, service),
        )
    return files


def emit_kubernetes(specset: SpecSet, out: Output) -> None:
    """Add ``deploy/kubernetes/**`` to ``out``."""
    catalog = specset.catalog
    if catalog is None:
        raise ValueError("emit_kubernetes needs the validated catalog (specset.catalog)")
    found = _topics(specset, catalog)
    topics = [(topic.name, topic.partitions) for topic in found]
    banner = header(_sources(specset))
    topics_banner = header(_sources(specset, found))
    base = _base_files(catalog, topics, banner, topics_banner)
    kustomization = overlays.base_kustomization(sorted(base))
    out.add(f"{BASE_DIR}/kustomization.yaml", topics_banner + dump(kustomization))
    for path, text in sorted(base.items()):
        out.add(f"{BASE_DIR}/{path}", text)
    for overlay in (overlays.DEV, overlays.PROD):
        files = overlays.overlay_files(
            catalog,
            overlay,
            banner=banner,
            has_services=bool(catalog.services),
            has_kafka="kafka.yaml" in base,
            has_databases="postgres.yaml" in base,
            rate_limited=gateway.rate_limiting_plugins(catalog),
        )
        for path, text in files.items():
            out.add(f"{OVERLAYS_DIR}/{overlay}/{path}", text)
