"""The generated Kubernetes manifests (deploy/kubernetes): they parse, validate against
Kubernetes' and the operators' schemas, every reference resolves, and they say what
the catalog, the AsyncAPI document and kong.yml say.

Kubernetes' schemas come from the ``kubernetes-validate`` package (a dev dependency);
the operators' custom resources from tests/generator/kubernetes_crd_schemas.yaml.
``kubectl kustomize`` renders the overlays and kubeconform validates them; both are
tools of this project's machines (kubeconform is built with ``go install`` into
.local/tools on first use).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from generator.catalog import Catalog
from generator.emit import Output
from generator.emit.infra import emit_infrastructure
from generator.emit.kubernetes import emit_kubernetes, naming, overlays, platform
from generator.pipeline import build, diff, write
from generator.specset import SpecSet, load_specset

from .conftest import replace_in
from .kubernetes_checks import HOST_VALUED, Index, Obj, load_all, unresolved

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = "deploy/kubernetes"
BASE = f"{DEPLOY}/base"
OVERLAYS = {name: f"{DEPLOY}/overlays/{name}" for name in (overlays.DEV, overlays.PROD)}
CRD_SCHEMAS: dict[str, Any] = yaml.safe_load(
    (Path(__file__).parent / "kubernetes_crd_schemas.yaml").read_text(encoding="utf-8")
)["schemas"]
CORE = {
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "Namespace"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "Ingress"),
}
CUSTOM = {tuple(key.rsplit("/", 1)) for key in CRD_SCHEMAS}
KUBECONFORM_VERSION = "v0.7.0"
TOOLS = Path(os.environ.get("MC_LOCAL_DIR", ROOT / ".local")) / "tools" / "bin"
#: Helper variables composed into DATABASE_URL (not settings of their own).
DATABASE_PARTS = {"DB_USER", "DB_PASSWORD"}
#: OpenTelemetry's standard variables, read by the tracing setup from the environment
#: (handwritten/runtime/tracing), not through a settings class.
OTEL_STANDARD = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME"}


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def specset() -> SpecSet:
    loaded = load_specset(ROOT)
    loaded.catalog = Catalog.from_data(loaded.catalog_doc.data)
    return loaded


@pytest.fixture(scope="module")
def catalog(specset: SpecSet) -> Catalog:
    assert specset.catalog is not None
    return specset.catalog


@pytest.fixture(scope="module")
def files(specset: SpecSet) -> dict[str, str]:
    out = Output()
    emit_kubernetes(specset, out)
    return out.files


@pytest.fixture(scope="module")
def infra_files(specset: SpecSet) -> dict[str, str]:
    out = Output()
    emit_infrastructure(specset, out)
    return out.files


@pytest.fixture(scope="module")
def base(files: dict[str, str]) -> list[Obj]:
    return load_all(text for path, text in files.items() if _in_base(path))


@pytest.fixture(scope="module")
def tree(files: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifests written out, for the tools that read files."""
    root = tmp_path_factory.mktemp("k8s")
    for path, text in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root / DEPLOY


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed on this machine")
    return found


@pytest.fixture(scope="module")
def rendered(tree: Path, kubectl: str) -> dict[str, list[Obj]]:
    """Each overlay as ``kubectl kustomize`` renders it."""
    result = {}
    for name in OVERLAYS:
        done = subprocess.run(
            [kubectl, "kustomize", str(tree / "overlays" / name)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        result[name] = load_all([done.stdout])
    return result


def _in_base(path: str) -> bool:
    return path.startswith(BASE + "/") and not path.endswith("kustomization.yaml")


def _objects(objs: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


def _external_secrets(readme: str) -> dict[str, set[str]]:
    """The Secrets the prod README documents: ``| `name` | `type` | `k1`, `k2` | … |``."""
    found = {}
    for line in readme.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"`[a-z0-9.-]+`", cells[0]):
            found[cells[0].strip("`")] = set(re.findall(r"`([^`]+)`", cells[2]))
    return found


def _dev_secrets(files: dict[str, str]) -> list[Obj]:
    return load_all([files[f"{OVERLAYS['dev']}/secrets.yaml"]])


# ------------------------------------------------------------------ parsing and schemas


def test_every_file_has_the_banner_and_parses(files: dict[str, str]) -> None:
    assert files, "no manifests generated"
    for path, text in files.items():
        assert "Code generated by `make generate` from " in text.splitlines()[0], path
        assert "DO NOT EDIT" in text.splitlines()[0], path
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        if path.endswith(".yaml"):
            documents = list(yaml.safe_load_all(text))
            assert documents and all(d is not None for d in documents[1:] or documents), path


def test_every_object_is_of_a_known_kind(files: dict[str, str]) -> None:
    for path, text in files.items():
        if not path.endswith(".yaml") or "/patches/" in path:
            continue
        for obj in load_all([text]):
            key = (obj["apiVersion"], obj["kind"])
            if path.endswith("kustomization.yaml"):
                assert key == (overlays.KUSTOMIZE_API, "Kustomization"), path
            else:
                assert key in CORE | CUSTOM, (path, key)
                assert set(obj) >= {"apiVersion", "kind", "metadata"}, path


def test_core_objects_match_the_kubernetes_schemas(files: dict[str, str]) -> None:
    checked = 0
    for path, text in files.items():
        if not path.endswith(".yaml") or "/patches/" in path or path.endswith("kustomization.yaml"):
            continue
        for obj in load_all([text]):
            if (obj["apiVersion"], obj["kind"]) in CORE:
                try:
                    kubernetes_validate.validate(obj, naming.KUBERNETES_VERSION, strict=True)
                except kubernetes_validate.ValidationError as error:
                    pytest.fail(f"{path}: {obj['kind']}/{obj['metadata']['name']}: {error.message}")
                checked += 1
    assert checked > 30


def test_custom_resources_match_the_operators_schemas(files: dict[str, str]) -> None:
    seen = set()
    for path, text in files.items():
        if not path.endswith(".yaml") or path.endswith("kustomization.yaml"):
            continue
        if "/patches/" in path:
            continue
        for obj in load_all([text]):
            key = f"{obj['apiVersion']}/{obj['kind']}"
            if key in CRD_SCHEMAS:
                errors = sorted(
                    jsonschema.Draft202012Validator(CRD_SCHEMAS[key]).iter_errors(obj),
                    key=lambda e: list(e.path),
                )
                assert not errors, f"{path}: {obj['metadata']['name']}: {errors[0].message}"
                seen.add(key)
    assert seen == set(CRD_SCHEMAS)


def test_the_crd_schemas_catch_a_misspelt_field(base: list[Obj]) -> None:
    topic = next(o for o in base if o["kind"] == "KafkaTopic")
    broken = json.loads(json.dumps(topic))
    broken["spec"]["partition"] = broken["spec"].pop("partitions")
    schema = CRD_SCHEMAS["kafka.strimzi.io/v1beta2/KafkaTopic"]
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)


# ------------------------------------------------------------------ references


def test_every_reference_in_the_base_resolves_with_the_dev_secrets(
    base: list[Obj], files: dict[str, str]
) -> None:
    assert unresolved(Index(base + _dev_secrets(files))) == []


def test_every_reference_in_the_base_resolves_with_the_documented_prod_secrets(
    base: list[Obj], files: dict[str, str]
) -> None:
    external = _external_secrets(files[f"{OVERLAYS['prod']}/README.md"])
    assert external, "the prod README lists no Secrets"
    assert unresolved(Index(base, external_secrets=external)) == []


def test_the_reference_check_finds_dangling_references(
    base: list[Obj], files: dict[str, str]
) -> None:
    secrets = _dev_secrets(files)
    without_inventory = [
        o for o in base if (o["kind"], o["metadata"]["name"]) != ("Service", "inventory")
    ]
    problems = unresolved(Index(without_inventory + secrets))
    assert any("INVENTORY_GRPC_TARGET" in p and "'inventory'" in p for p in problems), problems
    assert any(p.startswith("Ingress/inventory-read: backend inventory") for p in problems)
    no_secrets = unresolved(Index(base))
    assert any("Secret orders-db-credentials does not exist" in p for p in no_secrets)
    no_plugin = [o for o in base if (o["kind"], o["metadata"]["name"]) != ("KongPlugin", "jwt")]
    assert any("KongPlugin jwt does not exist" in p for p in unresolved(Index(no_plugin + secrets)))


def test_dev_secrets_and_prod_documentation_cover_the_same_secrets(
    catalog: Catalog, files: dict[str, str]
) -> None:
    dev = {s["metadata"]["name"]: set(s["stringData"]) for s in _dev_secrets(files)}
    prod = _external_secrets(files[f"{OVERLAYS['prod']}/README.md"])
    expected = {s.name: set(s.values) for s in overlays.secrets(catalog)}
    assert dev == prod == expected
    # Every catalog variable named like a secret is in one, never in a ConfigMap.
    assert expected["auth-secrets"] == {"ADMIN_PASSWORD", "AUTH_KEY_ENCRYPTION_SECRET"}
    for db in {s.database for s in catalog.services.values() if s.database}:
        assert expected[f"{db}-db-credentials"] == {"username", "password"}
    prod_files = [t for p, t in files.items() if p.startswith(OVERLAYS["prod"] + "/")]
    assert not any("kind: Secret" in text for text in prod_files)


# ------------------------------------------------------------------ the catalog


def test_every_service_has_its_workload_objects(base: list[Obj], catalog: Catalog) -> None:
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert set(catalog.services) <= set(_objects(base, kind)), kind
    for name in catalog.services:
        assert f"{name}-config" in _objects(base, "ConfigMap")


def test_images_ports_and_probes_match_the_catalog(base: list[Obj], catalog: Catalog) -> None:
    deployments = _objects(base, "Deployment")
    services = _objects(base, "Service")
    config_maps = _objects(base, "ConfigMap")
    for name, entry in catalog.services.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == naming.APP_IMAGE
        assert container["command"] == ["python", "-m", f"handwritten.{name}"]
        expected = {"http": entry.http_port}
        if entry.grpc_port is not None:
            expected["grpc"] = entry.grpc_port
        assert {p["name"]: p["containerPort"] for p in container["ports"]} == expected, name
        assert {p["name"]: p["port"] for p in services[name]["spec"]["ports"]} == expected, name
        data = config_maps[f"{name}-config"]["data"]
        assert data["HTTP_PORT"] == str(entry.http_port)
        assert data.get("GRPC_PORT") == (None if entry.grpc_port is None else str(entry.grpc_port))
        assert data["HTTP_HOST"] == "0.0.0.0"
        for probe, path in (
            ("startupProbe", "/health/live"),
            ("livenessProbe", "/health/live"),
            ("readinessProbe", "/health/ready"),
        ):
            assert container[probe]["httpGet"] == {"path": path, "port": "http"}, (name, probe)
        assert container["resources"]["requests"] and container["resources"]["limits"]
        template = deployments[name]["spec"]["template"]
        assert template["metadata"]["annotations"]["prometheus.io/port"] == str(entry.http_port)


def test_infrastructure_images_match_the_catalog(base: list[Obj], catalog: Catalog) -> None:
    infra = catalog.infrastructure
    images = {
        name: o["spec"]["template"]["spec"]["containers"][0]["image"]
        for name, o in {**_objects(base, "Deployment"), **_objects(base, "StatefulSet")}.items()
        if name not in catalog.services
    }
    assert images == {
        "redis": infra.redis.image,
        "clickhouse": infra.clickhouse.image,
        "otel-collector": infra.otel_collector.image,
        "jaeger": infra.jaeger.image,
    }
    (kafka,) = _objects(base, "Kafka").values()
    assert kafka["spec"]["kafka"]["version"] == infra.kafka.image.rpartition(":")[2]
    assert [listener["port"] for listener in kafka["spec"]["kafka"]["listeners"]] == [
        infra.kafka.port
    ]
    major = infra.postgres.image.rpartition(":")[2].split("-")[0].split(".")[0]
    clusters = _objects(base, "Cluster")
    assert set(clusters) == {f"{s.database}-db" for s in catalog.services.values() if s.database}
    for cluster in clusters.values():
        assert cluster["spec"]["imageName"].endswith(f"/postgresql:{major}")


def test_topics_are_the_catalog_topics_with_the_asyncapi_partitions(
    base: list[Obj], specset: SpecSet, catalog: Catalog
) -> None:
    bound = {
        channel["address"]: channel["bindings"]["kafka"]["partitions"]
        for channel in specset.asyncapi.data["channels"].values()
        if "partitions" in channel.get("bindings", {}).get("kafka", {})
    }
    default = catalog.infrastructure.kafka.default_partitions
    topics = {
        o["spec"]["topicName"]: o["spec"]["partitions"] for o in base if o["kind"] == "KafkaTopic"
    }
    assert topics == {topic: bound.get(topic, default) for topic in catalog.topics()}
    assert any(name in bound for name in topics), "no partitions come from AsyncAPI"


def test_environment_mirrors_compose_and_names_only_settings(
    base: list[Obj], catalog: Catalog, infra_files: dict[str, str], files: dict[str, str]
) -> None:
    compose = yaml.safe_load(infra_files["docker-compose.yml"])["services"]
    deployments = _objects(base, "Deployment")
    config_maps = _objects(base, "ConfigMap")
    for name in catalog.services:
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        names = set(config_maps[f"{name}-config"]["data"]) | {
            e["name"] for e in container.get("env", [])
        }
        names -= DATABASE_PARTS
        # The same variables as compose, plus where to listen (compose relies on defaults).
        assert names - set(compose[name]["environment"]) <= {"HTTP_HOST", "GRPC_HOST"}, name
        assert set(compose[name]["environment"]) <= names, name
        fields = _settings_fields(name) | OTEL_STANDARD
        assert names <= fields, (name, sorted(names - fields))
        for key, value in config_maps[f"{name}-config"]["data"].items():
            assert not naming.is_secret_env(key), (name, key)
            if HOST_VALUED.search(key):
                assert "127.0.0.1" not in value and "localhost" not in value, (name, key)


def _settings_fields(service: str) -> set[str]:
    """The environment variables the service's settings class reads."""
    from handwritten.runtime.settings import ServiceSettings

    module = __import__(f"handwritten.{service}.settings", fromlist=["*"])
    classes = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
    ]
    assert len(classes) == 1, (service, classes)
    return {field.upper() for field in classes[0].model_fields}


def test_replicas_are_safe_by_default(base: list[Obj], catalog: Catalog) -> None:
    for name in catalog.services:
        hpa = _objects(base, "HorizontalPodAutoscaler")[name]
        assert hpa["spec"]["minReplicas"] >= 2
        assert "replicas" not in _objects(base, "Deployment")[name]["spec"]
        assert _objects(base, "PodDisruptionBudget")[name]["spec"]["maxUnavailable"] == 1


def test_otel_collector_pipelines_match_the_compose_collector(catalog: Catalog) -> None:
    compose = yaml.safe_load(
        (ROOT / "infrastructure/observability/otel-collector.yaml").read_text(encoding="utf-8")
    )
    ours = platform.otel_collector_config(catalog)
    assert ours["service"]["pipelines"] == compose["service"]["pipelines"]
    assert ours["receivers"] == compose["receivers"]
    assert ours["exporters"]["otlp/jaeger"] == compose["exporters"]["otlp/jaeger"]


# ------------------------------------------------------------------ Kong


def test_kong_resources_carry_kong_yml_routes_and_plugins(
    base: list[Obj], infra_files: dict[str, str]
) -> None:
    kong = yaml.safe_load(infra_files["infrastructure/gateway/kong.yml"])
    plugins = {p["metadata"]["name"]: p for p in base if p["kind"] == "KongPlugin"}
    ingresses = _objects(base, "Ingress")
    services = _objects(base, "Service")
    global_plugins = sorted(json.dumps(p, sort_keys=True) for p in kong["plugins"])
    routes = 0
    for kong_service in kong["services"]:
        annotations = services[kong_service["name"]]["metadata"]["annotations"]
        assert annotations["konghq.com/connect-timeout"] == str(kong_service["connect_timeout"])
        assert annotations["konghq.com/read-timeout"] == str(kong_service["read_timeout"])
        assert annotations["konghq.com/write-timeout"] == str(kong_service["write_timeout"])
        port = int(kong_service["url"].rpartition(":")[2])
        for route in kong_service["routes"]:
            routes += 1
            ingress = ingresses[route["name"]]
            notes = ingress["metadata"]["annotations"]
            paths = [p for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
            assert [p["path"] for p in paths] == route["paths"]
            assert {
                (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["number"])
                for p in paths
            } == {(kong_service["name"], port)}
            assert notes.get("konghq.com/methods") == (
                ",".join(route["methods"]) if "methods" in route else None
            )
            assert notes["konghq.com/strip-path"] == str(route["strip_path"]).lower()
            assert notes["konghq.com/preserve-host"] == str(route["preserve_host"]).lower()
            assert notes["konghq.com/protocols"] == ",".join(route["protocols"])
            attached = [
                {"name": plugins[n]["plugin"], "config": plugins[n]["config"]}
                for n in notes["konghq.com/plugins"].split(",")
            ]
            expected = kong["plugins"] + route["plugins"]
            assert sorted(json.dumps(p, sort_keys=True) for p in attached) == sorted(
                json.dumps(p, sort_keys=True) for p in expected
            ), route["name"]
            assert (
                sorted(json.dumps(p, sort_keys=True) for p in attached[: len(kong["plugins"])])
                == global_plugins
            )
    assert routes == len(ingresses) > 0
    (consumer,) = _objects(base, "KongConsumer").values()
    assert consumer["username"] == kong["consumers"][0]["username"]


# ------------------------------------------------------------------ overlays


def test_kustomizations_reference_existing_files(files: dict[str, str]) -> None:
    paths = set(files)
    for kustomization in (
        f"{BASE}/kustomization.yaml",
        *(f"{o}/kustomization.yaml" for o in OVERLAYS.values()),
    ):
        folder = kustomization.rsplit("/", 1)[0]
        document = yaml.safe_load(files[kustomization])
        for resource in document["resources"]:
            target = os.path.normpath(f"{folder}/{resource}")
            assert target in paths or f"{target}/kustomization.yaml" in paths, (
                kustomization,
                resource,
            )
        for patch in document.get("patches", []):
            assert os.path.normpath(f"{folder}/{patch['path']}") in paths, (kustomization, patch)
    listed = yaml.safe_load(files[f"{BASE}/kustomization.yaml"])["resources"]
    assert sorted(listed) == sorted(p.removeprefix(BASE + "/") for p in files if _in_base(p))


def test_overlay_patches_target_existing_objects_and_paths(
    files: dict[str, str], base: list[Obj], catalog: Catalog
) -> None:
    for overlay, folder in OVERLAYS.items():
        document = yaml.safe_load(files[f"{folder}/kustomization.yaml"])
        assert document["namespace"] == overlays.namespace(catalog, overlay)
        for patch in document["patches"]:
            target = patch["target"]
            matching = [
                o
                for o in base
                if o["kind"] == target["kind"]
                and o["apiVersion"].startswith(target.get("group", ""))
                and re.fullmatch(target.get("name", ".*"), o["metadata"]["name"])
            ]
            assert matching, (overlay, target)
            for operation in yaml.safe_load(files[f"{folder}/{patch['path']}"]):
                assert operation["op"] == "replace"
                for obj in matching:
                    node: Any = obj
                    for part in operation["path"].strip("/").split("/"):
                        assert isinstance(node, dict) and part in node, (
                            overlay,
                            operation,
                            obj["metadata"]["name"],
                        )
                        node = node[part]
                    assert type(node) is type(operation["value"]), (overlay, operation)


def test_overlays_render_with_their_namespace_image_and_secrets(
    rendered: dict[str, list[Obj]], catalog: Catalog
) -> None:
    for overlay, objs in rendered.items():
        namespace = overlays.namespace(catalog, overlay)
        (ns,) = [o for o in objs if o["kind"] == "Namespace"]
        assert ns["metadata"]["name"] == namespace
        for obj in objs:
            if obj["kind"] != "Namespace":
                assert obj["metadata"].get("namespace") == namespace, (overlay, obj["metadata"])
        images = {
            c["image"]
            for o in objs
            if o["kind"] == "Deployment" and o["metadata"]["name"] in catalog.services
            for c in o["spec"]["template"]["spec"]["containers"]
        }
        expected = (
            "microcommerce:dev"
            if overlay == overlays.DEV
            else f"{overlays.PROD_IMAGE}:{overlays.PROD_TAG}"
        )
        assert images == {expected}
        for plugin in objs:
            if plugin["kind"] == "KongPlugin" and plugin["plugin"] == "rate-limiting":
                assert plugin["config"]["redis"]["host"] == f"redis.{namespace}.svc.cluster.local"
    assert {o["kind"] for o in rendered[overlays.PROD]}.isdisjoint({"Secret"})
    assert {o["metadata"]["name"] for o in rendered[overlays.DEV] if o["kind"] == "Secret"} == {
        s.name for s in overlays.secrets(catalog)
    }


def test_rendered_overlays_resolve_every_reference(
    rendered: dict[str, list[Obj]], catalog: Catalog, files: dict[str, str]
) -> None:
    external = _external_secrets(files[f"{OVERLAYS['prod']}/README.md"])
    for overlay, objs in rendered.items():
        index = Index(
            objs,
            external_secrets=external if overlay == overlays.PROD else {},
            namespace=overlays.namespace(catalog, overlay),
        )
        assert unresolved(index) == [], overlay


def test_prod_overlay_scales_kafka_and_postgres(rendered: dict[str, list[Obj]]) -> None:
    prod = rendered[overlays.PROD]
    (pool,) = _objects(prod, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == overlays.PROD_KAFKA_NODES
    (kafka,) = _objects(prod, "Kafka").values()
    config = kafka["spec"]["kafka"]["config"]
    assert config["default.replication.factor"] == config["offsets.topic.replication.factor"] == 3
    assert config["min.insync.replicas"] == 2
    assert {t["spec"]["replicas"] for t in _objects(prod, "KafkaTopic").values()} == {3}
    assert {c["spec"]["instances"] for c in _objects(prod, "Cluster").values()} == {3}
    dev = rendered[overlays.DEV]
    assert {
        h["spec"]["minReplicas"] for h in _objects(dev, "HorizontalPodAutoscaler").values()
    } == {1}


# ------------------------------------------------------------------ kubeconform


def _kubeconform() -> str:
    """kubeconform from PATH, from .local/tools, or built there with ``go install``."""
    for candidate in (shutil.which("kubeconform"), TOOLS / "kubeconform"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    go = shutil.which("go")
    if go is None:
        pytest.skip("neither kubeconform nor Go (to build it) is installed on this machine")
    TOOLS.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [go, "install", f"github.com/yannh/kubeconform/cmd/kubeconform@{KUBECONFORM_VERSION}"],
        env={**os.environ, "GOBIN": str(TOOLS)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    return str(TOOLS / "kubeconform")


def _referenced(schema: Any, definitions: dict[str, Any]) -> dict[str, Any]:
    """The definitions ``schema`` needs, transitively (a few of the thousands)."""
    needed: dict[str, Any] = {}
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref.removeprefix("#/$defs/")
                if name not in needed:
                    needed[name] = json.loads(
                        json.dumps(definitions[name]).replace(
                            '"/api/_definitions.json#/$defs/', '"#/$defs/'
                        )
                    )
                    pending.append(needed[name])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return needed


def _schema_dir(root: Path) -> Iterator[str]:
    """Schema locations for kubeconform: Kubernetes' (bundled from kubernetes-validate's
    files, which reference a shared definitions file by an absolute path kubeconform
    cannot follow) and the operators' (our transcription), in kubeconform's layouts."""
    package = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    source = package / f"v{naming.KUBERNETES_VERSION}-local-strict"
    definitions = json.loads((source / "_definitions.json").read_text(encoding="utf-8"))
    core = root / f"v{naming.KUBERNETES_VERSION}-standalone-strict"
    core.mkdir(parents=True)
    for api_version, kind in CORE:
        group, _, version = api_version.rpartition("/")
        suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
        name = f"{kind.lower()}{suffix}.json"
        text = (source / name).read_text(encoding="utf-8")
        schema = json.loads(text.replace('"/api/_definitions.json#/$defs/', '"#/$defs/'))
        schema["$defs"] = _referenced(schema, definitions["$defs"])
        schema["$schema"] = definitions["$schema"]
        (core / name).write_text(json.dumps(schema), encoding="utf-8")
    for key, schema in CRD_SCHEMAS.items():
        group, version, kind = key.split("/")
        target = root / "crds" / group / f"{kind.lower()}_{version}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(schema), encoding="utf-8")
    yield str(
        root
        / "{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}"
        / "{{ .ResourceKind }}{{ .KindSuffix }}.json"
    )
    yield str(root / "crds" / "{{ .Group }}" / "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json")


def test_kubeconform_validates_the_rendered_overlays(
    rendered: dict[str, list[Obj]], tmp_path: Path
) -> None:
    binary = _kubeconform()
    locations = [
        arg
        for location in _schema_dir(tmp_path / "schemas")
        for arg in ("-schema-location", location)
    ]

    def validate(manifest: Path) -> subprocess.CompletedProcess[str]:
        command = ["-strict", "-summary", "-kubernetes-version", naming.KUBERNETES_VERSION]
        return subprocess.run(
            [binary, *command, *locations, str(manifest)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    for overlay, objs in rendered.items():
        manifest = tmp_path / f"{overlay}.yaml"
        manifest.write_text(yaml.safe_dump_all(objs, sort_keys=False), encoding="utf-8")
        done = validate(manifest)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Valid: {len(objs)}, Invalid: 0, Errors: 0, Skipped: 0" in done.stdout, done.stdout
    # And it does catch a broken manifest.
    broken = json.loads(json.dumps(rendered[overlays.DEV]))
    topic = next(o for o in broken if o["kind"] == "KafkaTopic")
    topic["spec"]["partitions"] = "three"
    deployment = next(o for o in broken if o["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8102"
    manifest = tmp_path / "broken.yaml"
    manifest.write_text(yaml.safe_dump_all(broken, sort_keys=False), encoding="utf-8")
    done = validate(manifest)
    assert done.returncode != 0
    assert "Invalid: 2," in done.stdout, done.stdout


# ------------------------------------------------------------------ spec-driven


def test_a_partition_change_in_asyncapi_changes_the_kafka_topic(shop: Path) -> None:
    def emitted() -> dict[str, str]:
        loaded = load_specset(shop)
        loaded.catalog = Catalog.from_data(loaded.catalog_doc.data)
        out = Output()
        emit_kubernetes(loaded, out)
        return out.files

    before = emitted()
    topics = f"{BASE}/kafka-topics.yaml"
    asyncapi = shop / "specs" / "asyncapi" / "microcommerce.yaml"
    match = re.search(r"partitions: (\d+)", asyncapi.read_text(encoding="utf-8"))
    assert match is not None, "the fixture binds no partitions"
    more = f"partitions: {int(match.group(1)) + 5}"
    assert more not in before[topics]
    replace_in(asyncapi, match.group(0), more)
    after = emitted()
    assert more in after[topics]
    assert {p for p in before if before[p] != after[p]} == {topics}


def test_check_and_generate_own_the_whole_deploy_folder(shop: Path) -> None:
    write(build(shop), shop)
    assert (shop / BASE / "kustomization.yaml").is_file()
    stray = shop / DEPLOY / "overlays" / "staging" / "kustomization.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_text("resources: []\n", encoding="utf-8")
    edited = shop / BASE / "kafka-topics.yaml"
    edited.write_text(edited.read_text(encoding="utf-8") + "# hand edit\n", encoding="utf-8")
    stale = diff(build(shop), shop)
    assert f"a/{DEPLOY}/overlays/staging/kustomization.yaml" in stale
    assert "-# hand edit" in stale
    changed = write(build(shop), shop)
    assert f"{DEPLOY}/overlays/staging/kustomization.yaml" in changed
    assert not stray.parent.exists()
    assert "# hand edit" not in edited.read_text(encoding="utf-8")
