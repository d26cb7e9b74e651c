"""The ``orders_view`` read model: one denormalised row per order (CQRS query side).

``view_of`` is the projection itself, a pure function of the aggregate's state:
the live hook (same transaction as the events) and the rebuild command (replay of
every event) both go through it, which is why they produce the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import CancelReason, Order, OrderLine, OrderStatus
from handwritten.orders.domain.requests import ShippingAddress


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class ShippingStatus(StrEnum):
    SCHEDULED = "SCHEDULED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


@dataclass(frozen=True)
class OrderView:
    """What the read endpoints show of an order."""

    order_id: UUID
    user_id: UUID
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Money
    shipping_address: ShippingAddress
    payment_status: PaymentStatus | None
    payment_id: UUID | None
    shipping_status: ShippingStatus | None
    tracking_code: str | None
    cancel_reason: CancelReason | None
    created_at: datetime
    updated_at: datetime
    #: Sequence number of the last event folded into this row.
    version: int

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


def _payment_status(order: Order) -> PaymentStatus | None:
    # What the aggregate's events prove: a refund (payments.refunded), the
    # successful payment a confirmation carries, or a payment cancel reason.
    if order.refunded:
        return PaymentStatus.REFUNDED
    if order.payment_id is not None:
        return PaymentStatus.PROCESSED
    if order.cancel_reason in (CancelReason.PAYMENT_FAILED, CancelReason.PAYMENT_TIMEOUT):
        return PaymentStatus.FAILED
    return None


def _shipping_status(order: Order) -> ShippingStatus | None:
    if order.status is OrderStatus.SHIPPED:
        return ShippingStatus.IN_TRANSIT
    if order.status is OrderStatus.DELIVERED:
        return ShippingStatus.DELIVERED
    if order.tracking_code is None:
        return None
    # A scheduled shipment: canceled with the order (shipping consumes orders.canceled).
    if order.status is OrderStatus.CANCELED:
        return ShippingStatus.CANCELED
    return ShippingStatus.SCHEDULED


def view_of(order: Order, version: int) -> OrderView:
    """The ``orders_view`` row of ``order`` as of event ``version``."""
    return OrderView(
        order_id=order.order_id,
        user_id=order.user_id,
        status=order.status,
        lines=order.lines,
        total=order.total,
        shipping_address=order.shipping_address,
        payment_status=_payment_status(order),
        payment_id=order.payment_id,
        shipping_status=_shipping_status(order),
        tracking_code=order.tracking_code,
        cancel_reason=order.cancel_reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
        version=version,
    )
