"""The Redis product cache serves reads and is invalidated by every stock change."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from generated.grpc.inventory.v1 import (
    CommitReservationRequest,
    GetProductRequest,
    ReleaseReservationRequest,
    ReserveProductsRequest,
)
from handwritten.inventory.adapters.cache import KEY_PREFIX
from tests.integration.inventory.conftest import (
    PRODUCTS,
    Inventory,
    TokenIssuer,
    items,
    make_settings,
    running,
)


async def available_via_rest(inventory: Inventory, product: uuid.UUID) -> int:
    response = await inventory.http.get(f"{PRODUCTS}/{product}")
    assert response.status_code == 200
    value: int = response.json()["availableQuantity"]
    return value


async def test_reads_are_cached_and_stock_changes_invalidate(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=10)
    redis = Redis.from_url(inventory.settings.redis_url)
    try:
        assert await available_via_rest(inventory, product) == 10
        assert await redis.exists(f"{KEY_PREFIX}{product}") == 1
        # A change behind the service's back is not seen: the read came from Redis.
        await inventory.db.execute(
            "UPDATE products SET available_quantity = 9 WHERE product_id = $1", product
        )
        assert await available_via_rest(inventory, product) == 10

        order = uuid.uuid4()
        reserved = await inventory.stub.reserve_products(
            ReserveProductsRequest(order_id=str(order), items=items((product, 2)))
        )
        assert reserved.reserved
        assert await redis.exists(f"{KEY_PREFIX}{product}") == 0
        assert await available_via_rest(inventory, product) == 7

        grpc_view = await inventory.stub.get_product(GetProductRequest(product_id=str(product)))
        assert grpc_view.product is not None
        assert (grpc_view.product.available_quantity, grpc_view.product.reserved_quantity) == (7, 2)

        await inventory.stub.release_reservation(ReleaseReservationRequest(order_id=str(order)))
        assert await available_via_rest(inventory, product) == 9

        order = uuid.uuid4()
        await inventory.stub.reserve_products(
            ReserveProductsRequest(order_id=str(order), items=items((product, 4)))
        )
        assert await available_via_rest(inventory, product) == 5
        await inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order)))
        response = await inventory.http.get(f"{PRODUCTS}/{product}")
        assert (response.json()["availableQuantity"], response.json()["reservedQuantity"]) == (5, 0)
    finally:
        await redis.aclose()


async def test_admin_update_invalidates(inventory: Inventory, issuer: TokenIssuer) -> None:
    product = await inventory.add_product(stock=3, price="10.00")
    assert (await inventory.http.get(f"{PRODUCTS}/{product}")).json()["price"] == "10.00"
    response = await inventory.http.patch(
        f"{PRODUCTS}/{product}", json={"price": "11.00"}, headers=issuer.admin_headers()
    )
    assert response.status_code == 200
    assert (await inventory.http.get(f"{PRODUCTS}/{product}")).json()["price"] == "11.00"


async def test_ttl_zero_disables_the_cache(jwks_url: str) -> None:
    async with running(make_settings(jwks_url, inventory_cache_ttl_seconds=0)) as inventory:
        product = await inventory.add_product(stock=4)
        redis = Redis.from_url(inventory.settings.redis_url)
        try:
            assert await available_via_rest(inventory, product) == 4
            assert await redis.exists(f"{KEY_PREFIX}{product}") == 0
            await inventory.db.execute(
                "UPDATE products SET available_quantity = 1 WHERE product_id = $1", product
            )
            assert await available_via_rest(inventory, product) == 1
        finally:
            await redis.aclose()


async def test_reads_survive_redis_being_unreachable(jwks_url: str) -> None:
    settings = make_settings(jwks_url, redis_url="redis://127.0.0.1:1/0")
    async with running(settings) as inventory:
        product = await inventory.add_product(stock=6)
        assert await available_via_rest(inventory, product) == 6
        reserved = await inventory.stub.reserve_products(
            ReserveProductsRequest(order_id=str(uuid.uuid4()), items=items((product, 1)))
        )
        assert reserved.reserved
        assert await available_via_rest(inventory, product) == 5
