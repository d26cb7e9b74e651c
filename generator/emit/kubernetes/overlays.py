"""The kustomize layers: the base's kustomization and the dev and prod overlays.

- **dev** (namespace ``<platform>-dev``): Secret manifests with development-only
  placeholder values, one replica per service (HPA 1–2), the image tagged ``dev``.
- **prod** (namespace ``<platform>``): no Secret manifests — the Secrets are provided
  from outside (listed in the overlay's README.md) —, three Kafka nodes and three
  PostgreSQL instances per database with replication to match, HPA 2–10.

Both qualify the Redis host of the rate-limiting KongPlugins with their namespace:
Kong's proxy runs in its own namespace, where the short name would not resolve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.catalog import Catalog
from generator.emit.kubernetes import naming
from generator.emit.kubernetes.manifests import Manifest, dump, metadata

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
DEV = "dev"
PROD = "prod"
PROD_IMAGE = "registry.example.com/microcommerce"
PROD_TAG = "1.0.0"
PROD_KAFKA_NODES = 3
PROD_POSTGRES_INSTANCES = 3
PROD_MAX_REPLICAS = 10
DEV_MAX_REPLICAS = 2


@dataclass(frozen=True)
class Secret:
    """A Secret the services read: its name, type, keys and development values."""

    name: str
    type: str
    values: dict[str, str]
    used_by: str


@dataclass
class Overlay:
    """One overlay directory: relative path → file text (kustomization first)."""

    name: str
    files: dict[str, str] = field(default_factory=dict)


def namespace(catalog: Catalog, overlay: str) -> str:
    return f"{catalog.platform.name}-{DEV}" if overlay == DEV else catalog.platform.name


def secrets(catalog: Catalog) -> list[Secret]:
    """Every Secret the base references, with the values the dev overlay gives them."""
    found: list[Secret] = []
    for db in sorted({s.database for s in catalog.services.values() if s.database}):
        found.append(
            Secret(
                naming.db_secret(db),
                "kubernetes.io/basic-auth",
                {"username": db, "password": f"dev-only-{db}-password"},
                f"the {db} database's owner (CloudNativePG bootstrap) and the {db} service",
            )
        )
    for service in catalog.services.values():
        variables = {v.name: v.default for v in service.env if naming.is_secret_env(v.name)}
        if variables:
            found.append(
                Secret(
                    naming.service_secret(service),
                    "Opaque",
                    variables,
                    f"the {service.name} service",
                )
            )
    return found


def _kustomization(
    resources: Sequence[str],
    *,
    namespace_: str | None = None,
    images: Sequence[dict[str, str]] = (),
    patches: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    document: dict[str, Any] = {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization"}
    if namespace_ is not None:
        document["namespace"] = namespace_
    document["resources"] = list(resources)
    if images:
        document["images"] = list(images)
    if patches:
        document["patches"] = list(patches)
    return document


def base_kustomization(resources: Sequence[str]) -> dict[str, Any]:
    return _kustomization(resources)


def _namespace(catalog: Catalog, name: str) -> Manifest:
    meta = metadata(name, "namespace", catalog.platform.name)
    # The services' pods meet "restricted"; the infrastructure images (ClickHouse,
    # Jaeger) need "baseline". Warn about anything below restricted.
    meta["labels"].update(
        {
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
        }
    )
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _replace(path: str, value: Any) -> dict[str, Any]:
    return {"op": "replace", "path": path, "value": value}


def _patch(file: str, kind: str, group: str | None = None, name: str | None = None) -> Any:
    target: dict[str, str] = {}
    if group:
        target["group"] = group
    target["kind"] = kind
    if name is not None:
        target["name"] = name
    return {"path": f"patches/{file}", "target": target}


@dataclass
class _Patches:
    """Patch files of one overlay and the kustomization entries that apply them."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        file: str,
        operations: list[dict[str, Any]],
        kind: str,
        group: str | None = None,
        name: str | None = None,
    ) -> None:
        self.files[file] = operations
        self.entries.append(_patch(file, kind, group, name))


def _common_patches(catalog: Catalog, overlay: str, rate_limited: Sequence[str]) -> _Patches:
    patches = _Patches()
    host = f"{naming.REDIS}.{namespace(catalog, overlay)}.svc.cluster.local"
    for name in rate_limited:
        patches.add(
            "kong-redis-host.yaml",
            [_replace("/config/redis/host", host)],
            "KongPlugin",
            "configuration.konghq.com",
            name,
        )
    return patches


def overlay_files(
    catalog: Catalog,
    overlay: str,
    *,
    banner: str,
    has_services: bool,
    has_kafka: bool,
    has_databases: bool,
    rate_limited: Sequence[str],
) -> dict[str, str]:
    """The files of ``overlay`` (``dev`` or ``prod``), by path inside its directory."""
    ns = namespace(catalog, overlay)
    patches = _common_patches(catalog, overlay, rate_limited)
    resources = ["namespace.yaml", "../../base"]
    files: dict[str, str] = {}
    if overlay == DEV:
        image = {"name": naming.APP_IMAGE_NAME, "newTag": DEV}
        found = secrets(catalog)
        if found:
            resources.append("secrets.yaml")
            files["secrets.yaml"] = _secrets_file(banner, found)
        if has_services:
            patches.add(
                "autoscaling.yaml",
                [_replace("/spec/minReplicas", 1), _replace("/spec/maxReplicas", DEV_MAX_REPLICAS)],
                "HorizontalPodAutoscaler",
                "autoscaling",
            )
    else:
        image = {"name": naming.APP_IMAGE_NAME, "newName": PROD_IMAGE, "newTag": PROD_TAG}
        if has_services:
            patches.add(
                "autoscaling.yaml",
                [_replace("/spec/maxReplicas", PROD_MAX_REPLICAS)],
                "HorizontalPodAutoscaler",
                "autoscaling",
            )
        if has_kafka:
            config = "/spec/kafka/config"
            patches.add(
                "kafka-replication.yaml",
                [
                    _replace(f"{config}/default.replication.factor", PROD_KAFKA_NODES),
                    _replace(f"{config}/min.insync.replicas", 2),
                    _replace(f"{config}/offsets.topic.replication.factor", PROD_KAFKA_NODES),
                    _replace(
                        f"{config}/transaction.state.log.replication.factor", PROD_KAFKA_NODES
                    ),
                    _replace(f"{config}/transaction.state.log.min.isr", 2),
                ],
                "Kafka",
                "kafka.strimzi.io",
            )
            patches.add(
                "kafka-nodes.yaml",
                [_replace("/spec/replicas", PROD_KAFKA_NODES)],
                "KafkaNodePool",
                "kafka.strimzi.io",
            )
            patches.add(
                "kafka-topics.yaml",
                [_replace("/spec/replicas", PROD_KAFKA_NODES)],
                "KafkaTopic",
                "kafka.strimzi.io",
            )
        if has_databases:
            patches.add(
                "postgres-instances.yaml",
                [_replace("/spec/instances", PROD_POSTGRES_INSTANCES)],
                "Cluster",
                "postgresql.cnpg.io",
            )
        files["README.md"] = _prod_readme(catalog, banner)
    files["namespace.yaml"] = banner + "---\n" + dump(_namespace(catalog, ns))
    for file, operations in sorted(patches.files.items()):
        files[f"patches/{file}"] = banner + dump(operations)
    kustomization = _kustomization(
        resources, namespace_=ns, images=[image], patches=patches.entries
    )
    files["kustomization.yaml"] = banner + dump(kustomization)
    return dict(sorted(files.items()))


def _secrets_file(banner: str, found: Sequence[Secret]) -> str:
    parts = [
        banner,
        "# Development-only placeholder values (never use them in a shared cluster);\n"
        "# the prod overlay has no Secret manifests: see overlays/prod/README.md.\n",
    ]
    for secret in found:
        parts.append("---\n")
        parts.append(
            dump(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret.name},
                    "type": secret.type,
                    "stringData": secret.values,
                }
            )
        )
    return "".join(parts)


def _example(ns: str, found: Sequence[Secret]) -> list[str]:
    database = next((s for s in found if s.type == "kubernetes.io/basic-auth"), None)
    if database is None:
        return []
    return [
        "Example for one database:",
        "",
        "```bash",
        f"kubectl -n {ns} create secret generic {database.name} \\",
        "  --type=kubernetes.io/basic-auth \\",
        f"  --from-literal=username={database.values['username']} \\",
        '  --from-literal=password="$(openssl rand -hex 24)"',
        "```",
        "",
    ]


def _prod_readme(catalog: Catalog, banner: str) -> str:
    rows = [
        f"| `{secret.name}` | `{secret.type}` | {', '.join(f'`{k}`' for k in secret.values)}"
        f" | {secret.used_by} |"
        for secret in secrets(catalog)
    ]
    ns = namespace(catalog, PROD)
    lines = [
        "<!-- " + banner.removeprefix("# ").rstrip("\n") + " -->",
        "# Production overlay: externally provided Secrets",
        "",
        f"This overlay (namespace `{ns}`) contains no Secret manifests. Create these",
        "Secrets in the namespace before applying it (with your secret manager's",
        "operator, sealed secrets or `kubectl create secret`); the pods do not start",
        "until they exist.",
        "",
        "| Secret | type | keys | read by |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "Database passwords end up in a `postgresql://` URL: use URL-safe characters",
        "(letters, digits, `-._~`).",
        "",
        *_example(ns, secrets(catalog)),
        f"The image is `{PROD_IMAGE}:{PROD_TAG}`: set yours with",
        f"`kustomize edit set image {naming.APP_IMAGE_NAME}=<registry>/microcommerce:<tag>`.",
        "",
    ]
    return "\n".join(lines)
