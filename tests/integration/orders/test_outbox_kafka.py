"""The order's events reach the real Kafka topics through the outbox, once each, in order."""

from __future__ import annotations

import json
import time
import uuid

from aiokafka import ConsumerRecord, TopicPartition

from generated.services.orders.events import PRODUCES
from handwritten.runtime.kafka import decode_record, event_consumer
from tests.integration.orders.conftest import ORDERS, Inventory, Orders, User, eventually

READ_DEADLINE = 30.0


async def read_to_end(
    bootstrap: str, topics: list[str], key: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record with ``key`` on ``topics``, read by a fresh consumer group from the
    earliest offset up to the end offsets as of now (call it once the rows of interest
    are published: everything they produced is then below those offsets)."""
    group = f"test-orders-{uuid.uuid4()}"
    consumer = event_consumer(bootstrap, group_id=group, topics=topics, client_id=group)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    end: dict[TopicPartition, int] | None = None
    until = time.monotonic() + READ_DEADLINE
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                records.extend(r for r in batch if r.key == key.encode())
            assignment = consumer.assignment()
            if end is None and len(assignment) == sum(
                spec.partitions for spec in PRODUCES if spec.topic in topics
            ):
                end = await consumer.end_offsets(list(assignment))
            if end is not None:
                positions = {tp: await consumer.position(tp) for tp in end}
                if all(positions[tp] >= offset for tp, offset in end.items()):
                    return records
            if time.monotonic() > until:
                raise AssertionError(f"could not read {topics} to their end")
    finally:
        await consumer.stop()


async def test_every_event_of_an_order_reaches_kafka_once_in_sequence(
    orders: Orders, inventory: Inventory, customer: User, kafka_bootstrap: str
) -> None:
    product = await inventory.add_product(price="42.00", stock=5)
    created = await orders.create(customer, [(product, 2)])
    assert created.status_code == 201
    order_id = uuid.UUID(created.json()["orderId"])
    await orders.service.confirm_order(order_id, payment_id=uuid.uuid4())
    await orders.service.mark_shipped(order_id, tracking_code="BR-KAFKA001")
    await orders.service.mark_delivered(order_id)
    expected = ["orders.created", "orders.confirmed", "orders.shipped", "orders.delivered"]

    async def published() -> bool:
        waiting: int = await orders.db.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL", str(order_id)
        )
        return waiting == 0

    await eventually(published, what="the relay to publish the order's outbox rows")
    rows = await orders.db.fetch(
        "SELECT event_id, topic, headers::text AS headers FROM outbox WHERE key = $1 ORDER BY id",
        str(order_id),
    )
    assert [row["topic"] for row in rows] == expected

    records = await read_to_end(kafka_bootstrap, expected, str(order_id))

    event_ids = [dict(record.headers)["event-id"].decode() for record in records]
    assert sorted(event_ids) == sorted(str(row["event_id"]) for row in rows)  # each exactly once
    by_id = {dict(r.headers)["event-id"].decode(): r for r in records}
    in_outbox_order = [by_id[str(row["event_id"])] for row in rows]
    # The relay sends an order's next event only after the previous one was acked.
    timestamps = [record.timestamp for record in in_outbox_order]
    assert timestamps == sorted(timestamps)
    events = [decode_record(record) for record in in_outbox_order]
    assert [event.headers.event_type for event in events] == [
        "OrderCreated",
        "OrderConfirmed",
        "OrderShipped",
        "OrderDelivered",
    ]
    assert all(event.headers.producer == "orders" for event in events)
    created_payload = events[0].payload.model_dump(mode="json", by_alias=True)
    assert created_payload["totalAmount"] == "84.00"
    assert created_payload["userId"] == str(customer.user_id)
    # The request's correlation id travels with the event it caused.
    assert events[0].headers.correlation_id == created.headers["x-correlation-id"]
    assert json.loads(rows[0]["headers"])["correlation-id"] == created.headers["x-correlation-id"]


async def test_a_canceled_order_publishes_orders_canceled(
    orders: Orders, inventory: Inventory, customer: User, kafka_bootstrap: str
) -> None:
    product = await inventory.add_product(price="9.99", stock=5)
    created = await orders.create(customer, [(product, 1)])
    order_id = created.json()["orderId"]
    canceled = await orders.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers)
    assert canceled.status_code == 200

    async def published() -> bool:
        waiting: int = await orders.db.fetchval(
            "SELECT count(*) FROM outbox WHERE key = $1 AND published_at IS NULL", order_id
        )
        return waiting == 0

    await eventually(published, what="the relay to publish the cancel")
    records = await read_to_end(kafka_bootstrap, ["orders.created", "orders.canceled"], order_id)
    assert sorted(record.topic for record in records) == ["orders.canceled", "orders.created"]
    (cancel_record,) = [r for r in records if r.topic == "orders.canceled"]
    payload = decode_record(cancel_record).payload.model_dump(mode="json", by_alias=True)
    assert payload["reason"] == "CUSTOMER_REQUEST"
    assert payload["totalAmount"] == "9.99"
