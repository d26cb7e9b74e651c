"""The consumer-group runner on real Kafka and PostgreSQL: duplicates are applied once,
poison records go to the dead-letter topic (raw record, error, source position) before
their offset is committed, offsets are committed only after the handler's transaction,
and a handler that keeps failing stops the runner without committing past its record."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from generated.events.registry import EVENTS_DEADLETTER, PAYMENTS_PROCESSED, Event
from generated.models.events import EventDeadLetteredPayload, PaymentProcessedPayload
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import ConsumerRunner, HandlerFailedError, dead_letter_producer
from handwritten.runtime.events import EventRecord, encode, new_headers
from handwritten.runtime.kafka import decode_record, event_consumer
from handwritten.runtime.metrics import REGISTRY
from tests.integration.eventstore.database import Schema, throwaway_schema

TOPIC = PAYMENTS_PROCESSED.topic
DEADLINE = 30.0


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Schema]:
    async with throwaway_schema("test_consumer_runner") as schema:
        connection = await schema.connect()
        try:
            await connection.execute(
                "CREATE TABLE effects (event_id uuid NOT NULL, order_id uuid NOT NULL,"
                " seq serial PRIMARY KEY)"
            )
        finally:
            await connection.close()
        yield schema


@pytest.fixture(scope="module")
async def pool(db: Schema) -> AsyncIterator[asyncpg.Pool]:
    created = await db.pool(min_size=1, max_size=4)
    try:
        yield created
    finally:
        await created.close()


@pytest.fixture
async def producer(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await raw.start()
    try:
        yield raw
    finally:
        await raw.stop()


def payment_record(order_id: uuid.UUID) -> EventRecord:
    payload = PaymentProcessedPayload.model_validate(
        {
            "sagaId": str(uuid.uuid4()),
            "orderId": str(order_id),
            "paymentId": str(uuid.uuid4()),
            "userId": str(uuid.uuid4()),
            "amount": "10.00",
            "currency": "BRL",
            "gatewayTransactionId": "gw-1",
            "processedAt": "2026-11-28T12:00:00Z",
        }
    )
    headers = new_headers(PAYMENTS_PROCESSED, producer="payment", correlation_id="corr-runner")
    return encode(PAYMENTS_PROCESSED, payload, headers)


def event_id_of(record: EventRecord) -> str:
    return dict(record.headers)["event-id"].decode()


async def produce(producer: AIOKafkaProducer, record: EventRecord) -> tuple[int, int]:
    """Send one record; its (partition, offset)."""
    metadata = await producer.send_and_wait(
        record.topic, record.value, key=record.key, headers=list(record.headers)
    )
    return metadata.partition, metadata.offset


def recording_handler(
    order_ids: set[uuid.UUID],
) -> Callable[[asyncpg.Connection, Event[Any]], Awaitable[None]]:
    """Records an effect row for the events of this test (the topic also holds others')."""

    async def handle(connection: asyncpg.Connection, event: Event[Any]) -> None:
        if event.payload.order_id in order_ids:
            await connection.execute(
                "INSERT INTO effects (event_id, order_id) VALUES ($1, $2)",
                event.headers.event_id,
                event.payload.order_id,
            )

    return handle


def runner(
    pool: asyncpg.Pool, bootstrap: str, group: str, handler: Any, **options: Any
) -> ConsumerRunner:
    return ConsumerRunner(
        pool,
        bootstrap_servers=bootstrap,
        group_id=group,
        topics=[TOPIC],
        handler=handler,
        backoff=Backoff(initial=0.01, maximum=0.05),
        poll_timeout=0.1,
        service="orders",
        **options,
    )


async def eventually(condition: Callable[[], Awaitable[bool]], *, what: str) -> None:
    until = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def effects(pool: asyncpg.Pool, order_id: uuid.UUID) -> list[str]:
    rows = await pool.fetch(
        "SELECT event_id FROM effects WHERE order_id = $1 ORDER BY seq", order_id
    )
    return [str(row["event_id"]) for row in rows]


async def committed_offset(bootstrap: str, group: str, partition: int) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    found = offsets.get(TopicPartition(TOPIC, partition))
    return None if found is None or found.offset < 0 else found.offset


async def dead_letters_for(bootstrap: str, group: str) -> list[EventDeadLetteredPayload]:
    """The dead letters of consumer group ``group``: the dead-letter topic read by a
    fresh consumer group from the earliest offset to the end offsets as of now."""
    reader = f"test-dlq-reader-{uuid.uuid4()}"
    consumer = event_consumer(
        bootstrap, group_id=reader, topics=[EVENTS_DEADLETTER.topic], client_id=reader
    )
    await consumer.start()
    found: list[EventDeadLetteredPayload] = []
    end: dict[TopicPartition, int] | None = None
    until = time.monotonic() + DEADLINE
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                for record in batch:
                    payload = decode_record(record).payload
                    if payload.consumer_group == group:
                        found.append(payload)
            assignment = consumer.assignment()
            if end is None and len(assignment) == EVENTS_DEADLETTER.partitions:
                end = await consumer.end_offsets(list(assignment))
            if end is not None:
                positions = {tp: await consumer.position(tp) for tp in end}
                if all(positions[tp] >= offset for tp, offset in end.items()):
                    return found
            if time.monotonic() > until:
                raise AssertionError("could not read the dead-letter topic to its end")
    finally:
        await consumer.stop()


async def test_duplicates_apply_once_and_poison_records_are_dead_lettered(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    order = uuid.uuid4()
    first, second = payment_record(order), payment_record(order)
    poison = EventRecord(TOPIC, first.key, b"{not json", first.headers)
    # Same key, same partition, in this order: first, first again, poison, second.
    for record in (first, first, poison, second):
        partition, last_offset = await produce(producer, record)
    poison_offset = last_offset - 1

    group = f"test-runner-{uuid.uuid4()}"
    consumer = runner(pool, kafka_bootstrap, group, recording_handler({order}))
    task = asyncio.create_task(consumer.run())
    try:

        async def second_applied() -> bool:
            return event_id_of(second) in await effects(pool, order)

        await eventually(second_applied, what="the event after the poison record")

        async def all_committed() -> bool:
            offset = await committed_offset(kafka_bootstrap, group, partition)
            return offset is not None and offset > last_offset

        await eventually(all_committed, what="offsets committed past the last record")
        assert await effects(pool, order) == [event_id_of(first), event_id_of(second)]
        marks = await pool.fetchval(
            "SELECT count(*) FROM processed_events"
            " WHERE consumer = $1 AND event_id = ANY($2::uuid[])",
            group,
            [event_id_of(first), event_id_of(second)],
        )
        assert marks == 2
        assert not task.done()  # the poison record did not stop the runner
        poison_seen = REGISTRY.get_sample_value(
            "consumer_events_total", {"group": group, "topic": TOPIC, "outcome": "poison"}
        )
        assert poison_seen is not None and poison_seen >= 1

        # The poison record is on the dead-letter topic, byte for byte, with the error.
        # (A new group also dead-letters the poison records earlier runs left on the
        # topic; this test's is the one at its offset.)
        letters = [
            letter
            for letter in await dead_letters_for(kafka_bootstrap, group)
            if (letter.source_topic, letter.source_partition, letter.source_offset)
            == (TOPIC, partition, poison_offset)
        ]
        assert len(letters) == 1
        (letter,) = letters
        assert letter.value is not None and base64.b64decode(letter.value) == b"{not json"
        assert letter.key is not None and base64.b64decode(letter.key) == first.key
        headers = {h.name: base64.b64decode(h.value or "") for h in letter.headers}
        assert headers == dict(first.headers)
        assert "invalid" in letter.error and letter.source_timestamp is not None
    finally:
        consumer.stop()
        await asyncio.wait_for(task, DEADLINE)


async def test_offsets_are_committed_only_after_the_handlers_transaction(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    order = uuid.uuid4()
    record = payment_record(order)
    partition, offset = await produce(producer, record)
    entered, release = asyncio.Event(), asyncio.Event()
    record_effect = recording_handler({order})

    async def gated(connection: asyncpg.Connection, event: Event[Any]) -> None:
        await record_effect(connection, event)
        if event.payload.order_id == order:
            entered.set()
            await release.wait()  # still inside the transaction

    group = f"test-runner-{uuid.uuid4()}"
    consumer = runner(pool, kafka_bootstrap, group, gated)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(entered.wait(), DEADLINE)
        committed = await committed_offset(kafka_bootstrap, group, partition)
        assert committed is None or committed <= offset  # not past the record in hand
        assert await effects(pool, order) == []  # its transaction has not committed

        release.set()

        async def committed_past() -> bool:
            committed = await committed_offset(kafka_bootstrap, group, partition)
            return committed is not None and committed > offset

        await eventually(committed_past, what="the offset commit after the transaction")
        assert await effects(pool, order) == [event_id_of(record)]
    finally:
        release.set()
        consumer.stop()
        await asyncio.wait_for(task, DEADLINE)


async def test_a_handler_that_keeps_failing_stops_the_runner_before_its_record(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    order = uuid.uuid4()
    record = payment_record(order)
    partition, offset = await produce(producer, record)
    attempts = 0
    record_effect = recording_handler({order})

    async def broken(connection: asyncpg.Connection, event: Event[Any]) -> None:
        nonlocal attempts
        await record_effect(connection, event)  # rolled back with the failure
        if event.payload.order_id == order:
            attempts += 1
            raise RuntimeError("downstream bug")

    group = f"test-runner-{uuid.uuid4()}"
    with pytest.raises(HandlerFailedError) as failure:
        await asyncio.wait_for(
            runner(pool, kafka_bootstrap, group, broken, max_attempts=3).run(), DEADLINE
        )
    assert (failure.value.partition, failure.value.offset) == (partition, offset)
    assert attempts == 3
    committed = await committed_offset(kafka_bootstrap, group, partition)
    assert committed is None or committed <= offset
    assert await effects(pool, order) == []
    assert not await pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE event_id = $1", uuid.UUID(event_id_of(record))
    )

    # Fixed and restarted, the same group handles the record: it was not lost.
    healthy = runner(pool, kafka_bootstrap, group, recording_handler({order}))
    task = asyncio.create_task(healthy.run())
    try:

        async def applied() -> bool:
            return await effects(pool, order) == [event_id_of(record)]

        await eventually(applied, what="the record handled after the restart")
    finally:
        healthy.stop()
        await asyncio.wait_for(task, DEADLINE)


class GatedDeadLetters:
    """For the record at ``target`` (partition, offset): fails the first publish, then
    holds the next one until released. Other records (poison left on the topic by
    earlier runs, read by this new group too) go through at once."""

    def __init__(self, target: tuple[int, int]) -> None:
        self.target = target
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.published: list[EventDeadLetteredPayload] = []
        self.failures = 0

    async def publish(self, payload: EventDeadLetteredPayload) -> None:
        if (payload.source_partition, payload.source_offset) != self.target:
            self.published.append(payload)
            return
        if self.failures == 0:
            self.failures += 1
            raise ConnectionError("dead-letter topic unreachable")
        self.entered.set()
        await self.release.wait()
        self.published.append(payload)

    async def close(self) -> None:
        return None


async def test_a_poison_records_offset_is_committed_only_after_its_dead_letter(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, kafka_bootstrap: str
) -> None:
    order = uuid.uuid4()
    good = payment_record(order)
    poison = EventRecord(TOPIC, good.key, b"\x00\xffnot an event", good.headers)
    partition, poison_offset = await produce(producer, poison)
    await produce(producer, good)
    letters = GatedDeadLetters((partition, poison_offset))
    group = f"test-runner-{uuid.uuid4()}"
    consumer = runner(
        pool, kafka_bootstrap, group, recording_handler({order}), dead_letters=letters
    )
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(letters.entered.wait(), DEADLINE)  # after one failed try
        assert letters.failures == 1
        committed = await committed_offset(kafka_bootstrap, group, partition)
        assert committed is None or committed <= poison_offset
        assert await effects(pool, order) == []  # nothing after it was handled either

        letters.release.set()

        async def past_both() -> bool:
            committed = await committed_offset(kafka_bootstrap, group, partition)
            return committed is not None and committed > poison_offset + 1

        await eventually(past_both, what="commits past the poison record and the next one")
        mine = [p for p in letters.published if p.source_offset == poison_offset]
        assert len(mine) == 1 and mine[0].source_partition == partition
        assert base64.b64decode(mine[0].value or "") == b"\x00\xffnot an event"
        assert await effects(pool, order) == [event_id_of(good)]
    finally:
        letters.release.set()
        consumer.stop()
        await asyncio.wait_for(task, DEADLINE)


def test_the_dead_letter_producer_is_the_service_the_runner_works_for() -> None:
    assert dead_letter_producer("orders-service", ["payments.processed"]) == "orders"
    # Test or replica groups: the topics say which service it is.
    assert dead_letter_producer("g1", ["orders.confirmed", "orders.canceled"]) == "shipping"
    assert dead_letter_producer("g2", ["payments.requested"]) == "payment"
    # Orders and analytics both consume payments.processed: not singled out.
    assert dead_letter_producer("g3", ["payments.processed"]) is None
    with pytest.raises(ValueError, match="pass service="):
        ConsumerRunner(
            None,  # type: ignore[arg-type]
            bootstrap_servers="127.0.0.1:9092",
            group_id="g3",
            topics=["payments.processed"],
            handler=recording_handler(set()),
        )
