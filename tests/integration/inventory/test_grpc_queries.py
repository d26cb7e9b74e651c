"""Read-only gRPC calls: availability with current prices, product lookups, bad input."""

from __future__ import annotations

import uuid

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    GetProductRequest,
    GetProductsRequest,
    ProductQuantity,
    ReserveProductsRequest,
    UnavailableReason,
)
from tests.integration.inventory.conftest import Inventory, items


async def test_check_availability_quotes_current_names_and_prices(inventory: Inventory) -> None:
    shirt = await inventory.add_product(stock=5, price="59.90", name="Camiseta teste")
    mug = await inventory.add_product(stock=1, price="0.10", name="Caneca teste")
    response = await inventory.stub.check_availability(
        CheckAvailabilityRequest(items=items((mug, 1), (shirt, 5)))
    )
    assert response.available is True
    assert response.unavailable_products == []
    assert [
        (q.product_id, q.name, q.unit_price, q.requested_quantity, q.available_quantity)
        for q in response.products
    ] == [
        (str(mug), "Caneca teste", "0.10", 1, 1),
        (str(shirt), "Camiseta teste", "59.90", 5, 5),
    ]
    # Read-only: nothing was held.
    assert await inventory.stock_of(shirt) == (5, 0)


async def test_check_availability_reports_shortage_and_unknown_products(
    inventory: Inventory,
) -> None:
    short = await inventory.add_product(stock=2, price="15.00")
    unknown = uuid.uuid4()
    response = await inventory.stub.check_availability(
        CheckAvailabilityRequest(items=items((unknown, 1), (short, 3)))
    )
    assert response.available is False
    assert [
        (u.product_id, u.requested_quantity, u.available_quantity, u.reason)
        for u in response.unavailable_products
    ] == [
        (str(unknown), 1, 0, UnavailableReason.PRODUCT_NOT_FOUND),
        (str(short), 3, 2, UnavailableReason.INSUFFICIENT_STOCK),
    ]
    assert [(q.product_id, q.unit_price) for q in response.products] == [(str(short), "15.00")]


async def test_check_availability_sees_a_new_price_at_once(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=3, price="10.00")
    await inventory.stub.get_product(GetProductRequest(product_id=str(product)))  # cached now
    await inventory.db.execute("UPDATE products SET price = 12.34 WHERE product_id = $1", product)
    response = await inventory.stub.check_availability(
        CheckAvailabilityRequest(items=items((product, 1)))
    )
    # Orders are priced from this answer: it never comes from the cache.
    assert response.products[0].unit_price == "12.34"


async def test_get_product_and_get_products(inventory: Inventory) -> None:
    first = await inventory.add_product(stock=4, price="1.50")
    second = await inventory.add_product(stock=0, price="2.00")
    single = await inventory.stub.get_product(GetProductRequest(product_id=str(first)))
    assert single.product is not None
    assert (single.product.product_id, single.product.price) == (str(first), "1.50")
    assert (single.product.available_quantity, single.product.reserved_quantity) == (4, 0)
    assert single.product.created_at is not None and single.product.created_at.tzinfo is not None

    batch = await inventory.stub.get_products(
        GetProductsRequest(product_ids=[str(second), str(uuid.uuid4()), str(first), str(second)])
    )
    assert [p.product_id for p in batch.products] == [str(second), str(first)]

    with pytest.raises(GRPCError) as raised:
        await inventory.stub.get_product(GetProductRequest(product_id=str(uuid.uuid4())))
    assert raised.value.status is Status.NOT_FOUND


ANY = str(uuid.uuid4())


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("check_availability", CheckAvailabilityRequest(items=[])),
        (
            "check_availability",
            CheckAvailabilityRequest(items=[ProductQuantity(product_id="nope", quantity=1)]),
        ),
        (
            "check_availability",
            CheckAvailabilityRequest(items=[ProductQuantity(product_id=ANY, quantity=0)]),
        ),
        (
            "check_availability",
            CheckAvailabilityRequest(items=[ProductQuantity(product_id=ANY, quantity=1001)]),
        ),
        (
            "check_availability",
            CheckAvailabilityRequest(items=[ProductQuantity(product_id=ANY, quantity=1)] * 2),
        ),
        (
            "reserve_products",
            ReserveProductsRequest(
                order_id="order-1", items=[ProductQuantity(product_id=ANY, quantity=1)]
            ),
        ),
        (
            "reserve_products",
            ReserveProductsRequest(
                order_id=str(uuid.uuid4()), items=[ProductQuantity(product_id=ANY, quantity=-1)]
            ),
        ),
        ("reserve_products", ReserveProductsRequest(order_id=str(uuid.uuid4()), items=[])),
        ("get_product", GetProductRequest(product_id="")),
        ("get_products", GetProductsRequest(product_ids=[])),
        ("get_products", GetProductsRequest(product_ids=["x"])),
        ("get_products", GetProductsRequest(product_ids=[ANY] * 101)),
    ],
)
async def test_malformed_requests_are_invalid_argument(
    inventory: Inventory, method: str, request_: object
) -> None:
    with pytest.raises(GRPCError) as raised:
        await getattr(inventory.stub, method)(request_)
    assert raised.value.status is Status.INVALID_ARGUMENT
    assert raised.value.message
