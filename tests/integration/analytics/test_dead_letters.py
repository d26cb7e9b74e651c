"""A record that is not a valid event goes to events.deadletter, and the consumer
carries on with the records after it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from generated.events.registry import EVENTS_DEADLETTER, ORDERS_CREATED
from handwritten.runtime.events import EventRecord
from handwritten.runtime.kafka import decode_record
from tests.integration.analytics.conftest import Analytics, Producer, unique_day, wait_for
from tests.support.jwks import TokenIssuer
from tests.unit.analytics.factory import Item, OrderStory

pytestmark = pytest.mark.infra  # Kafka, Redis


async def test_poison_is_dead_lettered_and_the_stream_goes_on(
    analytics: Analytics, producer: Producer, issuer: TokenIssuer
) -> None:
    partitions = [TopicPartition(EVENTS_DEADLETTER.topic, p) for p in range(3)]
    letters = AIOKafkaConsumer(bootstrap_servers=producer.bootstrap, enable_auto_commit=False)
    await letters.start()
    try:
        letters.assign(partitions)
        for partition, offset in (await letters.end_offsets(partitions)).items():
            letters.seek(partition, offset)

        marker = uuid.uuid4().hex
        poison = EventRecord(
            topic=ORDERS_CREATED.topic,
            key=str(uuid.uuid4()).encode(),
            value=json.dumps({"not": "an order", "marker": marker}).encode(),
            headers=(("event-type", b"OrderCreated"),),
        )
        day = unique_day()
        story = OrderStory(
            dt.datetime.combine(day, dt.time(8), tzinfo=dt.UTC),
            [Item(uuid.uuid4(), "Clock", 1, Decimal("12.00"))],
        )
        await producer.publish([poison, *story.confirmed_journey()])
        await producer.consumed(analytics.group)

        found: list[dict[str, str]] = []

        async def dead_lettered() -> bool:
            batches = await letters.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    payload = decode_record(record).payload
                    raw = base64.b64decode(payload.value or "").decode(errors="replace")
                    if payload.consumer_group == analytics.group and marker in raw:
                        found.append({"topic": payload.source_topic, "error": payload.error})
            return bool(found)

        await wait_for(dead_lettered, what="the poison record's dead letter")
        assert found[0]["topic"] == ORDERS_CREATED.topic
    finally:
        await letters.stop()

    response = await analytics.http.get(
        "/api/analytics/sales-by-day",
        params={"from": day.isoformat(), "to": day.isoformat()},
        headers=issuer.admin_headers(),
    )
    assert response.json()[0]["totalRevenue"] == "12.00"
