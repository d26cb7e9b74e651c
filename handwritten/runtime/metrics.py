"""Prometheus metrics: the one registry every process serves on ``/metrics``.

HTTP RED by route template and status lives here; the other shared families are
registered, once, by the runtime module that updates them:

- ``grpc_server``: ``grpc_server_handled_total``, ``grpc_server_handling_seconds``;
- ``grpc_client``: ``grpc_client_handled_total``, ``grpc_client_handling_seconds``;
- ``consumer`` and ``consumer_metrics``: ``consumer_events_total``,
  ``consumer_dead_letters_total``, ``consumer_lag_records``,
  ``consumer_handler_duration_seconds``;
- ``outbox.relay``: ``outbox_backlog_events``, ``outbox_oldest_unpublished_age_seconds``,
  ``outbox_published_events_total``, ``outbox_relay_active``;
- ``saga.metrics``: ``saga_started_total``, ``saga_completed_total``,
  ``saga_compensated_total``, ``saga_failed_total`` (by ``reason``),
  ``saga_step_duration_seconds`` and friends;
- ``breaker_metrics``: ``circuit_breaker_state``, ``circuit_breaker_transitions_total``,
  ``circuit_breaker_rejections_total``;
- ``db_metrics``: ``db_pool_connections``, ``db_pool_max_connections``;
- the process collector below: ``process_cpu_seconds_total``,
  ``process_resident_memory_bytes``, ``process_start_time_seconds``…

Names follow Prometheus conventions: base units in the name (``_seconds``,
``_bytes``), counters end in ``_total`` (prometheus_client adds it).
"""

from __future__ import annotations

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REGISTRY = CollectorRegistry(auto_describe=True)
# CPU, memory, open files and start time of this process (read from /proc).
ProcessCollector(registry=REGISTRY)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests handled, by route template, method and status code.",
    ["service", "method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["service", "method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def route_label(scope: Scope) -> str:
    """The matched route template (bounded cardinality), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: streaming bodies stay streamed)."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = route_label(scope)
            method = str(scope["method"])
            HTTP_REQUESTS.labels(self.service, method, route, str(status)).inc()
            HTTP_DURATION.labels(self.service, method, route).observe(time.perf_counter() - started)


async def metrics_endpoint(_: Request) -> Response:
    """``GET /metrics`` in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
