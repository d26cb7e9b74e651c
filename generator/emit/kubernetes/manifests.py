"""Writing Kubernetes manifests: multi-document YAML, names, labels and small builders.

Manifests are built as plain Python data (dicts in the order they are written) and
dumped with PyYAML's safe dumper, so quoting is always right: a string that would read
back as a number or a boolean (``"8102"``, ``"false"``) is quoted, and nothing is
written that Kubernetes would parse differently from what was meant.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

#: Where the manifests live, relative to the repository root.
DEPLOY_DIR = "deploy/kubernetes"
BASE_DIR = f"{DEPLOY_DIR}/base"
OVERLAYS_DIR = f"{DEPLOY_DIR}/overlays"

PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kustomize"

Manifest = dict[str, Any]


class _Dumper(yaml.SafeDumper):
    """Block style, indented sequences, literal blocks for multi-line text, no aliases."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def plain(value: Any) -> Any:
    """``value`` with every mapping, list and string subclass turned into the base type.

    Lets data built for other outputs (e.g. kong.yml's plugin configs, whose lists are
    marked for flow style) be dumped here with one representer per base type.
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def dump(document: Any) -> str:
    """One YAML document (no ``---``)."""
    text = yaml.dump(
        plain(document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,  # never fold long commands, URLs or Lua lines
    )
    assert isinstance(text, str)
    return text


def comment(text: str) -> str:
    """``text`` as ``#`` comment lines."""
    return "".join(f"# {line}".rstrip() + "\n" for line in text.strip().splitlines())


def documents(banner: str, note: str, manifests: Sequence[Manifest]) -> str:
    """A multi-document file: the do-not-edit banner, a note, then each manifest."""
    parts = [banner, comment(note)]
    for manifest in manifests:
        parts.append("---\n")
        parts.append(dump(manifest))
    return "".join(parts)


def labels(name: str, component: str, part_of: str) -> dict[str, str]:
    """The recommended labels of one workload (``name`` also selects its pods)."""
    return {NAME: name, COMPONENT: component, PART_OF: part_of, MANAGED_BY: MANAGER}


def selector(name: str) -> dict[str, str]:
    """The immutable pod selector of a workload: its name label only."""
    return {NAME: name}


def metadata(
    name: str,
    component: str,
    part_of: str,
    *,
    annotations: Mapping[str, str] | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> Manifest:
    meta: Manifest = {"name": name, "labels": {**labels(name, component, part_of)}}
    if extra_labels:
        meta["labels"].update(extra_labels)
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def checksum(data: Mapping[str, Any]) -> str:
    """A short, stable digest of ``data`` (pod annotations roll pods when it changes)."""
    encoded = json.dumps(plain(data), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def env_name(name: str) -> str:
    """``inventory`` → ``INVENTORY`` (the prefix of a settings field's variable)."""
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def resource_name(name: str) -> str:
    """A valid Kubernetes object name (DNS subdomain) for ``name``: ``_`` → ``-``."""
    return name.replace("_", "-").lower()


def http_probe(path: str, port: str, *, period: int, failures: int, timeout: int = 3) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": timeout,
        "failureThreshold": failures,
    }


def container_port(name: str, port: int) -> Manifest:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def service_port(name: str, port: int, *, app_protocol: str | None = None) -> Manifest:
    entry: Manifest = {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
    if app_protocol is not None:
        entry["appProtocol"] = app_protocol
    return entry


def service(
    name: str,
    component: str,
    part_of: str,
    ports: Iterable[Manifest],
    *,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, component, part_of, annotations=annotations),
        "spec": {"type": "ClusterIP", "selector": selector(name), "ports": list(ports)},
    }


#: The container security context of every workload we build images for or trust to
#: run unprivileged: no privilege escalation, no capabilities, the runtime's seccomp.
RESTRICTED_CONTAINER: Manifest = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
