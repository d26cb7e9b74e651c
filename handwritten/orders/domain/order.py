"""The Order aggregate: state folded from its events, and the commands that decide.

Lifecycle: PENDING → CONFIRMED → SHIPPED → DELIVERED, or CANCELED (from PENDING or
CONFIRMED, with a reason). Two facts do not change the status but show on the
order: its shipment was scheduled (tracking code, from shipping.scheduled) and its
payment was refunded (from payments.refunded, once canceled).

Commands are pure functions ``(state, …) -> events``; they raise a typed domain
error for a transition the status forbids, and return no events when the order is
already where the command would take it (so retried saga steps and repeated
customer clicks are harmless).

Events keep their own time (``createdAt``, ``confirmedAt``…) in their data, so
folding them again gives exactly the same state, timestamps included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from handwritten.orders.domain.errors import (
    InvalidOrderError,
    InvalidTransitionError,
    OrderAlreadyExistsError,
)
from handwritten.orders.domain.money import CURRENCY, Money
from handwritten.orders.domain.pricing import PricedLine
from handwritten.orders.domain.requests import MAX_LINES, ShippingAddress
from handwritten.runtime.eventstore import AggregateSpec, DomainEvent

AGGREGATE_TYPE = "Order"

ORDER_CREATED = "OrderCreated"
ORDER_CONFIRMED = "OrderConfirmed"
ORDER_CANCELED = "OrderCanceled"
ORDER_SHIPPED = "OrderShipped"
ORDER_DELIVERED = "OrderDelivered"
ORDER_SHIPMENT_SCHEDULED = "OrderShipmentScheduled"
ORDER_PAYMENT_REFUNDED = "OrderPaymentRefunded"

#: The AsyncAPI ``trackingCode`` pattern.
_TRACKING_CODE = re.compile(r"^[A-Z0-9-]{8,40}$")
MAX_CANCEL_DETAIL = 500


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


class CancelReason(StrEnum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"
    CUSTOMER_REQUEST = "CUSTOMER_REQUEST"


@dataclass(frozen=True)
class OrderLine:
    """A line of an order, priced by inventory when the order was placed."""

    product_id: UUID
    product_name: str
    quantity: int
    unit_price: Money

    @property
    def total(self) -> Money:
        return self.unit_price.times(self.quantity)

    def to_json(self) -> dict[str, Any]:
        return {
            "productId": str(self.product_id),
            "productName": self.product_name,
            "quantity": self.quantity,
            "unitPrice": self.unit_price.to_wire(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderLine:
        return cls(
            UUID(data["productId"]),
            data["productName"],
            int(data["quantity"]),
            Money.parse(data["unitPrice"]),
        )


@dataclass(frozen=True)
class Order:
    """An order's current state (``None`` stands for "not created yet")."""

    order_id: UUID
    user_id: UUID
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Money
    shipping_address: ShippingAddress
    payment_method_token: str
    created_at: datetime
    updated_at: datetime
    payment_id: UUID | None = None
    tracking_code: str | None = None
    cancel_reason: CancelReason | None = None
    cancel_detail: str | None = None
    #: The payment was refunded (after a cancel).
    refunded: bool = False


#: The aggregate's state type: no order before its first event.
OrderState = Order | None


def _instant(now: datetime) -> str:
    if now.tzinfo is None:
        raise ValueError("instants are timezone-aware")
    return now.astimezone(UTC).isoformat()


# ------------------------------------------------------------------- commands


def place(
    state: OrderState,
    *,
    order_id: UUID,
    user_id: UUID,
    lines: Sequence[PricedLine],
    shipping_address: ShippingAddress,
    payment_method_token: str,
    now: datetime,
) -> list[DomainEvent]:
    """Create the order from priced lines; its total is their exact sum."""
    if state is not None:
        raise OrderAlreadyExistsError(order_id)
    if not 1 <= len(lines) <= MAX_LINES:
        raise InvalidOrderError.single("items", f"must hold between 1 and {MAX_LINES} items")
    if len({line.product_id for line in lines}) != len(lines):
        raise InvalidOrderError.single("items", "each product may appear only once")
    order_lines = [
        OrderLine(line.product_id, line.product_name, line.quantity, line.unit_price)
        for line in lines
    ]
    total = Money.zero()
    for line in order_lines:
        total += line.total
    if not total.fits_wire:
        raise InvalidOrderError.single("items", "the order total exceeds 99999999.99")
    return [
        DomainEvent(
            ORDER_CREATED,
            {
                "orderId": str(order_id),
                "userId": str(user_id),
                "items": [line.to_json() for line in order_lines],
                "totalAmount": total.to_wire(),
                "currency": CURRENCY,
                "shippingAddress": shipping_address.to_json(),
                "paymentMethodToken": payment_method_token,
                "createdAt": _instant(now),
            },
        )
    ]


def confirm(order: Order, *, payment_id: UUID, now: datetime) -> list[DomainEvent]:
    """PENDING → CONFIRMED once the payment succeeded."""
    if order.status is OrderStatus.CONFIRMED and order.payment_id == payment_id:
        return []
    if order.status is not OrderStatus.PENDING:
        raise InvalidTransitionError(order.order_id, order.status.value, "confirmed")
    return [
        DomainEvent(ORDER_CONFIRMED, {"paymentId": str(payment_id), "confirmedAt": _instant(now)})
    ]


def cancel(
    order: Order, *, reason: CancelReason, now: datetime, detail: str | None = None
) -> list[DomainEvent]:
    """PENDING or CONFIRMED → CANCELED; a canceled order stays as it is (no-op)."""
    if order.status is OrderStatus.CANCELED:
        return []
    if order.status not in (OrderStatus.PENDING, OrderStatus.CONFIRMED):
        raise InvalidTransitionError(order.order_id, order.status.value, "canceled")
    data: dict[str, Any] = {"reason": reason.value, "canceledAt": _instant(now)}
    if detail:
        data["detail"] = detail[:MAX_CANCEL_DETAIL]
    return [DomainEvent(ORDER_CANCELED, data)]


def mark_shipped(order: Order, *, tracking_code: str, now: datetime) -> list[DomainEvent]:
    """CONFIRMED → SHIPPED when the shipment leaves the warehouse."""
    if not _TRACKING_CODE.fullmatch(tracking_code):
        raise InvalidOrderError.single("trackingCode", "must match ^[A-Z0-9-]{8,40}$")
    if order.status is OrderStatus.SHIPPED and order.tracking_code == tracking_code:
        return []
    if order.status is not OrderStatus.CONFIRMED:
        raise InvalidTransitionError(order.order_id, order.status.value, "shipped")
    return [DomainEvent(ORDER_SHIPPED, {"trackingCode": tracking_code, "shippedAt": _instant(now)})]


def mark_delivered(order: Order, *, now: datetime) -> list[DomainEvent]:
    """SHIPPED → DELIVERED."""
    if order.status is OrderStatus.DELIVERED:
        return []
    if order.status is not OrderStatus.SHIPPED:
        raise InvalidTransitionError(order.order_id, order.status.value, "delivered")
    return [DomainEvent(ORDER_DELIVERED, {"deliveredAt": _instant(now)})]


def schedule_shipment(order: Order, *, tracking_code: str, now: datetime) -> list[DomainEvent]:
    """Record the scheduled shipment's tracking code (once).

    Shipping schedules confirmed orders; the order may have been canceled meanwhile
    (shipping then cancels the shipment): the code is recorded all the same.
    """
    if not _TRACKING_CODE.fullmatch(tracking_code):
        raise InvalidOrderError.single("trackingCode", "must match ^[A-Z0-9-]{8,40}$")
    if order.tracking_code == tracking_code:
        return []
    if order.tracking_code is not None or order.status is OrderStatus.PENDING:
        raise InvalidTransitionError(
            order.order_id, order.status.value, f"scheduled for shipment {tracking_code}"
        )
    return [
        DomainEvent(
            ORDER_SHIPMENT_SCHEDULED, {"trackingCode": tracking_code, "scheduledAt": _instant(now)}
        )
    ]


def record_refund(order: Order, *, payment_id: UUID | None, now: datetime) -> list[DomainEvent]:
    """Record that the payment of a canceled order was refunded (once)."""
    if order.refunded:
        return []
    if order.status is not OrderStatus.CANCELED:
        raise InvalidTransitionError(order.order_id, order.status.value, "refunded")
    data: dict[str, Any] = {"refundedAt": _instant(now)}
    if payment_id is not None:
        data["paymentId"] = str(payment_id)
    return [DomainEvent(ORDER_PAYMENT_REFUNDED, data)]


# ------------------------------------------------------------------ evolution


def apply(state: OrderState, event: DomainEvent) -> OrderState:
    """The state after ``event`` (the events are facts: no rule is checked again)."""
    data = event.data
    if event.event_type == ORDER_CREATED:
        if state is not None:
            raise ValueError(f"{ORDER_CREATED} for an order that exists")
        created = datetime.fromisoformat(data["createdAt"])
        return Order(
            order_id=UUID(data["orderId"]),
            user_id=UUID(data["userId"]),
            status=OrderStatus.PENDING,
            lines=tuple(OrderLine.from_json(line) for line in data["items"]),
            total=Money.parse(data["totalAmount"]),
            shipping_address=ShippingAddress.from_json(data["shippingAddress"]),
            payment_method_token=data["paymentMethodToken"],
            created_at=created,
            updated_at=created,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before {ORDER_CREATED}")
    if event.event_type == ORDER_CONFIRMED:
        return replace(
            state,
            status=OrderStatus.CONFIRMED,
            payment_id=UUID(data["paymentId"]),
            updated_at=datetime.fromisoformat(data["confirmedAt"]),
        )
    if event.event_type == ORDER_CANCELED:
        return replace(
            state,
            status=OrderStatus.CANCELED,
            cancel_reason=CancelReason(data["reason"]),
            cancel_detail=data.get("detail"),
            updated_at=datetime.fromisoformat(data["canceledAt"]),
        )
    if event.event_type == ORDER_SHIPPED:
        return replace(
            state,
            status=OrderStatus.SHIPPED,
            tracking_code=data["trackingCode"],
            updated_at=datetime.fromisoformat(data["shippedAt"]),
        )
    if event.event_type == ORDER_DELIVERED:
        return replace(
            state,
            status=OrderStatus.DELIVERED,
            updated_at=datetime.fromisoformat(data["deliveredAt"]),
        )
    if event.event_type == ORDER_SHIPMENT_SCHEDULED:
        return replace(
            state,
            tracking_code=data["trackingCode"],
            updated_at=datetime.fromisoformat(data["scheduledAt"]),
        )
    if event.event_type == ORDER_PAYMENT_REFUNDED:
        return replace(
            state,
            refunded=True,
            payment_id=UUID(data["paymentId"]) if data.get("paymentId") else state.payment_id,
            updated_at=datetime.fromisoformat(data["refundedAt"]),
        )
    raise ValueError(f"unknown Order event {event.event_type!r}")


# ------------------------------------------------------------------ snapshots


def to_snapshot(state: OrderState) -> dict[str, Any]:
    if state is None:
        raise ValueError("an order that does not exist has no snapshot")
    return {
        "orderId": str(state.order_id),
        "userId": str(state.user_id),
        "status": state.status.value,
        "items": [line.to_json() for line in state.lines],
        "totalAmount": state.total.to_wire(),
        "shippingAddress": state.shipping_address.to_json(),
        "paymentMethodToken": state.payment_method_token,
        "createdAt": state.created_at.isoformat(),
        "updatedAt": state.updated_at.isoformat(),
        "paymentId": None if state.payment_id is None else str(state.payment_id),
        "trackingCode": state.tracking_code,
        "cancelReason": None if state.cancel_reason is None else state.cancel_reason.value,
        "cancelDetail": state.cancel_detail,
        "refunded": state.refunded,
    }


def from_snapshot(data: dict[str, Any]) -> OrderState:
    return Order(
        order_id=UUID(data["orderId"]),
        user_id=UUID(data["userId"]),
        status=OrderStatus(data["status"]),
        lines=tuple(OrderLine.from_json(line) for line in data["items"]),
        total=Money.parse(data["totalAmount"]),
        shipping_address=ShippingAddress.from_json(data["shippingAddress"]),
        payment_method_token=data["paymentMethodToken"],
        created_at=datetime.fromisoformat(data["createdAt"]),
        updated_at=datetime.fromisoformat(data["updatedAt"]),
        payment_id=None if data["paymentId"] is None else UUID(data["paymentId"]),
        tracking_code=data["trackingCode"],
        cancel_reason=None if data["cancelReason"] is None else CancelReason(data["cancelReason"]),
        cancel_detail=data["cancelDetail"],
        refunded=bool(data["refunded"]),
    )


def _initial(_: UUID) -> OrderState:
    return None


ORDER: AggregateSpec[OrderState] = AggregateSpec(
    aggregate_type=AGGREGATE_TYPE,
    initial=_initial,
    apply=apply,
    # 2: "refunded" (OrderPaymentRefunded); older snapshots are replayed over.
    snapshot_version=2,
    to_snapshot=to_snapshot,
    from_snapshot=from_snapshot,
)
