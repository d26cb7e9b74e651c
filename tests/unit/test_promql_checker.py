"""The PromQL checker the dashboard tests rely on (tests/support/promql.py)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from tests.support.promql import (
    PromQLSyntaxError,
    Selector,
    exposed_series,
    metric_names,
    problems,
    selectors,
)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", [Selector("up")]),
        (
            'sum by (service) (rate(http_requests_total{status=~"5..", route!="/x"}[5m]))',
            [Selector("http_requests_total", frozenset({"status", "route"}))],
        ),
        (
            "histogram_quantile(0.95, sum by (le, method) "
            '(rate(grpc_server_handling_seconds_bucket{service="inventory"}[$__rate_interval])))',
            [Selector("grpc_server_handling_seconds_bucket", frozenset({"service"}))],
        ),
        (
            "sum(rate(a_total[1h:5m] offset 5m)) by (job) > bool 1e-3",
            [Selector("a_total")],
        ),
        (
            "a / on (job) group_left (instance) b unless ignoring (x) c or d and without_e",
            [Selector(m) for m in ("a", "b", "c", "d", "without_e")],
        ),
        (
            "time() - max by (job) (process_start_time_seconds)",
            [Selector("process_start_time_seconds")],
        ),
        (
            'topk(5, x{a="}{)"}) + count_values("v", y)',
            [Selector("x", frozenset({"a"})), Selector("y")],
        ),
        ("sum without (le) (z) * ${factor} + $scale - Inf + NaN", [Selector("z")]),
        ('{__name__="x"} + 0x1F + .5', []),
        ("# a comment naming no_metric\nreal_metric", [Selector("real_metric")]),
    ],
)
def test_selectors_find_metric_names_and_their_matcher_labels(
    expr: str, expected: list[Selector]
) -> None:
    assert selectors(expr) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(x[5m])",
        "x[5m",
        'x{a="b"',
        'x{a="b"}}',
        'x{a="unterminated}',
        "x{a}",
        "x * $",
    ],
)
def test_unreadable_expressions_are_refused(expr: str) -> None:
    with pytest.raises(PromQLSyntaxError):
        selectors(expr)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Counter("orders", "Orders.", ["service", "status"], registry=registry)
    Histogram("latency_seconds", "Latency.", ["route"], registry=registry)
    Gauge("backlog_events", "Backlog.", registry=registry)
    Summary("size_bytes", "Sizes.", registry=registry)

    class Pools(Collector):
        def collect(self) -> list[Metric]:
            return [GaugeMetricFamily("pool_connections", "Pool.", labels=["state"])]

    registry.register(Pools())
    return registry


def test_exposed_series_expand_counters_and_histograms() -> None:
    assert exposed_series(_registry()) == {
        "orders_total": {"service", "status"},
        "latency_seconds_bucket": {"route", "le"},
        "latency_seconds_sum": {"route"},
        "latency_seconds_count": {"route"},
        "backlog_events": frozenset(),
        "size_bytes": {"quantile"},
        "size_bytes_sum": frozenset(),
        "size_bytes_count": frozenset(),
        "pool_connections": {"state"},
    }


def test_problems_name_unknown_metrics_and_labels() -> None:
    series = exposed_series(_registry())
    assert problems('sum by (le) (rate(latency_seconds_bucket{route="/"}[5m]))', series) == []
    assert problems('orders_total{job="orders", instance="x"}', series) == []
    # The counter's base name is not a series: Prometheus only sees orders_total.
    assert problems("rate(orders[5m])", series) == ["unknown metric 'orders'"]
    assert problems("latency_seconds", series) == ["unknown metric 'latency_seconds'"]
    assert problems('orders_total{servce="x"}', series) == ["orders_total has no label servce"]
    assert problems("vector(1)", series) == ["no metric in 'vector(1)'"]
    assert problems("rate(orders_total[5m]", series)[0].startswith("unbalanced")


def test_metric_names() -> None:
    assert metric_names("a + sum(rate(b[1m])) / a") == {"a", "b"}
