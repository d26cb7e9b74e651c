"""The GraphQL BFF through the gateway on the running stack: one batched call per
downstream for a page of 20 orders, the two documented shapes, and visibility.

The batching is counted on the servers' side, two ways: each downstream's
``grpc_server_handled_total`` (before/after deltas of the methods the BFF reads
with) and each downstream's access log, whose lines carry the request's correlation
id. The log count is exact for this one request whatever else runs; a metric delta
also counts anybody else's BFF queries in the same window (other suites share the
stack), and extra calls can only add to it, so a delta of exactly one per
downstream proves the request made one call each. The query asks nothing that goes
through the BFF's per-user summary cache (``orderSummary``), so no call is saved by
a cache either.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from tests.e2e.bff_support import (
    BFF_READ_METHODS,
    AccessLogs,
    graphql,
    handled_reads,
    new_correlation_id,
    new_products,
    place_order,
    wait_shipments,
)
from tests.e2e.conftest import Account, register_and_login

ORDERS = 20
PRICES = ("19.90", "0.10", "1234.57", "5.05", "77.00")
DOWNSTREAMS = tuple(BFF_READ_METHODS)
#: Measurements of the batching test before it gives up on a quiet window.
MAX_ATTEMPTS = 15

PAGE_QUERY = """
query Page($n: Int!) {
  orders(first: $n) {
    id status totalAmount
    items { productId productName quantity price }
    shipping { trackingCode status }
  }
}
"""


@dataclass(frozen=True)
class Customer:
    """A fresh user with ``ORDERS`` orders, each shipped, over products of its own."""

    account: Account
    products: dict[str, dict[str, Any]]
    #: Order id → its lines (product id, quantity), in creation order.
    orders: dict[str, list[tuple[str, int]]]


@pytest.fixture(scope="module")
async def customer(gateway: httpx.AsyncClient, admin: Account) -> AsyncIterator[Customer]:
    products = await new_products(gateway, admin, PRICES)
    ids = [p["productId"] for p in products]
    account = await register_and_login(gateway)
    orders: dict[str, list[tuple[str, int]]] = {}
    # 20 creations + ~1 poll a second stay well under 100 requests a minute per user.
    for n in range(ORDERS):
        lines = [(ids[n % len(ids)], 1 + n % 3), (ids[(n + 2) % len(ids)], 1)]
        orders[await place_order(gateway, account, lines)] = lines
    await wait_shipments(gateway, account, orders)
    yield Customer(account, {p["productId"]: p for p in products}, orders)


def assert_page(body: dict[str, Any], customer: Customer) -> None:
    """All 20 orders, each line named from the catalogue, each with its shipment."""
    assert "errors" not in body, body["errors"]
    page = body["data"]["orders"]
    assert {o["id"] for o in page} == set(customer.orders)
    for order in page:
        lines = customer.orders[order["id"]]
        assert [(i["productId"], i["quantity"]) for i in order["items"]] == lines
        for item in order["items"]:
            product = customer.products[item["productId"]]
            assert item["productName"] == product["name"]
            assert item["price"] == product["price"]
        expected_total = sum(
            (Decimal(customer.products[p]["price"]) * q for p, q in lines), Decimal(0)
        )
        assert Decimal(order["totalAmount"]) == expected_total
        assert order["shipping"] is not None and order["shipping"]["trackingCode"]


async def test_twenty_orders_with_items_and_shipping_make_one_call_per_downstream(
    gateway: httpx.AsyncClient, customer: Customer
) -> None:
    logs = AccessLogs(DOWNSTREAMS)
    deltas_seen: list[dict[str, float]] = []
    # Each attempt is one more GraphQL request of this user (100 a minute at most).
    for _ in range(MAX_ATTEMPTS):
        before = {name: await handled_reads(name) for name in DOWNSTREAMS}
        logs.mark()
        correlation_id = new_correlation_id("batching")
        body = await graphql(
            gateway,
            customer.account,
            PAGE_QUERY,
            variables={"n": ORDERS},
            correlation_id=correlation_id,
        )
        assert_page(body, customer)
        # Exact for this request, whoever else is calling: one RPC per downstream.
        assert await logs.wait_rpcs(correlation_id) == dict.fromkeys(DOWNSTREAMS, 1)
        (listing,) = logs.rpcs("orders", correlation_id)
        assert listing["method"] == "/orders.v1.OrdersService/ListOrders", listing
        after = {name: await handled_reads(name) for name in DOWNSTREAMS}
        deltas = {name: after[name] - before[name] for name in DOWNSTREAMS}
        # Every call of this request is in the window: never less than one each.
        assert all(delta >= 1 for delta in deltas.values()), deltas
        deltas_seen.append(deltas)
        if deltas == dict.fromkeys(DOWNSTREAMS, 1.0):
            return
        # Somebody else's BFF query fell in the window: measure again.
        await asyncio.sleep(1)
    raise AssertionError(
        "other BFF traffic never left a quiet window to read the metric deltas; "
        f"deltas seen: {deltas_seen}"
    )


WEB_ONLY_FIELDS = {
    # The web shape's extras over the mobile one (handwritten/bff/entrypoints/graphql/web.py).
    "userId": "userId",
    "updatedAt": "updatedAt",
    "shippingAddress": "shippingAddress { street city state zipCode }",
    "items.subtotal": "items { subtotal }",
    "items.product": "items { product { id name price availableQuantity inStock } }",
    "payment.processedAt": "payment { processedAt }",
    "payment.failureMessage": "payment { failureMessage }",
    "shipping.deliveredAt": "shipping { deliveredAt }",
    "shipping.history": "shipping { history { status occurredAt } }",
}
COMMON_QUERY = """
query Common($n: Int!) {
  orders(first: $n) {
    id status totalAmount currency itemCount cancelReason createdAt
    payment { status }
    items { productId quantity price productName }
    shipping { trackingCode status estimatedDeliveryDate }
  }
}
"""


async def test_web_and_mobile_shapes_differ_as_documented(
    gateway: httpx.AsyncClient, customer: Customer
) -> None:
    account = customer.account
    web = await graphql(gateway, account, COMMON_QUERY, variables={"n": ORDERS})
    mobile = await graphql(
        gateway, account, COMMON_QUERY, path="/graphql/mobile", variables={"n": ORDERS}
    )
    # What both shapes have, they answer alike (shipping may move on between the two).
    assert "errors" not in web and "errors" not in mobile, (web, mobile)

    def stable(body: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {**o, "status": None, "shipping": o["shipping"]["trackingCode"]}
            for o in body["data"]["orders"]
        ]

    assert stable(web) == stable(mobile)
    assert {o["id"] for o in web["data"]["orders"]} == set(customer.orders)

    for name, selection in WEB_ONLY_FIELDS.items():
        query = f"query One {{ orders(first: 1) {{ id {selection} }} }}"
        on_web = await graphql(gateway, account, query)
        assert "errors" not in on_web, (name, on_web)
        (order,) = on_web["data"]["orders"]
        on_mobile = await graphql(gateway, account, query, path="/graphql/mobile")
        assert "data" not in on_mobile, (name, on_mobile)
        codes = {e["extensions"]["code"] for e in on_mobile["errors"]}
        assert codes == {"GRAPHQL_VALIDATION_FAILED"}, (name, on_mobile)
        leaf = name.split(".")[-1]
        assert any(leaf in e["message"] for e in on_mobile["errors"]), (name, on_mobile)
        if name == "userId":
            assert order["userId"] == account.id


async def test_another_users_orders_are_invisible_in_both_shapes(
    gateway: httpx.AsyncClient, customer: Customer
) -> None:
    stranger = await register_and_login(gateway)
    order_id = next(iter(customer.orders))
    for path in ("/graphql", "/graphql/mobile"):
        listed = await graphql(gateway, stranger, "{ orders(first: 100) { id } }", path=path)
        assert listed == {"data": {"orders": []}}, (path, listed)
        for field in ("order", "orderSummary"):
            body = await graphql(
                gateway,
                stranger,
                f"query($id: ID!) {{ {field}(id: $id) {{ id }} }}",
                path=path,
                variables={"id": order_id},
            )
            assert body["data"] == {field: None}, (path, field, body)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"], body
        # Naming the owner does not help: customers may only name themselves.
        named = await graphql(
            gateway,
            stranger,
            "query($u: ID!) { orders(userId: $u, first: 100) { id } }",
            path=path,
            variables={"u": customer.account.id},
        )
        assert not (named.get("data") or {}).get("orders"), (path, named)
        assert [e["extensions"]["code"] for e in named["errors"]] == ["FORBIDDEN"], named
    # The owner sees it through both endpoints.
    for path in ("/graphql", "/graphql/mobile"):
        own = await graphql(
            gateway,
            customer.account,
            "query($id: ID!) { order(id: $id) { id } }",
            path=path,
            variables={"id": order_id},
        )
        assert own == {"data": {"order": {"id": order_id}}}, (path, own)
