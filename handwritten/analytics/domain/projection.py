"""From consumed events to row changes: which facts each event adds, and which
events are duplicates.

``project`` maps one event to a ``Projection`` (order facts, order lines, user
profiles); ``Projection.merge`` combines the projections of a batch, so a batch is
written as one insert per table. ``dedupe_key`` names what makes an event a
duplicate: its event id, except for payment replies, which the payment service may
re-publish under new event ids for the same payment (they are keyed by paymentId).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from generated.events.registry import Event
from generated.models.events import (
    OrderCanceledPayload,
    OrderConfirmedPayload,
    OrderCreatedPayload,
    OrderDeliveredPayload,
    OrderItem,
    OrderShippedPayload,
    PaymentFailedPayload,
    PaymentProcessedPayload,
    PaymentRefundedPayload,
    RefundOutcome,
    ShipmentScheduledPayload,
    ShipmentStatus,
    ShipmentUpdatedPayload,
    UserRegisteredPayload,
)
from handwritten.analytics.domain.orders import OrderFacts, OrderLine, UserProfile

#: Payment replies: re-published with new event ids, deduplicated on paymentId.
_PAYMENT_REPLIES = (PaymentProcessedPayload, PaymentFailedPayload, PaymentRefundedPayload)


def dedupe_key(event: Event[Any]) -> str:
    """What identifies ``event`` for deduplication.

    A payment reply with a paymentId is the same fact as any other reply of its type
    about that payment, whatever its event id; everything else is deduplicated on
    its event id.
    """
    payload = event.payload
    if isinstance(payload, _PAYMENT_REPLIES) and payload.payment_id is not None:
        return f"payment:{payload.payment_id}:{event.headers.event_type.value}"
    return f"event:{event.headers.event_id}"


def fresh_events(events: Iterable[Event[Any]], seen: Iterable[str]) -> tuple[list[Event[Any]], int]:
    """The events to apply (first of each key, not ``seen`` before) and how many were
    duplicates."""
    known = set(seen)
    fresh: list[Event[Any]] = []
    duplicates = 0
    for event in events:
        key = dedupe_key(event)
        if key in known:
            duplicates += 1
            continue
        known.add(key)
        fresh.append(event)
    return fresh, duplicates


@dataclass
class Projection:
    """Row changes of one or more events, already combined per key."""

    orders: dict[UUID, OrderFacts] = field(default_factory=dict)
    lines: dict[tuple[UUID, UUID], OrderLine] = field(default_factory=dict)
    users: dict[UUID, UserProfile] = field(default_factory=dict)

    def add_order(self, facts: OrderFacts) -> None:
        known = self.orders.get(facts.order_id)
        self.orders[facts.order_id] = facts if known is None else known.join(facts)

    def add_lines(self, lines: Iterable[OrderLine]) -> None:
        # Every event carrying an order's items carries the same items (created and
        # confirmed), so the last one seen stands for them.
        for line in lines:
            self.lines[(line.order_id, line.product_id)] = line

    def add_user(self, user: UserProfile) -> None:
        known = self.users.get(user.user_id)
        # Registration happens once; keep the latest registration if it ever repeats.
        if known is None or user.registered_at >= known.registered_at:
            self.users[user.user_id] = user

    def merge(self, other: Projection) -> None:
        """Add ``other``'s changes to this projection."""
        for facts in other.orders.values():
            self.add_order(facts)
        self.add_lines(other.lines.values())
        for user in other.users.values():
            self.add_user(user)

    @property
    def empty(self) -> bool:
        return not (self.orders or self.lines or self.users)


def order_lines(order_id: UUID, items: Sequence[OrderItem]) -> list[OrderLine]:
    """The order's items per product (quantities and revenue of repeated products summed)."""
    by_product: dict[UUID, OrderLine] = {}
    for item in items:
        revenue = Decimal(item.unit_price) * item.quantity
        known = by_product.get(item.product_id)
        if known is not None:
            revenue += known.revenue
        by_product[item.product_id] = OrderLine(
            order_id=order_id,
            product_id=item.product_id,
            product_name=item.product_name,
            quantity=item.quantity + (known.quantity if known is not None else 0),
            revenue=revenue,
        )
    return list(by_product.values())


#: The ``OrderFacts`` timestamp a shipment status change sets.
_SHIPMENT_STATUS_FIELD: dict[ShipmentStatus, str] = {
    ShipmentStatus.scheduled: "shipment_scheduled_at",
    ShipmentStatus.in_transit: "shipment_in_transit_at",
    ShipmentStatus.delivered: "shipment_delivered_at",
    ShipmentStatus.canceled: "shipment_canceled_at",
}


def _shipment_update(payload: ShipmentUpdatedPayload) -> OrderFacts:
    facts = OrderFacts(order_id=payload.order_id, tracking_code=payload.tracking_code)
    stamp: dict[str, Any] = {_SHIPMENT_STATUS_FIELD[payload.status]: payload.occurred_at}
    return dataclasses.replace(facts, **stamp)


def project(event: Event[Any]) -> Projection:
    """The row changes ``event`` implies (pure: no lookups, no clock)."""
    payload = event.payload
    projection = Projection()
    match payload:
        case UserRegisteredPayload():
            projection.add_user(
                UserProfile(
                    user_id=payload.user_id,
                    email=str(payload.email),
                    name=payload.name,
                    registered_at=payload.registered_at,
                )
            )
        case OrderCreatedPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    total_amount=Decimal(payload.total_amount),
                    created_at=payload.created_at,
                )
            )
            projection.add_lines(order_lines(payload.order_id, payload.items))
        case OrderConfirmedPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    total_amount=Decimal(payload.total_amount),
                    confirmed_at=payload.confirmed_at,
                    payment_id=payload.payment_id,
                )
            )
            projection.add_lines(order_lines(payload.order_id, payload.items))
        case OrderCanceledPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    total_amount=Decimal(payload.total_amount),
                    canceled_at=payload.canceled_at,
                    cancel_reason=payload.reason.value,
                )
            )
        case OrderShippedPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    shipped_at=payload.shipped_at,
                    tracking_code=payload.tracking_code,
                )
            )
        case OrderDeliveredPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    delivered_at=payload.delivered_at,
                    tracking_code=payload.tracking_code,
                )
            )
        case PaymentProcessedPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    payment_id=payload.payment_id,
                    paid_at=payload.processed_at,
                )
            )
        case PaymentFailedPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    user_id=payload.user_id,
                    payment_failed_at=payload.failed_at,
                )
            )
        case PaymentRefundedPayload():
            if payload.outcome is RefundOutcome.refunded:
                facts = OrderFacts(order_id=payload.order_id, refunded_at=payload.refunded_at)
            else:
                facts = OrderFacts(order_id=payload.order_id, payment_voided_at=payload.refunded_at)
            projection.add_order(facts)
        case ShipmentScheduledPayload():
            projection.add_order(
                OrderFacts(
                    order_id=payload.order_id,
                    tracking_code=payload.tracking_code,
                    shipment_scheduled_at=payload.scheduled_at,
                    estimated_delivery_date=payload.estimated_delivery_date,
                )
            )
        case ShipmentUpdatedPayload():
            projection.add_order(_shipment_update(payload))
        case _:
            raise LookupError(f"analytics does not project {event.spec.topic!r}")
    return projection


def project_all(events: Iterable[Event[Any]]) -> Projection:
    """The combined row changes of ``events``."""
    combined = Projection()
    for event in events:
        combined.merge(project(event))
    return combined
