"""orders.v1.OrdersService over a real grpclib channel, on the same use cases as REST."""

from __future__ import annotations

import uuid

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.orders.v1 import (
    CancelOrderRequest,
    CancelReason,
    CreateOrderRequest,
    GetOrderRequest,
    GetOrdersRequest,
    GetOrderSummaryRequest,
    ListOrdersRequest,
    OrderItemInput,
    OrderStatus,
    ShippingAddress,
)
from tests.integration.orders.conftest import ORDERS, Inventory, Orders, User

ADDRESS = ShippingAddress(street="Rua A, 10", city="Recife", state="PE", zip_code="50000-000")


async def _create(orders: Orders, inventory: Inventory, user: User, price: str = "10.00") -> str:
    product = await inventory.add_product(price=price, stock=20)
    response = await orders.create(user, [(product, 1)])
    assert response.status_code == 201
    order_id: str = response.json()["orderId"]
    return order_id


async def test_get_orders_is_a_scoped_batch_in_request_order(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    first = await _create(orders, inventory, customer)
    second = await _create(orders, inventory, customer)
    foreign = await _create(orders, inventory, other_customer)
    unknown = str(uuid.uuid4())
    ids = [second, unknown, first, foreign, second]

    mine = await orders.grpc.get_orders(
        GetOrdersRequest(order_ids=ids, user_id=str(customer.user_id))
    )
    assert [order.order_id for order in mine.orders] == [second, first]
    assert all(order.user_id == str(customer.user_id) for order in mine.orders)
    assert mine.orders[0].status is OrderStatus.PENDING
    assert mine.orders[0].total_amount == "10.00"
    assert mine.orders[0].items[0].product_name.startswith("Orders test product")

    unscoped = await orders.grpc.get_orders(GetOrdersRequest(order_ids=ids))
    assert [order.order_id for order in unscoped.orders] == [second, first, foreign]

    with pytest.raises(GRPCError) as raised:
        await orders.grpc.get_orders(GetOrdersRequest(order_ids=["nope"]))
    assert raised.value.status is Status.INVALID_ARGUMENT
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.get_orders(GetOrdersRequest(order_ids=[]))
    assert raised.value.status is Status.INVALID_ARGUMENT


async def test_cancel_order_over_grpc(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    order_id = await _create(orders, inventory, customer)
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.cancel_order(
            CancelOrderRequest(order_id=order_id, user_id=str(other_customer.user_id))
        )
    assert raised.value.status is Status.NOT_FOUND

    reply = await orders.grpc.cancel_order(
        CancelOrderRequest(order_id=order_id, user_id=str(customer.user_id))
    )
    assert reply.order is not None
    assert reply.order.status is OrderStatus.CANCELED
    assert reply.order.cancel_reason is CancelReason.CUSTOMER_REQUEST
    again = await orders.grpc.cancel_order(CancelOrderRequest(order_id=order_id))
    assert again.order == reply.order
    # REST sees the same order.
    shown = await orders.http.get(f"{ORDERS}/{order_id}", headers=customer.headers)
    assert shown.json()["status"] == "CANCELED"


async def test_cancel_after_shipping_is_failed_precondition(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    order_id = await _create(orders, inventory, customer)
    await orders.service.confirm_order(uuid.UUID(order_id), payment_id=uuid.uuid4())
    await orders.service.mark_shipped(uuid.UUID(order_id), tracking_code="BR-GRPC0001")
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.cancel_order(CancelOrderRequest(order_id=order_id))
    assert raised.value.status is Status.FAILED_PRECONDITION


async def test_create_order_over_grpc_with_idempotency(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="3.33", stock=10)
    request = CreateOrderRequest(
        user_id=str(customer.user_id),
        items=[OrderItemInput(product_id=str(product), quantity=3)],
        shipping_address=ADDRESS,
        idempotency_key="grpc-key-1",
    )
    first = await orders.grpc.create_order(request)
    assert first.order is not None
    assert first.order.total_amount == "9.99"
    assert first.order.items[0].unit_price == "3.33"
    second = await orders.grpc.create_order(request)
    assert second == first
    assert await orders.orders_of(customer.user_id) == 1

    request.items[0].quantity = 2
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.create_order(request)
    assert raised.value.status is Status.FAILED_PRECONDITION

    short = await orders.grpc.create_order(
        CreateOrderRequest(
            user_id=str(customer.user_id),
            items=[OrderItemInput(product_id=str(product), quantity=11)],
            shipping_address=ADDRESS,
        )
    )
    assert short.order is None
    assert [(p.requested_quantity, p.available_quantity) for p in short.unavailable_products] == [
        (11, 10)
    ]


async def test_create_order_validates_its_input(orders: Orders, customer: User) -> None:
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.create_order(
            CreateOrderRequest(user_id=str(customer.user_id), shipping_address=ADDRESS)
        )
    assert raised.value.status is Status.INVALID_ARGUMENT
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.create_order(
            CreateOrderRequest(
                user_id="",
                items=[OrderItemInput(product_id=str(uuid.uuid4()), quantity=1)],
                shipping_address=ADDRESS,
            )
        )
    assert raised.value.status is Status.INVALID_ARGUMENT


async def test_get_order_summary_and_list(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    ids = [await _create(orders, inventory, customer, price="4.00") for _ in range(3)]
    await orders.grpc.cancel_order(CancelOrderRequest(order_id=ids[0]))

    summary = await orders.grpc.get_order_summary(
        GetOrderSummaryRequest(order_id=ids[1], user_id=str(customer.user_id))
    )
    assert summary.summary is not None
    assert summary.summary.item_count == 1
    assert summary.summary.total_amount == "4.00"
    with pytest.raises(GRPCError) as raised:
        await orders.grpc.get_order(GetOrderRequest(order_id=ids[1], user_id=str(uuid.uuid4())))
    assert raised.value.status is Status.NOT_FOUND

    first_page = await orders.grpc.list_orders(
        ListOrdersRequest(user_id=str(customer.user_id), page_size=2)
    )
    assert first_page.total_size == 3
    assert [o.order_id for o in first_page.orders] == [ids[2], ids[1]]
    rest = await orders.grpc.list_orders(
        ListOrdersRequest(
            user_id=str(customer.user_id), page_size=2, page_token=first_page.next_page_token
        )
    )
    assert [o.order_id for o in rest.orders] == [ids[0]]
    assert rest.next_page_token == ""
    canceled = await orders.grpc.list_orders(
        ListOrdersRequest(user_id=str(customer.user_id), status=OrderStatus.CANCELED)
    )
    assert [o.order_id for o in canceled.orders] == [ids[0]]
    assert canceled.total_size == 1
