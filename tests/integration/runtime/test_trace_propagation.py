"""Trace context through the outbox and Kafka, on real PostgreSQL and a real broker.

An event recorded inside a span is published later by the outbox relay (another task,
no span of its own) and handled by a ``ConsumerRunner``: the relay's PRODUCER span
must be the child of the recording span, and the runner's CONSUMER span the child of
(and linked to) the producer's, all in ONE trace; the handler sees that context.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from generated.events.registry import ORDERS_CREATED, Event
from generated.models.events import OrderCreatedPayload
from handwritten.runtime import tracing
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import ConsumerRunner
from handwritten.runtime.kafka import KafkaEventProducer, event_consumer
from handwritten.runtime.outbox import OutboxRelay, OutboxSender
from tests.integration.eventstore.database import Schema, throwaway_schema
from tests.samples import order_created_data

TOPIC = ORDERS_CREATED.topic
DEADLINE = 30.0


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Schema]:
    async with throwaway_schema("test_trace_propagation") as schema:
        yield schema


@pytest.fixture(scope="module")
async def pool(db: Schema) -> AsyncIterator[asyncpg.Pool]:
    created = await db.pool(min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


async def eventually(check: Any, *, what: str) -> None:
    until = time.monotonic() + DEADLINE
    while not await check():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def start_at_the_end(bootstrap: str, group: str) -> None:
    """Commit ``group``'s offsets at the topic's end, so its runner reads only new records."""
    consumer = event_consumer(bootstrap, group_id=group, topics=[TOPIC], client_id=group)
    await consumer.start()
    try:
        until = time.monotonic() + DEADLINE
        while len(consumer.assignment()) < ORDERS_CREATED.partitions:
            assert time.monotonic() < until, "no partition assignment"
            await consumer.getmany(timeout_ms=100)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        await consumer.commit(ends)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def running(*workers: Any) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        yield
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), DEADLINE)


class Seen:
    """What the handler saw of the events of this test's order."""

    def __init__(self, order_id: uuid.UUID) -> None:
        self.order_id = order_id
        self.contexts: list[tuple[int, int, str | None]] = []

    async def handle(self, _: asyncpg.Connection, event: Event[Any]) -> None:
        if event.payload.order_id != self.order_id:
            return
        current = trace.get_current_span().get_span_context()
        self.contexts.append((current.trace_id, current.span_id, event.headers.traceparent))


def new_payload(order_id: uuid.UUID) -> OrderCreatedPayload:
    return OrderCreatedPayload.model_validate(order_created_data(orderId=str(order_id)))


def one(
    spans: list[ReadableSpan], kind: SpanKind, order_key: str, group: str | None = None
) -> ReadableSpan:
    """The one span of ``kind`` for the order's record (of consumer ``group`` when given).

    Other consumers may run in this process (a session-scoped analytics app of another
    test module reads the same topic), so a CONSUMER span is only ours by its group.
    """
    found = [
        s
        for s in spans
        if s.kind is kind
        and (s.attributes or {}).get("messaging.kafka.message.key") == order_key
        and (group is None or (s.attributes or {}).get("messaging.consumer.group.name") == group)
    ]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


async def test_an_outbox_event_is_one_trace_from_recording_to_handling(
    exporter: InMemorySpanExporter, db: Schema, pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    order_id = uuid.uuid4()
    group = f"test-trace-{uuid.uuid4()}"
    await start_at_the_end(kafka_bootstrap, group)

    connection = await db.connect()
    try:
        with tracing.span("request") as request:
            async with connection.transaction():
                await OutboxSender(connection, "orders").add(ORDERS_CREATED, new_payload(order_id))
        stored = await connection.fetchval(
            "SELECT headers->>'traceparent' FROM outbox WHERE key = $1", str(order_id)
        )
    finally:
        await connection.close()
    recording = request.get_span_context()
    assert stored.split("-")[1:3] == [
        format(recording.trace_id, "032x"),
        format(recording.span_id, "016x"),
    ]

    seen = Seen(order_id)
    relay = OutboxRelay(db.connect, bootstrap_servers=kafka_bootstrap, service="orders")
    runner = ConsumerRunner(
        pool,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        topics=[TOPIC],
        handler=seen.handle,
        backoff=Backoff(initial=0.01, maximum=0.05),
        poll_timeout=0.1,
        service="orders",
    )
    async with running(relay, runner):

        async def handled() -> bool:
            return bool(seen.contexts)

        await eventually(handled, what="the event to be handled")

    spans = list(exporter.get_finished_spans())
    producer = one(spans, SpanKind.PRODUCER, str(order_id))
    consumer = one(spans, SpanKind.CONSUMER, str(order_id), group)
    # request → send (relay, later, another task) → process (runner): one trace.
    assert producer.parent is not None and producer.parent.span_id == recording.span_id
    assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert {producer.context.trace_id, consumer.context.trace_id} == {recording.trace_id}
    assert consumer.attributes is not None
    assert consumer.attributes["messaging.consumer.group.name"] == group
    assert consumer.attributes["order.id"] == str(order_id)
    # The handler ran inside the consumer span, and the record carried the producer's
    # context (not the recording span's: the relay replaced it with its own).
    trace_id, span_id, header = seen.contexts[0]
    assert (trace_id, span_id) == (consumer.context.trace_id, consumer.context.span_id)
    assert header is not None and header.split("-")[2] == format(producer.context.span_id, "016x")


async def test_a_direct_send_is_a_child_of_the_current_span(
    exporter: InMemorySpanExporter, pool: asyncpg.Pool, kafka_bootstrap: str
) -> None:
    order_id = uuid.uuid4()
    group = f"test-trace-{uuid.uuid4()}"
    await start_at_the_end(kafka_bootstrap, group)
    producer = KafkaEventProducer(kafka_bootstrap, service="orders")
    await producer.start()
    try:
        with tracing.span("work") as work:
            await producer.send(ORDERS_CREATED, new_payload(order_id))
    finally:
        await producer.stop()

    seen = Seen(order_id)
    runner = ConsumerRunner(
        pool,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        topics=[TOPIC],
        handler=seen.handle,
        poll_timeout=0.1,
        service="orders",
    )
    async with running(runner):

        async def handled() -> bool:
            return bool(seen.contexts)

        await eventually(handled, what="the event to be handled")

    spans = list(exporter.get_finished_spans())
    sent = one(spans, SpanKind.PRODUCER, str(order_id))
    consumer = one(spans, SpanKind.CONSUMER, str(order_id), group)
    assert sent.parent is not None and sent.parent.span_id == work.get_span_context().span_id
    assert sent.attributes is not None and "messaging.destination.partition.id" in sent.attributes
    assert consumer.parent is not None and consumer.parent.span_id == sent.context.span_id


async def test_untraced_the_outbox_stores_no_trace_context(db: Schema) -> None:
    assert not tracing.enabled()
    order_id = uuid.uuid4()
    connection = await db.connect()
    try:
        async with connection.transaction():
            await OutboxSender(connection, "orders").add(ORDERS_CREATED, new_payload(order_id))
        stored = await connection.fetchval(
            "SELECT headers ? 'traceparent' FROM outbox WHERE key = $1", str(order_id)
        )
    finally:
        await connection.close()
    assert stored is False
