"""Orders through the gateway: prices from inventory, ownership, idempotency, history."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Account, register_and_login

ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}


@pytest.fixture
async def product(gateway: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    """A product of its own, so repeated runs never exhaust the demo catalogue."""
    created = await gateway.post(
        "/api/inventory/products",
        json={
            "name": f"E2E {uuid.uuid4().hex[:8]}",
            "description": "e2e",
            "price": "59.90",
            "availableQuantity": 1000,
        },
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _body(product_id: str, quantity: int = 1, token: str = "tok_visa") -> dict[str, Any]:
    return {
        "items": [{"productId": product_id, "quantity": quantity}],
        "shippingAddress": ADDRESS,
        "paymentMethod": {"token": token},
    }


async def test_an_order_is_priced_by_inventory_not_by_the_client(
    gateway: httpx.AsyncClient, account: Account, product: dict[str, Any]
) -> None:
    created = await gateway.post(
        "/api/orders", json=_body(product["productId"], 2), headers=account.bearer
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "PENDING"
    assert order["items"][0]["unitPrice"] == product["price"]
    assert Decimal(order["totalAmount"]) == 2 * Decimal(product["price"])
    smuggled = _body(product["productId"])
    smuggled["items"][0]["unitPrice"] = "0.01"
    rejected = await gateway.post("/api/orders", json=smuggled, headers=account.bearer)
    assert rejected.status_code == 422


async def test_not_enough_stock_is_409_with_the_unavailable_products(
    gateway: httpx.AsyncClient, account: Account, admin: Account
) -> None:
    created = await gateway.post(
        "/api/inventory/products",
        json={
            "name": f"Scarce {uuid.uuid4().hex[:6]}",
            "description": "",
            "price": "10.00",
            "availableQuantity": 2,
        },
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["productId"]
    response = await gateway.post("/api/orders", json=_body(product_id, 3), headers=account.bearer)
    assert response.status_code == 409, response.text
    (unavailable,) = response.json()["unavailableProducts"]
    assert unavailable == {"productId": product_id, "requestedQuantity": 3, "availableQuantity": 2}
    mine = (await gateway.get("/api/orders", headers=account.bearer)).json()["items"]
    assert all(o["items"][0]["productId"] != product_id for o in mine)


async def test_another_users_order_is_not_found(
    gateway: httpx.AsyncClient, account: Account, product: dict[str, Any]
) -> None:
    order = (
        await gateway.post("/api/orders", json=_body(product["productId"]), headers=account.bearer)
    ).json()
    stranger = await register_and_login(gateway)
    path = f"/api/orders/{order['orderId']}"
    assert (await gateway.get(path, headers=stranger.bearer)).status_code == 404
    assert (await gateway.post(f"{path}/cancel", headers=stranger.bearer)).status_code == 404
    assert (await gateway.get(path, headers=account.bearer)).status_code == 200
    mine = (await gateway.get("/api/orders", headers=stranger.bearer)).json()["items"]
    assert order["orderId"] not in {o["orderId"] for o in mine}


async def test_idempotency_key_replays_and_refuses_another_body(
    gateway: httpx.AsyncClient, account: Account, product: dict[str, Any]
) -> None:
    key = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    headers = {**account.bearer, **key}
    first = await gateway.post("/api/orders", json=_body(product["productId"]), headers=headers)
    again = await gateway.post("/api/orders", json=_body(product["productId"]), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotency-replayed"] == "true"
    other = await gateway.post("/api/orders", json=_body(product["productId"], 2), headers=headers)
    assert other.status_code == 422
    orders = (await gateway.get("/api/orders", headers=account.bearer)).json()["items"]
    assert [o["orderId"] for o in orders].count(first.json()["orderId"]) == 1


async def test_the_event_history_starts_with_order_created(
    gateway: httpx.AsyncClient, account: Account, product: dict[str, Any]
) -> None:
    order = (
        await gateway.post("/api/orders", json=_body(product["productId"]), headers=account.bearer)
    ).json()
    history = await gateway.get(f"/api/orders/{order['orderId']}/events", headers=account.bearer)
    assert history.status_code == 200
    events = history.json()["events"]
    assert events[0]["sequence"] == 1
    assert events[0]["type"] == "OrderCreated"
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
