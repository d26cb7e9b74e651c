"""The use cases over an in-memory unit of work: once per order, cancel rules in any
arrival order, tracking-code clashes, and one step per interval."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest

from handwritten.shipping.domain.route import Destination
from handwritten.shipping.domain.shipments import (
    CancelDecision,
    ScheduleDecision,
    Shipment,
    ShipmentStatus,
)
from handwritten.shipping.service_layer.ports import TrackingCodeTakenError
from handwritten.shipping.service_layer.shipping import (
    ConfirmedOrder,
    advance_due,
    cancel_shipment,
    schedule_shipment,
)

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@dataclass
class FakeShipments:
    clock: list[dt.datetime]
    rows: dict[uuid.UUID, Shipment] = field(default_factory=dict)
    serialized: list[uuid.UUID] = field(default_factory=list)

    async def serialize_order(self, order_id: uuid.UUID) -> None:
        self.serialized.append(order_id)

    async def get(self, order_id: uuid.UUID) -> Shipment | None:
        return self.rows.get(order_id)

    async def get_many(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Shipment]:
        return {i: self.rows[i] for i in order_ids if i in self.rows}

    async def lock(self, order_id: uuid.UUID) -> Shipment | None:
        return self.rows.get(order_id)

    async def add(self, shipment: Shipment) -> None:
        if any(s.tracking_code == shipment.tracking_code for s in self.rows.values()):
            raise TrackingCodeTakenError(shipment.tracking_code)
        assert shipment.order_id not in self.rows
        self.rows[shipment.order_id] = shipment

    async def record_change(self, shipment: Shipment) -> None:
        self.rows[shipment.order_id] = shipment

    async def lock_due(self, step_seconds: float, limit: int) -> list[Shipment]:
        cutoff = self.clock[0] - dt.timedelta(seconds=step_seconds)
        due = [
            s
            for s in self.rows.values()
            if s.status in (ShipmentStatus.SCHEDULED, ShipmentStatus.IN_TRANSIT)
            and s.updated_at <= cutoff
        ]
        return sorted(due, key=lambda s: s.updated_at)[:limit]


@dataclass
class FakeCanceledOrders:
    reasons: dict[uuid.UUID, str] = field(default_factory=dict)

    async def remember(self, order_id: uuid.UUID, reason: str, at: dt.datetime) -> None:
        self.reasons.setdefault(order_id, reason)

    async def contains(self, order_id: uuid.UUID) -> bool:
        return order_id in self.reasons


@dataclass
class FakeEvents:
    sent: list[tuple[str, uuid.UUID, ShipmentStatus]] = field(default_factory=list)

    async def scheduled(self, shipment: Shipment) -> None:
        self.sent.append(("scheduled", shipment.order_id, shipment.status))

    async def updated(self, shipment: Shipment) -> None:
        self.sent.append(("updated", shipment.order_id, shipment.latest.status))


@dataclass
class FakeUnitOfWork:
    clock: list[dt.datetime] = field(default_factory=lambda: [T0])
    shipments: FakeShipments = field(init=False)
    canceled_orders: FakeCanceledOrders = field(default_factory=FakeCanceledOrders)
    events: FakeEvents = field(default_factory=FakeEvents)

    def __post_init__(self) -> None:
        self.shipments = FakeShipments(self.clock)

    async def now(self) -> dt.datetime:
        return self.clock[0]

    def tick(self, seconds: float) -> None:
        self.clock[0] += dt.timedelta(seconds=seconds)


def order(order_id: uuid.UUID | None = None) -> ConfirmedOrder:
    return ConfirmedOrder(
        order_id=order_id or uuid.uuid4(),
        user_id=uuid.uuid4(),
        destination=Destination("Rio de Janeiro", "RJ"),
        correlation_id="corr-test",
    )


async def test_confirm_schedules_once_per_order() -> None:
    uow = FakeUnitOfWork()
    confirmed = order()
    first = await schedule_shipment(uow, confirmed)
    again = await schedule_shipment(uow, confirmed)

    assert first.decision is ScheduleDecision.SCHEDULE
    assert again.decision is ScheduleDecision.ALREADY_SCHEDULED
    assert again.shipment == first.shipment
    assert len(uow.shipments.rows) == 1
    assert uow.events.sent == [("scheduled", confirmed.order_id, ShipmentStatus.SCHEDULED)]
    assert uow.shipments.serialized == [confirmed.order_id] * 2
    assert first.shipment is not None and first.shipment.correlation_id == "corr-test"


async def test_cancel_before_confirm_means_never_shipped() -> None:
    uow = FakeUnitOfWork()
    confirmed = order()

    canceled = await cancel_shipment(uow, confirmed.order_id, reason="PAYMENT_FAILED")
    later = await schedule_shipment(uow, confirmed)

    assert canceled.decision is CancelDecision.REMEMBER
    assert later.decision is ScheduleDecision.ORDER_CANCELED and later.shipment is None
    assert uow.shipments.rows == {}
    assert uow.events.sent == []
    # A second cancel (new event id) stays a no-op remember.
    again = await cancel_shipment(uow, confirmed.order_id, reason="CUSTOMER_REQUEST")
    assert again.decision is CancelDecision.REMEMBER
    assert uow.canceled_orders.reasons == {confirmed.order_id: "PAYMENT_FAILED"}


async def test_cancel_after_confirm_cancels_until_it_leaves() -> None:
    uow = FakeUnitOfWork()
    confirmed = order()
    await schedule_shipment(uow, confirmed)
    uow.tick(1)

    result = await cancel_shipment(uow, confirmed.order_id, reason="CUSTOMER_REQUEST")
    repeat = await cancel_shipment(uow, confirmed.order_id, reason="CUSTOMER_REQUEST")

    assert result.decision is CancelDecision.CANCEL
    assert repeat.decision is CancelDecision.ALREADY_CANCELED
    shipment = uow.shipments.rows[confirmed.order_id]
    assert shipment.status is ShipmentStatus.CANCELED
    assert [kind for kind, _, _ in uow.events.sent] == ["scheduled", "updated"]
    assert uow.events.sent[-1][2] is ShipmentStatus.CANCELED
    # A canceled shipment is final: the timer does not move it.
    uow.tick(3600)
    assert await advance_due(uow, step_seconds=5, limit=10) == []


async def test_cancel_in_transit_changes_nothing() -> None:
    uow = FakeUnitOfWork()
    confirmed = order()
    await schedule_shipment(uow, confirmed)
    uow.tick(5)
    await advance_due(uow, step_seconds=5, limit=10)
    sent_before = list(uow.events.sent)

    result = await cancel_shipment(uow, confirmed.order_id, reason="CUSTOMER_REQUEST")

    assert result.decision is CancelDecision.TOO_LATE
    assert uow.shipments.rows[confirmed.order_id].status is ShipmentStatus.IN_TRANSIT
    assert uow.events.sent == sent_before
    assert uow.canceled_orders.reasons == {}


async def test_one_step_per_interval() -> None:
    uow = FakeUnitOfWork()
    confirmed = order()
    await schedule_shipment(uow, confirmed)

    uow.tick(4.9)
    assert await advance_due(uow, step_seconds=5, limit=10) == []
    uow.tick(0.1)
    moved = await advance_due(uow, step_seconds=5, limit=10)
    assert [s.status for s in moved] == [ShipmentStatus.IN_TRANSIT]
    # Polling again at once does not skip a step.
    assert await advance_due(uow, step_seconds=5, limit=10) == []
    uow.tick(5)
    moved = await advance_due(uow, step_seconds=5, limit=10)
    assert [s.status for s in moved] == [ShipmentStatus.DELIVERED]
    uow.tick(60)
    assert await advance_due(uow, step_seconds=5, limit=10) == []

    shipment = uow.shipments.rows[confirmed.order_id]
    assert [c.status for c in shipment.history] == [
        ShipmentStatus.SCHEDULED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.DELIVERED,
    ]
    assert shipment.delivered_at == T0 + dt.timedelta(seconds=10)
    assert [status for kind, _, status in uow.events.sent if kind == "updated"] == [
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.DELIVERED,
    ]


async def test_a_taken_tracking_code_is_drawn_again() -> None:
    uow = FakeUnitOfWork()
    codes: Iterator[str] = iter(["MC-AAAA-AAAA-AAAA", "MC-AAAA-AAAA-AAAA", "MC-BBBB-BBBB-BBBB"])
    first = await schedule_shipment(uow, order(), tracking_codes=lambda: next(codes))
    second = await schedule_shipment(uow, order(), tracking_codes=lambda: next(codes))

    assert first.shipment is not None and second.shipment is not None
    assert first.shipment.tracking_code == "MC-AAAA-AAAA-AAAA"
    assert second.shipment.tracking_code == "MC-BBBB-BBBB-BBBB"


async def test_a_broken_random_source_fails_loudly() -> None:
    uow = FakeUnitOfWork()
    await schedule_shipment(uow, order(), tracking_codes=lambda: "MC-AAAA-AAAA-AAAA")
    with pytest.raises(RuntimeError, match="no free tracking code"):
        await schedule_shipment(uow, order(), tracking_codes=lambda: "MC-AAAA-AAAA-AAAA")
