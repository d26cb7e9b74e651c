"""Deployment files derived from the services catalog.

Emits, byte for byte deterministic:

- ``infrastructure/local/stack.json``: what the docker-less runner provisions
  (databases, topics, hosts and ports);
- ``infrastructure/gateway/kong.yml``: Kong 3.x DB-less declarative config (OSS plugins);
- ``docker-compose.yml``: the full stack (Kong, Kafka, PostgreSQL per service, Redis,
  ClickHouse, OpenTelemetry Collector, Jaeger, Prometheus, Grafana, every service);
- ``infrastructure/observability/prometheus.yml``: one scrape job per service;
- ``generated/catalog.py``: the catalog as typed Python constants for the local runner.

YAML is built as Python data and dumped with PyYAML (quoting is then always right);
explanatory comments are added around the dumped sections.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from generator.catalog import Catalog, Route, Service
from generator.emit import Output, header
from generator.specset import SpecSet

STACK_JSON = "infrastructure/local/stack.json"
KONG_YML = "infrastructure/gateway/kong.yml"
COMPOSE_YML = "docker-compose.yml"
PROMETHEUS_YML = "infrastructure/observability/prometheus.yml"
CATALOG_PY = "generated/catalog.py"

DOCKERFILE = "infrastructure/docker/Dockerfile"
OTEL_COLLECTOR_CONFIG = "infrastructure/observability/otel-collector.yaml"
APP_IMAGE = "microcommerce:dev"

#: The one Kong consumer every access token maps to (through the token's ``kid``).
JWT_CONSUMER = "microcommerce-users"
USER_ID_HEADER = "X-User-ID"
CORRELATION_ID_HEADER = "X-Correlation-ID"

# Ports the container images listen on (fixed by the images, not by the catalog, whose
# host/port entries describe the docker-less stack).
POSTGRES_PORT = 5432
REDIS_PORT = 6379
JAEGER_OTLP_GRPC_PORT = 4317
JAEGER_UI_PORT = 16686
JAEGER_ADMIN_PORT = 14269
PROMETHEUS_PORT = 9090
GRAFANA_PORT = 3000
KONG_STATUS_PORT = 8100
#: Kong's admin API: inside the compose network only (never published), for the JWKS sync.
KONG_ADMIN_PORT = 8001
KONG_JWKS_SYNC = "kong-jwks-sync"
#: The sync job touches this file after every successful check (its healthcheck reads it).
# The app image's user has no home directory: /tmp is its only writable place.
KONG_JWKS_SYNC_HEARTBEAT = "/tmp/kong-jwks-sync.ok"  # noqa: S108
KONG_JWKS_SYNC_INTERVAL_SECONDS = 10
OTEL_COLLECTOR_METRICS_PORT = 8888
#: Any valid KRaft cluster id (base64url of 16 bytes); fixed so the file is stable.
KAFKA_CLUSTER_ID = "5L6g3nShT-eMCtK--X86sw"


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class _Topic:
    name: str
    partitions: int
    from_asyncapi: bool


def _channel_partitions(asyncapi: object) -> dict[str, int]:
    """``bindings.kafka.partitions`` of each AsyncAPI channel, by channel address."""
    found: dict[str, int] = {}
    channels = asyncapi.get("channels") if isinstance(asyncapi, dict) else None
    if not isinstance(channels, dict):
        return found
    for channel in channels.values():
        if not isinstance(channel, dict):
            continue
        address = channel.get("address")
        bindings = channel.get("bindings")
        kafka = bindings.get("kafka") if isinstance(bindings, dict) else None
        partitions = kafka.get("partitions") if isinstance(kafka, dict) else None
        if (
            isinstance(address, str)
            and isinstance(partitions, int)
            and not isinstance(partitions, bool)
            and partitions > 0
        ):
            found.setdefault(address, partitions)
    return found


def _topics(specset: SpecSet, catalog: Catalog) -> list[_Topic]:
    """Every catalog topic (sorted) with its partition count."""
    bound = _channel_partitions(specset.asyncapi.data)
    default = catalog.infrastructure.kafka.default_partitions
    return [_Topic(name, bound.get(name, default), name in bound) for name in catalog.topics()]


def _sources(specset: SpecSet, topics: Sequence[_Topic] = ()) -> list[str]:
    sources = [specset.catalog_doc.relpath]
    if any(topic.from_asyncapi for topic in topics):
        sources.append(specset.asyncapi.relpath)
    return sources


# --------------------------------------------------------------------------- YAML


class _Quoted(str):
    """A string always written double-quoted (ports, versions)."""

    __slots__ = ()


class _Flow(list[Any]):
    """A short list written inline: ``[a, b]``."""

    __slots__ = ()


class _Dumper(yaml.SafeDumper):
    """Block style, indented sequences, literal blocks for multi-line text, no aliases."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_quoted(dumper: yaml.SafeDumper, data: _Quoted) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style='"')


def _represent_flow(dumper: yaml.SafeDumper, data: _Flow) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Quoted, _represent_quoted)
_Dumper.add_representer(_Flow, _represent_flow)


def _yaml(data: Any) -> str:
    text = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,  # never fold long commands or URLs
    )
    assert isinstance(text, str)
    return text


def _comment(text: str, indent: str = "") -> str:
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in text.strip().splitlines())


def _indent(text: str, indent: str) -> str:
    return "".join(indent + line if line.strip() else line for line in text.splitlines(True))


def _annotate(text: str, notes: Mapping[str, str]) -> str:
    """Put the comment ``notes[line]`` (same indentation) above every such line."""
    lines = []
    for line in text.splitlines(True):
        note = notes.get(line.strip())
        if note is not None:
            lines.append(_comment(note, line[: len(line) - len(line.lstrip())]))
        lines.append(line)
    return "".join(lines)


# --------------------------------------------------------------------------- stack.json


def _stack_json(catalog: Catalog, topics: Sequence[_Topic], banner: str) -> str:
    infra = catalog.infrastructure
    databases = sorted({s.database for s in catalog.services.values() if s.database})
    stack = {
        "$comment": banner.removeprefix("# ").rstrip("\n"),
        "kafka": {
            "controller_port": infra.kafka.controller_port,
            "host": infra.kafka.host,
            "port": infra.kafka.port,
            "topics": [
                {"name": t.name, "partitions": t.partitions, "replication_factor": 1}
                for t in topics
            ],
        },
        "postgres": {
            "databases": [{"name": db, "password": db, "user": db} for db in databases],
            "host": infra.postgres.host,
            "port": infra.postgres.port,
        },
        "redis": {"host": infra.redis.host, "port": infra.redis.port},
    }
    return json.dumps(stack, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------------- kong.yml

#: First line of the generated pre-function: how the docker-less gateway recognises the
#: Lua it enforces natively (it cannot run Lua; it refuses any other pre-function).
PRE_FUNCTION_MARKER = "-- microcommerce: user-id-from-token"

# Sandbox-safe Lua (only the PDK, string.* and math.*): Kong's default
# `untrusted_lua = sandbox` offers no cjson and no base64url decoder.
_USER_ID_FROM_TOKEN_LUA = r"""
{marker}
-- X-User-ID comes from the gateway only: drop whatever the client sent.
kong.service.request.clear_header("X-User-ID")
-- CORS preflights skip jwt (run_on_preflight: false): no identity for them.
if kong.request.get_method() == "OPTIONS" then
  return
end
local authorization = kong.request.get_header("Authorization")
local token = authorization and string.match(authorization, "[Bb]earer%s+(.+)")
local payload = token and string.match(token, "^[^.]+%.([^.]+)%.[^.]*$")
if not payload then
  return -- no bearer token: the jwt plugin answers 401
end
-- base64url-decode the JWT payload
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local json, buffer, bits = "", 0, 0
for i = 1, #payload do
  local value = string.find(alphabet, string.sub(payload, i, i), 1, true)
  if not value then
    return -- not base64url: the jwt plugin answers 401
  end
  buffer = buffer * 64 + value - 1
  bits = bits + 6
  if bits >= 8 then
    bits = bits - 8
    local byte = math.floor(buffer / 2 ^ bits)
    json = json .. string.char(byte)
    buffer = buffer - byte * 2 ^ bits
  end
end
-- The jwt plugin checks neither iss nor aud: a token of another issuer or for another
-- audience stops here (aud is a string or an array of strings).
local ISSUER, AUDIENCE = {issuer}, {audience}
local iss = string.match(json, '"iss"%s*:%s*"([^"\\]*)"')
local aud = string.match(json, '"aud"%s*:%s*"([^"\\]*)"')
if not aud then
  local audiences = string.match(json, '"aud"%s*:%s*(%b[])')
  if audiences and string.find(audiences, '"' .. AUDIENCE .. '"', 1, true) then
    aud = AUDIENCE
  end
end
if iss ~= ISSUER or aud ~= AUDIENCE then
  return kong.response.exit(401, {{ message = "Unauthorized" }})
end
local sub = string.match(json, '"sub"%s*:%s*"([^"\\]+)"')
if sub then
  kong.service.request.set_header("X-User-ID", sub)
end
""".lstrip()


def _lua_string(value: str) -> str:
    """A double-quoted Lua string literal (escaped: backslash, quote, control bytes)."""
    escaped = "".join(
        "\\" + char
        if char in '\\"'
        else f"\\{ord(char):03d}"
        if ord(char) < 0x20 or ord(char) == 0x7F
        else char
        for char in value
    )
    return f'"{escaped}"'


def _user_id_from_token_lua(catalog: Catalog) -> str:
    jwt = catalog.platform.jwt
    return _USER_ID_FROM_TOKEN_LUA.format(
        marker=PRE_FUNCTION_MARKER,
        issuer=_lua_string(jwt.issuer),
        audience=_lua_string(jwt.audience),
    )


_SERVICES_NOTE = f"""
One Kong service per catalog service with gateway routes (compose hostnames).

{USER_ID_HEADER} is set by the gateway only. On a jwt route, pre-function runs first
(priority 1000000): it removes any client-sent {USER_ID_HEADER}, answers 401 to a token
whose `iss` or `aud` is not this platform's (the jwt plugin checks neither) and sets
{USER_ID_HEADER} from the JWT's `sub` claim (decoding the base64url payload, without
verifying it). That value is trusted only because the jwt plugin (priority 1450) runs
next and rejects a missing, badly signed, expired or not-yet-valid token with 401 before
the request is proxied; rate-limiting (priority 910) runs after jwt, so it counts per
verified user. On a public route, request-transformer removes a client-sent
{USER_ID_HEADER}.
"""

_PRE_FUNCTION_NOTE = f"""
iss/aud checked; {USER_ID_HEADER} := token sub, trusted only because jwt (next) verifies it.
"""

_REQUEST_TRANSFORMER_NOTE = f"""
Public route: a client-sent {USER_ID_HEADER} never reaches the service.
"""

_CONSUMER_NOTE = f"""
Every access token maps to this one consumer: the jwt plugin looks the token's `kid`
header up (key_claim_name: kid) among the consumer's jwt_secrets. Those credentials
(one per auth signing key: key = kid, algorithm RS256, rsa_public_key = that JWKS
key as PEM) are deliberately NOT in this file: the auth service rotates its keys, and
the JWKS sync job keeps the jwt_secrets of {JWT_CONSUMER} in step with
GET /.well-known/jwks.json (handwritten/gateway/kong_sync.py, the compose service
{KONG_JWKS_SYNC}). Until it has run, every jwt route answers 401.
"""


def _jwt_plugin() -> dict[str, Any]:
    return {
        "name": "jwt",
        "config": {
            "header_names": _Flow(["authorization"]),
            # Tokens only from the Authorization header (the pre-function reads it there).
            "uri_param_names": _Flow(),
            "cookie_names": _Flow(),
            "key_claim_name": "kid",
            "claims_to_verify": _Flow(["exp", "nbf"]),
            "maximum_expiration": 900,
            "run_on_preflight": False,
        },
    }


def _rate_limiting_plugin(catalog: Catalog) -> dict[str, Any]:
    return {
        "name": "rate-limiting",
        "config": {
            "minute": catalog.platform.rate_limit.per_minute,
            "limit_by": "header",
            "header_name": USER_ID_HEADER,
            "policy": "redis",
            "redis": {"host": "redis", "port": REDIS_PORT, "database": 0, "timeout": 2000},
            "hide_client_headers": False,
            "fault_tolerant": True,
            "error_code": 429,
            "error_message": "API rate limit exceeded",
        },
    }


def _route_plugins(catalog: Catalog, route: Route) -> list[dict[str, Any]]:
    plugins: list[dict[str, Any]] = []
    if route.auth == "jwt":
        plugins.append(
            {"name": "pre-function", "config": {"access": [_user_id_from_token_lua(catalog)]}}
        )
        plugins.append(_jwt_plugin())
    else:
        plugins.append(
            {
                "name": "request-transformer",
                "config": {"remove": {"headers": _Flow([USER_ID_HEADER])}},
            }
        )
    for name in route.plugins:
        if name == "rate-limiting":
            plugins.append(_rate_limiting_plugin(catalog))
    return plugins


def _kong_route(catalog: Catalog, route: Route) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": route.name, "paths": _Flow(route.paths)}
    if route.methods:
        entry["methods"] = _Flow(route.methods)
    entry.update(
        {
            "strip_path": False,
            "preserve_host": False,
            "protocols": _Flow(["http", "https"]),
            "plugins": _route_plugins(catalog, route),
        }
    )
    return entry


_GLOBAL_PLUGINS: dict[str, dict[str, Any]] = {
    "correlation-id": {
        "header_name": CORRELATION_ID_HEADER,
        "generator": "uuid",
        "echo_downstream": True,
    },
    "prometheus": {
        "per_consumer": False,
        "status_code_metrics": True,
        "latency_metrics": True,
        "bandwidth_metrics": True,
        "upstream_health_metrics": True,
    },
}


UPSTREAM_CONNECT_TIMEOUT_MS = 2_000
UPSTREAM_READ_TIMEOUT_MS = 30_000


def _kong_yml(catalog: Catalog, banner: str) -> str:
    services = [
        {
            "name": service.name,
            "url": f"http://{service.name}:{service.http_port}",
            # Explicit so Kong and the docker-less gateway time out alike (Kong's default
            # is 60 s); 504 when an upstream is slower than that.
            "connect_timeout": UPSTREAM_CONNECT_TIMEOUT_MS,
            "read_timeout": UPSTREAM_READ_TIMEOUT_MS,
            "write_timeout": UPSTREAM_READ_TIMEOUT_MS,
            "routes": [_kong_route(catalog, route) for route in service.gateway.routes],
        }
        for service in catalog.services.values()
        if service.gateway is not None and service.gateway.routes
    ]
    global_plugins = [
        {"name": name, "config": dict(_GLOBAL_PLUGINS[name])}
        for name in catalog.platform.gateway.plugins
    ]
    parts = [
        banner,
        _comment(
            "Kong 3.x DB-less declarative configuration (OSS plugins only): the gateway's\n"
            "single source of truth. The docker-less stack's gateway enforces this same file."
        ),
        _yaml({"_format_version": _Quoted("3.0")}),
        "\n",
        _comment("Global plugins: on every route."),
        _yaml({"plugins": global_plugins}),
        "\n",
        _comment(_CONSUMER_NOTE),
        _yaml({"consumers": [{"username": JWT_CONSUMER}]}),
        "\n",
        _comment(_SERVICES_NOTE),
        _annotate(
            _yaml({"services": services}),
            {
                "- name: pre-function": _PRE_FUNCTION_NOTE,
                "- name: request-transformer": _REQUEST_TRANSFORMER_NOTE,
            },
        ),
    ]
    return "".join(parts)


# --------------------------------------------------------------------------- compose


def _healthcheck(test: list[str], start_period: str = "10s") -> dict[str, Any]:
    return {
        "test": _Flow(test),
        "interval": "5s",
        "timeout": "5s",
        "retries": 30,
        "start_period": start_period,
    }


def _compose_value(value: str) -> str:
    """Escape compose variable interpolation in a literal value."""
    return value.replace("$", "$$")


def _db_service(db: str) -> str:
    return f"{db}-db"


def _app_environment(catalog: Catalog, service: Service) -> dict[str, str]:
    services = catalog.services
    auth = services.get("auth")
    otel = catalog.infrastructure.otel_collector
    env: dict[str, str] = {
        "SERVICE_NAME": service.name,
        "HTTP_PORT": str(service.http_port),
    }
    if service.grpc_port is not None:
        env["GRPC_PORT"] = str(service.grpc_port)
    if service.database:
        db = service.database
        env["DATABASE_URL"] = f"postgresql://{db}:{db}@{_db_service(db)}:{POSTGRES_PORT}/{db}"
    if "redis" in service.uses:
        env["REDIS_URL"] = f"redis://redis:{REDIS_PORT}/0"
    if "kafka" in service.uses:
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"kafka:{catalog.infrastructure.kafka.port}"
    if "clickhouse" in service.uses:
        env["CLICKHOUSE_URL"] = f"http://clickhouse:{catalog.infrastructure.clickhouse.http_port}"
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://otel-collector:{otel.otlp_http_port}"
    env["OTEL_SERVICE_NAME"] = service.name
    if auth is not None:
        env["JWKS_URL"] = f"http://auth:{auth.http_port}/.well-known/jwks.json"
    env["JWT_ISSUER"] = catalog.platform.jwt.issuer
    env["JWT_AUDIENCE"] = catalog.platform.jwt.audience
    for callee in service.calls:
        target = services[callee]
        env[f"{_env_name(callee)}_GRPC_TARGET"] = f"{callee}:{target.grpc_port}"
    for variable in service.env:
        # Compose wiring (e.g. CLICKHOUSE_URL to the server) wins over local defaults.
        env.setdefault(variable.name, _compose_value(variable.default))
    return env


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def _app_service(catalog: Catalog, service: Service) -> dict[str, Any]:
    depends: dict[str, dict[str, str]] = {}
    if service.database:
        depends[_db_service(service.database)] = {"condition": "service_healthy"}
    if "redis" in service.uses:
        depends["redis"] = {"condition": "service_healthy"}
    if "kafka" in service.uses:
        depends["kafka-init"] = {"condition": "service_completed_successfully"}
    if "clickhouse" in service.uses:
        depends["clickhouse"] = {"condition": "service_healthy"}
    depends["otel-collector"] = {"condition": "service_started"}
    for callee in service.calls:
        depends[callee] = {"condition": "service_healthy"}
    probe = (
        "import urllib.request; "
        f'urllib.request.urlopen("http://127.0.0.1:{service.http_port}/health/ready", timeout=3)'
    )
    return {
        "build": {"context": ".", "dockerfile": DOCKERFILE},
        "image": APP_IMAGE,
        "command": _Flow(["python", "-m", f"handwritten.{service.name}"]),
        "restart": "unless-stopped",
        "environment": _app_environment(catalog, service),
        "depends_on": depends,
        "healthcheck": _healthcheck(["CMD", "python", "-c", probe], start_period="20s"),
    }


def _kafka_init_script(catalog: Catalog, topics: Sequence[_Topic]) -> str:
    bootstrap = f"kafka:{catalog.infrastructure.kafka.port}"
    lines = ["set -e"]
    lines.extend(
        f"/opt/kafka/bin/kafka-topics.sh --bootstrap-server {bootstrap} --create"
        f" --if-not-exists --topic {topic.name} --partitions {topic.partitions}"
        " --replication-factor 1"
        for topic in topics
    )
    lines.append(f"echo 'kafka-init: {len(topics)} topics ready'")
    return "\n".join(lines) + "\n"


def _kong_jwks_sync_service(
    catalog: Catalog,
) -> tuple[str, dict[str, Any], str | None] | None:
    """The job keeping Kong's jwt credentials in step with the auth service's JWKS.

    Only when there is an ``auth`` service to serve the JWKS and a route to protect.
    """
    auth = catalog.services.get("auth")
    protected = any(
        route.auth == "jwt"
        for service in catalog.services.values()
        if service.gateway
        for route in service.gateway.routes
    )
    if auth is None or not protected:
        return None
    heartbeat_probe = (
        "import os, sys, time; "
        f'sys.exit(time.time() - os.path.getmtime("{KONG_JWKS_SYNC_HEARTBEAT}")'
        f" > {3 * KONG_JWKS_SYNC_INTERVAL_SECONDS})"
    )
    return (
        KONG_JWKS_SYNC,
        {
            "build": {"context": ".", "dockerfile": DOCKERFILE},
            "image": APP_IMAGE,
            "command": _Flow(["python", "-m", "handwritten.gateway.kong_sync"]),
            "restart": "unless-stopped",
            "environment": {
                "KONG_ADMIN_URL": f"http://kong:{KONG_ADMIN_PORT}",
                "JWKS_URL": f"http://auth:{auth.http_port}/.well-known/jwks.json",
                "KONG_CONFIG": "/kong/kong.yml",
                "KONG_SYNC_INTERVAL_SECONDS": str(KONG_JWKS_SYNC_INTERVAL_SECONDS),
                "KONG_SYNC_HEARTBEAT_FILE": KONG_JWKS_SYNC_HEARTBEAT,
            },
            "volumes": ["./infrastructure/gateway/kong.yml:/kong/kong.yml:ro"],
            "depends_on": {
                "kong": {"condition": "service_healthy"},
                "auth": {"condition": "service_healthy"},
            },
            "healthcheck": _healthcheck(["CMD", "python", "-c", heartbeat_probe]),
        },
        f"Keeps the jwt credentials of Kong's consumer {JWT_CONSUMER} in step with the auth\n"
        "service's JWKS: converts each RSA key to PEM and POSTs kong.yml plus those\n"
        "jwt_secrets to Kong's admin API /config (DB-less) whenever Kong's keys differ\n"
        "(new or rotated keys, or a restarted Kong); checks every"
        f" {KONG_JWKS_SYNC_INTERVAL_SECONDS} s.",
    )


def _infra_services(
    catalog: Catalog, topics: Sequence[_Topic], databases: Sequence[str]
) -> list[tuple[str, dict[str, Any], str | None]]:
    infra = catalog.infrastructure
    kafka = infra.kafka
    routed = [s.name for s in catalog.services.values() if s.gateway and s.gateway.routes]
    gateway_port = catalog.platform.gateway.port
    services: list[tuple[str, dict[str, Any], str | None]] = []

    kong_depends: dict[str, dict[str, str]] = {"redis": {"condition": "service_healthy"}}
    kong_depends.update({name: {"condition": "service_started"} for name in routed})
    sync = _kong_jwks_sync_service(catalog)
    kong_environment = {
        "KONG_DATABASE": "off",
        "KONG_DECLARATIVE_CONFIG": "/kong/kong.yml",
        "KONG_PROXY_LISTEN": f"0.0.0.0:{gateway_port}",
        "KONG_STATUS_LISTEN": f"0.0.0.0:{KONG_STATUS_PORT}",
    }
    if sync is not None:
        kong_environment["KONG_ADMIN_LISTEN"] = f"0.0.0.0:{KONG_ADMIN_PORT}"
    kong_environment.update(
        {
            "KONG_PROXY_ACCESS_LOG": "/dev/stdout",
            "KONG_PROXY_ERROR_LOG": "/dev/stderr",
            "KONG_ADMIN_ACCESS_LOG": "/dev/stdout",
            "KONG_ADMIN_ERROR_LOG": "/dev/stderr",
            "KONG_PLUGINS": "bundled",
            "KONG_UNTRUSTED_LUA": "sandbox",
        }
    )
    services.append(
        (
            "kong",
            {
                "image": infra.kong.image,
                "restart": "unless-stopped",
                "environment": kong_environment,
                "volumes": ["./infrastructure/gateway/kong.yml:/kong/kong.yml:ro"],
                "ports": [
                    _Quoted(f"{gateway_port}:{gateway_port}"),
                    _Quoted(f"127.0.0.1:{KONG_STATUS_PORT}:{KONG_STATUS_PORT}"),
                ],
                "depends_on": kong_depends,
                "healthcheck": _healthcheck(["CMD", "kong", "health"]),
            },
            "API gateway (DB-less): routes and plugins from infrastructure/gateway/kong.yml;\n"
            f"status API and Prometheus metrics on :{KONG_STATUS_PORT} (published on localhost"
            " only).\nUpstreams are resolved per request, so a failing service never keeps the"
            " gateway down."
            + (
                f"\nAdmin API on :{KONG_ADMIN_PORT} inside the compose network only (not"
                f" published), for {KONG_JWKS_SYNC}."
                if sync is not None
                else ""
            ),
        )
    )
    if sync is not None:
        services.append(sync)
    services.append(
        (
            "kafka",
            {
                "image": kafka.image,
                "restart": "unless-stopped",
                "environment": {
                    "CLUSTER_ID": KAFKA_CLUSTER_ID,
                    "KAFKA_NODE_ID": "1",
                    "KAFKA_PROCESS_ROLES": "broker,controller",
                    "KAFKA_LISTENERS": (
                        f"PLAINTEXT://0.0.0.0:{kafka.port},CONTROLLER://0.0.0.0:{kafka.controller_port}"
                    ),
                    "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://kafka:{kafka.port}",
                    "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": (
                        "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                    ),
                    "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                    "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
                    "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@localhost:{kafka.controller_port}",
                    "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                    "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
                    "KAFKA_MIN_INSYNC_REPLICAS": "1",
                    "KAFKA_NUM_PARTITIONS": str(kafka.default_partitions),
                    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
                    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                    "KAFKA_LOG_DIRS": "/var/lib/kafka/data",
                },
                "volumes": ["kafka-data:/var/lib/kafka/data"],
                "healthcheck": _healthcheck(
                    [
                        "CMD",
                        "/opt/kafka/bin/kafka-broker-api-versions.sh",
                        "--bootstrap-server",
                        f"localhost:{kafka.port}",
                    ],
                    start_period="20s",
                ),
            },
            "Apache Kafka, single KRaft node (broker + controller), replication factor 1,\n"
            "no topic auto-creation: kafka-init creates every topic of the catalog.",
        )
    )
    services.append(
        (
            "kafka-init",
            {
                "image": kafka.image,
                "restart": "no",
                "entrypoint": _Flow(["/bin/sh", "-c"]),
                "command": [_kafka_init_script(catalog, topics)],
                "depends_on": {"kafka": {"condition": "service_healthy"}},
            },
            "One-shot: creates the topics (idempotent), then exits 0.",
        )
    )
    for db in databases:
        services.append(
            (
                _db_service(db),
                {
                    "image": infra.postgres.image,
                    "restart": "unless-stopped",
                    "environment": {
                        "POSTGRES_DB": db,
                        "POSTGRES_USER": db,
                        "POSTGRES_PASSWORD": db,
                    },
                    "volumes": [f"{_db_service(db)}-data:/var/lib/postgresql/data"],
                    # Over TCP: the entrypoint's temporary init server listens on the socket only.
                    "healthcheck": _healthcheck(
                        ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", db, "-d", db]
                    ),
                },
                f"PostgreSQL of the {db} database (database per service).",
            )
        )
    services.append(
        (
            "redis",
            {
                "image": infra.redis.image,
                "restart": "unless-stopped",
                "volumes": ["redis-data:/data"],
                "healthcheck": _healthcheck(["CMD", "redis-cli", "ping"]),
            },
            "Redis: caches, idempotency keys, and Kong's rate-limiting counters.",
        )
    )
    services.append(
        (
            "clickhouse",
            {
                "image": infra.clickhouse.image,
                "restart": "unless-stopped",
                "environment": {"CLICKHOUSE_SKIP_USER_SETUP": "1"},
                "ulimits": {"nofile": {"soft": 262144, "hard": 262144}},
                "volumes": ["clickhouse-data:/var/lib/clickhouse"],
                "healthcheck": _healthcheck(
                    [
                        "CMD",
                        "wget",
                        "--spider",
                        "-q",
                        f"http://127.0.0.1:{infra.clickhouse.http_port}/ping",
                    ]
                ),
            },
            "ClickHouse server: the analytics read side (CQRS).",
        )
    )
    services.append(
        (
            "otel-collector",
            {
                "image": infra.otel_collector.image,
                "restart": "unless-stopped",
                "command": _Flow(["--config=/etc/otelcol-contrib/config.yaml"]),
                "volumes": [f"./{OTEL_COLLECTOR_CONFIG}:/etc/otelcol-contrib/config.yaml:ro"],
                "depends_on": {"jaeger": {"condition": "service_healthy"}},
            },
            "OpenTelemetry Collector: OTLP from every service, traces to Jaeger. Its image is\n"
            "distroless (no shell, no HTTP client), so it has no healthcheck; the config\n"
            "enables the health_check extension on :13133 for external probes.",
        )
    )
    services.append(
        (
            "jaeger",
            {
                "image": infra.jaeger.image,
                "restart": "unless-stopped",
                "environment": {"COLLECTOR_OTLP_ENABLED": "true"},
                "ports": [_Quoted(f"{infra.jaeger.ui_port}:{JAEGER_UI_PORT}")],
                "healthcheck": _healthcheck(
                    ["CMD", "wget", "--spider", "-q", f"http://127.0.0.1:{JAEGER_ADMIN_PORT}/"]
                ),
            },
            f"Jaeger (all-in-one): receives OTLP on :{JAEGER_OTLP_GRPC_PORT}, UI on"
            f" :{JAEGER_UI_PORT}.",
        )
    )
    services.append(
        (
            "prometheus",
            {
                "image": infra.prometheus.image,
                "restart": "unless-stopped",
                "volumes": [
                    f"./{PROMETHEUS_YML}:/etc/prometheus/prometheus.yml:ro",
                    "prometheus-data:/prometheus",
                ],
                "ports": [_Quoted(f"{infra.prometheus.port}:{PROMETHEUS_PORT}")],
                "healthcheck": _healthcheck(
                    [
                        "CMD",
                        "wget",
                        "--spider",
                        "-q",
                        f"http://127.0.0.1:{PROMETHEUS_PORT}/-/healthy",
                    ]
                ),
            },
            "Prometheus: scrapes every service, Kong and the collector.",
        )
    )
    services.append(
        (
            "grafana",
            {
                "image": infra.grafana.image,
                "restart": "unless-stopped",
                "environment": {
                    "GF_SECURITY_ADMIN_USER": "admin",
                    "GF_SECURITY_ADMIN_PASSWORD": "admin",
                    "GF_USERS_ALLOW_SIGN_UP": "false",
                },
                "volumes": ["grafana-data:/var/lib/grafana"],
                "ports": [_Quoted(f"{infra.grafana.port}:{GRAFANA_PORT}")],
                "depends_on": {"prometheus": {"condition": "service_healthy"}},
                "healthcheck": _healthcheck(
                    [
                        "CMD",
                        "wget",
                        "--spider",
                        "-q",
                        f"http://127.0.0.1:{GRAFANA_PORT}/api/health",
                    ]
                ),
            },
            "Grafana (admin/admin, development only).",
        )
    )
    return services


def _compose_services(
    catalog: Catalog, topics: Sequence[_Topic]
) -> list[tuple[str, dict[str, Any], str | None]]:
    databases = sorted({s.database for s in catalog.services.values() if s.database})
    infra = _infra_services(catalog, topics, databases)
    apps: list[tuple[str, dict[str, Any], str | None]] = [
        (service.name, _app_service(catalog, service), _first_line(service.description))
        for service in catalog.services.values()
    ]
    # Gateway first, then the services, then what they run on.
    return [infra[0], *apps, *infra[1:]]


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _volumes(services: Iterable[dict[str, Any]]) -> list[str]:
    named = set()
    for service in services:
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if not source.startswith((".", "/")):
                named.add(source)
    return sorted(named)


def _compose_yml(catalog: Catalog, topics: Sequence[_Topic], banner: str) -> str:
    services = _compose_services(catalog, topics)
    parts = [
        banner,
        _comment(
            "The full MicroCommerce stack: `docker compose up --build --wait`.\n"
            f"Published ports: gateway :{catalog.platform.gateway.port},"
            f" Grafana :{catalog.infrastructure.grafana.port},"
            f" Jaeger UI :{catalog.infrastructure.jaeger.ui_port},"
            f" Prometheus :{catalog.infrastructure.prometheus.port}."
        ),
        _yaml({"name": catalog.platform.name}),
        "\n",
        "services:\n",
    ]
    for position, (name, service, note) in enumerate(services):
        if position:
            parts.append("\n")
        if note:
            parts.append(_comment(note, "  "))
        parts.append(_indent(_yaml({name: service}), "  "))
    parts.append("\n")
    parts.append(_yaml({"volumes": {name: {} for name in _volumes(s for _, s, _ in services)}}))
    return "".join(parts)


# --------------------------------------------------------------------------- prometheus.yml


def _prometheus_yml(catalog: Catalog, banner: str) -> str:
    def job(name: str, target: str) -> dict[str, Any]:
        return {
            "job_name": name,
            "metrics_path": "/metrics",
            "static_configs": [{"targets": _Flow([target])}],
        }

    jobs = [job(s.name, f"{s.name}:{s.http_port}") for s in catalog.services.values()]
    jobs.append(job("kong", f"kong:{KONG_STATUS_PORT}"))
    jobs.append(job("otel-collector", f"otel-collector:{OTEL_COLLECTOR_METRICS_PORT}"))
    jobs.append(job("prometheus", f"localhost:{PROMETHEUS_PORT}"))
    config = {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": jobs,
    }
    note = _comment(
        "Prometheus (docker compose): one job per service (its HTTP port's /metrics),\n"
        "Kong's status API and the collector's own telemetry."
    )
    return banner + note + _yaml(config)


# --------------------------------------------------------------------------- catalog.py


def _py(value: str | int | None) -> str:
    """A Python literal (double-quoted strings, as ruff format writes them)."""
    return "None" if value is None else json.dumps(value) if isinstance(value, str) else str(value)


_LINE_LENGTH = 100


def _py_call(prefix: str, items: Sequence[str], indent: str, suffix: str = ",") -> list[str]:
    """``prefix(item, ...)suffix`` in ruff format's layout.

    On one line when it fits (and, for a one-item tuple, keeps its required comma);
    otherwise one item per line with a magic trailing comma, which ruff keeps exploded.
    """
    tuple_of_one = prefix.endswith("=") or not prefix
    inline = ", ".join(items) + ("," if tuple_of_one and len(items) == 1 else "")
    line = f"{indent}{prefix}({inline}){suffix}"
    if len(line) <= _LINE_LENGTH or not items:
        return [line]
    return [f"{indent}{prefix}(", *(f"{indent}    {item}," for item in items), f"{indent}){suffix}"]


def _catalog_py(catalog: Catalog, topics: Sequence[_Topic], banner: str) -> str:
    lines = [
        banner.rstrip("\n"),
        '"""The services catalog as typed constants (for the local runner and tests)."""',
        "",
        # No `from __future__ import annotations`: evaluated annotations keep the
        # dataclass independent of sys.modules, so the source also runs under exec().
        "from collections.abc import Mapping",
        "from dataclasses import dataclass",
        "from types import MappingProxyType",
        "from typing import Final, NamedTuple",
        "",
        "",
        "class EnvVar(NamedTuple):",
        "    name: str",
        "    default: str",
        "    description: str",
        "",
        "",
        "class Topic(NamedTuple):",
        "    name: str",
        "    partitions: int",
        "",
        "",
        "@dataclass(frozen=True)",
        "class Service:",
        "    name: str",
        "    http_port: int",
        "    grpc_port: int | None",
        "    database: str | None",
        "    consumer_group: str | None",
        "    uses: tuple[str, ...]",
        "    produces: tuple[str, ...]",
        "    consumes: tuple[str, ...]",
        "    calls: tuple[str, ...]",
        "    env: tuple[EnvVar, ...]",
        "",
        "",
        f"PLATFORM_NAME: Final = {_py(catalog.platform.name)}",
        f"GATEWAY_PORT: Final = {catalog.platform.gateway.port}",
        f"JWT_ISSUER: Final = {_py(catalog.platform.jwt.issuer)}",
        f"JWT_AUDIENCE: Final = {_py(catalog.platform.jwt.audience)}",
        f"RATE_LIMIT_PER_MINUTE: Final = {catalog.platform.rate_limit.per_minute}",
        "",
        "TOPICS: Final[tuple[Topic, ...]] = (",
        *(f"    Topic({_py(t.name)}, {t.partitions})," for t in topics),
        ")",
        "",
        "SERVICES: Final[Mapping[str, Service]] = MappingProxyType(",
        "    {",
    ]
    field = " " * 12
    for service in catalog.services.values():
        lines.append(f"        {_py(service.name)}: Service(")
        lines.extend(
            f"{field}{name}={_py(value)},"
            for name, value in (
                ("name", service.name),
                ("http_port", service.http_port),
                ("grpc_port", service.grpc_port),
                ("database", service.database),
                ("consumer_group", service.consumer_group),
            )
        )
        for name, values in (
            ("uses", service.uses),
            ("produces", service.produces),
            ("consumes", service.consumes),
            ("calls", service.calls),
        ):
            lines.extend(_py_call(f"{name}=", [_py(v) for v in values], field))
        entries = [[_py(v.name), _py(v.default), _py(v.description)] for v in service.env]
        flat = [_py_call("EnvVar", arguments, "", "")[0] for arguments in entries]
        one_line = f"{field}env=({flat[0]},)," if len(flat) == 1 else ""
        if not entries:
            lines.append(f"{field}env=(),")
        elif one_line and len(one_line) <= _LINE_LENGTH:
            # A one-item tuple's comma is not "magic": ruff joins it when it fits.
            lines.append(one_line)
        else:
            lines.append(f"{field}env=(")
            for arguments in entries:
                lines.extend(_py_call("EnvVar", arguments, field + "    "))
            lines.append(f"{field}),")
        lines.append("        ),")
    lines.extend(["    }", ")", ""])
    return "\n".join(lines)


# --------------------------------------------------------------------------- entry point


def emit_infrastructure(specset: SpecSet, out: Output) -> None:
    """Add the deployment files and ``generated/catalog.py`` to ``out``."""
    catalog = specset.catalog
    if catalog is None:
        raise ValueError("emit_infrastructure needs the validated catalog (specset.catalog)")
    topics = _topics(specset, catalog)
    with_topics = header(_sources(specset, topics))
    catalog_only = header(_sources(specset))
    out.add(STACK_JSON, _stack_json(catalog, topics, with_topics))
    out.add(KONG_YML, _kong_yml(catalog, catalog_only))
    out.add(COMPOSE_YML, _compose_yml(catalog, topics, with_topics))
    out.add(PROMETHEUS_YML, _prometheus_yml(catalog, catalog_only))
    out.add(CATALOG_PY, _catalog_py(catalog, topics, with_topics))
