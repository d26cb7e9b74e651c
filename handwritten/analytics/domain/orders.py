"""The analytics view of one order: facts from many events, joined field by field.

Every event about an order contributes a partial ``OrderFacts`` (only the fields it
knows). Two facts about the same order combine with ``join``, which takes, field by
field, the earliest timestamp (``min``) or the greatest value (``max``) and ignores
unknown (``None``) fields. That join is commutative, associative and idempotent, so
the state of an order does not depend on the order the events arrive in nor on how
many times each arrives: a redelivered or re-published event changes nothing.

ClickHouse stores the same facts in an ``AggregatingMergeTree`` whose columns are
``SimpleAggregateFunction(<rule>, …)`` with the rules of ``JOIN_RULES``, so its
background merges (and ``FINAL`` reads) compute exactly this join.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

#: How each field of ``OrderFacts`` (but the key) combines; mirrored by the ClickHouse
#: columns (``adapters.schema``), which a test checks.
JOIN_RULES: dict[str, Literal["min", "max"]] = {
    "user_id": "max",
    "user_email": "max",
    "total_amount": "max",
    "created_at": "min",
    "confirmed_at": "min",
    "shipped_at": "min",
    "delivered_at": "min",
    "canceled_at": "min",
    "cancel_reason": "max",
    "payment_id": "max",
    "paid_at": "min",
    "payment_failed_at": "min",
    "refunded_at": "min",
    "payment_voided_at": "min",
    "tracking_code": "max",
    "shipment_scheduled_at": "min",
    "shipment_in_transit_at": "min",
    "shipment_delivered_at": "min",
    "shipment_canceled_at": "min",
    "estimated_delivery_date": "max",
}


class OrderStatus(StrEnum):
    """The order lifecycle, as the orders service defines it."""

    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


class PaymentStatus(StrEnum):
    """The order's payment as analytics sees it (VOIDED: a refund found nothing charged)."""

    PENDING = "PENDING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"


class ShippingStatus(StrEnum):
    """The order's shipment (``None`` until one is scheduled)."""

    SCHEDULED = "SCHEDULED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


def _join_value(rule: Literal["min", "max"], left: Any, right: Any) -> Any:
    if left is None:
        return right
    if right is None:
        return left
    return min(left, right) if rule == "min" else max(left, right)


@dataclass(frozen=True)
class OrderFacts:
    """What the events seen so far say about one order (``None``: not known yet)."""

    order_id: UUID
    user_id: UUID | None = None
    user_email: str | None = None
    total_amount: Decimal | None = None
    created_at: dt.datetime | None = None
    confirmed_at: dt.datetime | None = None
    shipped_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    canceled_at: dt.datetime | None = None
    cancel_reason: str | None = None
    #: The successful payment (PaymentProcessed / OrderConfirmed).
    payment_id: UUID | None = None
    paid_at: dt.datetime | None = None
    payment_failed_at: dt.datetime | None = None
    #: A successful charge was refunded (PaymentRefunded, outcome REFUNDED).
    refunded_at: dt.datetime | None = None
    #: A refund found nothing charged (PaymentRefunded, outcome NOTHING_TO_REFUND).
    payment_voided_at: dt.datetime | None = None
    tracking_code: str | None = None
    shipment_scheduled_at: dt.datetime | None = None
    shipment_in_transit_at: dt.datetime | None = None
    shipment_delivered_at: dt.datetime | None = None
    shipment_canceled_at: dt.datetime | None = None
    estimated_delivery_date: dt.date | None = None

    def join(self, other: OrderFacts) -> OrderFacts:
        """Both facts combined (commutative, associative, idempotent)."""
        if other.order_id != self.order_id:
            raise ValueError(f"cannot join facts of {self.order_id} and {other.order_id}")
        return OrderFacts(
            order_id=self.order_id,
            **{
                name: _join_value(rule, getattr(self, name), getattr(other, name))
                for name, rule in JOIN_RULES.items()
            },
        )

    def values(self) -> dict[str, Any]:
        """Every field by name (the key included), for the adapters."""
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}

    @property
    def status(self) -> OrderStatus:
        """Cancellation wins (the orders service refuses it once shipped), then the
        furthest stage reached."""
        if self.canceled_at is not None:
            return OrderStatus.CANCELED
        if self.delivered_at is not None:
            return OrderStatus.DELIVERED
        if self.shipped_at is not None:
            return OrderStatus.SHIPPED
        if self.confirmed_at is not None:
            return OrderStatus.CONFIRMED
        return OrderStatus.PENDING

    @property
    def furthest_stage(self) -> int:
        """0 placed, 1 confirmed, 2 shipped, 3 delivered (a later stage implies the
        earlier ones even if their event was never seen); cancellation aside."""
        if self.delivered_at is not None:
            return 3
        if self.shipped_at is not None:
            return 2
        if self.confirmed_at is not None:
            return 1
        return 0

    @property
    def payment_status(self) -> PaymentStatus:
        if self.refunded_at is not None:
            return PaymentStatus.REFUNDED
        if self.paid_at is not None:
            return PaymentStatus.PROCESSED
        if self.payment_failed_at is not None:
            return PaymentStatus.FAILED
        if self.payment_voided_at is not None:
            return PaymentStatus.VOIDED
        return PaymentStatus.PENDING

    @property
    def shipping_status(self) -> ShippingStatus | None:
        if self.shipment_canceled_at is not None:
            return ShippingStatus.CANCELED
        if self.shipment_delivered_at is not None:
            return ShippingStatus.DELIVERED
        if self.shipment_in_transit_at is not None:
            return ShippingStatus.IN_TRANSIT
        if self.shipment_scheduled_at is not None:
            return ShippingStatus.SCHEDULED
        return None

    @property
    def placed_at(self) -> dt.datetime | None:
        """When the order was created; if its OrderCreated was never seen (e.g. older
        than the topic's retention), the first later fact that dates it."""
        return self.created_at or self.confirmed_at or self.canceled_at

    @property
    def counts_as_sale(self) -> bool:
        """The revenue rule: confirmed, and neither canceled nor refunded since."""
        return (
            self.confirmed_at is not None and self.canceled_at is None and self.refunded_at is None
        )

    @property
    def sale_date(self) -> dt.date | None:
        """The UTC day whose sales the order counts in: the day of its confirmation."""
        if not self.counts_as_sale or self.confirmed_at is None:
            return None
        return self.confirmed_at.astimezone(dt.UTC).date()


@dataclass(frozen=True)
class OrderLine:
    """One product of one order: every line of that product in the order, summed."""

    order_id: UUID
    product_id: UUID
    product_name: str
    quantity: int
    revenue: Decimal


@dataclass(frozen=True)
class UserProfile:
    """A registered user (UserRegistered): lets order rows carry the e-mail."""

    user_id: UUID
    email: str
    name: str
    registered_at: dt.datetime
