"""The Prometheus plugin's metrics, under Kong 3.x's names and labels.

Registered in the shared ``handwritten.runtime.metrics.REGISTRY`` and served on the
status listener (``/metrics``), as Kong serves them on its status API.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from handwritten.runtime.metrics import REGISTRY

_LATENCY_BUCKETS_MS = (1, 2, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200, 500, 750, 1000, 3000, 6000)

HTTP_REQUESTS = Counter(
    "kong_http_requests",
    "HTTP status codes per service/route in Kong",
    ["service", "route", "code", "source", "workspace", "consumer"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    "kong_request_latency_ms",
    "Total latency incurred during requests for each service/route in Kong",
    ["service", "route", "workspace"],
    buckets=_LATENCY_BUCKETS_MS,
    registry=REGISTRY,
)
UPSTREAM_LATENCY = Histogram(
    "kong_upstream_latency_ms",
    "Latency added by upstream response for each service/route in Kong",
    ["service", "route", "workspace"],
    buckets=_LATENCY_BUCKETS_MS,
    registry=REGISTRY,
)
BANDWIDTH = Counter(
    "kong_bandwidth_bytes",
    "Total bandwidth (ingress/egress) throughput in bytes",
    ["service", "route", "direction", "workspace", "consumer"],
    registry=REGISTRY,
)
#: Every request, routed or not (Kong's nginx-level counter).
NGINX_REQUESTS = Counter(
    "kong_nginx_requests",
    "Number of requests total",
    ["node_id", "subsystem"],
    registry=REGISTRY,
)
