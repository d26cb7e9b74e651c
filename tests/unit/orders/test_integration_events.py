"""Each domain event publishes its AsyncAPI payload, keyed by the order id."""

from __future__ import annotations

import uuid

from generated.events.registry import (
    ORDERS_CANCELED,
    ORDERS_CONFIRMED,
    ORDERS_CREATED,
    ORDERS_DELIVERED,
    ORDERS_SHIPPED,
)
from handwritten.orders.adapters.integration_events import integration_messages
from handwritten.orders.domain.order import (
    CancelReason,
    cancel,
    confirm,
    mark_delivered,
    mark_shipped,
)
from handwritten.runtime.eventstore import DomainEvent
from tests.unit.orders.factories import T0, History, line


def _messages(history: History, events: list[DomainEvent]) -> list[tuple[str, dict[str, object]]]:
    order = history.order
    return [
        (message.spec.topic, message.payload.model_dump(mode="json", by_alias=True))
        for event in events
        for message in integration_messages(order.order_id, order, event)
    ]


def test_the_lifecycle_publishes_one_message_per_event() -> None:
    history = History(line("349.90", 2))
    order_id = str(history.order.order_id)
    ((topic, created),) = _messages(history, history.events)
    assert topic == ORDERS_CREATED.topic
    assert created["orderId"] == order_id
    assert created["totalAmount"] == "699.80"
    assert created["items"][0]["unitPrice"] == "349.90"  # type: ignore[index]
    assert "paymentMethodToken" not in created  # internal to orders, not in the contract

    payment = uuid.uuid4()
    events = history.run(lambda order: confirm(order, payment_id=payment, now=T0))
    ((topic, confirmed),) = _messages(history, events)
    assert topic == ORDERS_CONFIRMED.topic
    assert confirmed["paymentId"] == str(payment)

    events = history.run(lambda order: mark_shipped(order, tracking_code="BR-12345678", now=T0))
    assert [t for t, _ in _messages(history, events)] == [ORDERS_SHIPPED.topic]
    events = history.run(lambda order: mark_delivered(order, now=T0))
    ((topic, delivered),) = _messages(history, events)
    assert topic == ORDERS_DELIVERED.topic
    assert delivered["trackingCode"] == "BR-12345678"


def test_canceled_carries_reason_and_detail() -> None:
    history = History()
    events = history.run(
        lambda order: cancel(order, reason=CancelReason.PAYMENT_TIMEOUT, now=T0, detail="late")
    )
    ((topic, canceled),) = _messages(history, events)
    assert topic == ORDERS_CANCELED.topic
    assert canceled["reason"] == "PAYMENT_TIMEOUT"
    assert canceled["detail"] == "late"
    assert ORDERS_CANCELED.key_of(
        integration_messages(history.order.order_id, history.order, events[0])[0].payload  # type: ignore[arg-type]
    ) == str(history.order.order_id)
