"""The query use cases over in-memory fakes: range rules, result shaping, and the
cache (hits, slots, invalidation by generation)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from handwritten.analytics.domain.orders import OrderStatus
from handwritten.analytics.domain.reports import (
    CancellationCount,
    DateRange,
    DaySales,
    DeliveryTimes,
    InvalidRangeError,
    OrderFunnel,
    ProductSales,
)
from handwritten.analytics.service_layer.queries import AnalyticsQueries, CachedReader

FIRST = dt.date(2031, 3, 1)


@dataclass
class FakeReader:
    """Answers fixed results and counts the calls."""

    calls: list[str] = field(default_factory=list)

    async def sales_by_day(self, days: DateRange) -> list[DaySales]:
        self.calls.append("sales")
        return [DaySales(days.first, 3, Decimal("10.00"))]

    async def top_products(self, days: DateRange, limit: int) -> list[ProductSales]:
        self.calls.append("top")
        return [ProductSales("p-1", "Mug", 4, 2, Decimal("41.00"))][:limit]

    async def order_funnel(self, days: DateRange) -> OrderFunnel:
        self.calls.append("funnel")
        return OrderFunnel(
            5,
            4,
            3,
            2,
            1,
            1,
            {status: 1 for status in OrderStatus},
            [CancellationCount("OUT_OF_STOCK", 1)],
        )

    async def delivery_times(self, days: DateRange) -> DeliveryTimes:
        self.calls.append("delivery")
        return DeliveryTimes(2, dt.timedelta(hours=36))


@dataclass
class FakeCache:
    """A generation-keyed dict, like the Redis adapter."""

    generation: int = 0
    entries: dict[str, str] = field(default_factory=dict)

    async def fetch(self, key: str) -> tuple[str | None, str | None]:
        slot = f"{self.generation}:{key}"
        return self.entries.get(slot), slot

    async def put(self, slot: str, value: str) -> None:
        self.entries[slot] = value

    async def invalidate(self) -> None:
        self.generation += 1


async def test_empty_days_are_added_for_rest_only() -> None:
    queries = AnalyticsQueries(FakeReader())
    rest = await queries.sales_by_day(FIRST, FIRST + dt.timedelta(days=2), include_empty_days=True)
    grpc = await queries.sales_by_day(FIRST, FIRST + dt.timedelta(days=2), include_empty_days=False)
    assert [day.orders for day in rest] == [3, 0, 0]
    assert [day.orders for day in grpc] == [3]
    assert rest[0].average == Decimal("3.33")


async def test_ranges_and_limits_are_checked_before_the_store() -> None:
    reader = FakeReader()
    queries = AnalyticsQueries(reader)
    with pytest.raises(InvalidRangeError):
        await queries.sales_by_day(FIRST, FIRST - dt.timedelta(days=1), include_empty_days=True)
    with pytest.raises(InvalidRangeError):
        await queries.order_funnel(FIRST, FIRST + dt.timedelta(days=400))
    for limit in (0, 101):
        with pytest.raises(InvalidRangeError, match="limit"):
            await queries.top_products(FIRST, FIRST, limit)
    assert reader.calls == []


async def test_the_second_lookup_is_answered_by_the_cache() -> None:
    reader, cache = FakeReader(), FakeCache()
    cached = CachedReader(reader, cache)
    days = DateRange(FIRST, FIRST)
    first = await cached.sales_by_day(days)
    second = await cached.sales_by_day(days)
    assert first == second
    assert reader.calls == ["sales"]
    assert (cached.hits, cached.misses) == (1, 1)


async def test_every_report_survives_the_cache_round_trip() -> None:
    reader = FakeReader()
    cached = CachedReader(reader, FakeCache())
    days = DateRange(FIRST, FIRST)
    for _ in range(2):
        assert await cached.top_products(days, 10) == await reader.top_products(days, 10)
        assert await cached.order_funnel(days) == await reader.order_funnel(days)
        assert await cached.delivery_times(days) == await reader.delivery_times(days)
    assert cached.hits == 3


async def test_invalidation_makes_the_next_lookup_miss() -> None:
    reader, cache = FakeReader(), FakeCache()
    cached = CachedReader(reader, cache)
    days = DateRange(FIRST, FIRST)
    await cached.order_funnel(days)
    await cache.invalidate()
    await cached.order_funnel(days)
    assert reader.calls == ["funnel", "funnel"]


async def test_different_arguments_are_different_entries() -> None:
    reader = FakeReader()
    cached = CachedReader(reader, FakeCache())
    await cached.top_products(DateRange(FIRST, FIRST), 5)
    await cached.top_products(DateRange(FIRST, FIRST), 6)
    await cached.top_products(DateRange(FIRST, FIRST + dt.timedelta(days=1)), 5)
    assert reader.calls == ["top", "top", "top"]
