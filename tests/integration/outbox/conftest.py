"""Fixtures and helpers for the outbox tests: a schema, relays, and a topic reader."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
from aiokafka import ConsumerRecord, TopicPartition

from generated.events.registry import ORDERS_CREATED
from generated.models.events import OrderCreatedPayload
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.kafka import event_consumer
from handwritten.runtime.outbox import OutboxRelay, OutboxSender
from tests.integration.eventstore.database import Schema, throwaway_schema
from tests.samples import order_created_data

TOPIC = ORDERS_CREATED.topic
DEADLINE = 30.0


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Schema]:
    async with throwaway_schema("test_outbox") as schema:
        yield schema


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, what: str, deadline: float = DEADLINE
) -> None:
    """Wait until ``condition()`` holds (polling), or fail saying ``what`` never happened."""
    until = time.monotonic() + deadline
    while not await condition():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


async def commit_events(
    db: Schema, keys: Iterable[uuid.UUID], per_key: int
) -> list[tuple[str, str]]:
    """Commit ``per_key`` OrderCreated events per key, interleaved across keys and spread
    over several transactions; returns (key, event-id) in commit (id) order."""
    written: list[tuple[str, str]] = []
    connection = await db.connect()
    try:
        for _ in range(per_key):
            async with connection.transaction():
                sender = OutboxSender(connection, "orders")
                for key in keys:
                    payload = OrderCreatedPayload.model_validate(
                        order_created_data(orderId=str(key))
                    )
                    event_id = await sender.add(ORDERS_CREATED, payload)
                    written.append((str(key), str(event_id)))
    finally:
        await connection.close()
    return written


async def unpublished(db: Schema, keys: Iterable[uuid.UUID]) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM outbox WHERE published_at IS NULL AND key = ANY($1::text[])",
        [str(key) for key in keys],
    )
    return count


def per_key_event_ids(records: Iterable[ConsumerRecord[bytes, bytes]]) -> dict[str, list[str]]:
    """Event ids per message key, in the order the topic holds them."""
    result: dict[str, list[str]] = {}
    for record in records:
        event_id = dict(record.headers)["event-id"].decode()
        result.setdefault(record.key.decode(), []).append(event_id)
    return result


def expected_per_key(written: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for key, event_id in written:
        result.setdefault(key, []).append(event_id)
    return result


async def read_topic_to_end(
    bootstrap: str, keys: Iterable[uuid.UUID], topic: str = TOPIC
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``keys`` on ``topic``, read by a fresh consumer group from the
    earliest offset up to the end offsets as of now (call it once the rows of interest
    are marked published: everything they produced is then below those offsets)."""
    wanted = {str(key).encode() for key in keys}
    group = f"test-outbox-{uuid.uuid4()}"
    consumer = event_consumer(bootstrap, group_id=group, topics=[topic], client_id=group)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    end: dict[TopicPartition, int] | None = None
    until = time.monotonic() + DEADLINE
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for partition in sorted(batches, key=lambda tp: tp.partition):
                records.extend(r for r in batches[partition] if r.key in wanted)
            assignment = consumer.assignment()
            if end is None and assignment:
                end = await consumer.end_offsets(list(assignment))
            if end is not None:
                positions = {tp: await consumer.position(tp) for tp in end}
                if all(positions[tp] >= offset for tp, offset in end.items()):
                    return records
            if time.monotonic() > until:
                raise AssertionError(f"could not read {topic} to its end")
    finally:
        await consumer.stop()


class Relays:
    """Starts relays as background tasks and stops whatever is left at teardown."""

    def __init__(self, db: Schema) -> None:
        self._db = db
        self._tasks: dict[OutboxRelay, asyncio.Task[None]] = {}

    def start(
        self, bootstrap: str, relay_class: type[OutboxRelay] = OutboxRelay, **options: Any
    ) -> OutboxRelay:
        settings: dict[str, Any] = {
            "poll_interval": 0.5,
            "lock_retry_interval": 0.1,
            "backoff": Backoff(initial=0.05, maximum=0.5),
        }
        settings.update(options)
        connect = settings.pop("connect", self._db.connect)
        relay = relay_class(connect, bootstrap_servers=bootstrap, service="orders", **settings)
        self._tasks[relay] = asyncio.create_task(relay.run())
        return relay

    def task(self, relay: OutboxRelay) -> asyncio.Task[None]:
        return self._tasks[relay]

    async def stop(self, relay: OutboxRelay) -> None:
        relay.stop()
        await asyncio.wait_for(self._tasks.pop(relay), DEADLINE)

    async def stop_all(self) -> None:
        for relay in list(self._tasks):
            task = self._tasks.pop(relay)
            relay.stop()
            # A relay that crashed on purpose was already asserted on by its test.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, DEADLINE)


@pytest.fixture
async def relays(db: Schema) -> AsyncIterator[Relays]:
    started = Relays(db)
    try:
        yield started
    finally:
        await started.stop_all()
