"""Integration events: what each Order domain event publishes on Kafka.

The repository writes them to the outbox in the transaction that appends the
domain events (the ``OrdersEventPublisher`` topics and payload models, sent
through ``OutboxSender``), so an event is published if and only if the order
changed. Payloads are the generated AsyncAPI models: a payload that does not
match the contract fails before anything commits.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from generated.events.registry import (
    ORDERS_CANCELED,
    ORDERS_CONFIRMED,
    ORDERS_CREATED,
    ORDERS_DELIVERED,
    ORDERS_SHIPPED,
)
from generated.models.events import (
    OrderCanceledPayload,
    OrderConfirmedPayload,
    OrderCreatedPayload,
    OrderDeliveredPayload,
    OrderShippedPayload,
)
from handwritten.orders.domain.order import (
    ORDER_CANCELED,
    ORDER_CONFIRMED,
    ORDER_CREATED,
    ORDER_DELIVERED,
    ORDER_PAYMENT_REFUNDED,
    ORDER_SHIPMENT_SCHEDULED,
    ORDER_SHIPPED,
    Order,
    OrderState,
)
from handwritten.runtime.eventstore import DomainEvent, OutboxMessage


def _common(order: Order) -> dict[str, Any]:
    return {
        "orderId": str(order.order_id),
        "userId": str(order.user_id),
    }


def _lines(order: Order) -> dict[str, Any]:
    return {
        "items": [line.to_json() for line in order.lines],
        "totalAmount": order.total.to_wire(),
        "currency": order.total.currency,
        "shippingAddress": order.shipping_address.to_json(),
    }


def integration_messages(
    order_id: UUID, state: OrderState, event: DomainEvent
) -> list[OutboxMessage]:
    """The messages of ``event``, given the state right after it (pure)."""
    if state is None:
        raise ValueError(f"order {order_id} has no state after {event.event_type}")
    data = event.data
    if event.event_type == ORDER_CREATED:
        payload: Any = OrderCreatedPayload.model_validate(
            {**_common(state), **_lines(state), "createdAt": data["createdAt"]}
        )
        return [OutboxMessage(ORDERS_CREATED, payload)]
    if event.event_type == ORDER_CONFIRMED:
        payload = OrderConfirmedPayload.model_validate(
            {
                **_common(state),
                **_lines(state),
                "paymentId": data["paymentId"],
                "confirmedAt": data["confirmedAt"],
            }
        )
        return [OutboxMessage(ORDERS_CONFIRMED, payload)]
    if event.event_type == ORDER_CANCELED:
        canceled: dict[str, Any] = {
            **_common(state),
            "reason": data["reason"],
            "totalAmount": state.total.to_wire(),
            "currency": state.total.currency,
            "canceledAt": data["canceledAt"],
        }
        if data.get("detail"):
            canceled["detail"] = data["detail"]
        return [OutboxMessage(ORDERS_CANCELED, OrderCanceledPayload.model_validate(canceled))]
    if event.event_type == ORDER_SHIPPED:
        payload = OrderShippedPayload.model_validate(
            {**_common(state), "trackingCode": data["trackingCode"], "shippedAt": data["shippedAt"]}
        )
        return [OutboxMessage(ORDERS_SHIPPED, payload)]
    if event.event_type == ORDER_DELIVERED:
        payload = OrderDeliveredPayload.model_validate(
            {
                **_common(state),
                "trackingCode": state.tracking_code,
                "deliveredAt": data["deliveredAt"],
            }
        )
        return [OutboxMessage(ORDERS_DELIVERED, payload)]
    if event.event_type in (ORDER_SHIPMENT_SCHEDULED, ORDER_PAYMENT_REFUNDED):
        # Facts shipping and payment already published; the order only records them.
        return []
    raise ValueError(f"no integration event for {event.event_type!r}")
