"""The create-order saga through the orders service: REST in, real inventory over gRPC,
payment replies on real Kafka (an in-test responder), shipping events on real Kafka.

The app runs with its consumer (payments.*, shipping.*) on a group of its own that
starts at the end of the topics; each test starts the saga worker it needs around
the moment it wants sagas to advance (the same engine and bindings the app built).
Orders pay with ``tok_timeout``, which a real payment service on the same broker
never answers, so only the responder's plan for the order counts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import pytest

from generated.events.registry import SHIPPING_SCHEDULED, SHIPPING_UPDATED
from generated.models.events import ShipmentScheduledPayload, ShipmentUpdatedPayload
from generated.services.orders.events import CONSUMES
from handwritten.runtime.kafka import KafkaEventProducer
from handwritten.runtime.saga import SagaWorker
from tests.integration.orders.conftest import (
    ORDERS,
    ORDERS_URL,
    Inventory,
    Orders,
    Schema,
    User,
    assert_problem,
    eventually,
    orders_settings,
    running,
)
from tests.integration.saga.conftest import PaymentResponder, start_group_at_end

TOKEN = "tok_timeout"


@pytest.fixture(scope="module")
async def payment(kafka_bootstrap: str) -> AsyncIterator[PaymentResponder]:
    responder = PaymentResponder(kafka_bootstrap)
    ready = asyncio.Event()
    task = asyncio.create_task(responder.run(ready))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        yield responder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture(scope="module")
async def flow(
    jwks_url: str, inventory_service: Inventory, kafka_bootstrap: str
) -> AsyncIterator[Orders]:
    schema = Schema(f"test_orders_saga_{uuid.uuid4().hex[:10]}")
    admin = await asyncpg.connect(ORDERS_URL)
    await admin.execute(f"CREATE SCHEMA {schema.name}")
    group = f"test-orders-saga-{uuid.uuid4()}"
    await start_group_at_end(kafka_bootstrap, group, tuple(spec.topic for spec in CONSUMES))
    settings = orders_settings(
        schema,
        jwks_url,
        inventory_service.port,
        consumer_enabled=True,
        orders_consumer_group=group,
        saga_worker_enabled=False,  # the tests run it (see ``worker``)
    )
    try:
        async with running(settings) as started:
            yield started
    finally:
        await admin.execute(f"DROP SCHEMA {schema.name} CASCADE")
        await admin.close()


@asynccontextmanager
async def worker(orders: Orders) -> AsyncIterator[None]:
    """The saga worker on the app's engine, pool and schema, while the block runs."""
    saga = orders.runtime.saga
    assert saga is not None and orders.runtime.pool is not None
    running_worker = SagaWorker(
        saga.engine,
        orders.runtime.pool,
        concurrency=2,
        poll_interval=0.1,
        listen=lambda: asyncpg.connect(orders.settings.database_url),
    )
    task = asyncio.create_task(running_worker.run())
    try:
        yield
    finally:
        running_worker.stop()
        await asyncio.wait_for(task, 30)


async def place(
    orders: Orders, payment: PaymentResponder, user: User, product: uuid.UUID, plan: str
) -> str:
    created = await orders.create(user, [(product, 2)], paymentMethod={"token": TOKEN})
    assert created.status_code == 201, created.text
    order_id: str = created.json()["orderId"]
    payment.plans[order_id] = plan
    return order_id


async def shown(orders: Orders, user: User, order_id: str) -> dict[str, Any]:
    response = await orders.http.get(f"{ORDERS}/{order_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_status(orders: Orders, user: User, order_id: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        return (await shown(orders, user, order_id))["status"] == status

    await eventually(reached, what=f"order {order_id} to be {status}")
    return await shown(orders, user, order_id)


async def saga_of(orders: Orders, user: User, order_id: str) -> dict[str, Any]:
    response = await orders.http.get(f"{ORDERS}/{order_id}/saga", headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_saga(orders: Orders, user: User, order_id: str, state: str) -> dict[str, Any]:
    async def reached() -> bool:
        return (await saga_of(orders, user, order_id))["state"] == state

    await eventually(reached, what=f"the saga of {order_id} to be {state}")
    return await saga_of(orders, user, order_id)


async def stock(inventory: Inventory, product: uuid.UUID) -> tuple[int, int]:
    row = await inventory.db.fetchrow(
        "SELECT available_quantity, reserved_quantity FROM products WHERE product_id = $1",
        product,
    )
    assert row is not None
    return row["available_quantity"], row["reserved_quantity"]


async def shipping_event(bootstrap: str, order_id: str, tracking: str, status: str | None) -> None:
    producer = KafkaEventProducer(bootstrap, service="shipping")
    await producer.start()
    try:
        shipment = str(uuid.uuid5(uuid.NAMESPACE_URL, order_id))
        now = datetime.now(UTC).isoformat()
        if status is None:
            await producer.send(
                SHIPPING_SCHEDULED,
                ShipmentScheduledPayload.model_validate(
                    {
                        "orderId": order_id,
                        "shipmentId": shipment,
                        "trackingCode": tracking,
                        "estimatedDeliveryDate": date.today().isoformat(),
                        "scheduledAt": now,
                    }
                ),
            )
        else:
            await producer.send(
                SHIPPING_UPDATED,
                ShipmentUpdatedPayload.model_validate(
                    {
                        "orderId": order_id,
                        "shipmentId": shipment,
                        "trackingCode": tracking,
                        "status": status,
                        "location": None if status == "CANCELED" else "São Paulo, SP",
                        "occurredAt": now,
                    }
                ),
            )
    finally:
        await producer.stop()


async def test_an_order_is_confirmed_then_shipped_and_delivered(
    flow: Orders,
    inventory: Inventory,
    payment: PaymentResponder,
    customer: User,
    kafka_bootstrap: str,
) -> None:
    product = await inventory.add_product(price="50.00", stock=5)
    async with worker(flow):
        order_id = await place(flow, payment, customer, product, "succeed")
        confirmed = await wait_status(flow, customer, order_id, "CONFIRMED")
    assert confirmed["payment"] == {"status": "PROCESSED"}
    assert confirmed["shipping"] is None
    assert await stock(inventory, product) == (3, 0)  # committed: sold for good

    saga = await saga_of(flow, customer, order_id)
    assert saga["state"] == "COMPLETED" and saga["currentStep"] is None
    assert [(s["name"], s["status"], s["attempts"]) for s in saga["steps"]] == [
        ("reserve_inventory", "SUCCEEDED", 1),
        ("process_payment", "SUCCEEDED", 1),
        ("commit_reservation", "SUCCEEDED", 1),
        ("confirm_order", "SUCCEEDED", 1),
    ]
    assert all(
        s["startedAt"] and s["finishedAt"] and s["compensatedAt"] is None for s in saga["steps"]
    )
    request = payment.last_request[order_id]
    assert (request.amount, request.payment_method_token) == ("100.00", TOKEN)
    assert str(request.saga_id) == saga["sagaId"]

    await shipping_event(kafka_bootstrap, order_id, f"BR-{uuid.uuid4().hex[:10].upper()}", None)

    async def scheduled() -> bool:
        shipping = (await shown(flow, customer, order_id))["shipping"]
        return shipping is not None and shipping["status"] == "SCHEDULED"

    await eventually(scheduled, what="the scheduled shipment on the order")
    # The first shipping.scheduled wins: ours, or the real shipping service's when the
    # local stack runs beside the test (it consumes the same orders.confirmed).
    tracking = (await shown(flow, customer, order_id))["shipping"]["trackingCode"]
    await shipping_event(kafka_bootstrap, order_id, tracking, "SCHEDULED")  # ignored
    await shipping_event(kafka_bootstrap, order_id, tracking, "IN_TRANSIT")
    shipped = await wait_status(flow, customer, order_id, "SHIPPED")
    assert shipped["shipping"] == {"trackingCode": tracking, "status": "IN_TRANSIT"}
    assert_problem(
        await flow.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers), 409
    )
    await shipping_event(kafka_bootstrap, order_id, tracking, "DELIVERED")
    delivered = await wait_status(flow, customer, order_id, "DELIVERED")
    assert delivered["shipping"] == {"trackingCode": tracking, "status": "DELIVERED"}

    events = await flow.http.get(f"{ORDERS}/{order_id}/events", headers=customer.headers)
    assert [e["type"] for e in events.json()["events"]] == [
        "OrderCreated",
        "OrderConfirmed",
        "OrderShipmentScheduled",
        "OrderShipped",
        "OrderDelivered",
    ]
    topics = await flow.db.fetch("SELECT topic FROM outbox WHERE key = $1 ORDER BY id", order_id)
    assert [row["topic"] for row in topics] == [
        "orders.created",
        "payments.requested",
        "orders.confirmed",
        "orders.shipped",
        "orders.delivered",
    ]


async def test_a_declined_payment_cancels_the_order_and_puts_the_stock_back(
    flow: Orders, inventory: Inventory, payment: PaymentResponder, customer: User
) -> None:
    product = await inventory.add_product(price="30.00", stock=4)
    async with worker(flow):
        order_id = await place(flow, payment, customer, product, "fail")
        canceled = await wait_status(flow, customer, order_id, "CANCELED")
        saga = await wait_saga(flow, customer, order_id, "COMPENSATED")
    assert canceled["cancelReason"] == "PAYMENT_FAILED"
    assert canceled["payment"] == {"status": "FAILED"}
    assert await stock(inventory, product) == (4, 0)
    statuses = {s["name"]: s["status"] for s in saga["steps"]}
    assert statuses == {
        "reserve_inventory": "COMPENSATED",
        "process_payment": "FAILED",
        "commit_reservation": "SKIPPED",
        "confirm_order": "SKIPPED",
    }
    # Attempts of what each status describes: the release (1), the charge (1).
    assert [s["attempts"] for s in saga["steps"]] == [1, 1, 0, 0]
    assert saga["steps"][0]["compensatedAt"] is not None
    failed = next(s for s in saga["steps"] if s["name"] == "process_payment")
    assert "declined" in failed["error"]
    detail = await flow.db.fetchval(
        "SELECT event_data->>'detail' FROM events WHERE aggregate_id = $1"
        " AND event_type = 'OrderCanceled'",
        uuid.UUID(order_id),
    )
    assert "declined" in detail


async def test_when_two_orders_race_for_the_last_unit_one_is_canceled_out_of_stock(
    flow: Orders,
    inventory: Inventory,
    payment: PaymentResponder,
    customer: User,
    other_customer: User,
) -> None:
    product = await inventory.add_product(price="10.00", stock=2)
    # Both pass the availability check (nothing is held before the saga runs)...
    first = await place(flow, payment, customer, product, "succeed")
    second = await place(flow, payment, other_customer, product, "succeed")
    async with worker(flow):
        # ...but only one reservation can take the 2 units.
        async def both_settled() -> bool:
            states = [
                (await shown(flow, user, order))["status"]
                for user, order in ((customer, first), (other_customer, second))
            ]
            return sorted(states) == ["CANCELED", "CONFIRMED"]

        await eventually(both_settled, what="one order confirmed and the other canceled")
    outcomes = {
        order: await shown(flow, user, order)
        for user, order in ((customer, first), (other_customer, second))
    }
    loser = next(o for o in outcomes.values() if o["status"] == "CANCELED")
    assert loser["cancelReason"] == "OUT_OF_STOCK" and loser["payment"] is None
    user = customer if loser["orderId"] == first else other_customer
    saga = await wait_saga(flow, user, loser["orderId"], "COMPENSATED")
    assert [s["status"] for s in saga["steps"]] == ["FAILED", "SKIPPED", "SKIPPED", "SKIPPED"]
    assert payment.requests[loser["orderId"]] == 0  # never charged
    assert await stock(inventory, product) == (0, 0)  # no oversell, nothing left held


async def test_a_customer_cancel_after_confirmation_refunds_and_restores_the_stock(
    flow: Orders,
    inventory: Inventory,
    payment: PaymentResponder,
    customer: User,
    kafka_bootstrap: str,
) -> None:
    product = await inventory.add_product(price="25.00", stock=6)
    async with worker(flow):
        order_id = await place(flow, payment, customer, product, "succeed")
        await wait_status(flow, customer, order_id, "CONFIRMED")
        assert await stock(inventory, product) == (4, 0)
        await shipping_event(kafka_bootstrap, order_id, f"BR-{uuid.uuid4().hex[:10].upper()}", None)

        async def scheduled() -> bool:
            return (await shown(flow, customer, order_id))["shipping"] is not None

        await eventually(scheduled, what="the scheduled shipment")
        # Ours or the real shipping service's, whichever came first (see above).
        tracking = (await shown(flow, customer, order_id))["shipping"]["trackingCode"]

        response = await flow.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "CANCELED"
        assert response.json()["cancelReason"] == "CUSTOMER_REQUEST"
        saga = await wait_saga(flow, customer, order_id, "COMPENSATED")

        async def refunded() -> bool:
            return (await shown(flow, customer, order_id))["payment"] == {"status": "REFUNDED"}

        await eventually(refunded, what="the refund on the order")
    assert await stock(inventory, product) == (6, 0)  # the sold units are back on sale
    status = await inventory.db.fetchval(
        "SELECT DISTINCT status FROM inventory_reservations WHERE order_id = $1",
        uuid.UUID(order_id),
    )
    assert status == "RETURNED"
    order = await shown(flow, customer, order_id)
    assert order["shipping"] == {"trackingCode": tracking, "status": "CANCELED"}
    assert [s["status"] for s in saga["steps"]] == [
        "COMPENSATED",
        "COMPENSATED",
        "COMPENSATED",
        "SUCCEEDED",
    ]
    refunds = [r for r in payment.refund_requests if str(r.order_id) == order_id]
    assert len(refunds) == 1 and refunds[0].payment_id == payment.charged[order_id]
    topics = await flow.db.fetch("SELECT topic FROM outbox WHERE key = $1 ORDER BY id", order_id)
    assert [row["topic"] for row in topics] == [
        "orders.created",
        "payments.requested",
        "orders.confirmed",
        "orders.canceled",  # shipping cancels the shipment on it
        "payments.refund_requested",
    ]
    # A second cancel changes nothing.
    again = await flow.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers)
    assert again.status_code == 200 and again.json()["status"] == "CANCELED"


async def test_a_cancel_before_the_saga_ran_skips_every_step(
    flow: Orders, inventory: Inventory, payment: PaymentResponder, customer: User
) -> None:
    product = await inventory.add_product(price="12.00", stock=3)
    order_id = await place(flow, payment, customer, product, "succeed")
    response = await flow.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers)
    assert response.status_code == 200, response.text
    async with worker(flow):
        saga = await wait_saga(flow, customer, order_id, "COMPENSATED")
    assert [s["status"] for s in saga["steps"]] == ["SKIPPED"] * 4
    assert await stock(inventory, product) == (3, 0)
    assert payment.requests[order_id] == 0
