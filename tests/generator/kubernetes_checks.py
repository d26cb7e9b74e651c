"""Checks of a set of Kubernetes objects: does every reference point at an object?

Used on the kustomize base with each overlay's Secrets, and on the overlays as
``kubectl kustomize`` renders them. A reference may also point at an object an
operator makes from one of ours: Strimzi's ``<kafka>-kafka-bootstrap`` Service and
CloudNativePG's ``<cluster>-rw|-ro|-r`` Services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

Obj = dict[str, Any]

#: Env variables whose values name a host (``scheme://host:port/...`` or ``host:port``).
HOST_VALUED = re.compile(r"(_URL|_TARGET|_SERVERS|_ENDPOINT)$")
_HOST_PORT = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/]*@)?([A-Za-z0-9.-]+):(\d+)(?:/.*)?$")
_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
POSTGRES_PORT = 5432


def host_port(value: str) -> tuple[str, int] | None:
    """``(host, port)`` of a URL or ``host:port`` value, ``None`` when it names none."""
    matched = _HOST_PORT.match(value)
    return None if matched is None else (matched.group(1), int(matched.group(2)))


@dataclass
class Index:
    """The objects by kind and name; Services also by the names operators give them."""

    objects: list[Obj]
    #: Secrets provided outside the manifests: name → keys.
    external_secrets: Mapping[str, set[str]] = field(default_factory=dict)
    namespace: str | None = None

    def named(self, kind: str, name: str) -> Obj | None:
        for obj in self.objects:
            if obj["kind"] == kind and obj["metadata"]["name"] == name:
                return obj
        return None

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [obj for obj in self.objects if obj["kind"] in kinds]

    def service_ports(self) -> dict[str, set[int]]:
        """Every Service name (ours and the operators') → its ports."""
        ports = {
            s["metadata"]["name"]: {p["port"] for p in s["spec"]["ports"]}
            for s in self.of_kind("Service")
        }
        for kafka in self.of_kind("Kafka"):
            listeners = {listener["port"] for listener in kafka["spec"]["kafka"]["listeners"]}
            ports[f"{kafka['metadata']['name']}-kafka-bootstrap"] = listeners
        for cluster in self.of_kind("Cluster"):
            for suffix in ("rw", "ro", "r"):
                ports[f"{cluster['metadata']['name']}-{suffix}"] = {POSTGRES_PORT}
        return ports

    def secret_keys(self, name: str) -> set[str] | None:
        secret = self.named("Secret", name)
        if secret is not None:
            return set(secret.get("stringData", {})) | set(secret.get("data", {}))
        if name in self.external_secrets:
            return set(self.external_secrets[name])
        return None

    def config_map_keys(self, name: str) -> set[str] | None:
        config_map = self.named("ConfigMap", name)
        return None if config_map is None else set(config_map.get("data", {}))


def _pods(index: Index) -> list[tuple[Obj, Obj]]:
    """(workload, pod template) of every Deployment and StatefulSet."""
    return [(w, w["spec"]["template"]) for w in index.of_kind("Deployment", "StatefulSet")]


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def _host_problem(index: Index, where: str, value: str) -> str | None:
    found = host_port(value)
    if found is None:
        return f"{where}: {value!r} names no host:port"
    host, port = found
    if index.namespace is not None:
        host = host.removesuffix(f".{index.namespace}.svc.cluster.local")
    ports = index.service_ports()
    if host not in ports:
        return f"{where}: host {host!r} is no Service"
    if port not in ports[host]:
        return f"{where}: Service {host} has no port {port} (has {sorted(ports[host])})"
    return None


def _container_problems(index: Index, workload: str, container: Obj) -> list[str]:
    problems: list[str] = []
    where = f"{workload}/{container['name']}"
    defined: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            keys = index.config_map_keys(name)
            if keys is None:
                problems.append(f"{where}: envFrom ConfigMap {name} does not exist")
                continue
            data = index.named("ConfigMap", name)
            assert data is not None
            defined.update(data.get("data", {}))
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            keys = index.secret_keys(name)
            if keys is None:
                problems.append(f"{where}: envFrom Secret {name} does not exist")
            else:
                defined.update(dict.fromkeys(keys, ""))
    for entry in container.get("env", []):
        name = entry["name"]
        ref = entry.get("valueFrom", {})
        if "secretKeyRef" in ref:
            secret, key = ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"]
            keys = index.secret_keys(secret)
            if keys is None:
                problems.append(f"{where}: env {name}: Secret {secret} does not exist")
            elif key not in keys:
                problems.append(f"{where}: env {name}: Secret {secret} has no key {key}")
        if "configMapKeyRef" in ref:
            config, key = ref["configMapKeyRef"]["name"], ref["configMapKeyRef"]["key"]
            keys = index.config_map_keys(config)
            if keys is None or key not in keys:
                problems.append(f"{where}: env {name}: ConfigMap {config} has no key {key}")
        value = entry.get("value")
        if isinstance(value, str):
            for variable in _VARIABLE.findall(value):
                if variable not in defined:
                    problems.append(f"{where}: env {name} uses $({variable}) before it is set")
            defined[name] = _VARIABLE.sub("x", value)
        else:
            defined[name] = ""
    for name, value in defined.items():
        if HOST_VALUED.search(name) and value:
            problem = _host_problem(index, f"{where}: env {name}", value)
            if problem:
                problems.append(problem)
    port_names = {p["name"] for p in container.get("ports", []) if "name" in p}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        port = container.get(probe, {}).get("httpGet", {}).get("port")
        if isinstance(port, str) and port not in port_names:
            problems.append(f"{where}: {probe} port {port!r} is not a container port")
    return problems


def unresolved(index: Index) -> list[str]:
    """Every reference in ``index`` that points at nothing (empty: all resolve)."""
    problems: list[str] = []
    pods = _pods(index)
    for workload, template in pods:
        name = f"{workload['kind']}/{workload['metadata']['name']}"
        if not _matches(
            workload["spec"]["selector"]["matchLabels"], template["metadata"]["labels"]
        ):
            problems.append(f"{name}: its selector does not select its own pods")
        spec = template["spec"]
        for volume in spec.get("volumes", []):
            if (
                "configMap" in volume
                and index.named("ConfigMap", volume["configMap"]["name"]) is None
            ):
                problems.append(f"{name}: volume ConfigMap {volume['configMap']['name']} missing")
            if "secret" in volume and index.secret_keys(volume["secret"]["secretName"]) is None:
                problems.append(f"{name}: volume Secret {volume['secret']['secretName']} missing")
        for container in spec["containers"]:
            problems.extend(_container_problems(index, name, container))
    for service in index.of_kind("Service"):
        name = service["metadata"]["name"]
        selected = [
            (w, t)
            for w, t in pods
            if _matches(service["spec"]["selector"], t["metadata"]["labels"])
        ]
        if not selected:
            problems.append(f"Service/{name}: selects no pods")
            continue
        for _, template in selected:
            named_ports = {
                p["name"]
                for c in template["spec"]["containers"]
                for p in c.get("ports", [])
                if "name" in p
            }
            for port in service["spec"]["ports"]:
                target = port.get("targetPort")
                if isinstance(target, str) and target not in named_ports:
                    problems.append(f"Service/{name}: targetPort {target!r} is no container port")
    ports = index.service_ports()
    plugins = {p["metadata"]["name"] for p in index.of_kind("KongPlugin")}
    for ingress in index.of_kind("Ingress"):
        name = ingress["metadata"]["name"]
        for attached in (
            ingress["metadata"].get("annotations", {}).get("konghq.com/plugins", "").split(",")
        ):
            if attached and attached not in plugins:
                problems.append(f"Ingress/{name}: KongPlugin {attached} does not exist")
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                if backend["name"] not in ports:
                    problems.append(f"Ingress/{name}: backend {backend['name']} is no Service")
                elif backend["port"]["number"] not in ports[backend["name"]]:
                    problems.append(
                        f"Ingress/{name}: {backend['name']} has no port {backend['port']}"
                    )
    for plugin in index.of_kind("KongPlugin"):
        redis = plugin.get("config", {}).get("redis")
        if isinstance(redis, dict):
            problem = _host_problem(
                index,
                f"KongPlugin/{plugin['metadata']['name']}",
                f"{redis['host']}:{redis['port']}",
            )
            if problem:
                problems.append(problem)
    deployments = {d["metadata"]["name"]: d for d in index.of_kind("Deployment")}
    for hpa in index.of_kind("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        if target["kind"] != "Deployment" or target["name"] not in deployments:
            problems.append(f"HorizontalPodAutoscaler/{hpa['metadata']['name']}: no {target}")
    for pdb in index.of_kind("PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        if not any(_matches(selector, t["metadata"]["labels"]) for _, t in pods):
            problems.append(f"PodDisruptionBudget/{pdb['metadata']['name']}: selects no pods")
    kafkas = {k["metadata"]["name"] for k in index.of_kind("Kafka")}
    for obj in index.of_kind("KafkaNodePool", "KafkaTopic"):
        cluster = obj["metadata"]["labels"].get("strimzi.io/cluster")
        if cluster not in kafkas:
            problems.append(f"{obj['kind']}/{obj['metadata']['name']}: no Kafka {cluster!r}")
    for cluster in index.of_kind("Cluster"):
        secret = cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]
        keys = index.secret_keys(secret)
        if keys is None or not {"username", "password"} <= keys:
            problems.append(
                f"Cluster/{cluster['metadata']['name']}: Secret {secret} missing or incomplete"
            )
    for config_map in index.of_kind("ConfigMap"):
        for key, text in config_map.get("data", {}).items():
            if not key.endswith((".yaml", ".yml")):
                continue
            config = yaml.safe_load(text)
            for exporter, settings in (config.get("exporters") or {}).items():
                endpoint = (settings or {}).get("endpoint")
                if isinstance(endpoint, str):
                    problem = _host_problem(
                        index, f"ConfigMap/{config_map['metadata']['name']}: {exporter}", endpoint
                    )
                    if problem:
                        problems.append(problem)
    return problems


def load_all(texts: Iterable[str]) -> list[Obj]:
    """Every non-empty YAML document of ``texts``."""
    return [doc for text in texts for doc in yaml.safe_load_all(text) if doc]
