"""No double charge under concurrency, on real PostgreSQL.

The consumer handles one record at a time, and commands are keyed by order id so
one order's commands share a partition; but replicas, rebalances or a producer
keying wrongly could still run two commands of one order at once. These tests run
the service's handler in transactions exactly like the consumer runner's (inbox
mark, then handler, then commit), many at once, and force the overlap: the first
charge is held at the gateway until every other transaction is seen blocked on the
order's row lock in ``pg_stat_activity``.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Coroutine
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from generated.events.registry import Event
from handwritten.payment.adapters.gateway import SimulatedGateway
from handwritten.payment.app import apply_migrations
from handwritten.payment.domain.payments import ChargeResult
from handwritten.payment.entrypoints.consumer import payment_handler
from handwritten.payment.service_layer.payments import PaymentService
from handwritten.runtime.events import EventRecord, decode
from handwritten.runtime.inbox import first_time
from tests.integration.payment.conftest import (
    charge_record,
    eventually,
    refund_record,
    throwaway_schema,
    with_new_event_id,
)

CONSUMER = "test-payment-concurrency"


class HeldGateway(SimulatedGateway):
    """The simulated gateway, whose charges wait until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__(delay_seconds=0.0, timeout_seconds=5.0, rng=random.Random(3))
        self.release = asyncio.Event()
        self.release.set()

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        await self.release.wait()
        return await super().charge(key, amount, token)


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[asyncpg.Pool]:
    async with throwaway_schema("test_payment_conc") as url:
        created = await asyncpg.create_pool(
            url, min_size=2, max_size=24, server_settings={"application_name": CONSUMER}
        )
        assert created is not None
        try:
            await apply_migrations(created)
            yield created
        finally:
            await created.close()


def events_of(*records: EventRecord) -> list[Event[Any]]:
    return [decode(r.topic, r.value, list(r.headers)) for r in records]


async def handle_like_the_runner(
    pool: asyncpg.Pool, service: PaymentService, event: Event[Any]
) -> None:
    handler = payment_handler(service)
    async with pool.acquire() as connection, connection.transaction():
        if await first_time(connection, CONSUMER, event.headers.event_id):
            await handler(connection, event)


async def lock_waiters(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = $1"
        " AND wait_event_type = 'Lock'",
        CONSUMER,
    )
    return count


async def outbox_replies(pool: asyncpg.Pool, order_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await pool.fetch(
        "SELECT topic, convert_from(value, 'UTF8') AS value FROM outbox WHERE key = $1 ORDER BY id",
        str(order_id),
    )
    return [(row["topic"], row["value"]) for row in rows]


async def test_parallel_commands_of_one_order_charge_once(pool: asyncpg.Pool) -> None:
    first = charge_record("tok_visa")
    order_id = uuid.UUID(first.key.decode())
    # Eight different event ids for one order (as if from several partitions/replicas).
    copies = [with_new_event_id(first) for _ in range(7)]
    gateway = HeldGateway()
    gateway.release.clear()
    service = PaymentService(gateway)

    tasks = [
        asyncio.create_task(handle_like_the_runner(pool, service, event))
        for event in events_of(first, *copies)
    ]

    async def all_but_one_blocked() -> bool:
        return await lock_waiters(pool) >= len(tasks) - 1

    try:
        await eventually(all_but_one_blocked, what="7 transactions waiting on the order's lock")
        assert sum(gateway.calls.values()) == 0  # the charge in hand is still held
    finally:
        gateway.release.set()
    await asyncio.gather(*tasks)

    rows = await pool.fetch("SELECT status FROM payments WHERE order_id = $1", order_id)
    assert [row["status"] for row in rows] == ["SUCCEEDED"]
    assert gateway.calls[str(order_id)] == 1
    assert gateway.captures[str(order_id)] == 1
    replies = await outbox_replies(pool, order_id)
    assert [topic for topic, _ in replies] == ["payments.processed"] * 8
    assert len({value for _, value in replies}) == 1  # the same answer eight times


async def test_a_refund_racing_the_charge_never_leaves_money_taken(pool: asyncpg.Pool) -> None:
    gateway = SimulatedGateway(delay_seconds=0.003, timeout_seconds=5.0, rng=random.Random(5))
    service = PaymentService(gateway)
    orders: list[uuid.UUID] = []
    races: list[Coroutine[Any, Any, None]] = []
    for _ in range(20):
        charge = charge_record("tok_visa")
        order_id = uuid.UUID(charge.key.decode())
        orders.append(order_id)
        refund = refund_record(order_id)
        pair = events_of(charge, refund)
        random.shuffle(pair)
        races.extend(handle_like_the_runner(pool, service, event) for event in pair)

    await asyncio.gather(*races)

    seen = set()
    for order_id in orders:
        status = await pool.fetchval("SELECT status FROM payments WHERE order_id = $1", order_id)
        seen.add(status)
        replies = [topic for topic, _ in await outbox_replies(pool, order_id)]
        key = str(order_id)
        # Whatever won the race, the money taken was given back, and the saga heard it.
        assert gateway.captures[key] == gateway.refunds[key], (order_id, status)
        if status == "REFUNDED":
            assert replies == ["payments.processed", "payments.refunded"]
        else:
            assert status == "VOIDED" and gateway.calls[key] == 0
            assert replies == ["payments.refunded"]
    assert seen <= {"REFUNDED", "VOIDED"}
