"""The create-order saga end to end: every outcome, concurrency, duplicate delivery.

Runs against the local stack through the gateway (real PostgreSQL, Kafka, Redis).
Each test creates its own product so repeated runs never exhaust stock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx

from tests.e2e.conftest import Account, register_and_login
from tests.e2e.saga_support import (
    CONFIRMED_OR_BEYOND,
    SETTLED,
    admin_payment,
    event_types,
    get_saga,
    new_product,
    order_body,
    payment_rows,
    place_order,
    poll,
    records_of_order,
    republish,
    shipment_rows,
    stock,
    topics_of,
    wait_consumed,
    wait_saga_terminal,
    wait_status,
)

PAYMENT_TIMEOUT_SECONDS = 30  # specs/sagas/create_order.saga.yaml, process_payment
HAPPY_HISTORY = [
    "OrderCreated",
    "OrderConfirmed",
    "OrderShipmentScheduled",
    "OrderShipped",
    "OrderDelivered",
]


async def test_happy_path_reaches_delivered_and_every_service_agrees(
    gateway: httpx.AsyncClient, account: Account, admin: Account
) -> None:
    product = await new_product(gateway, admin, stock=20)
    created = await gateway.post(
        "/api/orders", json=order_body(product, quantity=3), headers=account.bearer
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["orderId"]

    order = await wait_status(gateway, account, order_id, {"DELIVERED", "CANCELED"}, seconds=90)
    assert order["status"] == "DELIVERED", order
    assert order["cancelReason"] is None
    assert order["payment"]["status"] in {"PROCESSED", "SUCCEEDED"}, order["payment"]
    assert order["shipping"]["status"] == "DELIVERED"

    assert await stock(gateway, product) == (20 - 3, 0)
    payment = await admin_payment(gateway, admin, order_id)
    assert payment["status"] == "SUCCEEDED", payment
    assert payment["amount"] == created.json()["totalAmount"]
    shipment = (
        await gateway.get(f"/api/shipping/orders/{order_id}", headers=account.bearer)
    ).json()
    assert shipment["status"] == "DELIVERED", shipment
    assert shipment["trackingCode"] == order["shipping"]["trackingCode"]
    assert [h["status"] for h in shipment["history"]] == ["SCHEDULED", "IN_TRANSIT", "DELIVERED"]

    assert await event_types(gateway, account, order_id) == HAPPY_HISTORY
    saga = await get_saga(gateway, account, order_id)
    assert saga["state"] == "COMPLETED", saga
    assert [(s["name"], s["status"]) for s in saga["steps"]] == [
        ("reserve_inventory", "SUCCEEDED"),
        ("process_payment", "SUCCEEDED"),
        ("commit_reservation", "SUCCEEDED"),
        ("confirm_order", "SUCCEEDED"),
    ]
    assert await payment_rows(order_id) == 1
    assert await shipment_rows(order_id) == 1


async def _assert_compensated(
    gateway: httpx.AsyncClient, account: Account, order_id: str, reason: str
) -> dict[str, Any]:
    order = await get_order_settled(gateway, account, order_id, seconds=30)
    assert order["status"] == "CANCELED", order
    assert order["cancelReason"] == reason, order
    saga = await wait_saga_terminal(gateway, account, order_id, seconds=30)
    assert saga["state"] == "COMPENSATED", saga
    steps = {s["name"]: s for s in saga["steps"]}
    assert steps["reserve_inventory"]["compensatedAt"] is not None, saga
    assert steps["commit_reservation"]["status"] != "SUCCEEDED", saga
    types = await event_types(gateway, account, order_id)
    assert types[0] == "OrderCreated" and types[-1] == "OrderCanceled", types
    assert "OrderConfirmed" not in types, types
    return order


async def get_order_settled(
    gateway: httpx.AsyncClient, account: Account, order_id: str, *, seconds: float
) -> dict[str, Any]:
    return await wait_status(gateway, account, order_id, SETTLED, seconds=seconds)


async def test_a_declined_card_cancels_with_payment_failed_and_releases_the_stock(
    gateway: httpx.AsyncClient, account: Account, admin: Account
) -> None:
    product = await new_product(gateway, admin, stock=5)
    order_id = await place_order(gateway, account, product, token="tok_chargeDeclined")
    await wait_status(gateway, account, order_id, SETTLED, seconds=60)
    await _assert_compensated(gateway, account, order_id, "PAYMENT_FAILED")
    await poll(
        lambda: _stock_is(gateway, product, (5, 0)), seconds=30, what="the stock to be released"
    )
    payment = await admin_payment(gateway, admin, order_id)
    assert payment["status"] == "FAILED", payment
    assert await payment_rows(order_id) == 1
    assert await shipment_rows(order_id) == 0


async def test_a_silent_gateway_cancels_with_payment_timeout_after_the_spec_timeout(
    gateway: httpx.AsyncClient, account: Account, admin: Account
) -> None:
    product = await new_product(gateway, admin, stock=5)
    started = asyncio.get_running_loop().time()
    order_id = await place_order(gateway, account, product, token="tok_timeout")
    # Reserved while the payment hangs.
    await poll(
        lambda: _stock_is(gateway, product, (4, 1)), seconds=30, what="the stock to be reserved"
    )
    await wait_status(gateway, account, order_id, SETTLED, seconds=90)
    elapsed = asyncio.get_running_loop().time() - started
    assert elapsed >= PAYMENT_TIMEOUT_SECONDS - 1, f"canceled after only {elapsed:.1f} s"
    await _assert_compensated(gateway, account, order_id, "PAYMENT_TIMEOUT")
    await poll(
        lambda: _stock_is(gateway, product, (5, 0)), seconds=30, what="the stock to be released"
    )
    assert await shipment_rows(order_id) == 0
    # Whatever the payment service recorded, no money stays taken.
    if await payment_rows(order_id):
        payment = await admin_payment(gateway, admin, order_id)
        assert payment["status"] != "SUCCEEDED", payment


async def _stock_is(gateway: httpx.AsyncClient, product: str, expected: tuple[int, int]) -> bool:
    return await stock(gateway, product) == expected


async def test_thirty_concurrent_orders_on_stock_ten_confirm_exactly_ten(
    gateway: httpx.AsyncClient, admin: Account
) -> None:
    stock_size, users, per_user = 10, 3, 10
    product = await new_product(gateway, admin, stock=stock_size)
    accounts = [await register_and_login(gateway) for _ in range(users)]

    async def attempt(account: Account) -> tuple[Account, httpx.Response]:
        response = await gateway.post(
            "/api/orders", json=order_body(product), headers=account.bearer, timeout=60
        )
        return account, response

    results = await asyncio.gather(*(attempt(a) for a in accounts for _ in range(per_user)))
    codes = Counter(r.status_code for _, r in results)
    assert set(codes) <= {201, 409}, [(r.status_code, r.text) for _, r in results]
    placed = {r.json()["orderId"]: a for a, r in results if r.status_code == 201}
    assert len(placed) == codes[201] >= stock_size

    statuses: dict[str, dict[str, Any]] = {}

    async def all_settled() -> bool:
        for account in accounts:
            listed = await gateway.get("/api/orders?limit=100", headers=account.bearer)
            assert listed.status_code == 200, listed.text
            for order in listed.json()["items"]:
                if order["orderId"] in placed:
                    statuses[order["orderId"]] = order
        # stock is never negative, not even on the way
        available, reserved = await stock(gateway, product)
        assert available >= 0 and reserved >= 0, (available, reserved)
        return len(statuses) == len(placed) and all(
            o["status"] in SETTLED for o in statuses.values()
        )

    await poll(all_settled, seconds=180, what="every concurrent order to settle", interval=2)
    confirmed = [o for o in statuses.values() if o["status"] in CONFIRMED_OR_BEYOND]
    canceled = [o for o in statuses.values() if o["status"] == "CANCELED"]
    assert len(confirmed) == stock_size, Counter(o["status"] for o in statuses.values())
    assert {o["cancelReason"] for o in canceled} <= {"OUT_OF_STOCK"}, canceled
    assert codes[409] + len(canceled) == users * per_user - stock_size
    await poll(
        lambda: _stock_is(gateway, product, (0, 0)), seconds=30, what="reservations to settle"
    )
    available, _ = await stock(gateway, product)
    assert available + len(confirmed) == stock_size


async def test_redelivered_payment_and_shipping_events_change_nothing(
    gateway: httpx.AsyncClient, account: Account, admin: Account, kafka_bootstrap: str
) -> None:
    product = await new_product(gateway, admin, stock=5)
    order_id = await place_order(gateway, account, product)
    await wait_status(gateway, account, order_id, {"DELIVERED", "CANCELED"}, seconds=90)
    history_before = await event_types(gateway, account, order_id)
    assert history_before == HAPPY_HISTORY
    payment_before = await admin_payment(gateway, admin, order_id)

    topics = topics_of(["payments.", "shipping.", "orders.confirmed"])
    records = await records_of_order(kafka_bootstrap, topics, order_id)
    seen = Counter(r.topic for r in records)
    for topic in ("payments.requested", "payments.processed", "shipping.scheduled"):
        assert seen[topic] >= 1, f"no {topic} record keyed by the order: {seen}"
    assert seen["shipping.updated"] >= 2, seen
    # Twice over: every message the saga and the shipment saw, delivered again.
    produced = await republish(kafka_bootstrap, records + records)
    await wait_consumed(kafka_bootstrap, produced, ["orders", "payment", "shipping"])

    assert await payment_rows(order_id) == 1
    assert await shipment_rows(order_id) == 1
    payment_after = await admin_payment(gateway, admin, order_id)
    assert payment_after == payment_before
    history_after = await event_types(gateway, account, order_id)
    assert history_after == HAPPY_HISTORY, history_after
    order = (await gateway.get(f"/api/orders/{order_id}", headers=account.bearer)).json()
    assert order["status"] == "DELIVERED", order
    assert (await get_saga(gateway, account, order_id))["state"] == "COMPLETED"
    assert await stock(gateway, product) == (4, 0)
