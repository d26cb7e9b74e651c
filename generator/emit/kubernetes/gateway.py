"""Kong through its Ingress Controller: the routes and plugins of kong.yml as resources.

- One ``Ingress`` per kong.yml route (same name, paths, methods, strip_path,
  preserve_host, protocols), backed by the service's ``Service``; the upstream
  timeouts are annotations on that Service (see ``apps``).
- One ``KongPlugin`` per distinct plugin config of kong.yml (built by the same
  functions, so the configs are kong.yml's exactly), attached through
  ``konghq.com/plugins``; routes with the same config share it (the jwt routes share
  one ``jwt`` and one ``pre-function``).
- kong.yml's global plugins are ``KongPlugin``s attached to every Ingress of this
  platform rather than ``KongClusterPlugin``s labelled global: a global one would
  apply to every route of the Kong installation, other tenants' too.
- The ``KongConsumer`` every access token maps to. Its jwt credentials follow the
  auth service's key rotation (the JWKS); see docs/kubernetes.md for how they are
  provided in a cluster.

The rate-limiting plugins keep kong.yml's Redis host (``redis``); Kong's proxy runs in
its own namespace, so each overlay patches the host to this namespace's Service FQDN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from generator.catalog import Catalog, Route, Service
from generator.emit.infra import _GLOBAL_PLUGINS, JWT_CONSUMER, _route_plugins
from generator.emit.kubernetes import naming
from generator.emit.kubernetes.manifests import Manifest, metadata, plain

COMPONENT = "gateway"
KONG_API = "configuration.konghq.com/v1"


def _plugin(catalog: Catalog, name: str, plugin: str, config: dict[str, Any]) -> Manifest:
    return {
        "apiVersion": KONG_API,
        "kind": "KongPlugin",
        "metadata": metadata(name, COMPONENT, catalog.platform.name),
        "plugin": plugin,
        "config": plain(config),
    }


def _routes(catalog: Catalog) -> list[tuple[Service, Route]]:
    return [
        (service, route)
        for service in catalog.services.values()
        if service.gateway is not None
        for route in service.gateway.routes
    ]


def _ingress(catalog: Catalog, service: Service, route: Route, plugins: list[str]) -> Manifest:
    annotations = {
        "konghq.com/plugins": ",".join(plugins),
        "konghq.com/strip-path": "false",
        "konghq.com/preserve-host": "false",
        "konghq.com/protocols": "http,https",
    }
    if route.methods:
        annotations["konghq.com/methods"] = ",".join(route.methods)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(route.name, COMPONENT, catalog.platform.name, annotations=annotations),
        "spec": {
            "ingressClassName": naming.KONG_INGRESS_CLASS,
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": path,
                                # Kong's own prefix matching, as in kong.yml (Prefix
                                # would also match /api/orders only as a whole segment).
                                "pathType": "ImplementationSpecific",
                                "backend": {
                                    "service": {
                                        "name": service.name,
                                        "port": {"number": service.http_port},
                                    }
                                },
                            }
                            for path in route.paths
                        ]
                    }
                }
            ],
        },
    }


@dataclass
class _Plugins:
    """KongPlugins by content: routes whose plugin has the same config share one."""

    catalog: Catalog
    manifests: list[Manifest] = field(default_factory=list)
    _names: dict[tuple[str, str], str] = field(default_factory=dict)

    def name_of(self, plugin: str, config: dict[str, Any]) -> str:
        """The KongPlugin for ``plugin`` with ``config`` (made on first use)."""
        key = (plugin, json.dumps(plain(config), sort_keys=True))
        if key not in self._names:
            taken = sum(1 for known, _ in self._names if known == plugin)
            name = plugin if not taken else f"{plugin}-{taken + 1}"
            self._names[key] = name
            self.manifests.append(_plugin(self.catalog, name, plugin, config))
        return self._names[key]


def _plugins(catalog: Catalog) -> tuple[_Plugins, list[tuple[Service, Route, list[str]]]]:
    """Every KongPlugin, and each route with the plugins it attaches (global first)."""
    plugins = _Plugins(catalog)
    global_names = [
        plugins.name_of(plugin, dict(_GLOBAL_PLUGINS[plugin]))
        for plugin in catalog.platform.gateway.plugins
    ]
    routes = [
        (
            service,
            route,
            global_names
            + [plugins.name_of(e["name"], e["config"]) for e in _route_plugins(catalog, route)],
        )
        for service, route in _routes(catalog)
    ]
    return plugins, routes


def gateway_manifests(catalog: Catalog) -> list[Manifest]:
    """KongPlugins, the KongConsumer and one Ingress per route; empty without routes."""
    plugins, routes = _plugins(catalog)
    if not routes:
        return []
    manifests = list(plugins.manifests)
    if any(route.auth == "jwt" for _, route, _ in routes):
        manifests.append(
            {
                "apiVersion": KONG_API,
                "kind": "KongConsumer",
                "metadata": metadata(
                    JWT_CONSUMER,
                    COMPONENT,
                    catalog.platform.name,
                    annotations={"kubernetes.io/ingress.class": naming.KONG_INGRESS_CLASS},
                ),
                "username": JWT_CONSUMER,
            }
        )
    manifests.extend(
        _ingress(catalog, service, route, attached) for service, route, attached in routes
    )
    return manifests


def rate_limiting_plugins(catalog: Catalog) -> list[str]:
    """Names of the rate-limiting KongPlugins (an overlay qualifies their Redis host)."""
    plugins, _ = _plugins(catalog)
    return [m["metadata"]["name"] for m in plugins.manifests if m["plugin"] == "rate-limiting"]
