"""The reports as the APIs ask for them: range rules, cache, and the shaping both share.

``CachedReader`` puts a ``ResultCache`` in front of any ``AnalyticsReader``: a
result is looked up by report and arguments, and on a miss computed by the store and
cached. Correctness comes from invalidation, not from the TTL: the consumer calls
``ResultCache.invalidate`` after every batch it applied, so a cached result never
outlives the data it was computed from by more than the time to apply a batch (the
TTL only bounds it if an invalidation is lost, e.g. Redis was down at that moment).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from handwritten.analytics.domain.orders import OrderStatus
from handwritten.analytics.domain.reports import (
    MAX_TOP_LIMIT,
    CancellationCount,
    DateRange,
    DaySales,
    DeliveryTimes,
    InvalidRangeError,
    OrderFunnel,
    ProductSales,
    with_empty_days,
)
from handwritten.analytics.service_layer.ports import AnalyticsReader, ResultCache

T = TypeVar("T")

# ------------------------------------------------------------------ cache codecs
# Results travel through the cache as JSON; money stays a decimal string.


def _encode_days(days: list[DaySales]) -> Any:
    return [[day.date.isoformat(), day.orders, str(day.revenue)] for day in days]


def _decode_days(data: Any) -> list[DaySales]:
    return [DaySales(dt.date.fromisoformat(d), int(n), Decimal(r)) for d, n, r in data]


def _encode_products(products: list[ProductSales]) -> Any:
    return [
        [p.product_id, p.product_name, p.units_sold, p.order_count, str(p.revenue)]
        for p in products
    ]


def _decode_products(data: Any) -> list[ProductSales]:
    return [ProductSales(i, name, int(u), int(o), Decimal(r)) for i, name, u, o, r in data]


def _encode_funnel(funnel: OrderFunnel) -> Any:
    return {
        "stages": [
            funnel.created,
            funnel.paid,
            funnel.confirmed,
            funnel.shipped,
            funnel.delivered,
            funnel.canceled,
        ],
        "by_status": {status.value: count for status, count in funnel.by_status.items()},
        "reasons": [[c.reason, c.count] for c in funnel.canceled_by_reason],
    }


def _decode_funnel(data: Any) -> OrderFunnel:
    created, paid, confirmed, shipped, delivered, canceled = data["stages"]
    return OrderFunnel(
        created=created,
        paid=paid,
        confirmed=confirmed,
        shipped=shipped,
        delivered=delivered,
        canceled=canceled,
        by_status={OrderStatus(s): int(n) for s, n in data["by_status"].items()},
        canceled_by_reason=[CancellationCount(r, int(n)) for r, n in data["reasons"]],
    )


def _encode_delivery(times: DeliveryTimes) -> Any:
    average = None if times.average is None else times.average.total_seconds()
    return [times.delivered, average]


def _decode_delivery(data: Any) -> DeliveryTimes:
    delivered, average = data
    return DeliveryTimes(int(delivered), None if average is None else dt.timedelta(seconds=average))


class CachedReader:
    """An ``AnalyticsReader`` that answers from ``cache`` when it can."""

    def __init__(self, reader: AnalyticsReader, cache: ResultCache) -> None:
        self._reader = reader
        self._cache = cache
        #: Lookups answered from the cache / by the store (observability and tests).
        self.hits = 0
        self.misses = 0

    async def _cached(
        self,
        key: str,
        compute: Callable[[], Awaitable[T]],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
    ) -> T:
        cached, slot = await self._cache.fetch(key)
        if cached is not None:
            self.hits += 1
            return decode(json.loads(cached))
        self.misses += 1
        result = await compute()
        if slot is not None:
            await self._cache.put(slot, json.dumps(encode(result)))
        return result

    async def sales_by_day(self, days: DateRange) -> list[DaySales]:
        return await self._cached(
            f"sales:{days.first}:{days.last}",
            lambda: self._reader.sales_by_day(days),
            _encode_days,
            _decode_days,
        )

    async def top_products(self, days: DateRange, limit: int) -> list[ProductSales]:
        return await self._cached(
            f"top:{days.first}:{days.last}:{limit}",
            lambda: self._reader.top_products(days, limit),
            _encode_products,
            _decode_products,
        )

    async def order_funnel(self, days: DateRange) -> OrderFunnel:
        return await self._cached(
            f"funnel:{days.first}:{days.last}",
            lambda: self._reader.order_funnel(days),
            _encode_funnel,
            _decode_funnel,
        )

    async def delivery_times(self, days: DateRange) -> DeliveryTimes:
        return await self._cached(
            f"delivery:{days.first}:{days.last}",
            lambda: self._reader.delivery_times(days),
            _encode_delivery,
            _decode_delivery,
        )


class AnalyticsQueries:
    """The use cases behind REST and gRPC; ranges are checked here
    (``InvalidRangeError``), so both APIs apply the same rules."""

    def __init__(self, reader: AnalyticsReader) -> None:
        self._reader = reader

    async def sales_by_day(
        self, first: dt.date, last: dt.date, *, include_empty_days: bool
    ) -> list[DaySales]:
        """Sales per day; every day of the range (REST) or only days with sales (gRPC)."""
        days = DateRange.checked(first, last)
        sales = await self._reader.sales_by_day(days)
        return with_empty_days(sales, days) if include_empty_days else sales

    async def top_products(self, first: dt.date, last: dt.date, limit: int) -> list[ProductSales]:
        if not 1 <= limit <= MAX_TOP_LIMIT:
            raise InvalidRangeError(f"`limit` must be between 1 and {MAX_TOP_LIMIT}.")
        return await self._reader.top_products(DateRange.checked(first, last), limit)

    async def order_funnel(self, first: dt.date, last: dt.date) -> OrderFunnel:
        return await self._reader.order_funnel(DateRange.checked(first, last))

    async def delivery_times(self, first: dt.date, last: dt.date) -> DeliveryTimes:
        return await self._reader.delivery_times(DateRange.checked(first, last))
