"""What the use cases need from the outside: the analytics store and a result cache."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from handwritten.analytics.domain.projection import Projection
from handwritten.analytics.domain.reports import (
    DateRange,
    DaySales,
    DeliveryTimes,
    OrderFunnel,
    ProductSales,
)


@dataclass(frozen=True)
class AppliedEvent:
    """The record kept of an applied event (``events_raw``)."""

    dedupe_key: str
    event_id: UUID
    event_type: str
    topic: str
    record_key: str
    occurred_at: dt.datetime
    payload: str


class AnalyticsReader(Protocol):
    """The reports, over the deduplicated order state."""

    async def sales_by_day(self, days: DateRange) -> list[DaySales]:
        """Days of ``days`` with sales, oldest first (days without sales omitted)."""
        ...

    async def top_products(self, days: DateRange, limit: int) -> list[ProductSales]:
        """Best sellers among the orders placed in ``days`` that count as sales."""
        ...

    async def order_funnel(self, days: DateRange) -> OrderFunnel:
        """The funnel of the orders placed in ``days``."""
        ...

    async def delivery_times(self, days: DateRange) -> DeliveryTimes:
        """Orders delivered in ``days`` and their mean time from placement."""
        ...


class AnalyticsStore(AnalyticsReader, Protocol):
    """The reports plus the write side the consumer uses."""

    async def migrate(self) -> None:
        """Create the tables that are missing."""
        ...

    async def reset(self) -> None:
        """Drop everything and recreate it empty."""
        ...

    async def ping(self) -> None: ...

    async def seen(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` belong to events already applied."""
        ...

    async def apply(self, projection: Projection) -> None:
        """Write the row changes (idempotent: applying them again changes nothing)."""
        ...

    async def record(self, events: Sequence[AppliedEvent]) -> None:
        """Remember ``events`` as applied (after ``apply``)."""
        ...


class ResultCache(Protocol):
    """Report results by key, invalidated as a whole by ``invalidate``."""

    async def fetch(self, key: str) -> tuple[str | None, str | None]:
        """The cached value (or ``None``) and the slot to ``put`` a fresh one in
        (``None``: do not cache). A slot belongs to the cache's state at fetch time:
        a result computed while events were being applied lands in a slot that the
        invalidation made unreachable, never in the current one."""
        ...

    async def put(self, slot: str, value: str) -> None: ...

    async def invalidate(self) -> None:
        """Every result cached so far is stale (new events were applied)."""
        ...
