"""Redis cache of single orders (``GET /api/orders/{id}``), keyed by order id.

Best effort by design: Redis slow or down means cache misses and a warning, never a
failed request. A change invalidates the order's entry after its transaction
commits; a reader that loaded the old row just before can still put it back, so
the TTL (ORDERS_CACHE_TTL_SECONDS) bounds how stale an entry can be. Only reads of
one order use it: lists, batches and every decision read PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from redis.asyncio import Redis

from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import CancelReason, OrderLine, OrderStatus
from handwritten.orders.domain.requests import ShippingAddress
from handwritten.orders.service_layer.ports import OrderCache
from handwritten.orders.service_layer.read_model import OrderView, PaymentStatus, ShippingStatus
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
#: Bump the version when the cached shape changes: old entries are then ignored.
KEY_PREFIX = "orders:order:v1:"
_ERRORS = REDIS_UNAVAILABLE


def _key(order_id: UUID) -> str:
    return f"{KEY_PREFIX}{order_id}"


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def dump(view: OrderView) -> str:
    return json.dumps(
        {
            "orderId": str(view.order_id),
            "userId": str(view.user_id),
            "status": view.status.value,
            "items": [line.to_json() for line in view.lines],
            "totalAmount": view.total.to_wire(),
            "shippingAddress": view.shipping_address.to_json(),
            "paymentStatus": _optional(view.payment_status),
            "paymentId": _optional(view.payment_id),
            "shippingStatus": _optional(view.shipping_status),
            "trackingCode": view.tracking_code,
            "cancelReason": _optional(view.cancel_reason),
            "createdAt": view.created_at.isoformat(),
            "updatedAt": view.updated_at.isoformat(),
            "version": view.version,
        },
        separators=(",", ":"),
    )


def load(raw: bytes | str) -> OrderView:
    data = json.loads(raw)
    return OrderView(
        order_id=UUID(data["orderId"]),
        user_id=UUID(data["userId"]),
        status=OrderStatus(data["status"]),
        lines=tuple(OrderLine.from_json(line) for line in data["items"]),
        total=Money(Decimal(data["totalAmount"])),
        shipping_address=ShippingAddress.from_json(data["shippingAddress"]),
        payment_status=(
            None if data["paymentStatus"] is None else PaymentStatus(data["paymentStatus"])
        ),
        payment_id=None if data["paymentId"] is None else UUID(data["paymentId"]),
        shipping_status=(
            None if data["shippingStatus"] is None else ShippingStatus(data["shippingStatus"])
        ),
        tracking_code=data["trackingCode"],
        cancel_reason=None if data["cancelReason"] is None else CancelReason(data["cancelReason"]),
        created_at=datetime.fromisoformat(data["createdAt"]),
        updated_at=datetime.fromisoformat(data["updatedAt"]),
        version=int(data["version"]),
    )


class RedisOrderCache(OrderCache):
    def __init__(self, redis: Redis, *, ttl_seconds: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_seconds * 1000))

    async def get(self, order_id: UUID) -> OrderView | None:
        try:
            raw = await self._redis.get(_key(order_id))
        except _ERRORS as exc:
            log.warning("order cache read failed", error=str(exc))
            return None
        if raw is None:
            return None
        try:
            return load(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable order cache entry ignored", order_id=str(order_id))
            return None

    async def put(self, view: OrderView) -> None:
        try:
            await self._redis.set(_key(view.order_id), dump(view), px=self._ttl_ms)
        except _ERRORS as exc:
            log.warning("order cache write failed", error=str(exc))

    async def invalidate(self, order_ids: Sequence[UUID]) -> None:
        if not order_ids:
            return
        try:
            await self._redis.delete(*(_key(order_id) for order_id in order_ids))
        except _ERRORS as exc:
            # The entry expires by itself within the TTL.
            log.warning("order cache invalidation failed", error=str(exc))

    async def clear(self) -> None:
        try:
            batch: list[bytes | str] = []
            async for key in self._redis.scan_iter(match=f"{KEY_PREFIX}*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    await self._redis.delete(*batch)
                    batch.clear()
            if batch:
                await self._redis.delete(*batch)
        except _ERRORS as exc:
            log.warning("order cache could not be cleared", error=str(exc))


class NoOrderCache(OrderCache):
    """Caching disabled (ORDERS_CACHE_TTL_SECONDS=0)."""

    async def get(self, order_id: UUID) -> OrderView | None:
        return None

    async def put(self, view: OrderView) -> None:
        return None

    async def invalidate(self, order_ids: Sequence[UUID]) -> None:
        return None

    async def clear(self) -> None:
        return None
