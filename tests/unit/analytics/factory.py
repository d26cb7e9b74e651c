"""Valid domain events (AsyncAPI payloads, real headers) for the analytics tests.

``OrderStory`` plays one order's life (created → paid → confirmed → shipped →
delivered, or the cancel and refund paths) on a given UTC day, so tests know the
expected facts and sales; ``redelivered`` / ``republished`` make duplicates (same
event id / new event id, same payload). The integration tests encode the same events
to Kafka records with ``record``.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from generated.events.registry import (
    ORDERS_CANCELED,
    ORDERS_CONFIRMED,
    ORDERS_CREATED,
    ORDERS_DELIVERED,
    ORDERS_SHIPPED,
    PAYMENTS_FAILED,
    PAYMENTS_PROCESSED,
    PAYMENTS_REFUNDED,
    SHIPPING_SCHEDULED,
    SHIPPING_UPDATED,
    USERS_REGISTERED,
    Event,
    EventSpec,
)
from handwritten.runtime.events import EventRecord, encode, new_headers

ADDRESS = {
    "street": "Rua das Flores, 10",
    "city": "Campinas",
    "state": "SP",
    "zipCode": "13010-000",
}


def event(spec: EventSpec[Any], payload: dict[str, Any], *, producer: str) -> Event[Any]:
    """A valid event of ``spec`` with fresh headers (a new event id)."""
    model = spec.payload_model.model_validate(payload)
    headers = new_headers(spec, producer=producer, correlation_id=f"test-{uuid.uuid4().hex[:12]}")
    return Event(spec=spec, headers=headers, payload=model)


def redelivered(original: Event[Any]) -> Event[Any]:
    """The same record again (same event id): a Kafka redelivery."""
    return Event(spec=original.spec, headers=original.headers, payload=original.payload)


def republished(original: Event[Any]) -> Event[Any]:
    """The same payload under a new event id (e.g. a re-published payment reply)."""
    producer = original.headers.producer.value
    payload = original.payload.model_dump(mode="json", by_alias=True)
    return event(original.spec, payload, producer=producer)


def record(original: Event[Any]) -> EventRecord:
    """``original`` as the Kafka record a producer sends (its own event id kept)."""
    return encode(original.spec, original.payload, original.headers)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat()


def user_registered(user_id: uuid.UUID, email: str, at: dt.datetime) -> Event[Any]:
    return event(
        USERS_REGISTERED,
        {"userId": str(user_id), "email": email, "name": "Test User", "registeredAt": iso(at)},
        producer="auth",
    )


@dataclass(frozen=True)
class Item:
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Decimal

    def wire(self) -> dict[str, Any]:
        return {
            "productId": str(self.product_id),
            "productName": self.name,
            "quantity": self.quantity,
            "unitPrice": f"{self.unit_price:.2f}",
        }


@dataclass
class OrderStory:
    """One order placed at ``placed``; each method returns the events of one step."""

    placed: dt.datetime
    items: Sequence[Item]
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    order_id: uuid.UUID = field(default_factory=uuid.uuid4)
    saga_id: uuid.UUID = field(default_factory=uuid.uuid4)
    payment_id: uuid.UUID = field(default_factory=uuid.uuid4)
    tracking_code: str = field(default_factory=lambda: f"MC-{uuid.uuid4().hex[:12].upper()}")

    @property
    def total(self) -> Decimal:
        return sum((item.unit_price * item.quantity for item in self.items), Decimal("0.00"))

    def at(self, minutes: float) -> dt.datetime:
        return self.placed + dt.timedelta(minutes=minutes)

    def _order(self) -> dict[str, Any]:
        return {"orderId": str(self.order_id), "userId": str(self.user_id)}

    def created(self) -> Event[Any]:
        return event(
            ORDERS_CREATED,
            {
                **self._order(),
                "items": [item.wire() for item in self.items],
                "totalAmount": f"{self.total:.2f}",
                "currency": "BRL",
                "shippingAddress": ADDRESS,
                "createdAt": iso(self.placed),
            },
            producer="orders",
        )

    def paid(self, minutes: float = 1) -> Event[Any]:
        return event(
            PAYMENTS_PROCESSED,
            {
                "sagaId": str(self.saga_id),
                **self._order(),
                "paymentId": str(self.payment_id),
                "amount": f"{self.total:.2f}",
                "currency": "BRL",
                "gatewayTransactionId": f"gw-{self.payment_id.hex[:10]}",
                "processedAt": iso(self.at(minutes)),
            },
            producer="payment",
        )

    def payment_failed(self, minutes: float = 1) -> Event[Any]:
        return event(
            PAYMENTS_FAILED,
            {
                "sagaId": str(self.saga_id),
                **self._order(),
                "paymentId": str(self.payment_id),
                "amount": f"{self.total:.2f}",
                "currency": "BRL",
                "reason": "DECLINED",
                "message": "Card declined.",
                "failedAt": iso(self.at(minutes)),
            },
            producer="payment",
        )

    def confirmed(self, minutes: float = 2) -> Event[Any]:
        return event(
            ORDERS_CONFIRMED,
            {
                **self._order(),
                "paymentId": str(self.payment_id),
                "items": [item.wire() for item in self.items],
                "totalAmount": f"{self.total:.2f}",
                "currency": "BRL",
                "shippingAddress": ADDRESS,
                "confirmedAt": iso(self.at(minutes)),
            },
            producer="orders",
        )

    def canceled(self, reason: str = "CUSTOMER_REQUEST", minutes: float = 30) -> Event[Any]:
        return event(
            ORDERS_CANCELED,
            {
                **self._order(),
                "reason": reason,
                "totalAmount": f"{self.total:.2f}",
                "currency": "BRL",
                "canceledAt": iso(self.at(minutes)),
            },
            producer="orders",
        )

    def refunded(self, *, charged: bool = True, minutes: float = 31) -> Event[Any]:
        payload: dict[str, Any] = {
            "sagaId": str(self.saga_id),
            "orderId": str(self.order_id),
            "outcome": "REFUNDED" if charged else "NOTHING_TO_REFUND",
            "amount": f"{self.total:.2f}" if charged else "0.00",
            "currency": "BRL",
            "refundedAt": iso(self.at(minutes)),
        }
        if charged:
            payload["paymentId"] = str(self.payment_id)
        return event(PAYMENTS_REFUNDED, payload, producer="payment")

    def scheduled(self, minutes: float = 3) -> Event[Any]:
        return event(
            SHIPPING_SCHEDULED,
            {
                "orderId": str(self.order_id),
                "shipmentId": str(uuid.uuid5(self.order_id, "shipment")),
                "trackingCode": self.tracking_code,
                "estimatedDeliveryDate": (self.placed + dt.timedelta(days=3)).date().isoformat(),
                "scheduledAt": iso(self.at(minutes)),
            },
            producer="shipping",
        )

    def shipment(self, status: str, minutes: float) -> Event[Any]:
        return event(
            SHIPPING_UPDATED,
            {
                "orderId": str(self.order_id),
                "shipmentId": str(uuid.uuid5(self.order_id, "shipment")),
                "trackingCode": self.tracking_code,
                "status": status,
                "location": None if status == "CANCELED" else "Campinas, SP",
                "occurredAt": iso(self.at(minutes)),
            },
            producer="shipping",
        )

    def shipped(self, minutes: float = 60) -> Event[Any]:
        return event(
            ORDERS_SHIPPED,
            {
                **self._order(),
                "trackingCode": self.tracking_code,
                "shippedAt": iso(self.at(minutes)),
            },
            producer="orders",
        )

    def delivered(self, minutes: float = 120) -> Event[Any]:
        return event(
            ORDERS_DELIVERED,
            {
                **self._order(),
                "trackingCode": self.tracking_code,
                "deliveredAt": iso(self.at(minutes)),
            },
            producer="orders",
        )

    # ----------------------------------------------------------- whole journeys

    def confirmed_journey(self) -> list[Event[Any]]:
        return [self.created(), self.paid(), self.confirmed()]

    def delivered_journey(self) -> list[Event[Any]]:
        return [
            *self.confirmed_journey(),
            self.scheduled(),
            self.shipment("IN_TRANSIT", 50),
            self.shipped(60),
            self.shipment("DELIVERED", 119),
            self.delivered(120),
        ]

    def canceled_after_confirmation(self) -> list[Event[Any]]:
        return [
            *self.confirmed_journey(),
            self.scheduled(),
            self.canceled("CUSTOMER_REQUEST", 30),
            self.shipment("CANCELED", 30.5),
            self.refunded(charged=True, minutes=31),
        ]

    def payment_declined(self) -> list[Event[Any]]:
        return [
            self.created(),
            self.payment_failed(),
            self.canceled("PAYMENT_FAILED", 2),
            self.refunded(charged=False, minutes=3),
        ]


def items(rng: random.Random, products: Sequence[tuple[uuid.UUID, str]]) -> list[Item]:
    """One to three lines of ``products`` with random quantities and prices."""
    chosen = rng.sample(list(products), k=rng.randint(1, min(3, len(products))))
    return [
        Item(product_id, name, rng.randint(1, 4), Decimal(rng.randint(100, 99_999)) / 100)
        for product_id, name in chosen
    ]
