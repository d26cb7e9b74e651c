"""The payment service against the real PostgreSQL and Kafka of the local infrastructure.

Isolation from anything else using the same infrastructure:

- **Database**: each app runs in a throw-away schema of the ``payment`` database
  (``DATABASE_URL`` with ``?search_path=…``), dropped afterwards; its payments,
  outbox and inbox never mix with a running payment service's.
- **Consumer group**: each app uses a unique ``PAYMENT_CONSUMER_GROUP``, committed
  at the current end of the command topics before it starts, so it neither splits
  partitions with a running service nor replays (and answers) old commands.
- **Replies**: commands go through real Kafka and replies come back through real
  Kafka, read by a partition-assigned reader positioned at the end before anything
  is sent. A running payment service would answer the same commands too, so a reply
  counts as this app's only if its ``event-id`` is in this app's outbox.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from generated import catalog
from generated.events.registry import (
    PAYMENTS_FAILED,
    PAYMENTS_PROCESSED,
    PAYMENTS_REFUND_REQUESTED,
    PAYMENTS_REFUNDED,
    PAYMENTS_REQUESTED,
    Event,
)
from generated.models.events import PaymentRefundRequestedPayload, PaymentRequestedPayload
from generated.services.payment.events import CONSUMES
from handwritten.payment.app import PaymentRuntime, build_app
from handwritten.payment.settings import PaymentSettings
from handwritten.runtime.events import EventRecord, InvalidEventError, encode, new_headers
from handwritten.runtime.kafka import KafkaEventProducer, decode_record
from tests.integration.conftest import STACK

_PAYMENT_DB = next(db for db in STACK["postgres"]["databases"] if db["name"] == "payment")
DATABASE_URL = (
    f"postgresql://{_PAYMENT_DB['user']}:{_PAYMENT_DB['password']}@{STACK['postgres']['host']}:"
    f"{STACK['postgres']['port']}/{_PAYMENT_DB['name']}"
)
PARTITIONS = {topic.name: topic.partitions for topic in catalog.TOPICS}
REPLY_TOPICS = (PAYMENTS_PROCESSED.topic, PAYMENTS_FAILED.topic, PAYMENTS_REFUNDED.topic)
COMMAND_TOPICS = tuple(spec.topic for spec in CONSUMES)
DEADLINE = 30.0


def partitions_of(topics: Iterable[str]) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for topic in topics for p in range(PARTITIONS[topic])]


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, what: str, within: float = DEADLINE
) -> None:
    """Poll ``condition`` until true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------- isolation


@asynccontextmanager
async def throwaway_schema(prefix: str) -> AsyncIterator[str]:
    """A fresh, empty schema in the payment database; its ``DATABASE_URL``."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(DATABASE_URL)
    await admin.execute(f"CREATE SCHEMA {name}")
    try:
        yield f"{DATABASE_URL}?search_path={name}"
    finally:
        await admin.execute(f"DROP SCHEMA {name} CASCADE")
        await admin.close()


async def start_group_at_end(bootstrap: str, group: str) -> None:
    """Commit ``group``'s offsets at the current end of the command topics."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = partitions_of(COMMAND_TOPICS)
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit(dict(ends))
    finally:
        await consumer.stop()


# --------------------------------------------------------------------- replies


class ReplyReader:
    """Every valid reply published from now on, read through real Kafka."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self._partitions = partitions_of(REPLY_TOPICS)
        self._next: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self.by_order: defaultdict[uuid.UUID, list[Event[Any]]] = defaultdict(list)

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_end(*self._partitions)
        for partition in self._partitions:  # resolve "end" now, before anything is sent
            self._next[partition] = await self._consumer.position(partition)
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _collect(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100)
            for partition, records in batches.items():
                for record in records:
                    try:
                        event = decode_record(record)
                    except InvalidEventError:
                        pass  # someone else's poison; not a reply of ours
                    else:
                        self.by_order[event.payload.order_id].append(event)
                    self._next[partition] = record.offset + 1

    async def caught_up(self) -> bool:
        """Whether everything on the reply topics up to now has been read."""
        ends = await self._consumer.end_offsets(self._partitions)
        return all(self._next[partition] >= end for partition, end in ends.items())


# --------------------------------------------------------------------- harness


def payment_settings(database_url: str, group: str, **overrides: Any) -> PaymentSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "payment_consumer_group": group,
        "payment_gateway_delay_ms": 5,
        "payment_gateway_timeout_ms": 300,
        # Reconciliation is exercised by its own module; elsewhere it stays out of the
        # way so that in-doubt payments stay observable.
        "payment_pending_timeout_seconds": 3600,
        "shutdown_grace_seconds": 2,
        "db_pool_max": 12,
    }
    return PaymentSettings(**{**values, **overrides})


@dataclass
class Payments:
    """One started payment app, a producer of commands and the reply reader."""

    app: FastAPI
    settings: PaymentSettings
    db: asyncpg.Pool
    producer: KafkaEventProducer
    replies: ReplyReader
    correlation: str = field(default_factory=lambda: f"test-payment-{uuid.uuid4().hex[:8]}")

    @property
    def runtime(self) -> PaymentRuntime:
        runtime = self.app.state.payment
        assert isinstance(runtime, PaymentRuntime)
        return runtime

    @property
    def group(self) -> str:
        return self.settings.payment_consumer_group

    # commands ---------------------------------------------------------------

    def charge(
        self,
        token: str = "tok_visa",
        *,
        order_id: uuid.UUID | None = None,
        saga_id: uuid.UUID | None = None,
        amount: str = "150.00",
    ) -> EventRecord:
        """A payments.requested record (a new event id every call)."""
        return charge_record(
            token, order_id=order_id, saga_id=saga_id, amount=amount, correlation=self.correlation
        )

    def refund(
        self,
        order_id: uuid.UUID,
        *,
        payment_id: uuid.UUID | None = None,
        saga_id: uuid.UUID | None = None,
        amount: str = "150.00",
    ) -> EventRecord:
        """A payments.refund_requested record (a new event id every call)."""
        return refund_record(
            order_id,
            payment_id=payment_id,
            saga_id=saga_id,
            amount=amount,
            correlation=self.correlation,
        )

    async def send(self, *records: EventRecord) -> None:
        for record in records:
            await self.producer.send_record(record)

    # observations -------------------------------------------------------------

    async def handled(self, *records: EventRecord) -> bool:
        """Whether this app committed the handling of every record (its inbox mark)."""
        ids = [event_id(record) for record in records]
        count = await self.db.fetchval(
            "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = ANY($2)",
            self.group,
            ids,
        )
        return bool(count == len(set(ids)))

    async def wait_handled(self, *records: EventRecord) -> None:
        async def done() -> bool:
            return await self.handled(*records)

        await eventually(done, what=f"{len(records)} command(s) handled")

    async def our_event_ids(self) -> set[uuid.UUID]:
        rows = await self.db.fetch("SELECT event_id FROM outbox")
        return {row["event_id"] for row in rows}

    async def settle(self) -> None:
        """Wait until everything this app wrote is published and has been read back."""

        async def drained() -> bool:
            pending = await self.db.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return bool(pending == 0)

        await eventually(drained, what="the outbox relay to publish every reply")
        await eventually(self.replies.caught_up, what="the reply reader to catch up")

    async def replies_for(self, order_id: uuid.UUID) -> list[Event[Any]]:
        """This app's replies for ``order_id`` read from Kafka so far, in order."""
        ours = await self.our_event_ids()
        return [e for e in self.replies.by_order[order_id] if e.headers.event_id in ours]

    async def wait_replies(self, order_id: uuid.UUID, count: int) -> list[Event[Any]]:
        """Wait for ``count`` replies, then for the dust to settle; all of them."""

        async def arrived() -> bool:
            return len(await self.replies_for(order_id)) >= count

        await eventually(arrived, what=f"{count} reply(ies) for order {order_id}")
        await self.settle()
        return await self.replies_for(order_id)

    async def payment_rows(self, order_id: uuid.UUID) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.db.fetch(
            "SELECT * FROM payments WHERE order_id = $1", order_id
        )
        return rows

    async def outbox_rows(self, order_id: uuid.UUID) -> int:
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1", str(order_id)
        )
        return count


def charge_record(
    token: str = "tok_visa",
    *,
    order_id: uuid.UUID | None = None,
    saga_id: uuid.UUID | None = None,
    amount: str = "150.00",
    correlation: str = "test-payment",
) -> EventRecord:
    """A payments.requested record as the orders service sends it (new event id)."""
    payload = PaymentRequestedPayload(
        saga_id=saga_id or uuid.uuid4(),
        order_id=order_id or uuid.uuid4(),
        user_id=uuid.uuid4(),
        amount=amount,
        currency="BRL",
        payment_method_token=token,
        requested_at=datetime.now(UTC),
    )
    headers = new_headers(PAYMENTS_REQUESTED, producer="orders", correlation_id=correlation)
    return encode(PAYMENTS_REQUESTED, payload, headers)


def refund_record(
    order_id: uuid.UUID,
    *,
    payment_id: uuid.UUID | None = None,
    saga_id: uuid.UUID | None = None,
    amount: str = "150.00",
    correlation: str = "test-payment",
) -> EventRecord:
    """A payments.refund_requested record as the orders service sends it (new event id)."""
    payload = PaymentRefundRequestedPayload.model_validate(
        {
            "sagaId": str(saga_id or uuid.uuid4()),
            "orderId": str(order_id),
            "paymentId": None if payment_id is None else str(payment_id),
            "amount": amount,
            "currency": "BRL",
            "reason": "PAYMENT_TIMEOUT",
            "requestedAt": datetime.now(UTC).isoformat(),
        }
    )
    headers = new_headers(PAYMENTS_REFUND_REQUESTED, producer="orders", correlation_id=correlation)
    return encode(PAYMENTS_REFUND_REQUESTED, payload, headers)


def with_new_event_id(record: EventRecord) -> EventRecord:
    """The same command under a new event id (as an outbox re-publication would be)."""
    fresh = new_headers(PAYMENTS_REQUESTED, producer="orders", correlation_id="x")
    headers = dict(record.headers)
    headers["event-id"] = str(fresh.event_id).encode()
    return EventRecord(record.topic, record.key, record.value, tuple(headers.items()))


def event_id(record: EventRecord) -> uuid.UUID:
    return uuid.UUID(dict(record.headers)["event-id"].decode())


def order_of(record: EventRecord) -> uuid.UUID:
    return uuid.UUID(record.key.decode())


def topics(events: list[Event[Any]]) -> list[str]:
    return [event.spec.topic for event in events]


@asynccontextmanager
async def running_payments(
    bootstrap: str, prefix: str, **overrides: Any
) -> AsyncIterator[Payments]:
    """A payment app (lifespan: pool, migrations, consumer, relay, job) in its own schema."""
    group = f"test-payment-{uuid.uuid4().hex[:12]}"
    async with throwaway_schema(prefix) as url:
        await start_group_at_end(bootstrap, group)
        settings = payment_settings(url, group, kafka_bootstrap_servers=bootstrap, **overrides)
        replies = ReplyReader(bootstrap)
        await replies.start()
        producer = KafkaEventProducer(bootstrap, service="orders")
        await producer.start()
        db = await asyncpg.create_pool(url, min_size=1, max_size=4)
        assert db is not None
        app = build_app(settings)
        try:
            async with app.router.lifespan_context(app):
                yield Payments(app, settings, db, producer, replies)
        finally:
            await db.close()
            await producer.stop()
            await replies.stop()
