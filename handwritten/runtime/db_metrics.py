"""Connection pool usage of every asyncpg pool a service opened, read at scrape time.

``lifecycle.open_pool`` registers each pool it opens; a closed pool drops out. The
gauges are computed when Prometheus scrapes (a collector, not values kept up to
date on every acquire), so they cost nothing between scrapes:

- ``db_pool_connections{service, state}``: open connections, ``idle`` or ``in_use``
  (their sum is the pool's current size);
- ``db_pool_max_connections{service}``: the most the pool may open (``in_use``
  reaching it means callers queue for a connection).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import asyncpg
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from handwritten.runtime.metrics import REGISTRY

POOL_CONNECTIONS = "db_pool_connections"
POOL_MAX_CONNECTIONS = "db_pool_max_connections"


class PoolCollector(Collector):
    """Exports the usage of the registered pools, summed per service."""

    def __init__(self) -> None:
        # asyncpg pools cannot be weakly referenced (``__slots__``): closed ones are
        # pruned at each scrape instead.
        self._pools: list[tuple[str, asyncpg.Pool]] = []
        self._lock = threading.Lock()

    def register(self, pool: asyncpg.Pool, *, service: str) -> None:
        """Report ``pool``'s usage as ``service``'s until it is closed."""
        with self._lock:
            self._pools.append((service, pool))

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._pools = [(s, pool) for s, pool in self._pools if not pool.is_closing()]
            pools = list(self._pools)
        return self._families(pools)

    @staticmethod
    def _families(pools: list[tuple[str, asyncpg.Pool]] | None = None) -> Iterator[Metric]:
        usage: dict[str, list[int]] = {}
        for service, pool in pools or []:
            size, idle = pool.get_size(), pool.get_idle_size()
            idle_in_use_max = usage.setdefault(service, [0, 0, 0])
            idle_in_use_max[0] += idle
            idle_in_use_max[1] += size - idle
            idle_in_use_max[2] += pool.get_max_size()
        connections = GaugeMetricFamily(
            POOL_CONNECTIONS,
            "Open connections of the service's database pool, idle or in use.",
            labels=["service", "state"],
        )
        maximum = GaugeMetricFamily(
            POOL_MAX_CONNECTIONS,
            "The most connections the service's database pool may open.",
            labels=["service"],
        )
        for service, (idle, in_use, most) in sorted(usage.items()):
            connections.add_metric([service, "idle"], idle)
            connections.add_metric([service, "in_use"], in_use)
            maximum.add_metric([service], most)
        yield connections
        yield maximum


POOLS = PoolCollector()
REGISTRY.register(POOLS)


def register_pool(pool: asyncpg.Pool, *, service: str) -> None:
    """Export ``pool``'s usage (``db_pool_*``) labelled ``service`` until it closes."""
    POOLS.register(pool, service=service)
