"""gRPC messages → the BFF's read models (pure functions).

proto3 has no null: an empty string or an ``UNSPECIFIED`` enum means "not set" and
becomes ``None`` here. Money arrives as exact decimal strings and stays ``Decimal``.
A message that breaks the protos' documented rules (a malformed price or date)
raises ``ValueError``; the clients report that as the downstream being unavailable.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from generated.grpc.inventory import v1 as inventory_pb
from generated.grpc.orders import v1 as orders_pb
from generated.grpc.shipping import v1 as shipping_pb
from handwritten.bff.domain.models import (
    Address,
    CancelReason,
    NewOrder,
    Order,
    OrderLine,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Payment,
    PaymentStatus,
    Product,
    Shipment,
    ShipmentChange,
    ShippingStatus,
    UnavailableProduct,
)

E = TypeVar("E", bound=Enum)


def money(text: str) -> Decimal:
    """An exact decimal amount; ``ValueError`` unless finite."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {text!r}")
    return value


def calendar_date(text: str) -> dt.date | None:
    """A ``YYYY-MM-DD`` date; ``None`` for proto3's empty string."""
    return dt.date.fromisoformat(text) if text else None


def _instant(value: dt.datetime | None) -> dt.datetime:
    if value is None:
        raise ValueError("a required timestamp is missing")
    return value


def _optional_enum(target: type[E], source: Enum) -> E | None:
    # The generated enums and ours share member names; 0 is UNSPECIFIED (unset).
    return None if source.name == "UNSPECIFIED" else target[source.name]


def _enum(target: type[E], source: Enum) -> E:
    value = _optional_enum(target, source)
    if value is None:
        raise ValueError(f"{target.__name__} is unspecified")
    return value


def order_from_grpc(message: orders_pb.Order) -> Order:
    address = message.shipping_address
    payment = message.payment
    return Order(
        order_id=message.order_id,
        user_id=message.user_id,
        status=_enum(OrderStatus, message.status),
        lines=tuple(
            OrderLine(
                product_id=item.product_id,
                product_name=item.product_name,
                quantity=item.quantity,
                unit_price=money(item.unit_price),
            )
            for item in message.items
        ),
        total=money(message.total_amount),
        currency=message.currency or "BRL",
        created_at=_instant(message.created_at),
        updated_at=message.updated_at,
        shipping_address=None
        if address is None
        else Address(
            street=address.street, city=address.city, state=address.state, zip_code=address.zip_code
        ),
        payment=None
        if payment is None or payment.status is orders_pb.PaymentStatus.UNSPECIFIED
        else Payment(
            status=_enum(PaymentStatus, payment.status),
            processed_at=payment.processed_at,
            failure_message=payment.failure_message or None,
        ),
        cancel_reason=_optional_enum(CancelReason, message.cancel_reason),
    )


def page_from_grpc(message: orders_pb.ListOrdersResponse) -> OrderPage:
    return OrderPage(
        orders=tuple(order_from_grpc(order) for order in message.orders),
        next_cursor=message.next_page_token or None,
        total_count=message.total_size,
    )


def summary_from_grpc(message: orders_pb.OrderSummary) -> OrderSummary:
    return OrderSummary(
        order_id=message.order_id,
        user_id=message.user_id,
        status=_enum(OrderStatus, message.status),
        total=money(message.total_amount),
        currency=message.currency or "BRL",
        item_count=message.item_count,
        payment_status=_optional_enum(PaymentStatus, message.payment_status),
        shipping_status=_optional_enum(ShippingStatus, message.shipping_status),
        tracking_code=message.tracking_code or None,
        cancel_reason=_optional_enum(CancelReason, message.cancel_reason),
        created_at=_instant(message.created_at),
        updated_at=message.updated_at,
    )


def unavailable_from_grpc(message: orders_pb.UnavailableProduct) -> UnavailableProduct:
    return UnavailableProduct(
        product_id=message.product_id,
        requested_quantity=message.requested_quantity,
        available_quantity=message.available_quantity,
    )


def create_request(order: NewOrder, *, user_id: str) -> orders_pb.CreateOrderRequest:
    address = order.shipping_address
    return orders_pb.CreateOrderRequest(
        user_id=user_id,
        items=[
            orders_pb.OrderItemInput(product_id=item.product_id, quantity=item.quantity)
            for item in order.items
        ],
        shipping_address=orders_pb.ShippingAddress(
            street=address.street, city=address.city, state=address.state, zip_code=address.zip_code
        ),
        payment_method_token=order.payment_token,
        idempotency_key=order.idempotency_key,
    )


def status_to_grpc(status: OrderStatus | None) -> orders_pb.OrderStatus:
    return (
        orders_pb.OrderStatus.UNSPECIFIED if status is None else orders_pb.OrderStatus[status.name]
    )


def product_from_grpc(message: inventory_pb.Product) -> Product:
    return Product(
        product_id=message.product_id,
        name=message.name,
        description=message.description,
        price=money(message.price),
        available_quantity=message.available_quantity,
    )


def shipment_from_grpc(message: shipping_pb.Shipment) -> Shipment:
    return Shipment(
        order_id=message.order_id,
        tracking_code=message.tracking_code,
        status=_enum(ShippingStatus, message.status),
        estimated_delivery_date=calendar_date(message.estimated_delivery_date),
        delivered_at=message.delivered_at,
        history=tuple(
            ShipmentChange(
                status=_enum(ShippingStatus, change.status),
                location=change.location or None,
                occurred_at=change.occurred_at,
            )
            for change in message.history
        ),
    )
