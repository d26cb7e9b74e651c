"""What the services run on: Kafka (Strimzi), PostgreSQL (CloudNativePG), Redis,
ClickHouse, the OpenTelemetry Collector and Jaeger.

Kafka and PostgreSQL are custom resources of their operators, which create the pods,
the Services (``<cluster>-kafka-bootstrap``, ``<db>-db-rw``) and the PVCs. The base
is sized for one broker and one database instance; the prod overlay scales both to
three with matching replication settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generator.catalog import Catalog
from generator.emit.kubernetes import naming
from generator.emit.kubernetes.manifests import (
    RESTRICTED_CONTAINER,
    Manifest,
    container_port,
    dump,
    http_probe,
    metadata,
    resource_name,
    selector,
    service,
    service_port,
)

STRIMZI_API = "kafka.strimzi.io/v1beta2"
CNPG_API = "postgresql.cnpg.io/v1"
KAFKA_NODE_POOL = "dual-role"
KAFKA_LISTENER = "plain"
OTEL_CONFIG = "otel-collector-config"
OTEL_CONFIG_FILE = "config.yaml"
OTEL_CONFIG_DIR = "/etc/otelcol-contrib"

#: Broker settings of one node; the prod overlay raises the replication ones.
KAFKA_SINGLE_NODE_CONFIG: dict[str, Any] = {
    "auto.create.topics.enable": False,
    "default.replication.factor": 1,
    "min.insync.replicas": 1,
    "offsets.topic.replication.factor": 1,
    "transaction.state.log.replication.factor": 1,
    "transaction.state.log.min.isr": 1,
    "group.initial.rebalance.delay.ms": 0,
}


# --------------------------------------------------------------------------- Kafka


def kafka_manifests(catalog: Catalog, default_partitions: int) -> list[Manifest]:
    """The Strimzi ``Kafka`` (KRaft) and its dual-role ``KafkaNodePool``."""
    part_of = catalog.platform.name
    cluster = naming.kafka_cluster(catalog)
    version = naming.kafka_version(catalog)
    kafka = {
        "apiVersion": STRIMZI_API,
        "kind": "Kafka",
        "metadata": metadata(
            cluster,
            "kafka",
            part_of,
            annotations={"strimzi.io/kraft": "enabled", "strimzi.io/node-pools": "enabled"},
        ),
        "spec": {
            "kafka": {
                "version": version,
                "metadataVersion": version.rpartition(".")[0],
                "listeners": [
                    {
                        "name": KAFKA_LISTENER,
                        "port": catalog.infrastructure.kafka.port,
                        "type": "internal",
                        "tls": False,
                    }
                ],
                "config": {
                    **KAFKA_SINGLE_NODE_CONFIG,
                    "num.partitions": default_partitions,
                },
            },
            # The topic operator turns the KafkaTopic resources into topics.
            "entityOperator": {"topicOperator": {}, "userOperator": {}},
        },
    }
    pool = {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaNodePool",
        "metadata": metadata(
            KAFKA_NODE_POOL, "kafka", part_of, extra_labels={"strimzi.io/cluster": cluster}
        ),
        "spec": {
            "replicas": 1,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": "10Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": {
                "requests": {"cpu": "250m", "memory": "1Gi"},
                "limits": {"memory": "2Gi"},
            },
        },
    }
    return [kafka, pool]


def topic_manifests(catalog: Catalog, topics: Sequence[tuple[str, int]]) -> list[Manifest]:
    """One ``KafkaTopic`` per catalog topic, partitions from the AsyncAPI bindings."""
    cluster = naming.kafka_cluster(catalog)
    return [
        {
            "apiVersion": STRIMZI_API,
            "kind": "KafkaTopic",
            "metadata": metadata(
                resource_name(name),
                "kafka",
                catalog.platform.name,
                extra_labels={"strimzi.io/cluster": cluster},
            ),
            # topicName: resource names cannot hold the '_' some topic names have.
            "spec": {"topicName": name, "partitions": partitions, "replicas": 1},
        }
        for name, partitions in topics
    ]


# --------------------------------------------------------------------------- PostgreSQL


def postgres_manifests(catalog: Catalog) -> list[Manifest]:
    """One CloudNativePG ``Cluster`` per service database (database per service)."""
    databases = sorted({s.database for s in catalog.services.values() if s.database})
    major = naming.postgres_major(catalog)
    return [
        {
            "apiVersion": CNPG_API,
            "kind": "Cluster",
            "metadata": metadata(naming.db_cluster(db), "database", catalog.platform.name),
            "spec": {
                "instances": 1,
                # CloudNativePG's operand image of the catalog's PostgreSQL major.
                "imageName": f"ghcr.io/cloudnative-pg/postgresql:{major}",
                "primaryUpdateStrategy": "unsupervised",
                "storage": {"size": "5Gi"},
                "bootstrap": {
                    "initdb": {
                        "database": db,
                        "owner": db,
                        "secret": {"name": naming.db_secret(db)},
                    }
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"memory": "1Gi"},
                },
            },
        }
        for db in databases
    ]


# --------------------------------------------------------------------------- Redis


def redis_manifests(catalog: Catalog) -> list[Manifest]:
    """Redis for caches, breaker state and Kong's rate-limiting counters (no persistence:
    everything in it can be rebuilt)."""
    part_of = catalog.platform.name
    ping = {"exec": {"command": ["redis-cli", "ping"]}}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(naming.REDIS, "cache", part_of),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": selector(naming.REDIS)},
                "template": {
                    "metadata": {"labels": metadata(naming.REDIS, "cache", part_of)["labels"]},
                    "spec": {
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 999,
                            "runAsGroup": 999,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": naming.REDIS,
                                "image": catalog.infrastructure.redis.image,
                                "args": ["--save", "", "--appendonly", "no"],
                                "ports": [container_port("redis", naming.REDIS_PORT)],
                                "readinessProbe": {**ping, "periodSeconds": 5},
                                "livenessProbe": {**ping, "periodSeconds": 10},
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": RESTRICTED_CONTAINER,
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                    },
                },
            },
        },
        service(naming.REDIS, "cache", part_of, [service_port("redis", naming.REDIS_PORT)]),
    ]


# --------------------------------------------------------------------------- ClickHouse


def clickhouse_manifests(catalog: Catalog) -> list[Manifest]:
    """A single ClickHouse server: the analytics read side (rebuildable from Kafka)."""
    part_of = catalog.platform.name
    http_port = catalog.infrastructure.clickhouse.http_port
    ping = http_probe("/ping", "http", period=10, failures=6)
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": metadata(naming.CLICKHOUSE, "analytics-store", part_of),
            "spec": {
                "serviceName": naming.CLICKHOUSE,
                "replicas": 1,
                "selector": {"matchLabels": selector(naming.CLICKHOUSE)},
                "template": {
                    "metadata": {
                        "labels": metadata(naming.CLICKHOUSE, "analytics-store", part_of)["labels"]
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": naming.CLICKHOUSE,
                                "image": catalog.infrastructure.clickhouse.image,
                                # As in compose: the default user, reachable in-cluster.
                                "env": [{"name": "CLICKHOUSE_SKIP_USER_SETUP", "value": "1"}],
                                "ports": [
                                    container_port("http", http_port),
                                    container_port("native", naming.CLICKHOUSE_NATIVE_PORT),
                                ],
                                "readinessProbe": ping,
                                "livenessProbe": ping,
                                "resources": {
                                    "requests": {"cpu": "250m", "memory": "512Mi"},
                                    "limits": {"memory": "2Gi"},
                                },
                                "volumeMounts": [
                                    {"name": "data", "mountPath": "/var/lib/clickhouse"}
                                ],
                            }
                        ]
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "5Gi"}},
                        },
                    }
                ],
            },
        },
        service(
            naming.CLICKHOUSE,
            "analytics-store",
            part_of,
            [
                service_port("http", http_port),
                service_port("native", naming.CLICKHOUSE_NATIVE_PORT),
            ],
        ),
    ]


# --------------------------------------------------------------------------- telemetry


def otel_collector_config(catalog: Catalog) -> dict[str, Any]:
    """The collector's pipeline: OTLP in, traces to Jaeger, every signal to ``debug``.

    The same pipeline as infrastructure/observability/otel-collector.yaml (compose),
    built from the catalog's ports.
    """
    otel = catalog.infrastructure.otel_collector
    return {
        "extensions": {
            "health_check": {"endpoint": f"0.0.0.0:{naming.OTEL_COLLECTOR_HEALTH_PORT}"}
        },
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"0.0.0.0:{otel.otlp_grpc_port}"},
                    "http": {"endpoint": f"0.0.0.0:{otel.otlp_http_port}"},
                }
            }
        },
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 400, "spike_limit_mib": 100},
            "batch": {},
        },
        "exporters": {
            "otlp/jaeger": {
                "endpoint": f"{naming.JAEGER}:{naming.JAEGER_OTLP_GRPC_PORT}",
                "tls": {"insecure": True},
            },
            "debug": {"verbosity": "basic"},
        },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {"metrics": {"address": f"0.0.0.0:{naming.OTEL_COLLECTOR_METRICS_PORT}"}},
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp/jaeger", "debug"],
                },
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["debug"],
                },
                "logs": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["debug"],
                },
            },
        },
    }


def telemetry_manifests(catalog: Catalog) -> list[Manifest]:
    """OpenTelemetry Collector (config in a ConfigMap) and Jaeger all-in-one."""
    part_of = catalog.platform.name
    otel = catalog.infrastructure.otel_collector
    health = http_probe("/", "health", period=10, failures=3)
    collector = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(naming.OTEL_COLLECTOR, "telemetry", part_of),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(naming.OTEL_COLLECTOR)},
            "template": {
                "metadata": {
                    "labels": metadata(naming.OTEL_COLLECTOR, "telemetry", part_of)["labels"],
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(naming.OTEL_COLLECTOR_METRICS_PORT),
                    },
                },
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": naming.APP_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": naming.OTEL_COLLECTOR,
                            "image": otel.image,
                            "args": [f"--config={OTEL_CONFIG_DIR}/{OTEL_CONFIG_FILE}"],
                            "ports": [
                                container_port("otlp-grpc", otel.otlp_grpc_port),
                                container_port("otlp-http", otel.otlp_http_port),
                                container_port("metrics", naming.OTEL_COLLECTOR_METRICS_PORT),
                                container_port("health", naming.OTEL_COLLECTOR_HEALTH_PORT),
                            ],
                            "readinessProbe": health,
                            "livenessProbe": health,
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "512Mi"},
                            },
                            "securityContext": RESTRICTED_CONTAINER,
                            "volumeMounts": [
                                {"name": "config", "mountPath": OTEL_CONFIG_DIR, "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "config", "configMap": {"name": OTEL_CONFIG}}],
                },
            },
        },
    }
    jaeger = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(naming.JAEGER, "telemetry", part_of),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector(naming.JAEGER)},
            "template": {
                "metadata": {"labels": metadata(naming.JAEGER, "telemetry", part_of)["labels"]},
                "spec": {
                    "containers": [
                        {
                            "name": naming.JAEGER,
                            "image": catalog.infrastructure.jaeger.image,
                            "env": [{"name": "COLLECTOR_OTLP_ENABLED", "value": "true"}],
                            "ports": [
                                container_port("otlp-grpc", naming.JAEGER_OTLP_GRPC_PORT),
                                container_port("ui", naming.JAEGER_UI_PORT),
                            ],
                            "readinessProbe": http_probe("/", "ui", period=10, failures=3),
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"memory": "1Gi"},
                            },
                        }
                    ]
                },
            },
        },
    }
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(OTEL_CONFIG, "telemetry", part_of),
            "data": {OTEL_CONFIG_FILE: dump(otel_collector_config(catalog))},
        },
        collector,
        service(
            naming.OTEL_COLLECTOR,
            "telemetry",
            part_of,
            [
                service_port("otlp-grpc", otel.otlp_grpc_port, app_protocol="kubernetes.io/h2c"),
                service_port("otlp-http", otel.otlp_http_port),
                service_port("metrics", naming.OTEL_COLLECTOR_METRICS_PORT),
            ],
        ),
        jaeger,
        service(
            naming.JAEGER,
            "telemetry",
            part_of,
            [
                service_port(
                    "otlp-grpc", naming.JAEGER_OTLP_GRPC_PORT, app_protocol="kubernetes.io/h2c"
                ),
                service_port("ui", naming.JAEGER_UI_PORT),
            ],
        ),
    ]
