"""Names shared by the manifests: in-cluster hosts, secrets, operator-made objects.

One place, so that every reference (an env URL, an Ingress backend, a secretKeyRef)
and the object it points at are spelled by the same function.
"""

from __future__ import annotations

import re

from generator.catalog import Catalog, Service

#: Operators the manifests rely on (installed once per cluster; see docs/kubernetes.md).
STRIMZI_VERSION = "0.47.0"
CLOUDNATIVE_PG_VERSION = "1.25"
KONG_INGRESS_CONTROLLER_VERSION = "3.4"
KONG_INGRESS_CLASS = "kong"
#: Kubernetes minor the manifests are written and validated for.
KUBERNETES_VERSION = "1.32.0"

#: Ports the infrastructure images listen on (fixed by the images, not the catalog).
POSTGRES_PORT = 5432
REDIS_PORT = 6379
CLICKHOUSE_NATIVE_PORT = 9000
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_UI_PORT = 16686
OTEL_COLLECTOR_METRICS_PORT = 8888
OTEL_COLLECTOR_HEALTH_PORT = 13133

#: The user the application image runs as (``infrastructure/docker/Dockerfile``).
APP_UID = 10001
APP_IMAGE = "microcommerce:dev"
APP_IMAGE_NAME = "microcommerce"

REDIS = "redis"
CLICKHOUSE = "clickhouse"
OTEL_COLLECTOR = "otel-collector"
JAEGER = "jaeger"

#: Catalog env variables whose values are secrets: they come from a Secret, never a
#: ConfigMap. The catalog has no flag for it, so the variable's name decides.
_SECRET_ENV = re.compile(r"(^|_)(PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE_KEY)$")


def is_secret_env(name: str) -> bool:
    return _SECRET_ENV.search(name) is not None


def kafka_cluster(catalog: Catalog) -> str:
    """The Strimzi ``Kafka`` resource's name (the platform's)."""
    return catalog.platform.name


def kafka_bootstrap(catalog: Catalog) -> str:
    """``host:port`` of the plain listener: Strimzi's ``<cluster>-kafka-bootstrap``."""
    return f"{kafka_cluster(catalog)}-kafka-bootstrap:{catalog.infrastructure.kafka.port}"


def db_cluster(database: str) -> str:
    """The CloudNativePG ``Cluster`` of one service database."""
    return f"{database}-db"


def db_rw_service(database: str) -> str:
    """The read-write Service CloudNativePG makes for a cluster (``<cluster>-rw``)."""
    return f"{db_cluster(database)}-rw"


def db_secret(database: str) -> str:
    """The ``kubernetes.io/basic-auth`` Secret of a database's owner (username, password)."""
    return f"{db_cluster(database)}-credentials"


def config_map(service: Service) -> str:
    return f"{service.name}-config"


def service_secret(service: Service) -> str:
    """The Secret holding the catalog env variables of ``service`` that are secrets."""
    return f"{service.name}-secrets"


def secret_env(service: Service) -> list[str]:
    """Names of ``service``'s catalog env variables that are secrets."""
    return [variable.name for variable in service.env if is_secret_env(variable.name)]


def postgres_major(catalog: Catalog) -> str:
    """The PostgreSQL major version of the catalog's image (``postgres:16-alpine`` → 16)."""
    tag = catalog.infrastructure.postgres.image.rpartition(":")[2]
    major = re.match(r"\d+", tag)
    if major is None:
        raise ValueError(f"cannot read a PostgreSQL major version from {tag!r}")
    return major.group(0)


def kafka_version(catalog: Catalog) -> str:
    """The Kafka version of the catalog's image (``apache/kafka:3.9.1`` → 3.9.1)."""
    tag = catalog.infrastructure.kafka.image.rpartition(":")[2]
    if re.fullmatch(r"\d+\.\d+\.\d+", tag) is None:
        raise ValueError(f"cannot read a Kafka version from {tag!r}")
    return tag


def uses_redis(catalog: Catalog) -> bool:
    """Some service uses Redis, or a route's rate limiting keeps its counters there."""
    return any("redis" in s.uses for s in catalog.services.values()) or any(
        "rate-limiting" in route.plugins
        for s in catalog.services.values()
        if s.gateway
        for route in s.gateway.routes
    )
