"""A generated event model round-trips through the real broker with every header."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import ConsumerRecord

from generated.events.registry import ORDERS_CREATED
from generated.models.events import OrderCreatedPayload
from handwritten.runtime.context import correlation_id
from handwritten.runtime.kafka import KafkaEventProducer, decode_record, event_consumer
from tests.samples import order_created_data

DEADLINE_SECONDS = 60


async def test_idempotent_producer_and_consumer_group_round_trip(kafka_bootstrap: str) -> None:
    payload = OrderCreatedPayload.model_validate(order_created_data())
    group = f"test-roundtrip-{uuid.uuid4()}"
    consumer = event_consumer(
        kafka_bootstrap, group_id=group, topics=[ORDERS_CREATED.topic], client_id=group
    )
    producer = KafkaEventProducer(kafka_bootstrap, service="orders")
    await producer.start()
    await consumer.start()
    try:
        token = correlation_id.set("corr-roundtrip")
        try:
            await producer.send(ORDERS_CREATED, payload, causation_id=str(uuid.uuid4()))
        finally:
            correlation_id.reset(token)
        # Only an idempotent producer gets a producer id from the broker.
        assert producer.producer_id is not None and producer.producer_id >= 0

        async def first_matching() -> ConsumerRecord[bytes, bytes]:
            # A fresh group starts at the earliest offset: skip other tests' events.
            async for record in consumer:
                if record.key == str(payload.order_id).encode():
                    await consumer.commit()
                    return record
            raise AssertionError("consumer stopped")

        record = await asyncio.wait_for(first_matching(), DEADLINE_SECONDS)
    finally:
        await consumer.stop()
        await producer.stop()

    event = decode_record(record)
    assert event.payload == payload
    headers = dict(record.headers)
    assert headers["event-type"] == b"OrderCreated"
    assert headers["correlation-id"] == b"corr-roundtrip"
    assert headers["producer"] == b"orders"
    assert headers["schema-version"] == b"1"
    assert uuid.UUID(headers["event-id"].decode())
    assert uuid.UUID(headers["causation-id"].decode())
    assert event.headers.occurred_at is not None
    assert record.partition in range(ORDERS_CREATED.partitions)
