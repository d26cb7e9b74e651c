"""Kong's declarative configuration (``_format_version: "3.0"``) as typed objects.

Only what this gateway can enforce faithfully is accepted; anything else (another
plugin, a regex path, a plugin option it would silently ignore…) is a ``ConfigError``
at startup, never a quiet difference from Kong.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from handwritten.gateway.domain.routing import RouteMatcher

#: First line of the pre-function Lua that ``generator/emit/infra.py`` writes: the only
#: pre-function this gateway knows how to enforce (it cannot run Lua).
PRE_FUNCTION_MARKER = "-- microcommerce: user-id-from-token"
_LUA_STRING = r'"(?:[^"\\]|\\.)*"'
_LUA_AUDIENCE = re.compile(rf"^local ISSUER, AUDIENCE = ({_LUA_STRING}), ({_LUA_STRING})$", re.M)
_LUA_ESCAPE = re.compile(r"\\(\d{1,3}|.)", re.S)

#: Kong derives the ids of entities declared without one (``declarative_config.lua``:
#: uuid v5 of the entity's endpoint key in a per-entity namespace).
_KONG_ID_NAMESPACE = uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5")
#: What Kong puts in a rate-limiting key for a plugin not scoped to a route/service.
EMPTY_UUID = "00000000-0000-0000-0000-000000000000"

HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
RATE_LIMIT_PERIODS = ("second", "minute", "hour", "day", "month", "year")


class ConfigError(ValueError):
    """kong.yml is invalid, or uses something this gateway does not enforce."""


def kong_entity_id(entity: str, endpoint_key: str) -> str:
    """The id Kong 3.x generates for a declarative entity (e.g. a route by its name)."""
    namespace = uuid.uuid5(_KONG_ID_NAMESPACE, entity)
    return str(uuid.uuid5(namespace, endpoint_key))


# ----------------------------------------------------------------------- plugins


@dataclass(frozen=True)
class JwtPlugin:
    """Kong's ``jwt`` plugin (verification keys come from the JWKS)."""

    name: ClassVar[str] = "jwt"
    priority: ClassVar[int] = 1450

    header_names: tuple[str, ...] = ("authorization",)
    uri_param_names: tuple[str, ...] = ("jwt",)
    cookie_names: tuple[str, ...] = ()
    key_claim_name: str = "iss"
    claims_to_verify: tuple[str, ...] = ()
    maximum_expiration: int = 0
    run_on_preflight: bool = True
    realm: str | None = None


@dataclass(frozen=True)
class UserIdFromTokenPlugin:
    """The generated ``pre-function``: drop the client's user header, refuse a token of
    another issuer/audience (401), set the header from the token's ``sub``."""

    name: ClassVar[str] = "pre-function"
    priority: ClassVar[int] = 1_000_000

    issuer: str
    audience: str
    header_name: str = "X-User-ID"


@dataclass(frozen=True)
class RateLimitingPlugin:
    """Kong's ``rate-limiting`` plugin, ``redis`` policy (counters in REDIS_URL)."""

    name: ClassVar[str] = "rate-limiting"
    priority: ClassVar[int] = 910

    limits: tuple[tuple[str, int], ...]
    limit_by: str = "consumer"
    header_name: str | None = None
    path: str | None = None
    fault_tolerant: bool = True
    hide_client_headers: bool = False
    error_code: int = 429
    error_message: str = "API rate limit exceeded"
    redis_timeout_ms: int = 2000
    #: The entities the plugin is attached to: part of every counter key, as in Kong.
    route_id: str = EMPTY_UUID
    service_id: str = EMPTY_UUID


@dataclass(frozen=True)
class CorrelationIdPlugin:
    name: ClassVar[str] = "correlation-id"
    priority: ClassVar[int] = 1

    header_name: str = "Kong-Request-ID"
    generator: str = "uuid#counter"
    echo_downstream: bool = False


@dataclass(frozen=True)
class PrometheusPlugin:
    name: ClassVar[str] = "prometheus"
    priority: ClassVar[int] = 13

    status_code_metrics: bool = False
    latency_metrics: bool = False
    bandwidth_metrics: bool = False


@dataclass(frozen=True)
class RequestTransformerPlugin:
    """Kong's ``request-transformer``, limited to removing headers."""

    name: ClassVar[str] = "request-transformer"
    priority: ClassVar[int] = 801

    remove_headers: tuple[str, ...] = ()


Plugin = (
    JwtPlugin
    | UserIdFromTokenPlugin
    | RateLimitingPlugin
    | CorrelationIdPlugin
    | PrometheusPlugin
    | RequestTransformerPlugin
)


P = TypeVar("P", bound=Plugin)

# ----------------------------------------------------------------------- entities


@dataclass(frozen=True)
class Service:
    """A Kong service: where matched requests go."""

    name: str
    id: str
    protocol: str
    host: str
    port: int
    path: str = ""
    #: Kong's per-service timeouts in seconds, when kong.yml sets them.
    connect_timeout: float | None = None
    read_timeout: float | None = None
    write_timeout: float | None = None


@dataclass(frozen=True)
class Route:
    """A Kong route with the plugins that run on it, in Kong's execution order."""

    name: str
    id: str
    service: Service
    matcher: RouteMatcher
    strip_path: bool = True
    preserve_host: bool = False
    plugins: tuple[Plugin, ...] = field(default=())

    def plugin(self, kind: type[P]) -> P | None:
        """The plugin of that type on this route, if any."""
        return next((p for p in self.plugins if isinstance(p, kind)), None)


@dataclass(frozen=True)
class KongConfig:
    """Everything the gateway enforces, from one kong.yml."""

    routes: tuple[Route, ...]
    services: Mapping[str, Service]
    consumers: tuple[str, ...]
    global_plugins: tuple[Plugin, ...]

    def route(self, name: str) -> Route:
        return next(route for route in self.routes if route.name == name)


# ----------------------------------------------------------------------- parsing


def parse_kong_config(data: object) -> KongConfig:
    """Validate and type a parsed kong.yml; ``ConfigError`` says what is wrong."""
    document = _mapping(data, "kong.yml")
    version = document.get("_format_version")
    if str(version) not in ("3.0", "3.1"):
        raise ConfigError(f'_format_version must be "3.0", got {version!r}')
    supported = {"_format_version", "_transform", "plugins", "consumers", "services", "routes"}
    for key, value in document.items():
        if key not in supported and value:
            raise ConfigError(f"top-level {key!r} is not supported by this gateway")

    services: dict[str, Service] = {}
    route_specs: list[tuple[Mapping[str, Any], Service]] = []
    service_plugins: dict[str, list[Mapping[str, Any]]] = {}
    for index, raw in enumerate(_sequence(document.get("services", []), "services")):
        entry = _mapping(raw, f"services[{index}]")
        service = _service(entry, index)
        if service.name in services:
            raise ConfigError(f"service name {service.name!r} is not unique")
        services[service.name] = service
        service_plugins[service.name] = _plugin_entries(entry, f"service {service.name}")
        for position, route in enumerate(_sequence(entry.get("routes", []), "routes")):
            route_specs.append((_mapping(route, f"{service.name}.routes[{position}]"), service))
    for index, raw in enumerate(_sequence(document.get("routes", []), "routes")):
        entry = _mapping(raw, f"routes[{index}]")
        reference = entry.get("service")
        name = reference.get("name") if isinstance(reference, Mapping) else reference
        if not isinstance(name, str) or name not in services:
            raise ConfigError(f"routes[{index}] must name a declared service")
        route_specs.append((entry, services[name]))

    consumers = tuple(_consumer(raw, i) for i, raw in enumerate(document.get("consumers") or []))
    global_entries: list[Mapping[str, Any]] = []
    route_extra: dict[str, list[Mapping[str, Any]]] = {}
    for index, raw in enumerate(_sequence(document.get("plugins", []), "plugins")):
        entry = _mapping(raw, f"plugins[{index}]")
        for scope in ("consumer", "consumer_group"):
            if entry.get(scope):
                raise ConfigError(f"plugins[{index}]: {scope}-scoped plugins are not supported")
        if entry.get("route"):
            route_extra.setdefault(_reference(entry["route"]), []).append(entry)
        elif entry.get("service"):
            service_plugins.setdefault(_reference(entry["service"]), []).append(entry)
        else:
            global_entries.append(entry)

    global_plugins = _plugins(global_entries, "global", route_id=None, service_id=None)
    routes: list[Route] = []
    seen: set[str] = set()
    for entry, service in route_specs:
        route_id, matcher, strip_path, preserve_host = _route(entry)
        if matcher.name in seen:
            raise ConfigError(f"route name {matcher.name!r} is not unique")
        seen.add(matcher.name)
        own = _plugin_entries(entry, f"route {matcher.name}") + route_extra.pop(matcher.name, [])
        routes.append(
            Route(
                name=matcher.name,
                id=route_id,
                service=service,
                matcher=matcher,
                strip_path=strip_path,
                preserve_host=preserve_host,
                plugins=_resolve(
                    _plugins(own, f"route {matcher.name}", route_id=route_id, service_id=None),
                    _plugins(
                        service_plugins.get(service.name, []),
                        f"service {service.name}",
                        route_id=None,
                        service_id=service.id,
                    ),
                    global_plugins,
                ),
            )
        )
    if route_extra:
        raise ConfigError(f"plugins reference unknown routes: {sorted(route_extra)}")
    unknown_services = set(service_plugins) - set(services)
    if unknown_services:
        raise ConfigError(f"plugins reference unknown services: {sorted(unknown_services)}")
    return KongConfig(tuple(routes), services, consumers, global_plugins)


def _resolve(*scopes: tuple[Plugin, ...]) -> tuple[Plugin, ...]:
    """One instance per plugin name, the most specific scope winning (route, service,
    global), sorted by Kong's priorities (highest runs first)."""
    chosen: dict[str, Plugin] = {}
    for scope in scopes:
        for plugin in scope:
            chosen.setdefault(plugin.name, plugin)
    return tuple(sorted(chosen.values(), key=lambda p: -p.priority))


def _service(entry: Mapping[str, Any], index: int) -> Service:
    name = _string(entry.get("name"), f"services[{index}].name")
    url = entry.get("url")
    if url is not None:
        parts = urlsplit(_string(url, f"service {name}.url"))
        protocol, host, path = parts.scheme, parts.hostname or "", parts.path
        port = parts.port
    else:
        protocol = str(entry.get("protocol", "http"))
        host = str(entry.get("host") or "")
        port = entry.get("port")
        path = str(entry.get("path") or "")
    if protocol not in ("http", "https"):
        raise ConfigError(f"service {name}: protocol {protocol!r} is not supported")
    if not host:
        raise ConfigError(f"service {name} needs a url or a host")
    if port is None:
        port = 443 if protocol == "https" else 80
    return Service(
        name=name,
        id=str(entry.get("id") or kong_entity_id("services", name)),
        protocol=protocol,
        host=host,
        port=int(port),
        path="" if path in ("", "/") else path,
        connect_timeout=_milliseconds(entry.get("connect_timeout")),
        read_timeout=_milliseconds(entry.get("read_timeout")),
        write_timeout=_milliseconds(entry.get("write_timeout")),
    )


def _route(entry: Mapping[str, Any]) -> tuple[str, RouteMatcher, bool, bool]:
    name = _string(entry.get("name"), "route name")
    paths = tuple(_string(p, f"route {name} path") for p in entry.get("paths") or ())
    for path in paths:
        if path.startswith("~"):
            raise ConfigError(f"route {name}: regex paths are not supported")
        if not path.startswith("/"):
            raise ConfigError(f"route {name}: path {path!r} must start with '/'")
    methods = frozenset(_string(m, f"route {name} method") for m in entry.get("methods") or ())
    if not methods <= HTTP_METHODS:
        raise ConfigError(f"route {name}: invalid methods {sorted(methods - HTTP_METHODS)}")
    for unsupported in ("headers", "snis", "sources", "destinations", "expression"):
        if entry.get(unsupported):
            raise ConfigError(f"route {name}: {unsupported!r} is not supported")
    if entry.get("path_handling", "v0") != "v0":
        raise ConfigError(f"route {name}: only path_handling v0 is supported")
    protocols = set(entry.get("protocols") or ("http", "https"))
    if not protocols & {"http", "https"}:
        raise ConfigError(f"route {name}: no http protocol")
    hosts = tuple(_string(h, f"route {name} host") for h in entry.get("hosts") or ())
    if not (paths or methods or hosts):
        raise ConfigError(f"route {name} needs paths, methods or hosts")
    route_id = str(entry.get("id") or kong_entity_id("routes", name))
    matcher = RouteMatcher(name=name, paths=paths, methods=methods, hosts=hosts)
    return route_id, matcher, bool(entry.get("strip_path", True)), bool(entry.get("preserve_host"))


def _consumer(raw: object, index: int) -> str:
    entry = _mapping(raw, f"consumers[{index}]")
    name = entry.get("username") or entry.get("custom_id")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"consumers[{index}] needs a username or custom_id")
    for credentials in ("jwt_secrets", "keyauth_credentials", "basicauth_credentials"):
        if entry.get(credentials):
            # Keys come from the JWKS; static credentials would silently differ.
            raise ConfigError(f"consumer {name}: {credentials} are not supported (JWKS_URL is)")
    if entry.get("plugins"):
        raise ConfigError(f"consumer {name}: consumer plugins are not supported")
    return name


def _plugin_entries(entry: Mapping[str, Any], where: str) -> list[Mapping[str, Any]]:
    return [_mapping(p, f"{where} plugin") for p in _sequence(entry.get("plugins", []), where)]


def _plugins(
    entries: Sequence[Mapping[str, Any]],
    where: str,
    *,
    route_id: str | None,
    service_id: str | None,
) -> tuple[Plugin, ...]:
    plugins: list[Plugin] = []
    names: set[str] = set()
    for entry in entries:
        if entry.get("enabled", True) is False:
            continue
        name = _string(entry.get("name"), f"{where}: plugin name")
        if name in names:
            raise ConfigError(f"{where}: plugin {name!r} is configured twice")
        names.add(name)
        config = _mapping(entry.get("config") or {}, f"{where}: {name}.config")
        plugins.append(_plugin(name, config, f"{where}: {name}", route_id, service_id))
    return tuple(plugins)


def _plugin(
    name: str,
    config: Mapping[str, Any],
    where: str,
    route_id: str | None,
    service_id: str | None,
) -> Plugin:
    if name == "jwt":
        return _jwt(config, where)
    if name == "pre-function":
        return _pre_function(config, where)
    if name == "rate-limiting":
        return _rate_limiting(config, where, route_id, service_id)
    if name == "correlation-id":
        generator = str(config.get("generator", "uuid#counter"))
        if generator not in ("uuid", "uuid#counter"):
            raise ConfigError(f"{where}: generator {generator!r} is not supported")
        return CorrelationIdPlugin(
            header_name=str(config.get("header_name", "Kong-Request-ID")),
            generator=generator,
            echo_downstream=bool(config.get("echo_downstream", False)),
        )
    if name == "prometheus":
        return PrometheusPlugin(
            status_code_metrics=bool(config.get("status_code_metrics", False)),
            latency_metrics=bool(config.get("latency_metrics", False)),
            bandwidth_metrics=bool(config.get("bandwidth_metrics", False)),
        )
    if name == "request-transformer":
        return _request_transformer(config, where)
    raise ConfigError(f"{where}: plugin {name!r} is not supported by this gateway")


def _jwt(config: Mapping[str, Any], where: str) -> JwtPlugin:
    if config.get("anonymous"):
        raise ConfigError(f"{where}: anonymous consumers are not supported")
    if config.get("secret_is_base64"):
        raise ConfigError(f"{where}: secret_is_base64 is not supported (RS256 keys only)")
    claims = tuple(str(c) for c in config.get("claims_to_verify") or ())
    if not set(claims) <= {"exp", "nbf"}:
        raise ConfigError(f"{where}: claims_to_verify accepts exp and nbf only")
    maximum = int(config.get("maximum_expiration", 0))
    if maximum > 0 and "exp" not in claims:
        raise ConfigError(f"{where}: maximum_expiration needs exp in claims_to_verify")
    return JwtPlugin(
        header_names=tuple(str(h).lower() for h in config.get("header_names", ["authorization"])),
        uri_param_names=tuple(str(p) for p in config.get("uri_param_names", ["jwt"])),
        cookie_names=tuple(str(c) for c in config.get("cookie_names", [])),
        key_claim_name=str(config.get("key_claim_name", "iss")),
        claims_to_verify=claims,
        maximum_expiration=maximum,
        run_on_preflight=bool(config.get("run_on_preflight", True)),
        realm=str(config["realm"]) if config.get("realm") else None,
    )


def _pre_function(config: Mapping[str, Any], where: str) -> UserIdFromTokenPlugin:
    phases = {phase: value for phase, value in config.items() if value}
    access = phases.pop("access", None)
    if phases or not isinstance(access, list) or len(access) != 1:
        raise ConfigError(f"{where}: only the generated access function is supported")
    lua = str(access[0])
    if not lua.startswith(PRE_FUNCTION_MARKER):
        # This gateway cannot run Lua: it enforces only the function it knows.
        raise ConfigError(f"{where}: unknown Lua (expected {PRE_FUNCTION_MARKER!r} first)")
    match = _LUA_AUDIENCE.search(lua)
    if match is None:
        raise ConfigError(f"{where}: the Lua declares no ISSUER, AUDIENCE")
    return UserIdFromTokenPlugin(
        issuer=_lua_string(match.group(1)), audience=_lua_string(match.group(2))
    )


def _lua_string(literal: str) -> str:
    """The value of a double-quoted Lua string literal (\\\\, \\", \\ddd escapes)."""

    def unescape(match: re.Match[str]) -> str:
        escaped = match.group(1)
        return chr(int(escaped)) if escaped.isdigit() else escaped

    return _LUA_ESCAPE.sub(unescape, literal[1:-1])


def _rate_limiting(
    config: Mapping[str, Any], where: str, route_id: str | None, service_id: str | None
) -> RateLimitingPlugin:
    limits = tuple(
        (period, int(config[period])) for period in RATE_LIMIT_PERIODS if config.get(period)
    )
    if not limits:
        raise ConfigError(f"{where}: at least one limit (second … year) is required")
    policy = config.get("policy", "local")
    if policy != "redis":
        raise ConfigError(f"{where}: policy {policy!r} is not supported (redis is)")
    if config.get("sync_rate", -1) not in (-1, None):
        raise ConfigError(f"{where}: sync_rate is not supported (counts are synchronous)")
    limit_by = str(config.get("limit_by", "consumer"))
    if limit_by not in ("consumer", "credential", "ip", "service", "header", "path"):
        raise ConfigError(f"{where}: limit_by {limit_by!r} is invalid")
    header_name = config.get("header_name")
    if limit_by == "header" and not header_name:
        raise ConfigError(f"{where}: limit_by header needs header_name")
    redis = config.get("redis") or {}
    return RateLimitingPlugin(
        limits=limits,
        limit_by=limit_by,
        header_name=str(header_name) if header_name else None,
        path=str(config["path"]) if config.get("path") else None,
        fault_tolerant=bool(config.get("fault_tolerant", True)),
        hide_client_headers=bool(config.get("hide_client_headers", False)),
        error_code=int(config.get("error_code", 429)),
        error_message=str(config.get("error_message", "API rate limit exceeded")),
        redis_timeout_ms=int(redis.get("timeout", 2000)),
        route_id=route_id or EMPTY_UUID,
        service_id=service_id or EMPTY_UUID,
    )


def _request_transformer(config: Mapping[str, Any], where: str) -> RequestTransformerPlugin:
    remove = config.get("remove") or {}
    for action in ("rename", "replace", "add", "append"):
        if any((config.get(action) or {}).values()):
            raise ConfigError(f"{where}: {action} is not supported (remove.headers is)")
    if config.get("http_method") or remove.get("body") or remove.get("querystring"):
        raise ConfigError(f"{where}: only remove.headers is supported")
    return RequestTransformerPlugin(remove_headers=tuple(str(h) for h in remove.get("headers", [])))


# ----------------------------------------------------------------------- helpers


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    return value


def _sequence(value: object, where: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} must be a non-empty string")
    return value


def _reference(value: object) -> str:
    name = value.get("name") if isinstance(value, Mapping) else value
    return _string(name, "plugin scope reference")


def _milliseconds(value: object) -> float | None:
    return None if value is None else int(str(value)) / 1000
