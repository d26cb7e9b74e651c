"""One batched call per downstream per query, and the web vs mobile shapes."""

from __future__ import annotations

import pytest

from tests.integration.bff.conftest import Bff, Downstreams, seed

pytestmark = pytest.mark.infra  # Redis (breaker state, summary cache)

WEB_ORDERS = """
query Orders {
  orders(first: 20) {
    id userId status totalAmount currency itemCount createdAt updatedAt
    shippingAddress { street city state zipCode }
    payment { status processedAt failureMessage }
    items { productId productName quantity price subtotal
            product { id name price availableQuantity inStock } }
    shipping { trackingCode status estimatedDeliveryDate deliveredAt
               history { status location occurredAt } }
  }
}
"""

MOBILE_ORDERS = """
query Orders {
  orders(first: 20) {
    id status totalAmount currency itemCount createdAt cancelReason
    payment { status }
    items { productId productName quantity price }
    shipping { status trackingCode estimatedDeliveryDate }
  }
}
"""


async def test_twenty_orders_with_items_and_shipping_make_one_call_per_downstream(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=20)

    body = await bff.graphql(WEB_ORDERS, user=data.customer)

    assert "errors" not in body
    orders = body["data"]["orders"]
    assert [order["id"] for order in orders] == [order.order_id for order in data.orders]
    assert downstreams.calls() == {
        "orders/ListOrders": 1,
        "inventory/GetProducts": 1,
        "shipping/GetShipments": 1,
    }
    # One batch each, deduplicated: five products, twenty orders.
    (products_request,) = downstreams.inventory.requests["GetProducts"]
    assert sorted(products_request.product_ids) == sorted(data.products)
    (shipments_request,) = downstreams.shipping.requests["GetShipments"]
    assert sorted(shipments_request.order_ids) == sorted(o.order_id for o in data.orders)
    # The customer's scope was sent, not an unscoped (admin) listing.
    (listing,) = downstreams.orders.requests["ListOrders"]
    assert listing.user_id == data.customer
    assert listing.page_size == 20

    first = orders[0]
    source = data.orders[0]
    assert first["totalAmount"] == source.total_amount
    assert isinstance(first["totalAmount"], str)
    assert first["items"][0]["productName"] == "Notebook"  # the catalogue's current name
    assert first["items"][0]["product"]["price"] == "3500.00"
    assert first["shipping"]["trackingCode"] == f"BR{source.order_id[:8].upper()}"
    assert first["shipping"]["status"] == "DELIVERED"
    assert [h["status"] for h in first["shipping"]["history"]] == ["SCHEDULED", "DELIVERED"]
    assert orders[1]["shipping"] is None  # not scheduled yet: null without an error


async def test_mobile_shape_is_minimal_and_batches_the_same_way(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=20)

    body = await bff.graphql(MOBILE_ORDERS, user=data.customer, path="/graphql/mobile")

    assert "errors" not in body
    assert len(body["data"]["orders"]) == 20
    assert set(body["data"]["orders"][0]) == {
        "id", "status", "totalAmount", "currency", "itemCount", "createdAt", "cancelReason",
        "payment", "items", "shipping",
    }  # fmt: skip
    assert downstreams.calls() == {
        "orders/ListOrders": 1,
        "inventory/GetProducts": 1,
        "shipping/GetShipments": 1,
    }


async def test_mobile_refuses_the_web_only_fields(bff: Bff, downstreams: Downstreams) -> None:
    data = seed(downstreams, orders=2)
    web_only = [
        "orders { userId }",
        "orders { shippingAddress { city } }",
        "orders { items { product { name } } }",
        "orders { items { subtotal } }",
        "orders { payment { processedAt } }",
        "orders { shipping { history { status } } }",
    ]
    for selection in web_only:
        mobile = await bff.graphql(f"{{ {selection} }}", user=data.customer, path="/graphql/mobile")
        assert "data" not in mobile, selection
        assert mobile["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "Cannot query field" in mobile["errors"][0]["message"]

        web = await bff.graphql(f"{{ {selection} }}", user=data.customer)
        assert "errors" not in web, (selection, web)
    # Refused documents never reached a downstream.
    assert downstreams.calls()["orders/ListOrders"] == len(web_only)


async def test_fields_not_asked_for_cost_no_calls(bff: Bff, downstreams: Downstreams) -> None:
    data = seed(downstreams, orders=20)

    body = await bff.graphql(
        "{ orders { id status items { productId quantity price } } }", user=data.customer
    )

    assert len(body["data"]["orders"]) == 20
    assert downstreams.calls() == {"orders/ListOrders": 1}


async def test_aliased_order_fields_share_one_get_orders_batch(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=3)
    a, b, c = (order.order_id for order in data.orders)

    body = await bff.graphql(
        f'{{ a: order(id: "{a}") {{ id shipping {{ status }} }} '
        f'b: order(id: "{b}") {{ id shipping {{ status }} }} '
        f'c: order(id: "{c}") {{ id items {{ productName }} }} }}',
        user=data.customer,
    )

    assert "errors" not in body
    assert [body["data"][key]["id"] for key in "abc"] == [a, b, c]
    assert downstreams.calls() == {
        "orders/GetOrders": 1,
        "shipping/GetShipments": 1,
        "inventory/GetProducts": 1,
    }
    (request,) = downstreams.orders.requests["GetOrders"]
    assert sorted(request.order_ids) == sorted([a, b, c])
    assert request.user_id == data.customer


async def test_pages_follow_the_cursor(bff: Bff, downstreams: Downstreams) -> None:
    data = seed(downstreams, orders=5)
    query = """query Page($after: String) {
      ordersPage(first: 2, after: $after) { orders { id } nextCursor totalCount } }"""

    seen: list[str] = []
    after = None
    while True:
        page = (await bff.graphql(query, user=data.customer, variables={"after": after}))["data"][
            "ordersPage"
        ]
        assert page["totalCount"] == 5
        seen += [order["id"] for order in page["orders"]]
        after = page["nextCursor"]
        if after is None:
            break

    assert seen == [order.order_id for order in data.orders]
