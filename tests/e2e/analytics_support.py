"""Helpers of the analytics end-to-end suite: settled readings of the sales report and
an independent model of it, computed from the Kafka topics themselves.

Other suites share the stack and place orders at any moment, so a before/after
difference of a day's sales is not only the test's orders. It is exact all the
same when both readings are *settled* and the difference is compared with what the
topics say happened in between:

- A day's sales depend only on three topics (the revenue rule in
  ``handwritten/analytics/__init__.py``): ``orders.confirmed`` (an order counts on
  the UTC day of its ``confirmedAt``, with its ``totalAmount``), ``orders.canceled``
  and ``payments.refunded`` with outcome REFUNDED (it stops counting).
- A reading is settled when the analytics consumer group has committed every record
  of those topics up to their end offsets and the end offsets did not move while the
  report was read: the report then reflects exactly the records below those offsets
  (analytics commits only after applying, and applying invalidates its Redis result
  cache first, so no cached answer older than the data can be served).
- ``SalesLog`` reads the same topics and applies the rule to the records below a
  reading's offsets (``model``): the report's change between two readings must equal
  the model's change, and the model's share of the test's own orders must equal what
  the test ordered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from generated import catalog
from generated.models.events import (
    OrderCanceledPayload,
    OrderConfirmedPayload,
    PaymentRefundedPayload,
    RefundOutcome,
)
from handwritten.runtime.events import InvalidEventError
from handwritten.runtime.kafka import decode_record
from tests.e2e.conftest import Account
from tests.e2e.saga_support import SETTLED, poll

#: The topics a day's sales depend on.
SALES_TOPICS = ("orders.confirmed", "orders.canceled", "payments.refunded")
ANALYTICS_GROUP = str(catalog.SERVICES["analytics"].consumer_group)
_PARTITIONS = {topic.name: topic.partitions for topic in catalog.TOPICS}
_MONEY = re.compile(r"^-?\d+\.\d{2}$")
CENT = Decimal("0.01")

Offsets = dict[TopicPartition, int]


@dataclass(frozen=True)
class DayTotals:
    """Orders counted on a day and their revenue."""

    orders: int = 0
    revenue: Decimal = Decimal(0)

    def __add__(self, other: DayTotals) -> DayTotals:
        return DayTotals(self.orders + other.orders, self.revenue + other.revenue)

    def __sub__(self, other: DayTotals) -> DayTotals:
        return DayTotals(self.orders - other.orders, self.revenue - other.revenue)


Sales = dict[dt.date, DayTotals]


def difference(after: Sales, before: Sales, days: Iterable[dt.date]) -> Sales:
    """``after - before`` on each of ``days``."""
    return {day: after.get(day, DayTotals()) - before.get(day, DayTotals()) for day in days}


def sum_days(sales: Sales) -> DayTotals:
    return sum(sales.values(), DayTotals())


@dataclass(frozen=True)
class Reading:
    """The sales report at a moment it reflected exactly the records below ``offsets``."""

    sales: Sales
    offsets: Offsets


@dataclass(frozen=True)
class _Fact:
    partition: TopicPartition
    offset: int
    order_id: UUID
    #: ``confirmedAt`` of an OrderConfirmed; ``None`` for what stops a sale.
    confirmed_at: dt.datetime | None
    amount: Decimal | None


def _fact(partition: TopicPartition, offset: int, payload: Any) -> _Fact | None:
    match payload:
        case OrderConfirmedPayload():
            return _Fact(
                partition,
                offset,
                payload.order_id,
                payload.confirmed_at,
                Decimal(payload.total_amount),
            )
        case OrderCanceledPayload():
            return _Fact(partition, offset, payload.order_id, None, Decimal(payload.total_amount))
        case PaymentRefundedPayload() if payload.outcome is RefundOutcome.refunded:
            return _Fact(partition, offset, payload.order_id, None, None)
    return None


@dataclass
class SalesLog:
    """The sales topics as read so far, and the analytics consumer's progress in them."""

    bootstrap: str
    partitions: list[TopicPartition] = field(
        default_factory=lambda: [
            TopicPartition(topic, n) for topic in SALES_TOPICS for n in range(_PARTITIONS[topic])
        ]
    )
    _facts: list[_Fact] = field(default_factory=list)
    _consumer: AIOKafkaConsumer | None = None
    _admin: AIOKafkaAdminClient | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        await self._consumer.start()
        self._consumer.assign(self.partitions)
        await self._consumer.seek_to_beginning(*self.partitions)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self._admin.start()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
        if self._admin is not None:
            await self._admin.close()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "SalesLog.start() first"
        return self._consumer

    async def end_offsets(self) -> Offsets:
        ends: Offsets = await self.consumer.end_offsets(self.partitions)
        return ends

    async def consumed_by_analytics(self, ends: Offsets) -> bool:
        """Has the analytics group committed everything below ``ends``?"""
        assert self._admin is not None
        committed = await self._admin.list_consumer_group_offsets(ANALYTICS_GROUP)
        for partition, end in ends.items():
            if end == 0:
                continue
            done = committed.get(partition)
            if done is None or done.offset < end:
                return False
        return True

    async def read_to(self, ends: Offsets, *, seconds: float = 60) -> None:
        """Read every record below ``ends`` (decoded as analytics decodes them)."""
        deadline = time.monotonic() + seconds
        while [p for p in self.partitions if await self.consumer.position(p) < ends[p]]:
            assert time.monotonic() < deadline, "reading the sales topics took too long"
            batches = await self.consumer.getmany(timeout_ms=500, max_records=5000)
            for partition, records in batches.items():
                for record in records:
                    try:
                        event = decode_record(record)
                    except InvalidEventError:
                        continue  # poison: analytics dead-letters it, and so skips it
                    fact = _fact(partition, record.offset, event.payload)
                    if fact is not None:
                        self._facts.append(fact)

    def confirmed(self, below: Offsets) -> set[UUID]:
        """Orders with an OrderConfirmed record below ``below``."""
        return {
            fact.order_id
            for fact in self._facts
            if fact.confirmed_at is not None and fact.offset < below.get(fact.partition, 0)
        }

    def model(self, below: Offsets, *, orders: Callable[[UUID], bool] = lambda _: True) -> Sales:
        """The revenue rule applied to the records below ``below`` (of ``orders`` only)."""
        confirmed: dict[UUID, dt.datetime] = {}
        amounts: dict[UUID, Decimal] = {}
        stopped: set[UUID] = set()
        for fact in self._facts:
            if fact.offset >= below.get(fact.partition, 0) or not orders(fact.order_id):
                continue
            if fact.amount is not None:
                amounts[fact.order_id] = max(amounts.get(fact.order_id, fact.amount), fact.amount)
            if fact.confirmed_at is None:
                stopped.add(fact.order_id)
            else:
                known = confirmed.get(fact.order_id, fact.confirmed_at)
                confirmed[fact.order_id] = min(known, fact.confirmed_at)
        sales: Sales = {}
        for order_id, confirmed_at in confirmed.items():
            if order_id in stopped:
                continue
            day = confirmed_at.astimezone(dt.UTC).date()
            sales[day] = sales.get(day, DayTotals()) + DayTotals(1, amounts[order_id])
        return sales


def parse_report(rows: Sequence[dict[str, Any]]) -> Sales:
    """The REST report as ``Sales``, checking its money fields are exact decimals."""
    sales: Sales = {}
    for row in rows:
        revenue, average = row["totalRevenue"], row["avgOrderValue"]
        assert _MONEY.match(revenue) and _MONEY.match(average), row
        orders = int(row["totalOrders"])
        expected_average = (
            (Decimal(revenue) / orders).quantize(CENT, rounding=ROUND_HALF_EVEN)
            if orders
            else Decimal("0.00")
        )
        assert Decimal(average) == expected_average, row
        sales[dt.date.fromisoformat(row["date"])] = DayTotals(orders, Decimal(revenue))
    return sales


async def sales_report(
    gateway: httpx.AsyncClient, admin: Account, days: Sequence[dt.date]
) -> Sales | None:
    """GET /api/analytics/sales-by-day over ``days`` (``None`` while analytics is away)."""
    response = await gateway.get(
        "/api/analytics/sales-by-day",
        params={"from": min(days).isoformat(), "to": max(days).isoformat()},
        headers=admin.bearer,
    )
    if response.status_code in (502, 503, 504):
        return None  # restarting (the rebuild test stops it): ask again
    assert response.status_code == 200, response.text
    sales = parse_report(response.json())
    assert sorted(sales) == sorted(days), response.text  # every day, empty ones too
    return sales


async def settled_reading(
    gateway: httpx.AsyncClient,
    admin: Account,
    log: SalesLog,
    days: Sequence[dt.date],
    *,
    seconds: float = 90,
) -> Reading:
    """The report over ``days`` at a moment analytics had applied exactly the sales
    records below the returned offsets (see the module docstring); reads them too."""
    deadline = time.monotonic() + seconds
    while True:
        ends = await log.end_offsets()
        if await log.consumed_by_analytics(ends):
            sales = await sales_report(gateway, admin, days)
            if sales is not None and await log.end_offsets() == ends:
                await log.read_to(ends)
                return Reading(sales, ends)
        assert time.monotonic() < deadline, (
            f"analytics did not settle on the sales topics within {seconds} s"
        )
        await asyncio.sleep(0.2)


async def records_of_orders(
    bootstrap: str, topics: Iterable[str], order_ids: Iterable[str]
) -> list[Any]:
    """Every record keyed by one of ``order_ids`` on ``topics``, read from the beginning
    up to the end offsets of now, in offset order per partition."""
    keys = {order_id.encode() for order_id in order_ids}
    partitions = [TopicPartition(t, n) for t in sorted(set(topics)) for n in range(_PARTITIONS[t])]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + 60
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            assert time.monotonic() < deadline, "reading the topics took too long"
            batches = await consumer.getmany(timeout_ms=500, max_records=5000)
            for partition, records in batches.items():
                found.extend(r for r in records if r.key in keys and r.offset < ends[partition])
        return found
    finally:
        await consumer.stop()


def last_offsets(records: Iterable[Any]) -> Offsets:
    """The offset of the last of ``records`` on each partition."""
    last: Offsets = {}
    for record in records:
        partition = TopicPartition(record.topic, record.partition)
        last[partition] = max(last.get(partition, -1), record.offset)
    return last


async def settled_order(
    gateway: httpx.AsyncClient, account: Account, order_id: str, *, seconds: float = 90
) -> dict[str, Any]:
    """Poll the order (once a second: rate limits) until its saga has decided it:
    confirmed or beyond, or canceled. A 502/503/504 (a service restarting) is asked again.
    """
    latest: dict[str, Any] = {}

    async def settled() -> bool:
        response = await gateway.get(f"/api/orders/{order_id}", headers=account.bearer)
        if response.status_code in (502, 503, 504):
            return False
        assert response.status_code == 200, response.text
        latest.clear()
        latest.update(response.json())
        return latest["status"] in SETTLED

    try:
        await poll(settled, seconds=seconds, what=f"order {order_id} to settle")
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen {latest}") from None
    return latest
