"""``AnalyticsStore`` on ClickHouse (either engine of ``adapters.clickhouse``).

Writes are ``JSONEachRow`` inserts of whole batches (ClickHouse wants few, large
inserts); reads are the reports of ``adapters.schema``. ClickHouse's ``Date`` covers
1970-01-01 to 2149-06-06 and ``DateTime64`` 1900 to 2299: report ranges are clipped
to the former (no sale can fall outside it) and event times to the latter.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

from handwritten.analytics.adapters import schema
from handwritten.analytics.adapters.clickhouse import ClickHouse
from handwritten.analytics.domain.orders import OrderFacts, OrderLine, OrderStatus, UserProfile
from handwritten.analytics.domain.projection import Projection
from handwritten.analytics.domain.reports import (
    CancellationCount,
    DateRange,
    DaySales,
    DeliveryTimes,
    OrderFunnel,
    ProductSales,
    money,
)
from handwritten.analytics.service_layer.ports import AppliedEvent

#: Days a ``Date`` column can hold.
FIRST_DATE = dt.date(1970, 1, 1)
LAST_DATE = dt.date(2149, 6, 6)
_EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2299, 12, 31, 23, 59, 59, 999000, tzinfo=dt.UTC)


def _timestamp(value: dt.datetime) -> str:
    """UTC, millisecond text ClickHouse parses; clipped to ``DateTime64``'s range."""
    utc = min(max(value.astimezone(dt.UTC), _EARLIEST), _LATEST)
    return utc.strftime("%Y-%m-%d %H:%M:%S.") + f"{utc.microsecond // 1000:03d}"


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, dt.datetime):
        return _timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(money(value))  # quoted: parsed exactly, never through a float
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__}")


def json_each_row(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """``JSONEachRow`` data: one JSON object per line."""
    return b"".join(
        json.dumps({name: _json_value(value) for name, value in row.items()}).encode() + b"\n"
        for row in rows
    )


def _decimal(value: Any) -> Decimal:
    # JSON numbers arrive as Decimal (parse_float), 64-bit integers maybe as strings.
    return Decimal(str(value)) if value is not None else Decimal(0)


def _datetime(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


def _date(value: Any) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(str(value))


def _uuid(value: Any) -> UUID | None:
    return None if value is None else UUID(str(value))


class ClickHouseAnalyticsStore:
    """The analytics tables in database ``database`` of ``clickhouse``."""

    def __init__(self, clickhouse: ClickHouse, *, database: str = "analytics") -> None:
        self._ch = clickhouse
        self.database = schema.database_name(database)
        #: Report queries sent to ClickHouse (observability, and cache tests).
        self.reads = 0

    # ------------------------------------------------------------------ lifecycle

    async def migrate(self) -> None:
        """Create what is missing (idempotent)."""
        for statement in schema.tables(self.database):
            await self._ch.command(statement)

    async def reset(self) -> None:
        """Drop and recreate every table: empty, on the current schema."""
        for statement in schema.drops(self.database):
            await self._ch.command(statement)
        await self.migrate()

    async def ping(self) -> None:
        await self._ch.query("SELECT 1")

    async def close(self) -> None:
        await self._ch.close()

    # --------------------------------------------------------------------- writes

    async def seen(self, keys: Sequence[str]) -> set[str]:
        if not keys:
            return set()
        rows = await self._ch.query(schema.seen(self.database), {"keys": list(keys)})
        return {str(row[0]) for row in rows}

    async def apply(self, projection: Projection) -> None:
        db = self.database
        if projection.orders:
            await self._ch.insert(
                schema.insert(db, "orders_analytics", schema.ORDER_COLUMNS),
                json_each_row(facts.values() for facts in projection.orders.values()),
            )
        if projection.lines:
            await self._ch.insert(
                schema.insert(db, "order_items", schema.ITEM_COLUMNS),
                json_each_row(_line_row(line) for line in projection.lines.values()),
            )
        if projection.users:
            await self._ch.insert(
                schema.insert(db, "users", schema.USER_COLUMNS),
                json_each_row(_user_row(user) for user in projection.users.values()),
            )
        if projection.orders or projection.users:
            await self._ch.command(
                schema.link_emails(db),
                {
                    "orders": [str(order_id) for order_id in projection.orders],
                    "users": [str(user_id) for user_id in projection.users],
                },
            )

    async def record(self, events: Sequence[AppliedEvent]) -> None:
        if events:
            await self._ch.insert(
                schema.insert(self.database, "events_raw", schema.RAW_COLUMNS),
                json_each_row(
                    {
                        "dedupe_key": event.dedupe_key,
                        "event_id": event.event_id,
                        "event_type": event.event_type,
                        "topic": event.topic,
                        "record_key": event.record_key,
                        "occurred_at": event.occurred_at,
                        "payload": event.payload,
                    }
                    for event in events
                ),
            )

    async def orders(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderFacts]:
        """The merged facts of ``order_ids`` (those known)."""
        if not order_ids:
            return {}
        rows = await self._ch.query(
            schema.orders_state(self.database), {"orders": [str(i) for i in order_ids]}
        )
        return {facts.order_id: facts for facts in map(_facts, rows)}

    # ---------------------------------------------------------------------- reads

    async def _report(self, sql: str, params: Mapping[str, Any]) -> list[list[Any]]:
        self.reads += 1
        return await self._ch.query(sql, params)

    async def sales_by_day(self, days: DateRange) -> list[DaySales]:
        span = days.clipped(FIRST_DATE, LAST_DATE)
        if span is None:
            return []
        rows = await self._report(
            schema.sales_by_day(self.database), {"first": span.first, "last": span.last}
        )
        return [
            DaySales(dt.date.fromisoformat(day), int(orders), _decimal(revenue))
            for day, orders, revenue in rows
        ]

    async def top_products(self, days: DateRange, limit: int) -> list[ProductSales]:
        span = days.clipped(FIRST_DATE, LAST_DATE)
        if span is None:
            return []
        rows = await self._report(
            schema.top_products(self.database),
            {"first": span.first, "last": span.last, "limit": limit},
        )
        return [
            ProductSales(
                product_id=str(product),
                product_name=str(name),
                units_sold=int(units),
                order_count=int(orders),
                revenue=_decimal(revenue),
            )
            for product, name, units, orders, revenue in rows
        ]

    async def order_funnel(self, days: DateRange) -> OrderFunnel:
        span = days.clipped(FIRST_DATE, LAST_DATE)
        if span is None:
            return OrderFunnel(0, 0, 0, 0, 0, 0, {status: 0 for status in OrderStatus}, [])
        params = {"first": span.first, "last": span.last}
        [counts] = await self._report(schema.order_funnel(self.database), params)
        reasons = await self._report(schema.cancellations(self.database), params)
        created, paid, confirmed, shipped, delivered, canceled, *by_status = map(int, counts)
        return OrderFunnel(
            created=created,
            paid=paid,
            confirmed=confirmed,
            shipped=shipped,
            delivered=delivered,
            canceled=canceled,
            by_status=dict(zip(OrderStatus, by_status, strict=True)),
            canceled_by_reason=[CancellationCount(str(r), int(n)) for r, n in reasons],
        )

    async def delivery_times(self, days: DateRange) -> DeliveryTimes:
        span = days.clipped(FIRST_DATE, LAST_DATE)
        if span is None:
            return DeliveryTimes(0, None)
        [[count, average]] = await self._report(
            schema.delivery_times(self.database), {"first": span.first, "last": span.last}
        )
        delivered = int(count)
        if delivered == 0 or average is None:
            return DeliveryTimes(0, None)
        return DeliveryTimes(delivered, dt.timedelta(milliseconds=float(average)))


def _line_row(line: OrderLine) -> dict[str, Any]:
    return {
        "order_id": line.order_id,
        "product_id": line.product_id,
        "product_name": line.product_name,
        "quantity": line.quantity,
        "revenue": line.revenue,
    }


def _user_row(user: UserProfile) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "email": user.email,
        "name": user.name,
        "registered_at": user.registered_at,
    }


_DATETIME_FIELDS = {name for name, kind in schema.ORDER_FIELD_TYPES.items() if "DateTime" in kind}


def _facts(row: list[Any]) -> OrderFacts:
    values = dict(zip(schema.ORDER_COLUMNS, row, strict=True))
    converted: dict[str, Any] = {}
    for name, value in values.items():
        kind = schema.ORDER_FIELD_TYPES.get(name, "UUID")
        if name in _DATETIME_FIELDS:
            converted[name] = _datetime(value)
        elif kind == "UUID":
            converted[name] = _uuid(value)
        elif kind.startswith("Decimal"):
            converted[name] = None if value is None else _decimal(value)
        elif kind == "Date32":
            converted[name] = _date(value)
        else:
            converted[name] = value
    return OrderFacts(**converted)
