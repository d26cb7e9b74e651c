"""The Grafana dashboards, generated from the catalog, the AsyncAPI topics and the sagas.

- platform overview: gateway, services, orders flow (sagas, payments, lag, outboxes,
  breakers, pools) at a glance;
- saga health: a row per saga of ``specs/sagas``, a panel per step;
- Kafka and outbox: the topics, a row per consumer group and per outbox;
- services (RED): a row per catalog service — HTTP, gRPC served and called, pool.

A service, topic or saga step added to the specs gets its panels on the next
``make generate``. Every query uses metric names the runtime registers (see
``handwritten/runtime/metrics.py``); ``tests/generator/test_dashboards.py`` checks
each one against the live registry.
"""

from __future__ import annotations

from collections.abc import Sequence

from generator.catalog import Catalog, Service
from generator.emit.grafana import (
    GRID_WIDTH,
    Dashboard,
    Query,
    latencies,
    matchers,
    quantile,
    rate,
    ratio,
)
from generator.emit.infra import _Topic
from generator.saga import SagaSpec

#: Probes and scrapes are not traffic: kept out of the RED panels.
NOT_TRAFFIC = 'route!~"/health/.*|/metrics"'


def platform_overview(catalog: Catalog) -> Dashboard:
    """Gateway, services and the orders flow on one page."""
    board = Dashboard(
        uid="mc-platform-overview",
        title=f"{catalog.platform.name} / Platform overview",
        description="Gateway, services, sagas, Kafka, outboxes, breakers and pools at a glance.",
    )
    board.row("Gateway")
    board.graph(
        "Requests by service",
        [Query(rate("kong_http_requests_total", by="service"), "{{service}}")],
        unit="reqps",
        description="Requests the gateway proxied, by Kong service.",
    )
    board.graph(
        "5xx ratio by service",
        [Query(ratio("kong_http_requests_total", 'code=~"5.."', by="service"), "{{service}}")],
        unit="percentunit",
    )
    board.graph(
        "Latency p95 by service",
        [
            Query(
                quantile(0.95, "kong_request_latency_ms", by="service"),
                "{{service}}",
            )
        ],
        unit="ms",
        description="Total latency the gateway saw (its own time and the upstream's).",
    )
    board.graph(
        "Rate-limited requests (429)",
        [Query(rate("kong_http_requests_total", 'code="429"', by="service"), "{{service}}")],
        unit="reqps",
    )
    board.graph(
        "Requests by status",
        [Query(rate("kong_http_requests_total", by="code"), "{{code}}")],
        unit="reqps",
        stack=True,
    )
    board.row("Services")
    board.graph(
        "HTTP requests by service",
        [Query(rate("http_requests_total", NOT_TRAFFIC, by="service"), "{{service}}")],
        unit="reqps",
    )
    board.graph(
        "HTTP 5xx ratio by service",
        [
            Query(
                ratio("http_requests_total", 'status=~"5.."', NOT_TRAFFIC, by="service"),
                "{{service}}",
            )
        ],
        unit="percentunit",
    )
    board.graph(
        "HTTP latency p95 by service",
        [
            Query(
                quantile(0.95, "http_request_duration_seconds", NOT_TRAFFIC, by="service"),
                "{{service}}",
            )
        ],
        unit="s",
    )
    board.graph(
        "gRPC calls served by service",
        [Query(rate("grpc_server_handled_total", by="service"), "{{service}}")],
        unit="reqps",
    )
    board.graph(
        "gRPC errors served by service and code",
        [Query(rate("grpc_server_handled_total", 'code!="OK"', by="service, code"), "")],
        unit="reqps",
        description="Every status but OK, as the serving side reports it.",
    )
    board.graph(
        "CPU by process",
        [Query(rate("process_cpu_seconds_total", by="job"), "{{job}}")],
        unit="percentunit",
        description="CPU seconds per second (1 = one core busy).",
    )
    board.graph(
        "Resident memory by process",
        [Query("sum by (job) (process_resident_memory_bytes)", "{{job}}")],
        unit="bytes",
    )
    board.graph(
        "Database pool in use",
        [
            Query(
                'sum by (service) (db_pool_connections{state="in_use"})'
                " / sum by (service) (db_pool_max_connections)",
                "{{service}}",
            )
        ],
        unit="percentunit",
        description="Connections in use over the pool's maximum; at 100% callers queue.",
    )
    board.graph(
        "Uptime",
        [Query("time() - max by (job) (process_start_time_seconds)", "{{job}}")],
        unit="s",
        description="A drop to zero is a restart.",
    )
    board.row("Orders flow")
    board.graph(
        "Sagas",
        [
            Query(rate("saga_started_total", by="saga"), "{{saga}} started"),
            Query(rate("saga_completed_total", by="saga"), "{{saga}} completed"),
            Query(rate("saga_compensated_total", by="saga"), "{{saga}} compensated"),
            Query(rate("saga_failed_total", by="saga"), "{{saga}} failed"),
        ],
        unit="ops",
    )
    board.graph(
        "Compensations by reason",
        [Query(rate("saga_compensated_total", by="saga, reason"), "{{saga}} {{reason}}")],
        unit="ops",
    )
    board.graph(
        "Payments by outcome",
        [Query(rate("payments_total", by="outcome"), "{{outcome}}")],
        unit="ops",
        stack=True,
    )
    board.graph(
        "Consumer lag by group",
        [Query("sum by (group) (consumer_lag_records)", "{{group}}")],
        description="Records the group has not committed yet, all partitions.",
    )
    board.graph(
        "Outbox backlog by service",
        [Query("max by (service) (outbox_backlog_events)", "{{service}}")],
        description="Committed events not yet acked by Kafka.",
    )
    board.graph(
        "Dead letters",
        [Query(rate("consumer_dead_letters_total", by="group, topic"), "{{group}} {{topic}}")],
        unit="ops",
    )
    board.states(
        "Circuit breakers",
        [Query("max by (service, breaker) (circuit_breaker_state)", "{{service}} → {{breaker}}")],
        description="0 closed, 1 open (calls fail fast), 2 half-open (one trial call).",
    )
    board.graph(
        "Circuit breaker rejections",
        [
            Query(
                rate("circuit_breaker_rejections_total", by="service, breaker"),
                "{{service}} → {{breaker}}",
            )
        ],
        unit="ops",
        width=GRID_WIDTH // 2,
    )
    return board


def saga_health(catalog: Catalog, sagas: Sequence[SagaSpec]) -> Dashboard:
    """A row per saga (outcomes, reasons, retries), a panel per step (durations)."""
    board = Dashboard(
        uid="mc-saga-health",
        title=f"{catalog.platform.name} / Saga health",
        description="Every saga of specs/sagas: outcomes, reasons, retries and step durations.",
    )
    if not sagas:
        board.text("No sagas", "The spec set declares no saga (`specs/sagas/*.saga.yaml`).")
    for saga in sagas:
        this = matchers(saga=saga.saga)
        board.row(f"{saga.saga} (orchestrated by {saga.orchestrator})")
        board.graph(
            "Outcomes",
            [
                Query(rate("saga_started_total", this), "started"),
                Query(rate("saga_completed_total", this), "completed"),
                Query(rate("saga_compensated_total", this), "compensated"),
                Query(rate("saga_failed_total", this), "failed"),
            ],
            unit="ops",
            description=saga.description,
        )
        board.graph(
            "Compensated by reason",
            [Query(rate("saga_compensated_total", this, by="reason"), "{{reason}}")],
            unit="ops",
            stack=True,
            description="Sagas that turned back and finished every compensation.",
        )
        board.graph(
            "Failed by reason",
            [Query(rate("saga_failed_total", this, by="reason"), "{{reason}}")],
            unit="ops",
            description="A compensation is stuck (still retried): needs attention.",
        )
        board.graph(
            "Step retries by step and code",
            [
                Query(
                    rate("saga_step_retries_total", this, by="step, phase, code"),
                    "{{step}} {{phase}} {{code}}",
                )
            ],
            unit="ops",
        )
        board.graph(
            "Stuck steps",
            [Query(rate("saga_steps_stuck_total", this, by="step, phase"), "{{step}} {{phase}}")],
            unit="ops",
        )
        board.graph(
            "Ignored replies and failed transitions",
            [
                Query(rate("saga_replies_ignored_total", this, by="topic"), "ignored {{topic}}"),
                Query(rate("saga_transition_failures_total", this), "transition failures"),
            ],
            unit="ops",
        )
        for step in saga.steps:
            selector = matchers(saga=saga.saga, step=step.name)
            queries = latencies(
                "saga_step_duration_seconds", f'{selector}, phase="action"', suffix=" action"
            )
            if step.compensation is not None:
                queries.append(
                    Query(
                        quantile(
                            0.95, "saga_step_duration_seconds", f'{selector}, phase="compensation"'
                        ),
                        "p95 compensation",
                    )
                )
            board.graph(
                f"Step {step.name} ({step.kind})",
                queries,
                unit="s",
                description=step.description or f"Step {step.name} of {saga.saga}.",
            )
    return board


def _has_outbox(service: Service) -> bool:
    # Services with a database publish through its transactional outbox.
    return bool(service.database and service.produces)


def _topics_table(catalog: Catalog, topics: Sequence[_Topic]) -> str:
    lines = [
        "| topic | partitions | produced by | consumed by |",
        "| --- | --- | --- | --- |",
    ]
    for topic in topics:
        services = catalog.services.values()
        producers = ", ".join(sorted(s.name for s in services if topic.name in s.produces))
        consumers = ", ".join(sorted(s.name for s in services if topic.name in s.consumes))
        lines.append(
            f"| `{topic.name}` | {topic.partitions} | {producers or '—'} | {consumers or '—'} |"
        )
    return "\n".join(lines)


def kafka_outbox(catalog: Catalog, topics: Sequence[_Topic]) -> Dashboard:
    """The topics, then a row per consumer group and a row per transactional outbox."""
    board = Dashboard(
        uid="mc-kafka-outbox",
        title=f"{catalog.platform.name} / Kafka and outbox",
        description="Consumer groups (lag, outcomes, handler latency) and transactional outboxes.",
    )
    board.row("Topics")
    board.text("Topics", _topics_table(catalog, topics))
    board.graph(
        "Consumed records by topic",
        [Query(rate("consumer_events_total", by="topic"), "{{topic}}")],
        unit="ops",
        width=GRID_WIDTH // 2,
    )
    board.graph(
        "Lag by topic",
        [Query("sum by (topic) (consumer_lag_records)", "{{topic}}")],
        width=GRID_WIDTH // 2,
    )
    for service in catalog.services.values():
        if service.consumer_group is None:
            continue
        group = matchers(group=service.consumer_group)
        board.row(f"Consumer group {service.consumer_group} ({service.name})")
        board.graph(
            "Lag by topic",
            [Query(f"sum by (topic) (consumer_lag_records{{{group}}})", "{{topic}}")],
            width=6,
            description=f"Consumes: {', '.join(service.consumes) or 'nothing'}.",
        )
        board.graph(
            "Records by outcome",
            [Query(rate("consumer_events_total", group, by="outcome"), "{{outcome}}")],
            unit="ops",
            width=6,
            stack=True,
        )
        board.graph(
            "Handler latency p95 by topic",
            [
                Query(
                    quantile(0.95, "consumer_handler_duration_seconds", group, by="topic"),
                    "{{topic}}",
                )
            ],
            unit="s",
            width=6,
        )
        board.graph(
            "Dead letters by topic",
            [Query(rate("consumer_dead_letters_total", group, by="topic"), "{{topic}}")],
            unit="ops",
            width=6,
        )
    for service in catalog.services.values():
        if not _has_outbox(service):
            continue
        this = matchers(service=service.name)
        board.row(f"Outbox of {service.name}")
        board.graph(
            "Backlog",
            [Query(f"max(outbox_backlog_events{{{this}}})", "unpublished")],
            width=6,
            description=f"Produces: {', '.join(service.produces)}.",
        )
        board.graph(
            "Oldest unpublished",
            [Query(f"max(outbox_oldest_unpublished_age_seconds{{{this}}})", "age")],
            unit="s",
            width=6,
        )
        board.graph(
            "Published",
            [Query(rate("outbox_published_events_total", this), "published")],
            unit="ops",
            width=6,
        )
        board.graph(
            "Active relays",
            [Query(f"sum(outbox_relay_active{{{this}}})", "active")],
            width=6,
            description="Exactly one replica should hold the relay lock.",
        )
    return board


def _grpc_panels(board: Dashboard, this: str, side: str, calls: str, latency: str) -> None:
    """Half-width panels of calls by method and code, and their p95 latency, for one
    side (``server`` or ``client``) of the gRPC metrics."""
    board.graph(
        calls,
        [Query(rate(f"grpc_{side}_handled_total", this, by="method, code"), "{{method}} {{code}}")],
        unit="reqps",
        width=GRID_WIDTH // 2,
    )
    board.graph(
        latency,
        [Query(quantile(0.95, f"grpc_{side}_handling_seconds", this, by="method"), "{{method}}")],
        unit="s",
        width=GRID_WIDTH // 2,
    )


def services_red(catalog: Catalog) -> Dashboard:
    """A row per service: HTTP, gRPC served, gRPC called, database pool."""
    board = Dashboard(
        uid="mc-service-red",
        title=f"{catalog.platform.name} / Services (RED)",
        description="Rate, errors and duration of every service: HTTP, gRPC served and called.",
    )
    for service in catalog.services.values():
        this = matchers(service=service.name)
        traffic = f"{this}, {NOT_TRAFFIC}"
        board.row(f"{service.name} (:{service.http_port})")
        board.graph(
            "HTTP requests by route and status",
            [
                Query(
                    rate("http_requests_total", traffic, by="method, route, status"),
                    "{{method}} {{route}} {{status}}",
                )
            ],
            unit="reqps",
            description=service.description,
        )
        board.graph(
            "HTTP 5xx ratio by route",
            [
                Query(
                    ratio("http_requests_total", 'status=~"5.."', traffic, by="method, route"),
                    "{{method}} {{route}}",
                )
            ],
            unit="percentunit",
        )
        board.graph("HTTP latency", latencies("http_request_duration_seconds", traffic), unit="s")
        if service.grpc_port is not None:
            _grpc_panels(
                board,
                this,
                "server",
                "gRPC calls served by method and code",
                "gRPC latency served p95 by method",
            )
        if service.calls:
            _grpc_panels(
                board,
                this,
                "client",
                f"gRPC calls to {', '.join(service.calls)} by method and code",
                "gRPC call latency p95 by method",
            )
        if service.database:
            board.graph(
                f"Database pool ({service.database})",
                [
                    Query(f"sum by (state) (db_pool_connections{{{this}}})", "{{state}}"),
                    Query(f"sum(db_pool_max_connections{{{this}}})", "max"),
                ],
                width=GRID_WIDTH // 2,
            )
    return board
