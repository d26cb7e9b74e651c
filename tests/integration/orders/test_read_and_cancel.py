"""Reading, listing and canceling orders; visibility between users; event history."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from handwritten.orders.adapters.cache import KEY_PREFIX
from tests.integration.orders.conftest import (
    ORDERS,
    Inventory,
    Orders,
    User,
    assert_problem,
)


async def _order(orders: Orders, inventory: Inventory, user: User, price: str = "10.00") -> dict:  # type: ignore[type-arg]
    product = await inventory.add_product(price=price, stock=50)
    response = await orders.create(user, [(product, 1)])
    assert response.status_code == 201, response.text
    body: dict = response.json()  # type: ignore[type-arg]
    return body


async def test_another_users_order_is_404_for_every_route(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    order = await _order(orders, inventory, customer)
    path = f"{ORDERS}/{order['orderId']}"
    for method, suffix in (("GET", ""), ("POST", "/cancel"), ("GET", "/events"), ("GET", "/saga")):
        response = await orders.http.request(method, path + suffix, headers=other_customer.headers)
        assert_problem(response, 404)
    missing = await orders.http.get(f"{ORDERS}/{uuid.uuid4()}", headers=customer.headers)
    assert_problem(missing, 404)
    # The failed cancel changed nothing.
    mine = await orders.http.get(path, headers=customer.headers)
    assert mine.json()["status"] == "PENDING"


async def test_an_admin_sees_and_cancels_any_order(
    orders: Orders, inventory: Inventory, customer: User, admin: User
) -> None:
    order = await _order(orders, inventory, customer)
    path = f"{ORDERS}/{order['orderId']}"
    seen = await orders.http.get(path, headers=admin.headers)
    assert seen.status_code == 200
    assert seen.json() == order
    canceled = await orders.http.post(f"{path}/cancel", headers=admin.headers)
    assert canceled.status_code == 200
    assert canceled.json()["status"] == "CANCELED"
    # "The caller's orders": an admin's list holds their own orders only.
    listed = await orders.http.get(ORDERS, headers=admin.headers)
    assert listed.json()["items"] == []


async def test_list_is_newest_first_and_paginates(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    created = [(await _order(orders, inventory, customer))["orderId"] for _ in range(5)]
    await _order(orders, inventory, other_customer)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor is not None:
            params["cursor"] = cursor
        page = await orders.http.get(ORDERS, params=params, headers=customer.headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        assert all(item["userId"] == str(customer.user_id) for item in body["items"])
        seen += [item["orderId"] for item in body["items"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == list(reversed(created))


async def test_a_foreign_cursor_is_422(orders: Orders, customer: User) -> None:
    response = await orders.http.get(ORDERS, params={"cursor": "Zm9v"}, headers=customer.headers)
    assert_problem(response, 422)


async def test_cancel_is_customer_request_and_repeating_it_changes_nothing(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    order = await _order(orders, inventory, customer)
    path = f"{ORDERS}/{order['orderId']}"
    first = await orders.http.post(f"{path}/cancel", headers=customer.headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "CANCELED"
    assert first.json()["cancelReason"] == "CUSTOMER_REQUEST"
    second = await orders.http.post(f"{path}/cancel", headers=customer.headers)
    assert second.json() == first.json()
    history = await orders.http.get(f"{path}/events", headers=customer.headers)
    assert [event["type"] for event in history.json()["events"]] == [
        "OrderCreated",
        "OrderCanceled",
    ]


async def test_cancel_after_shipping_is_409(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    order = await _order(orders, inventory, customer)
    order_id = uuid.UUID(order["orderId"])
    # What the saga and shipping will do later, through the same application service.
    await orders.service.confirm_order(order_id, payment_id=uuid.uuid4())
    await orders.service.mark_shipped(order_id, tracking_code="BR-TEST0001")
    response = await orders.http.post(f"{ORDERS}/{order_id}/cancel", headers=customer.headers)
    problem = assert_problem(response, 409)
    assert "SHIPPED" in problem["detail"]
    shown = await orders.http.get(f"{ORDERS}/{order_id}", headers=customer.headers)
    assert shown.json()["status"] == "SHIPPED"
    assert shown.json()["payment"] == {"status": "PROCESSED"}
    assert shown.json()["shipping"] == {"trackingCode": "BR-TEST0001", "status": "IN_TRANSIT"}


async def test_events_list_the_history_in_sequence(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    order = await _order(orders, inventory, customer, price="12.34")
    order_id = uuid.UUID(order["orderId"])
    payment_id = uuid.uuid4()
    await orders.service.confirm_order(order_id, payment_id=payment_id)
    await orders.service.mark_shipped(order_id, tracking_code="BR-TEST0002")
    await orders.service.mark_delivered(order_id)

    response = await orders.http.get(f"{ORDERS}/{order_id}/events", headers=customer.headers)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orderId"] == str(order_id)
    events = body["events"]
    assert [(e["sequence"], e["type"]) for e in events] == [
        (1, "OrderCreated"),
        (2, "OrderConfirmed"),
        (3, "OrderShipped"),
        (4, "OrderDelivered"),
    ]
    assert events[0]["data"]["totalAmount"] == "12.34"
    assert events[0]["data"]["orderId"] == str(order_id)
    assert events[1]["data"]["paymentId"] == str(payment_id)
    assert events[2]["data"]["trackingCode"] == "BR-TEST0002"
    occurred = [e["occurredAt"] for e in events]
    assert occurred == sorted(occurred)
    delivered = await orders.http.get(f"{ORDERS}/{order_id}", headers=customer.headers)
    assert delivered.json()["status"] == "DELIVERED"


async def test_an_order_has_its_saga_from_the_moment_it_is_created(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    order = await _order(orders, inventory, customer)
    path = f"{ORDERS}/{order['orderId']}/saga"
    response = await orders.http.get(path, headers=customer.headers)
    assert response.status_code == 200, response.text
    saga = response.json()
    assert saga["orderId"] == order["orderId"]
    assert saga["state"] == "RUNNING" and saga["currentStep"] == "reserve_inventory"
    assert [(s["name"], s["status"], s["attempts"]) for s in saga["steps"]] == [
        ("reserve_inventory", "PENDING", 0),
        ("process_payment", "PENDING", 0),
        ("commit_reservation", "PENDING", 0),
        ("confirm_order", "PENDING", 0),
    ]
    # Same transaction as the order: the saga row exists with its start data.
    row = await orders.db.fetchrow(
        "SELECT saga_id, payload->>'paymentMethodToken' AS token FROM saga_instances"
        " WHERE saga_type = 'create_order' AND correlation_key = $1",
        order["orderId"],
    )
    assert row is not None and str(row["saga_id"]) == saga["sagaId"]
    assert row["token"] == "tok_visa"
    # Another user's order's saga is as unknown as the order.
    assert_problem(await orders.http.get(path, headers=other_customer.headers), 404)


async def test_the_cache_is_filled_by_reads_and_dropped_by_changes(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    order = await _order(orders, inventory, customer)
    path = f"{ORDERS}/{order['orderId']}"
    key = f"{KEY_PREFIX}{order['orderId']}"
    redis = Redis.from_url(orders.settings.redis_url)
    try:
        assert (await orders.http.get(path, headers=customer.headers)).status_code == 200
        assert await redis.exists(key) == 1
        await orders.http.post(f"{path}/cancel", headers=customer.headers)
        assert await redis.exists(key) == 0
        again = await orders.http.get(path, headers=customer.headers)
        assert again.json()["status"] == "CANCELED"
        assert await redis.exists(key) == 1
        cached = await orders.http.get(path, headers=customer.headers)  # served from Redis
        assert cached.json() == again.json()
    finally:
        await redis.aclose()
