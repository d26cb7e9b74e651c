"""orders.confirmed and orders.canceled through real Kafka: one shipment per order,
published through the outbox, whatever the redeliveries and arrival order."""

from __future__ import annotations

import json
import re
import uuid

from generated.events.registry import SHIPPING_SCHEDULED, SHIPPING_UPDATED
from handwritten.shipping.adapters.postgres import unit_of_work_factory
from handwritten.shipping.app import outbox_events
from tests.integration.shipping.conftest import (
    Collector,
    Orders,
    Shipping,
    TokenIssuer,
    header_of,
    wait_for,
)

TRACKING_CODE = re.compile(r"^[A-Z0-9-]{8,40}$")


async def test_confirmed_order_is_scheduled_and_published(
    shipping: Shipping, orders: Orders, collector: Collector, issuer: TokenIssuer
) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    record = orders.confirmed(order_id, user_id, city="Belo Horizonte", state="MG")
    confirm_id = await orders.send(record)

    shipment_id = await shipping.shipment_id(order_id)

    async def announced() -> bool:
        return bool(collector.of_shipment(shipment_id, SHIPPING_SCHEDULED.topic))

    await wait_for(announced, what="shipping.scheduled on Kafka")
    [event] = collector.of_shipment(shipment_id)
    assert event.payload.order_id == order_id
    assert TRACKING_CODE.fullmatch(event.payload.tracking_code)
    assert event.headers.producer == "shipping"
    assert event.headers.causation_id == confirm_id
    # The saga's correlation id travels on.
    assert event.headers.correlation_id == header_of(record, "correlation-id")

    response = await shipping.http.get(
        f"/api/shipping/orders/{order_id}", headers=issuer.headers(user_id)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orderId"] == str(order_id)
    assert body["status"] == "SCHEDULED"
    assert body["trackingCode"] == event.payload.tracking_code
    assert body["estimatedDeliveryDate"] == event.payload.estimated_delivery_date.isoformat()
    assert [entry["status"] for entry in body["history"]] == ["SCHEDULED"]
    assert body["history"][0]["location"]


async def test_redelivered_confirm_schedules_once(
    shipping: Shipping, orders: Orders, collector: Collector
) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    record = orders.confirmed(order_id, user_id)
    first = await orders.send(record)
    shipment_id = await shipping.shipment_id(order_id)

    # The same record again (an at-least-once redelivery: same event id), then the
    # same confirmation under a new event id (e.g. republished by the orders service).
    again = await orders.send(record)
    assert again == first
    other = await orders.send(orders.confirmed(order_id, user_id))
    await shipping.processed(first, other)
    await shipping.published(order_id)

    assert (
        await shipping.db.fetchval("SELECT count(*) FROM shipments WHERE order_id = $1", order_id)
        == 1
    )
    assert (
        await shipping.db.fetchval(
            "SELECT count(*) FROM shipment_status_history WHERE shipment_id = $1", shipment_id
        )
        == 1
    )
    assert [row["topic"] for row in await shipping.outbox(order_id)] == [SHIPPING_SCHEDULED.topic]

    async def announced() -> bool:
        return bool(collector.of_shipment(shipment_id))

    await wait_for(announced, what="shipping.scheduled on Kafka")
    assert [e.spec.topic for e in collector.of_shipment(shipment_id)] == [SHIPPING_SCHEDULED.topic]


async def test_cancel_before_transit_cancels_the_shipment(
    shipping: Shipping, orders: Orders, collector: Collector, issuer: TokenIssuer
) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    await orders.send(orders.confirmed(order_id, user_id))
    shipment_id = await shipping.shipment_id(order_id)

    cancel_id = await orders.send(orders.canceled(order_id, user_id))

    async def canceled() -> bool:
        return await shipping.status(order_id) == "CANCELED"

    await wait_for(canceled, what="the shipment to be canceled")

    async def announced() -> bool:
        return bool(collector.of_shipment(shipment_id, SHIPPING_UPDATED.topic))

    await wait_for(announced, what="shipping.updated CANCELED on Kafka")
    [update] = collector.of_shipment(shipment_id, SHIPPING_UPDATED.topic)
    assert update.payload.status.value == "CANCELED"
    assert update.payload.location is None
    assert update.headers.causation_id == cancel_id

    response = await shipping.http.get(
        f"/api/shipping/orders/{order_id}", headers=issuer.headers(user_id)
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELED"
    assert [entry["status"] for entry in response.json()["history"]] == [
        "SCHEDULED",
        "CANCELED",
    ]


async def test_cancel_before_confirm_means_never_scheduled(
    shipping: Shipping, orders: Orders, issuer: TokenIssuer
) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    # The two topics are not ordered with each other: the cancel may overtake.
    cancel_id = await orders.send(orders.canceled(order_id, user_id, reason="PAYMENT_TIMEOUT"))
    await shipping.processed(cancel_id)
    confirm_id = await orders.send(orders.confirmed(order_id, user_id))
    await shipping.processed(confirm_id)

    assert await shipping.shipment_row(order_id) is None
    assert await shipping.outbox(order_id) == []
    assert (
        await shipping.db.fetchval(
            "SELECT reason FROM canceled_orders WHERE order_id = $1", order_id
        )
        == "PAYMENT_TIMEOUT"
    )
    response = await shipping.http.get(
        f"/api/shipping/orders/{order_id}", headers=issuer.admin_headers()
    )
    assert response.status_code == 404


async def test_cancel_in_transit_changes_nothing(shipping: Shipping, orders: Orders) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    await orders.send(orders.confirmed(order_id, user_id))
    shipment_id = await shipping.shipment_id(order_id)

    # This app's step is an hour: move just this shipment on, as the job would
    # (the session's other shipments must stay SCHEDULED).
    assert shipping.runtime.pool is not None
    uow = unit_of_work_factory(shipping.runtime.pool, outbox_events)
    async with uow() as unit:
        shipment = await unit.shipments.lock(order_id)
        assert shipment is not None and shipment.shipment_id == shipment_id
        moved = shipment.advanced(await unit.now())
        await unit.shipments.record_change(moved)
        await unit.events.updated(moved)
    assert await shipping.status(order_id) == "IN_TRANSIT"

    cancel_id = await orders.send(orders.canceled(order_id, user_id))
    await shipping.processed(cancel_id)

    assert await shipping.status(order_id) == "IN_TRANSIT"
    statuses = [
        json.loads(row["value"])["status"]
        for row in await shipping.outbox(order_id)
        if row["topic"] == SHIPPING_UPDATED.topic
    ]
    assert statuses == ["IN_TRANSIT"]
    assert (
        await shipping.db.fetchval(
            "SELECT count(*) FROM canceled_orders WHERE order_id = $1", order_id
        )
        == 0
    )
