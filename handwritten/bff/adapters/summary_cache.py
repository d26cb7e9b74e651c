"""A few seconds of Redis caching for ``orderSummary``, per user.

Keyed by the caller's user id *and* the order id: what one user may see is never
served to another (an admin's entry is theirs alone too). Best effort: Redis slow
or down means a miss and a warning, never a failed query. Only complete answers
are stored (``OrderQueries.summary`` skips degraded ones), and a cancel through the
BFF drops the caller's entry at once; any other change shows within the TTL.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from enum import Enum

from redis.asyncio import Redis

from handwritten.bff.domain.models import (
    CancelReason,
    OrderStatus,
    OrderSummary,
    PaymentStatus,
    ShippingStatus,
)
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
_ERRORS = REDIS_UNAVAILABLE


def _name(value: Enum | None) -> str | None:
    return None if value is None else str(value.value)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def dump(summary: OrderSummary) -> str:
    return json.dumps(
        {
            "orderId": summary.order_id,
            "userId": summary.user_id,
            "status": summary.status.value,
            "totalAmount": str(summary.total),
            "currency": summary.currency,
            "itemCount": summary.item_count,
            "paymentStatus": _name(summary.payment_status),
            "shippingStatus": _name(summary.shipping_status),
            "trackingCode": summary.tracking_code,
            "cancelReason": _name(summary.cancel_reason),
            "createdAt": summary.created_at.isoformat(),
            "updatedAt": _iso(summary.updated_at),
            "estimatedDeliveryDate": _iso(summary.estimated_delivery_date),
        },
        separators=(",", ":"),
    )


def load(raw: bytes | str) -> OrderSummary:
    data = json.loads(raw)
    return OrderSummary(
        order_id=data["orderId"],
        user_id=data["userId"],
        status=OrderStatus(data["status"]),
        total=Decimal(data["totalAmount"]),
        currency=data["currency"],
        item_count=int(data["itemCount"]),
        payment_status=None
        if data["paymentStatus"] is None
        else PaymentStatus(data["paymentStatus"]),
        shipping_status=None
        if data["shippingStatus"] is None
        else ShippingStatus(data["shippingStatus"]),
        tracking_code=data["trackingCode"],
        cancel_reason=None if data["cancelReason"] is None else CancelReason(data["cancelReason"]),
        created_at=dt.datetime.fromisoformat(data["createdAt"]),
        updated_at=None
        if data["updatedAt"] is None
        else dt.datetime.fromisoformat(data["updatedAt"]),
        estimated_delivery_date=None
        if data["estimatedDeliveryDate"] is None
        else dt.date.fromisoformat(data["estimatedDeliveryDate"]),
    )


class RedisSummaryCache:
    """``SummaryCache`` in Redis with a TTL of ``ttl_seconds`` (milliseconds precision)."""

    def __init__(self, redis: Redis, *, ttl_seconds: float, prefix: str = "bff:summary:v1") -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._prefix = prefix

    def key(self, user_id: str, order_id: str) -> str:
        return f"{self._prefix}:{user_id}:{order_id}"

    async def get(self, user_id: str, order_id: str) -> OrderSummary | None:
        try:
            raw = await self._redis.get(self.key(user_id, order_id))
        except _ERRORS as exc:
            log.warning("summary cache read failed", error=repr(exc))
            return None
        if raw is None:
            return None
        try:
            return load(raw)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable summary cache entry ignored", order_id=order_id)
            return None

    async def put(self, user_id: str, summary: OrderSummary) -> None:
        try:
            await self._redis.set(
                self.key(user_id, summary.order_id), dump(summary), px=self._ttl_ms
            )
        except _ERRORS as exc:
            log.warning("summary cache write failed", error=repr(exc))

    async def invalidate(self, user_id: str, order_id: str) -> None:
        try:
            await self._redis.delete(self.key(user_id, order_id))
        except _ERRORS as exc:
            # The entry expires by itself within the TTL.
            log.warning("summary cache invalidation failed", error=repr(exc))


class NoSummaryCache:
    """Caching disabled (``SUMMARY_CACHE_SECONDS=0``)."""

    async def get(self, user_id: str, order_id: str) -> OrderSummary | None:
        return None

    async def put(self, user_id: str, summary: OrderSummary) -> None:
        return None

    async def invalidate(self, user_id: str, order_id: str) -> None:
        return None
