"""Builders of valid orders-domain values for the unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import ORDER, Order, OrderState, place
from handwritten.orders.domain.pricing import PricedLine
from handwritten.orders.domain.requests import ShippingAddress
from handwritten.runtime.eventstore import DomainEvent, fold, normalized

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ADDRESS = ShippingAddress("Av. Paulista, 1000", "São Paulo", "SP", "01310-100")


def line(price: str = "10.00", quantity: int = 1, name: str = "Keyboard") -> PricedLine:
    return PricedLine(uuid.uuid4(), name, quantity, Money(Decimal(price)))


def created_events(
    *lines: PricedLine, order_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
) -> list[DomainEvent]:
    return place(
        None,
        order_id=order_id or uuid.uuid4(),
        user_id=user_id or uuid.uuid4(),
        lines=list(lines) or [line()],
        shipping_address=ADDRESS,
        payment_method_token="tok_visa",
        now=T0,
    )


def replay(events: list[DomainEvent]) -> OrderState:
    """The state folded from ``events`` as they would read back from the store."""
    return fold(ORDER, None, [normalized(ORDER, event) for event in events])


def new_order(*lines: PricedLine) -> Order:
    order = replay(created_events(*lines))
    assert order is not None
    return order


class History:
    """An order's events so far; ``run`` decides on the current state and records."""

    def __init__(self, *lines: PricedLine) -> None:
        self.events = created_events(*lines)

    @property
    def order(self) -> Order:
        state = replay(self.events)
        assert state is not None
        return state

    def run(self, decide: Callable[[Order], list[DomainEvent]]) -> list[DomainEvent]:
        events = decide(self.order)
        self.events.extend(events)
        return events
