"""POST /api/orders: priced by inventory, exact totals, all-or-nothing on stock."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    InventoryServiceBase,
)
from handwritten.runtime.grpc_server import GrpcServer
from tests.integration.orders.conftest import (
    ADDRESS,
    ORDERS,
    Inventory,
    Orders,
    Schema,
    User,
    assert_problem,
    orders_settings,
    running,
)


async def test_create_prices_from_inventory_with_an_exact_total(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    keyboard = await inventory.add_product(price="349.90", stock=10)
    cable = await inventory.add_product(price="0.10", stock=10)

    response = await orders.create(customer, [(keyboard, 2), (cable, 3)])

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["userId"] == str(customer.user_id)
    assert body["currency"] == "BRL"
    assert body["items"] == [
        {"productId": str(keyboard), "quantity": 2, "unitPrice": "349.90"},
        {"productId": str(cable), "quantity": 3, "unitPrice": "0.10"},
    ]
    # 2 x 349.90 + 3 x 0.10, exactly (a float sum would print 700.0999999…).
    assert body["totalAmount"] == "700.10"
    assert Decimal(body["totalAmount"]) == 2 * Decimal("349.90") + 3 * Decimal("0.10")
    assert body["shippingAddress"] == ADDRESS
    assert body["payment"] is None and body["shipping"] is None and body["cancelReason"] is None
    assert response.headers["location"] == f"{ORDERS}/{body['orderId']}"

    again = await orders.http.get(response.headers["location"], headers=customer.headers)
    assert again.status_code == 200
    assert again.json() == body


async def test_not_enough_stock_is_409_with_every_unavailable_product_and_no_order(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    plenty = await inventory.add_product(price="5.00", stock=100)
    scarce = await inventory.add_product(price="7.00", stock=1)
    unknown = uuid.uuid4()
    outbox_before = await orders.db.fetchval("SELECT count(*) FROM outbox")

    response = await orders.create(customer, [(plenty, 1), (scarce, 3), (unknown, 2)])

    body = assert_problem(response, 409)
    assert body["unavailableProducts"] == [
        {"productId": str(scarce), "requestedQuantity": 3, "availableQuantity": 1},
        {"productId": str(unknown), "requestedQuantity": 2, "availableQuantity": 0},
    ]
    assert await orders.orders_of(customer.user_id) == 0
    assert await orders.db.fetchval("SELECT count(*) FROM outbox") == outbox_before
    listed = await orders.http.get(ORDERS, headers=customer.headers)
    assert listed.json() == {"items": [], "nextCursor": None}


async def test_client_sent_prices_are_rejected(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="10.00", stock=5)
    body = {
        "items": [{"productId": str(product), "quantity": 1, "unitPrice": "0.01"}],
        "shippingAddress": ADDRESS,
    }
    response = await orders.http.post(ORDERS, json=body, headers=customer.headers)
    problem = assert_problem(response, 422)
    assert any("unitPrice" in error["field"] for error in problem["errors"])

    body = {
        "items": [{"productId": str(product), "quantity": 1}],
        "shippingAddress": ADDRESS,
        "totalAmount": "0.01",
    }
    response = await orders.http.post(ORDERS, json=body, headers=customer.headers)
    assert_problem(response, 422)
    assert await orders.orders_of(customer.user_id) == 0


async def test_a_product_twice_is_422(orders: Orders, inventory: Inventory, customer: User) -> None:
    product = await inventory.add_product(price="10.00", stock=5)
    response = await orders.create(customer, [(product, 1), (product, 2)])
    problem = assert_problem(response, 422)
    assert problem["errors"] == [
        {"field": "items[1].productId", "message": "each product may appear only once"}
    ]


async def test_a_token_is_required_before_anything_else(orders: Orders) -> None:
    response = await orders.http.post(ORDERS, json={"not": "valid"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await orders.http.get(ORDERS, headers={"Authorization": "Bearer nonsense"})
    assert_problem(response, 401)


async def test_inventory_unreachable_is_503_and_nothing_is_created(
    schema: Schema, jwks_url: str, customer: User
) -> None:
    # A second app on the same schema whose inventory target refuses connections.
    settings = orders_settings(
        schema, jwks_url, inventory_port=1, outbox_relay_enabled=False, orders_cache_ttl_seconds=0
    )
    async with running(settings) as dead_end:
        response = await dead_end.create(customer, [(uuid.uuid4(), 1)])
        problem = assert_problem(response, 503)
        assert response.headers["retry-after"]
        assert "no order was created" in problem["detail"]
        assert await dead_end.orders_of(customer.user_id) == 0


class SlowInventory(InventoryServiceBase):
    """An inventory that answers CheckAvailability far too late."""

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        await asyncio.sleep(30)
        return CheckAvailabilityResponse(available=True)


async def test_a_slow_inventory_hits_the_deadline_and_is_503(
    schema: Schema, jwks_url: str, customer: User
) -> None:
    slow = GrpcServer([SlowInventory()], service="slow-inventory")
    await slow.start("127.0.0.1", 0)
    try:
        settings = orders_settings(
            schema,
            jwks_url,
            inventory_port=slow.port,
            inventory_timeout_seconds=0.3,
            outbox_relay_enabled=False,
            orders_cache_ttl_seconds=0,
        )
        async with running(settings) as impatient:
            started = time.monotonic()
            response = await impatient.create(customer, [(uuid.uuid4(), 1)])
            assert_problem(response, 503)
            assert time.monotonic() - started < 5  # the deadline, not the 30 s answer
            assert await impatient.orders_of(customer.user_id) == 0
    finally:
        await slow.stop(grace_seconds=0)


async def test_create_and_read_over_http_agree_on_money_format(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="1000.00", stock=1000)
    response = await orders.create(customer, [(product, 1000)])
    assert response.status_code == 201
    assert response.json()["totalAmount"] == "1000000.00"
    assert isinstance(response.json()["totalAmount"], str)
