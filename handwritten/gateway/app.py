"""Wiring: the proxy ASGI app (Kong's proxy listener) and the status app (its status
listener: ``/status``, ``/status/ready``, ``/metrics``)."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import yaml
from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute
from starlette.types import Message, Receive, Scope, Send

from handwritten.gateway.adapters import metrics
from handwritten.gateway.adapters.jwt_keys import JwksKeys
from handwritten.gateway.adapters.rate_counter import RedisCounters
from handwritten.gateway.adapters.upstream import Timeouts, UpstreamError, UpstreamPool
from handwritten.gateway.domain.config import (
    ConfigError,
    CorrelationIdPlugin,
    KongConfig,
    PrometheusPlugin,
    Service,
    UserIdFromTokenPlugin,
    parse_kong_config,
)
from handwritten.gateway.domain.errors import NO_ROUTE, GatewayResponse, kong_error
from handwritten.gateway.domain.headers import (
    HeaderList,
    strip_hop_by_hop,
    upstream_request_headers,
)
from handwritten.gateway.domain.routing import Router, escape_path, normalize_path, upstream_path
from handwritten.gateway.pipeline import Pipeline, RequestContext
from handwritten.gateway.settings import GatewaySettings
from handwritten.runtime.context import correlation_id as correlation_var
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import metrics_endpoint
from handwritten.runtime.tracing import set_attributes

log = get_logger("gateway")
#: Our name where Kong writes ``kong/<version>`` (we do not claim to be Kong).
VIA = "1.1 microcommerce-gateway"
SERVER = "microcommerce-gateway"


def load_kong_config(path: Path) -> KongConfig:
    """Read and validate kong.yml (``ConfigError`` when the gateway cannot enforce it)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse_kong_config(data)


@dataclass(frozen=True)
class Upstream:
    """Where one Kong service's requests go in this stack."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def upstream_targets(settings: GatewaySettings, config: KongConfig) -> dict[str, Upstream]:
    """Each Kong service's url with the compose hostname replaced, or its override."""
    overrides = settings.upstream_overrides()
    unknown = set(overrides) - set(config.services)
    if unknown:
        raise ConfigError(f"GATEWAY_UPSTREAM_OVERRIDES names unknown services: {sorted(unknown)}")
    targets: dict[str, Upstream] = {}
    for name, service in config.services.items():
        if name in overrides:
            override = httpx.URL(overrides[name])
            default_port = 443 if override.scheme == "https" else 80
            targets[name] = Upstream(
                override.scheme,
                override.host,
                override.port or default_port,
                override.path.rstrip("/"),
            )
        else:
            targets[name] = Upstream(
                service.protocol, settings.gateway_upstream_host, service.port, service.path
            )
    return targets


def check_identity_settings(settings: GatewaySettings, config: KongConfig) -> None:
    """JWT_ISSUER/JWT_AUDIENCE must be what kong.yml's pre-function enforces: both
    gateways must accept the same tokens."""
    for route in config.routes:
        plugin = route.plugin(UserIdFromTokenPlugin)
        if plugin is None:
            continue
        if (plugin.issuer, plugin.audience) != (settings.jwt_issuer, settings.jwt_audience):
            raise ConfigError(
                f"route {route.name}: kong.yml expects iss={plugin.issuer!r}"
                f" aud={plugin.audience!r}, but JWT_ISSUER={settings.jwt_issuer!r}"
                f" JWT_AUDIENCE={settings.jwt_audience!r}"
            )


def name_server_span(method: str, route: str, service: str) -> None:
    """Name the request's server span after the Kong route it matched (no-op untraced)."""
    current = trace.get_current_span()
    if current.is_recording():
        current.update_name(f"{method} {route}")
        set_attributes({"kong.route": route, "kong.service": service})


class ClientDisconnected(Exception):  # noqa: N818 - an event, not a failure of ours
    """The client went away while we were reading its request body."""


class Gateway:
    """The proxy: route, run the plugins, stream to and from the upstream."""

    def __init__(self, settings: GatewaySettings, config: KongConfig) -> None:
        check_identity_settings(settings, config)
        self.settings = settings
        self.config = config
        self.config_hash = hashlib.md5(  # noqa: S324 - a fingerprint, as Kong's
            settings.kong_config.read_bytes() if settings.kong_config.is_file() else b""
        ).hexdigest()
        self.total_requests = 0
        self._router = Router([route.matcher for route in config.routes])
        self._routes = {route.name: route for route in config.routes}
        self._upstreams = upstream_targets(settings, config)
        self._jwks_http = httpx.AsyncClient(trust_env=False)
        self._counters = RedisCounters(settings.redis_url)
        self._pool = UpstreamPool(max_connections=settings.gateway_max_connections)
        consumer = config.consumers[0] if len(config.consumers) == 1 else None
        keys = JwksKeys(
            JwksClient(
                settings.jwks_url,
                self._jwks_http,
                ttl_seconds=settings.jwks_ttl_seconds,
                min_refetch_seconds=settings.jwks_min_refetch_seconds,
            )
        )
        self._pipeline = Pipeline(keys, self._counters, consumer)
        # The header the global correlation-id plugin uses, to tag every log line.
        correlation = next(
            (p for p in config.global_plugins if isinstance(p, CorrelationIdPlugin)), None
        )
        self._correlation_header = correlation.header_name if correlation else None

    async def aclose(self) -> None:
        """Close the upstream pool, the JWKS client and the Redis connections."""
        await self._pool.aclose()
        await self._jwks_http.aclose()
        await self._counters.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._handle_safely(scope, receive, send)
        # websockets are not routed (no route declares ws protocols)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------ request

    async def _handle_safely(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Kong's answer to a bug of ours: 500 with its message, never a stack trace."""
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send)
        except Exception:
            log.exception("gateway_error", path=scope.get("path"))
            if started:
                raise  # the head is out: only cutting the connection is left
            client = HeaderList.from_raw(scope["headers"])
            request_id = uuid.uuid4().hex
            error = kong_error(500, None, request_id=request_id, accept=client.get("accept"))
            await _send_gateway_response(send, error, [("X-Kong-Request-Id", request_id)])

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        self.total_requests += 1
        metrics.NGINX_REQUESTS.labels("", "http").inc()
        client = HeaderList.from_raw(scope["headers"])
        method = str(scope["method"])
        raw_path = (scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1")
        query_string = scope["query_string"].decode("latin-1")
        client_ip = scope["client"][0] if scope.get("client") else "0.0.0.0"  # noqa: S104
        request_id = uuid.uuid4().hex
        fresh_correlation_id = str(uuid.uuid4())
        correlation_var.set(
            (client.get(self._correlation_header) if self._correlation_header else None)
            or fresh_correlation_id
        )
        path = normalize_path(raw_path)
        match = self._router.match(method, path, client.get("host"))
        if match is None:
            response = kong_error(404, NO_ROUTE, request_id=request_id, accept=client.get("accept"))
            await _send_gateway_response(send, response, [("X-Kong-Request-Id", request_id)])
            self._log_unrouted(method, raw_path, request_id, started)
            return

        route = self._routes[match.route.name]
        upstream = self._upstreams[route.service.name]
        name_server_span(method, route.name, route.service.name)
        server_port = scope["server"][1] if scope.get("server") else self.settings.gateway_port
        ctx = RequestContext(
            route=route,
            request_id=request_id,
            method=method,
            raw_path=raw_path,
            path=path,
            query=parse_qsl(query_string, keep_blank_values=True),
            cookies=_cookies(client.get("cookie")),
            client_ip=client_ip,
            accept=client.get("accept"),
            now=int(time.time()),
            headers=upstream_request_headers(
                client,
                client_ip=client_ip,
                scheme=str(scope.get("scheme", "http")),
                server_port=int(server_port),
                original_path=raw_path,
                upstream_host=None if route.preserve_host else upstream.host_header,
            ),
            fresh_correlation_id=fresh_correlation_id,
        )
        # Kong's default headers_upstream: the upstream can log the same request id.
        ctx.headers.set("X-Kong-Request-Id", request_id)
        exit_response = await self._pipeline.access(ctx)
        if exit_response is not None:
            latency = _ms(started)
            extra = [
                *self._pipeline.response_headers(ctx),
                ("X-Kong-Response-Latency", str(latency)),
                ("X-Kong-Request-Id", request_id),
            ]
            await _send_gateway_response(send, exit_response, extra)
            self._finish(ctx, exit_response.status, "kong", started)
            return
        await self._proxy(ctx, upstream, match.path, query_string, client, receive, send, started)

    async def _proxy(
        self,
        ctx: RequestContext,
        upstream: Upstream,
        matched_path: str | None,
        query_string: str,
        client: HeaderList,
        receive: Receive,
        send: Send,
        started: float,
    ) -> None:
        route = ctx.route
        target = upstream_path(upstream.path, ctx.path, matched_path, strip=route.strip_path)
        url = f"{upstream.scheme}://{_url_host(upstream.host)}:{upstream.port}{escape_path(target)}"
        if query_string:
            url += "?" + query_string
        counter = _ByteCounter()
        body = _client_body(receive, counter) if _has_body(client) else None
        sent_at = time.perf_counter()
        try:
            response = await self._pool.open(
                ctx.method, url, ctx.headers, body, self._timeouts(route.service)
            )
        except UpstreamError as exc:
            # No query string in logs: it may carry credentials.
            target_base = f"{upstream.scheme}://{upstream.host}:{upstream.port}"
            log.warning("upstream_failed", route=route.name, upstream=target_base, error=exc.reason)
            # Kong's error pages negotiate on Accept, else on the request's Content-Type,
            # else on its error_default_type (text/plain).
            accept = client.get("accept") or client.get("content-type") or "text/plain"
            error = kong_error(exc.status, None, request_id=ctx.request_id, accept=accept)
            extra = [*self._pipeline.response_headers(ctx), ("X-Kong-Request-Id", ctx.request_id)]
            await _send_gateway_response(send, error, extra)
            self._finish(ctx, exc.status, "kong", started, ingress=counter.count)
            return
        except ClientDisconnected:
            log.info("client_disconnected", route=route.name)
            self._finish(ctx, 499, "kong", started, ingress=counter.count)
            return
        upstream_ms = _ms(sent_at)
        headers = strip_hop_by_hop(HeaderList.from_raw(response.headers.raw))
        for name, value in self._pipeline.response_headers(ctx):
            headers.set(name, value)
        headers.set("X-Kong-Upstream-Latency", str(upstream_ms))
        headers.set("X-Kong-Proxy-Latency", str(max(0, _ms(started) - upstream_ms)))
        headers.set("X-Kong-Request-Id", ctx.request_id)
        headers.add("Via", VIA)
        status, egress = response.status_code, 0
        # The request body is all sent by now: receive() only reports a disconnect.
        gone = asyncio.create_task(_client_gone(receive))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers.raw()})
            async for chunk in response.aiter_raw():
                if gone.done():  # stop reading what nobody will receive
                    log.info("client_disconnected", route=route.name, sent_bytes=egress)
                    return
                egress += len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except httpx.HTTPError as exc:
            # The head is sent: all we can do is cut the connection (a truncated body).
            log.error("upstream_stream_failed", route=route.name, error=f"{type(exc).__name__}")
        finally:
            gone.cancel()
            await response.aclose()
            self._finish(
                ctx,
                status,
                "service",
                started,
                upstream_ms=upstream_ms,
                ingress=counter.count,
                egress=egress,
            )

    def _timeouts(self, service: Service) -> Timeouts:
        settings = self.settings
        return Timeouts(
            connect=service.connect_timeout or settings.gateway_connect_timeout_seconds,
            read=service.read_timeout or settings.gateway_read_timeout_seconds,
            write=service.write_timeout or settings.gateway_write_timeout_seconds,
        )

    # ------------------------------------------------------------------ log phase

    def _log_unrouted(self, method: str, path: str, request_id: str, started: float) -> None:
        log.info(
            "request",
            method=method,
            path=path,
            route=None,
            service=None,
            status=404,
            source="kong",
            duration_ms=_ms(started),
            request_id=request_id,
        )

    def _finish(
        self,
        ctx: RequestContext,
        status: int,
        source: str,
        started: float,
        *,
        upstream_ms: int | None = None,
        ingress: int = 0,
        egress: int = 0,
    ) -> None:
        """One JSON log line per request, and the prometheus plugin's metrics."""
        duration_ms = _ms(started)
        route = ctx.route
        if ctx.correlation_id:
            correlation_var.set(ctx.correlation_id)
        log.info(
            "request",
            method=ctx.method,
            path=ctx.raw_path,
            route=route.name,
            upstream_service=route.service.name,
            status=status,
            source=source,
            duration_ms=duration_ms,
            upstream_ms=upstream_ms,
            user_id=ctx.user_id,
            request_id=ctx.request_id,
        )
        prometheus = route.plugin(PrometheusPlugin)
        if prometheus is None:
            return
        service, name = route.service.name, route.name
        if prometheus.status_code_metrics:
            metrics.HTTP_REQUESTS.labels(service, name, str(status), source, "default", "").inc()
        if prometheus.latency_metrics:
            metrics.REQUEST_LATENCY.labels(service, name, "default").observe(duration_ms)
            if upstream_ms is not None:
                metrics.UPSTREAM_LATENCY.labels(service, name, "default").observe(upstream_ms)
        if prometheus.bandwidth_metrics:
            metrics.BANDWIDTH.labels(service, name, "ingress", "default", "").inc(ingress)
            metrics.BANDWIDTH.labels(service, name, "egress", "default", "").inc(egress)


class _ByteCounter:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


async def _client_body(receive: Receive, counter: _ByteCounter) -> AsyncIterator[bytes]:
    """The request body as it arrives (never buffered whole)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        if chunk:
            counter.count += len(chunk)
            yield chunk
        if not message.get("more_body", False):
            return


async def _client_gone(receive: Receive) -> None:
    """Returns when the client disconnects (or the response is complete)."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _has_body(headers: HeaderList) -> bool:
    if headers.get("transfer-encoding"):
        return True
    length = headers.get("content-length")
    return length is not None and length.strip() not in ("", "0")


def _cookies(header: str | None) -> dict[str, str]:
    cookies: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            cookies.setdefault(name, value)
    return cookies


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _ms(since: float) -> int:
    return int((time.perf_counter() - since) * 1000)


async def _send_gateway_response(
    send: Send, response: GatewayResponse, extra: list[tuple[str, str]]
) -> None:
    headers = HeaderList(
        [
            ("Date", formatdate(usegmt=True)),
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
            ("Server", SERVER),
        ]
    )
    for name, value in extra:
        headers.set(name, value)
    start: Message = {
        "type": "http.response.start",
        "status": response.status,
        "headers": headers.raw(),
    }
    await send(start)
    await send({"type": "http.response.body", "body": response.body, "more_body": False})


def status_app(gateway: Gateway) -> Starlette:
    """Kong's status listener: health, readiness, Prometheus metrics."""

    async def status(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "database": {"reachable": True},
                "server": {"total_requests": gateway.total_requests},
                "configuration_hash": gateway.config_hash,
            }
        )

    async def ready(_: Request) -> JSONResponse:
        return JSONResponse({"message": "ready"})

    return Starlette(
        routes=[
            StarletteRoute("/status", status),
            StarletteRoute("/status/ready", ready),
            StarletteRoute("/metrics", metrics_endpoint),
        ]
    )
