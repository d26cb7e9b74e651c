"""One file per catalog service: ConfigMap, Deployment, Service, HPA, PodDisruptionBudget.

The environment mirrors docker-compose.yml's (same variables, same meaning) with
in-cluster hosts: the CloudNativePG cluster's ``-rw`` Service, Strimzi's bootstrap
Service, and the Services of this base. Listen addresses are ``0.0.0.0`` (the
settings default to loopback for the local stack). Secrets never go into the
ConfigMap: the database password and the catalog variables named like secrets come
from Secrets (the dev overlay generates them; production provides them).
"""

from __future__ import annotations

from generator.catalog import Catalog, Service
from generator.emit.kubernetes import naming
from generator.emit.kubernetes.manifests import (
    NAME,
    RESTRICTED_CONTAINER,
    Manifest,
    checksum,
    container_port,
    env_name,
    http_probe,
    metadata,
    selector,
    service,
    service_port,
)

COMPONENT = "service"
#: Replicas of every service: two from the start, so that replica safety is the
#: normal case and a node drain never takes a service down.
MIN_REPLICAS = 2
MAX_REPLICAS = 6
CPU_TARGET_PERCENT = 70
#: uvicorn drains for SHUTDOWN_GRACE_SECONDS (10) after the preStop pause; the rest is
#: margin for the background tasks to stop.
TERMINATION_GRACE_SECONDS = 30
#: Let endpoints and Kong stop sending traffic before the process starts draining.
PRE_STOP_SLEEP_SECONDS = 5
LIVE = "/health/live"
READY = "/health/ready"
METRICS = "/metrics"

_DEFAULT_RESOURCES: Manifest = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"memory": "512Mi"},
}
#: argon2id hashes take 64 MiB each; analytics keeps report batches in memory.
_RESOURCES: dict[str, Manifest] = {
    "auth": {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"memory": "768Mi"}},
    "analytics": {"requests": {"cpu": "200m", "memory": "384Mi"}, "limits": {"memory": "1Gi"}},
}
#: Kong's upstream timeouts for a routed service, as kong.yml sets them (ms).
KONG_CONNECT_TIMEOUT_MS = 2_000
KONG_READ_TIMEOUT_MS = 30_000


def environment(catalog: Catalog, service: Service) -> dict[str, str]:
    """The non-secret environment of ``service`` (its ConfigMap), compose's order."""
    infra = catalog.infrastructure
    env: dict[str, str] = {
        "SERVICE_NAME": service.name,
        "HTTP_HOST": "0.0.0.0",  # noqa: S104 - the pod's interfaces: probes and Services
        "HTTP_PORT": str(service.http_port),
    }
    if service.grpc_port is not None:
        env["GRPC_HOST"] = "0.0.0.0"  # noqa: S104
        env["GRPC_PORT"] = str(service.grpc_port)
    if "redis" in service.uses:
        env["REDIS_URL"] = f"redis://{naming.REDIS}:{naming.REDIS_PORT}/0"
    if "kafka" in service.uses:
        env["KAFKA_BOOTSTRAP_SERVERS"] = naming.kafka_bootstrap(catalog)
    if "clickhouse" in service.uses:
        env["CLICKHOUSE_URL"] = f"http://{naming.CLICKHOUSE}:{infra.clickhouse.http_port}"
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = (
        f"http://{naming.OTEL_COLLECTOR}:{infra.otel_collector.otlp_http_port}"
    )
    env["OTEL_SERVICE_NAME"] = service.name
    auth = catalog.services.get("auth")
    if auth is not None:
        env["JWKS_URL"] = f"http://auth:{auth.http_port}/.well-known/jwks.json"
    env["JWT_ISSUER"] = catalog.platform.jwt.issuer
    env["JWT_AUDIENCE"] = catalog.platform.jwt.audience
    for callee in service.calls:
        env[f"{env_name(callee)}_GRPC_TARGET"] = f"{callee}:{catalog.services[callee].grpc_port}"
    for variable in service.env:
        if not naming.is_secret_env(variable.name):
            # Cluster wiring (e.g. CLICKHOUSE_URL to the server) wins over local defaults.
            env.setdefault(variable.name, variable.default)
    return env


def _secret_env(service: Service) -> list[Manifest]:
    """Env entries read from Secrets, in the order Kubernetes must define them."""
    entries: list[Manifest] = []
    if service.database:
        secret = naming.db_secret(service.database)
        for name, key in (("DB_USER", "username"), ("DB_PASSWORD", "password")):
            entries.append(
                {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            )
        host = naming.db_rw_service(service.database)
        # $(VAR) expands the two variables defined just above (the password must be
        # URL-safe: the secret's documentation says so).
        entries.append(
            {
                "name": "DATABASE_URL",
                "value": f"postgresql://$(DB_USER):$(DB_PASSWORD)@{host}:{naming.POSTGRES_PORT}"
                f"/{service.database}",
            }
        )
    for name in naming.secret_env(service):
        entries.append(
            {
                "name": name,
                "valueFrom": {
                    "secretKeyRef": {"name": naming.service_secret(service), "key": name}
                },
            }
        )
    return entries


def _config_map(catalog: Catalog, service: Service, data: dict[str, str]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(
            naming.config_map(service),
            COMPONENT,
            catalog.platform.name,
            extra_labels={NAME: service.name},  # the service's object, like the others
        ),
        "data": data,
    }


def _container(catalog: Catalog, service: Service) -> Manifest:
    ports = [container_port("http", service.http_port)]
    if service.grpc_port is not None:
        ports.append(container_port("grpc", service.grpc_port))
    container: Manifest = {
        "name": service.name,
        "image": naming.APP_IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-m", f"handwritten.{service.name}"],
        "ports": ports,
        "envFrom": [{"configMapRef": {"name": naming.config_map(service)}}],
    }
    secret_env = _secret_env(service)
    if secret_env:
        container["env"] = secret_env
    container.update(
        {
            # Migrations run at start (an advisory lock lets replicas start together).
            "startupProbe": http_probe(LIVE, "http", period=2, failures=90),
            "livenessProbe": http_probe(LIVE, "http", period=10, failures=3),
            "readinessProbe": http_probe(READY, "http", period=5, failures=3),
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SLEEP_SECONDS)]}}},
            "resources": _RESOURCES.get(service.name, _DEFAULT_RESOURCES),
            "securityContext": RESTRICTED_CONTAINER,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
        }
    )
    return container


def _deployment(catalog: Catalog, service: Service, config: dict[str, str]) -> Manifest:
    part_of = catalog.platform.name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(service.name, COMPONENT, part_of),
        # No `replicas`: the HorizontalPodAutoscaler owns it (re-applying never resets it).
        "spec": {
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(service.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {
                    "labels": metadata(service.name, COMPONENT, part_of)["labels"],
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(service.http_port),
                        "prometheus.io/path": METRICS,
                        # Changes with the ConfigMap, so a config change rolls the pods.
                        "checksum/config": checksum(config),
                    },
                },
                "spec": {
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": naming.APP_UID,
                        "runAsGroup": naming.APP_UID,
                        "fsGroup": naming.APP_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector(service.name)},
                        }
                    ],
                    "containers": [_container(catalog, service)],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def _service(catalog: Catalog, service_: Service) -> Manifest:
    ports = [service_port("http", service_.http_port)]
    if service_.grpc_port is not None:
        ports.append(service_port("grpc", service_.grpc_port, app_protocol="kubernetes.io/h2c"))
    annotations: dict[str, str] | None = None
    if service_.gateway is not None and service_.gateway.routes:
        # Kong's Ingress Controller reads the upstream timeouts from the Service.
        annotations = {
            "konghq.com/connect-timeout": str(KONG_CONNECT_TIMEOUT_MS),
            "konghq.com/read-timeout": str(KONG_READ_TIMEOUT_MS),
            "konghq.com/write-timeout": str(KONG_READ_TIMEOUT_MS),
        }
    return service(service_.name, COMPONENT, catalog.platform.name, ports, annotations=annotations)


def _autoscaler(catalog: Catalog, service: Service) -> Manifest:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(service.name, COMPONENT, catalog.platform.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service.name},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": CPU_TARGET_PERCENT},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


def _disruption_budget(catalog: Catalog, service: Service) -> Manifest:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(service.name, COMPONENT, catalog.platform.name),
        # maxUnavailable (not minAvailable) so a one-replica dev install still drains.
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(service.name)}},
    }


def service_manifests(catalog: Catalog, service: Service) -> list[Manifest]:
    """Everything one catalog service needs, in apply order."""
    config = environment(catalog, service)
    return [
        _config_map(catalog, service, config),
        _deployment(catalog, service, config),
        _service(catalog, service),
        _autoscaler(catalog, service),
        _disruption_budget(catalog, service),
    ]


def service_note(service: Service) -> str:
    lines = [service.description.strip(), ""]
    lines.append(
        f"Probes: {LIVE} (startup, liveness) and {READY} (readiness) on :{service.http_port};"
        f" Prometheus scrapes {METRICS}."
    )
    secrets: list[str] = []
    if service.database:
        secrets.append(f"{naming.db_secret(service.database)} (username, password)")
    if naming.secret_env(service):
        secrets.append(
            f"{naming.service_secret(service)} ({', '.join(naming.secret_env(service))})"
        )
    if secrets:
        lines.append("Secrets: " + "; ".join(secrets) + ".")
    return "\n".join(lines)
