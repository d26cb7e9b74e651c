"""The read side through the gateway: analytics numbers and the GraphQL BFF."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Account, register_and_login, wait_for

ADDRESS = {"street": "Rua XV, 10", "city": "Curitiba", "state": "PR", "zipCode": "80020-310"}
PRICE = Decimal("987.65")


@pytest.fixture
async def product(gateway: httpx.AsyncClient, admin: Account) -> dict[str, Any]:
    """A pricey product of its own: it tops today's sales, and its numbers are exact."""
    created = await gateway.post(
        "/api/inventory/products",
        json={
            "name": f"Read side {uuid.uuid4().hex[:8]}",
            "description": "e2e",
            "price": str(PRICE),
            "availableQuantity": 500,
        },
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


async def _confirmed_order(
    gateway: httpx.AsyncClient, account: Account, product_id: str, quantity: int
) -> dict[str, Any]:
    created = await gateway.post(
        "/api/orders",
        json={
            "items": [{"productId": product_id, "quantity": quantity}],
            "shippingAddress": ADDRESS,
            "paymentMethod": {"token": "tok_visa"},
        },
        headers=account.bearer,
    )
    assert created.status_code == 201, created.text
    order_id = created.json()["orderId"]
    order: dict[str, Any] = {}

    async def confirmed() -> bool:
        nonlocal order
        order = (await gateway.get(f"/api/orders/{order_id}", headers=account.bearer)).json()
        return order["status"] in ("CONFIRMED", "SHIPPED", "DELIVERED")

    await wait_for(confirmed, seconds=60, what=f"order {order_id} to be confirmed")
    return order


async def test_top_products_and_sales_by_day_count_confirmed_orders_exactly(
    gateway: httpx.AsyncClient, admin: Account, account: Account, product: dict[str, Any]
) -> None:
    await _confirmed_order(gateway, account, product["productId"], 40)
    await _confirmed_order(gateway, account, product["productId"], 35)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    expected = {
        "productId": product["productId"],
        "unitsSold": 75,
        "orderCount": 2,
        "revenue": str(PRICE * 75),
    }
    entry: dict[str, Any] | None = None

    async def counted() -> bool:
        nonlocal entry
        response = await gateway.get(
            "/api/analytics/top-products",
            params={"from": today, "to": today, "limit": 100},
            headers=admin.bearer,
        )
        assert response.status_code == 200, response.text
        entry = next((p for p in response.json() if p["productId"] == product["productId"]), None)
        return entry == expected

    await wait_for(counted, seconds=60, what="analytics to count both orders")
    sales = await gateway.get(
        "/api/analytics/sales-by-day", params={"from": today, "to": today}, headers=admin.bearer
    )
    assert sales.status_code == 200
    (day,) = sales.json()
    assert day["date"] == today
    assert day["totalOrders"] >= 2
    assert Decimal(day["totalRevenue"]) >= PRICE * 75
    forbidden = await gateway.get(
        "/api/analytics/sales-by-day", params={"from": today, "to": today}, headers=account.bearer
    )
    assert forbidden.status_code == 403


WEB_QUERY = """
query Mine {
  orders(first: 50) {
    id status totalAmount userId
    items { productId productName quantity price }
    shipping { trackingCode status history { status } }
  }
}
"""
MOBILE_QUERY = """
query Mine { orders(first: 50) { id status totalAmount items { productName quantity } } }
"""


async def test_the_bff_joins_orders_products_and_shipping_for_the_caller_only(
    gateway: httpx.AsyncClient, account: Account, product: dict[str, Any]
) -> None:
    order = await _confirmed_order(gateway, account, product["productId"], 1)

    async def shipped_in_graph() -> bool:
        response = await gateway.post("/graphql", json={"query": WEB_QUERY}, headers=account.bearer)
        assert response.status_code == 200, response.text
        found = [o for o in response.json()["data"]["orders"] if o["id"] == order["orderId"]]
        return bool(found) and found[0]["shipping"] is not None

    await wait_for(shipped_in_graph, seconds=60, what="the shipment in the BFF's order")
    web = await gateway.post("/graphql", json={"query": WEB_QUERY}, headers=account.bearer)
    body = web.json()
    assert "errors" not in body, body
    (mine,) = [o for o in body["data"]["orders"] if o["id"] == order["orderId"]]
    assert mine["userId"] == account.id
    assert mine["items"] == [
        {
            "productId": product["productId"],
            "productName": product["name"],
            "quantity": 1,
            "price": product["price"],
        }
    ]
    rest = (await gateway.get(f"/api/orders/{order['orderId']}", headers=account.bearer)).json()
    assert rest["shipping"] is not None
    assert mine["shipping"]["trackingCode"] == rest["shipping"]["trackingCode"]

    mobile = await gateway.post(
        "/graphql/mobile", json={"query": MOBILE_QUERY}, headers=account.bearer
    )
    assert mobile.status_code == 200
    assert any(o["id"] == order["orderId"] for o in mobile.json()["data"]["orders"])
    web_only = await gateway.post(
        "/graphql/mobile", json={"query": WEB_QUERY}, headers=account.bearer
    )
    assert web_only.json().get("errors"), "the mobile shape has no userId or history"

    stranger = await register_and_login(gateway)
    theirs = await gateway.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { order(id: $id) { id } }",
            "variables": {"id": order["orderId"]},
        },
        headers=stranger.bearer,
    )
    assert theirs.status_code == 200
    assert theirs.json()["data"]["order"] is None
    assert (await gateway.post("/graphql", json={"query": WEB_QUERY})).status_code == 401
