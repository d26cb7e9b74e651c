"""Redis read cache of products, keyed by id, with a short TTL.

Best effort by design: Redis being slow or down turns into cache misses and a
warning, never into a failed request. Writers invalidate after their commit; a
reader that loaded the old row just before can still put it back, so the TTL (a
few seconds) bounds how stale a cached product can be. Stock decisions never read
this cache.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from redis.asyncio import Redis

from handwritten.inventory.domain.money import format_price
from handwritten.inventory.domain.products import Product
from handwritten.inventory.service_layer.ports import ProductCache
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
#: Bump the version when the cached shape changes: old entries are then ignored.
KEY_PREFIX = "inventory:product:v1:"


def _key(product_id: UUID) -> str:
    return f"{KEY_PREFIX}{product_id}"


def _dump(product: Product) -> str:
    return json.dumps(
        {
            "id": str(product.product_id),
            "name": product.name,
            "description": product.description,
            "price": format_price(product.price),
            "available": product.available_quantity,
            "reserved": product.reserved_quantity,
            "created": product.created_at.isoformat(),
            "updated": product.updated_at.isoformat(),
        },
        separators=(",", ":"),
    )


def _load(raw: bytes | str) -> Product:
    data = json.loads(raw)
    return Product(
        product_id=UUID(data["id"]),
        name=data["name"],
        description=data["description"],
        price=Decimal(data["price"]),
        available_quantity=int(data["available"]),
        reserved_quantity=int(data["reserved"]),
        created_at=datetime.fromisoformat(data["created"]),
        updated_at=datetime.fromisoformat(data["updated"]),
    )


class RedisProductCache(ProductCache):
    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_seconds * 1000))

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]:
        if not product_ids:
            return {}
        try:
            values = await self._redis.mget([_key(product_id) for product_id in product_ids])
        except REDIS_UNAVAILABLE as exc:
            log.warning("product cache read failed", error=str(exc))
            return {}
        found: dict[UUID, Product] = {}
        for product_id, raw in zip(product_ids, values, strict=True):
            if raw is None:
                continue
            try:
                found[product_id] = _load(raw)
            except (ValueError, KeyError, TypeError):
                log.warning("unreadable product cache entry ignored", product_id=str(product_id))
        return found

    async def put_many(self, products: Sequence[Product]) -> None:
        if not products:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for product in products:
                    pipe.set(_key(product.product_id), _dump(product), px=self._ttl_ms)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            log.warning("product cache write failed", error=str(exc))

    async def invalidate(self, product_ids: Sequence[UUID]) -> None:
        if not product_ids:
            return
        try:
            await self._redis.delete(*(_key(product_id) for product_id in product_ids))
        except REDIS_UNAVAILABLE as exc:
            # The entry expires by itself within the TTL.
            log.warning("product cache invalidation failed", error=str(exc))


class NoProductCache(ProductCache):
    """Caching disabled (INVENTORY_CACHE_TTL_SECONDS=0)."""

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]:
        return {}

    async def put_many(self, products: Sequence[Product]) -> None:
        return None

    async def invalidate(self, product_ids: Sequence[UUID]) -> None:
        return None
