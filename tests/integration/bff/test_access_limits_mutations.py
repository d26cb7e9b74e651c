"""Who sees what, limits against abusive documents, mutations, the summary cache."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from generated.grpc.orders import v1 as orders_pb
from tests.integration.bff.conftest import Bff, Downstreams, seed

pytestmark = pytest.mark.infra  # Redis (breaker state, summary cache)

ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}
CREATE = """
mutation Create($input: CreateOrderInput!) {
  createOrder(input: $input) {
    id status totalAmount items { productId quantity price productName }
  }
}
"""


# ------------------------------------------------------------------ authentication


async def test_no_or_bad_token_is_401_problem_and_reaches_nothing(
    bff: Bff, downstreams: Downstreams
) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        response = await bff.client.post(
            "/graphql", json={"query": "{ orders { id } }"}, headers=headers
        )
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert downstreams.calls() == {}


async def test_a_body_that_is_not_a_graphql_request_is_422(bff: Bff) -> None:
    headers = bff.issuer.headers()
    for body in ({}, {"query": ""}, {"query": "{ orders { id } }", "extra": 1}):
        response = await bff.client.post("/graphql/mobile", json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"] == "application/problem+json"


async def test_only_post_is_served(bff: Bff) -> None:
    response = await bff.client.get(
        "/graphql", params={"query": "{ orders { id } }"}, headers=bff.issuer.headers()
    )
    assert response.status_code == 405


# ----------------------------------------------------------------- authorization


async def test_another_users_order_is_not_found_and_an_admin_sees_it(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=1)
    order_id = data.orders[0].order_id
    stranger = str(uuid.uuid4())

    for field in ("order", "orderSummary"):
        body = await bff.graphql(f'{{ {field}(id: "{order_id}") {{ id }} }}', user=stranger)
        assert body["data"] == {field: None}
        (error,) = body["errors"]
        assert error["path"] == [field]
        assert error["extensions"]["code"] == "NOT_FOUND"
    # The stranger's own id was sent as the scope: orders did the filtering.
    assert downstreams.orders.requests["GetOrders"][0].user_id == stranger
    assert downstreams.orders.requests["GetOrderSummary"][0].user_id == stranger

    admin = str(uuid.uuid4())
    body = await bff.graphql(
        f'{{ order(id: "{order_id}") {{ id userId }} }}', user=admin, admin=True
    )
    assert body == {"data": {"order": {"id": order_id, "userId": data.customer}}}
    assert downstreams.orders.requests["GetOrders"][-1].user_id == ""  # unscoped


async def test_listing_is_the_callers_own_unless_admin(bff: Bff, downstreams: Downstreams) -> None:
    data = seed(downstreams, orders=2)
    other = str(uuid.uuid4())
    downstreams.orders.add(other, [(data.products[0], 1)])

    own = await bff.graphql("{ orders { id } }", user=other)
    assert len(own["data"]["orders"]) == 1

    refused = await bff.graphql(f'{{ orders(userId: "{data.customer}") {{ id }} }}', user=other)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert downstreams.calls()["orders/ListOrders"] == 1  # refused before any call

    everyone = await bff.graphql("{ orders { id } }", user=str(uuid.uuid4()), admin=True)
    assert len(everyone["data"]["orders"]) == 3
    theirs = await bff.graphql(
        f'{{ orders(userId: "{data.customer}") {{ id }} }}', user=str(uuid.uuid4()), admin=True
    )
    assert [o["id"] for o in theirs["data"]["orders"]] == [o.order_id for o in data.orders]


async def test_canceling_another_users_order_is_not_found(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=1)
    order_id = data.orders[0].order_id

    body = await bff.graphql(
        f'mutation {{ cancelOrder(orderId: "{order_id}") {{ id status }} }}', user=str(uuid.uuid4())
    )

    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert downstreams.orders.orders[order_id].status == orders_pb.OrderStatus.CONFIRMED


# ------------------------------------------------------------------------ limits


async def test_depth_limit_rejects_an_abusive_query_before_any_call(
    bff: Bff, downstreams: Downstreams
) -> None:
    # The deepest selections this schema allows (depth 4) pass...
    for deepest in (
        "{ ordersPage { orders { items { product { name } } } } }",
        "{ ordersPage { orders { shipping { history { status } } } } }",
    ):
        assert "errors" not in await bff.graphql(deepest)
    downstreams.reset_counters()

    # ...nesting beyond the limit (here through fragments) is refused unexecuted.
    abusive = (
        "query Q { ordersPage { orders { ...A } } } "
        "fragment A on Order { items { ...B } } "
        "fragment B on OrderItem { product { ...C } } "
        "fragment C on Product { id name { a { b { c } } } }"
    )
    body = await bff.graphql(abusive)

    assert "data" not in body
    limit = bff.settings.graphql_max_depth
    depth_errors = [
        e for e in body["errors"] if f"exceeds maximum operation depth of {limit}" in e["message"]
    ]
    assert depth_errors
    assert depth_errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert downstreams.calls() == {}


async def test_depth_limit_is_configurable(
    start_bff: Callable[..., Any], downstreams: Downstreams
) -> None:
    async with start_bff(graphql_max_depth=3) as bff:
        body = await bff.graphql("{ ordersPage { orders { items { product { name } } } } }")
        assert "data" not in body
        assert "exceeds maximum operation depth of 3" in body["errors"][0]["message"]
        assert "errors" not in await bff.graphql("{ orders { items { product { name } } } }")


async def test_alias_and_token_limits(bff: Bff, downstreams: Downstreams) -> None:
    aliases = " ".join(
        f"a{i}: orders {{ id }}" for i in range(bff.settings.graphql_max_aliases + 1)
    )
    body = await bff.graphql(f"{{ {aliases} }}")
    assert "data" not in body
    assert "aliases found" in body["errors"][0]["message"]

    fields = " ".join(["id"] * bff.settings.graphql_max_tokens)
    body = await bff.graphql(f"{{ orders {{ {fields} }} }}")
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "tokens" in body["errors"][0]["message"]
    assert downstreams.calls() == {}


async def test_bad_arguments_are_client_errors(bff: Bff, downstreams: Downstreams) -> None:
    body = await bff.graphql('{ order(id: "not-a-uuid") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    body = await bff.graphql("{ orders(first: 1000) { id } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert downstreams.calls() == {}


# --------------------------------------------------------------------- mutations


async def test_create_order_calls_orders_with_the_callers_id(
    bff: Bff, downstreams: Downstreams
) -> None:
    mouse = downstreams.inventory.add("Mouse", "89.90", available=5)
    customer = str(uuid.uuid4())
    variables = {
        "input": {
            "items": [{"productId": mouse, "quantity": 2}],
            "shippingAddress": ADDRESS,
            "paymentMethod": {"token": "tok_visa"},
            "idempotencyKey": "key-1",
        }
    }

    body = await bff.graphql(CREATE, user=customer, variables=variables)

    assert "errors" not in body, body
    created = body["data"]["createOrder"]
    assert created["status"] == "PENDING"
    assert created["totalAmount"] == "179.80"
    assert created["items"] == [
        {"productId": mouse, "quantity": 2, "price": "89.90", "productName": "Mouse"}
    ]
    (request,) = downstreams.orders.requests["CreateOrder"]
    assert request.user_id == customer
    assert [(i.product_id, i.quantity) for i in request.items] == [(mouse, 2)]
    assert request.shipping_address.zip_code == "01310-100"
    assert request.payment_method_token == "tok_visa"
    assert request.idempotency_key == "key-1"
    assert downstreams.orders.orders[created["id"]].user_id == customer


async def test_create_order_without_stock_is_insufficient_stock(
    bff: Bff, downstreams: Downstreams
) -> None:
    lamp = downstreams.inventory.add("Lamp", "59.90", available=1)
    variables = {
        "input": {"items": [{"productId": lamp, "quantity": 3}], "shippingAddress": ADDRESS}
    }

    body = await bff.graphql(CREATE, variables=variables)

    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INSUFFICIENT_STOCK"
    assert error["extensions"]["unavailableProducts"] == [
        {"productId": lamp, "requestedQuantity": 3, "availableQuantity": 1}
    ]
    assert downstreams.orders.orders == {}


async def test_create_order_refuses_a_price_or_malformed_money_input(bff: Bff) -> None:
    body = await bff.graphql(
        CREATE,
        variables={
            "input": {
                "items": [{"productId": str(uuid.uuid4()), "quantity": 1, "price": "1.00"}],
                "shippingAddress": ADDRESS,
            }
        },
    )
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cancel_order_calls_orders_and_maps_conflicts(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=2)
    first, second = data.orders
    downstreams.orders.orders[second.order_id].status = orders_pb.OrderStatus.SHIPPED
    cancel = "mutation C($id: ID!) { cancelOrder(orderId: $id) { id status cancelReason } }"

    body = await bff.graphql(cancel, user=data.customer, variables={"id": first.order_id})
    assert body == {
        "data": {
            "cancelOrder": {
                "id": first.order_id,
                "status": "CANCELED",
                "cancelReason": "CUSTOMER_REQUEST",
            }
        }
    }
    assert downstreams.orders.requests["CancelOrder"][0].user_id == data.customer

    body = await bff.graphql(cancel, user=data.customer, variables={"id": second.order_id})
    assert body["errors"][0]["extensions"]["code"] == "CONFLICT"
    assert downstreams.calls()["orders/CancelOrder"] == 2


# ------------------------------------------------------------------- summary cache


async def test_order_summary_is_cached_per_user_for_a_few_seconds(
    bff: Bff, downstreams: Downstreams, redis: Redis
) -> None:
    data = seed(downstreams, orders=1, shipped_every=1)
    order_id = data.orders[0].order_id
    query = f'{{ orderSummary(id: "{order_id}") {{ id status itemCount estimatedDeliveryDate }} }}'
    admin = str(uuid.uuid4())

    first = await bff.graphql(query, user=data.customer)
    second = await bff.graphql(query, user=data.customer)
    assert first == second
    assert first["data"]["orderSummary"]["estimatedDeliveryDate"] == "2025-03-05"
    assert downstreams.calls() == {"orders/GetOrderSummary": 1, "shipping/GetShipments": 1}
    key = f"{bff.settings.summary_cache_prefix}:{data.customer}:{order_id}"
    ttl_ms = await redis.pttl(key)
    assert 0 < ttl_ms <= bff.settings.summary_cache_seconds * 1000

    # Per user: an admin's read is not served from the customer's entry.
    await bff.graphql(query, user=admin, admin=True)
    assert downstreams.calls()["orders/GetOrderSummary"] == 2

    # Canceling through the BFF drops the caller's entry at once.
    await bff.graphql(
        f'mutation {{ cancelOrder(orderId: "{order_id}") {{ id }} }}', user=data.customer
    )
    after = await bff.graphql(query, user=data.customer)
    assert after["data"]["orderSummary"]["status"] == "CANCELED"
    assert downstreams.calls()["orders/GetOrderSummary"] == 3
