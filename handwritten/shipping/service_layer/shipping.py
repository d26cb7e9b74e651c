"""The shipping use cases: schedule, cancel, advance, and the queries.

The command functions take an open ``UnitOfWork``: the Kafka consumer runs them in
the transaction that also records the event in the inbox, the progression job in
its own. Each locks what it changes, so replicas can run all of them concurrently.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handwritten.shipping.domain.route import Destination
from handwritten.shipping.domain.shipments import (
    CancelDecision,
    ScheduleDecision,
    Shipment,
    decide_cancel,
    decide_schedule,
    schedule,
)
from handwritten.shipping.domain.tracking import new_tracking_code
from handwritten.shipping.service_layer.ports import (
    TrackingCodeTakenError,
    UnitOfWork,
    UnitOfWorkFactory,
)

#: Tracking codes drawn before giving up (a clash is ~2⁻⁶⁰ per existing shipment, so
#: a second draw already means something is wrong with the random source).
MAX_TRACKING_DRAWS = 5


@dataclass(frozen=True)
class ConfirmedOrder:
    """What scheduling needs from an ``orders.confirmed``."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    destination: Destination
    correlation_id: str | None = None
    #: The trace context the shipment's later (timer-driven) changes continue.
    traceparent: str | None = None


@dataclass(frozen=True)
class ScheduleResult:
    decision: ScheduleDecision
    #: The new or already existing shipment; ``None`` when the order was canceled.
    shipment: Shipment | None


@dataclass(frozen=True)
class CancelResult:
    decision: CancelDecision
    #: The shipment after the cancel; ``None`` when the order had none.
    shipment: Shipment | None


async def schedule_shipment(
    uow: UnitOfWork,
    order: ConfirmedOrder,
    *,
    tracking_codes: Callable[[], str] = new_tracking_code,
    shipment_ids: Callable[[], uuid.UUID] = uuid.uuid4,
) -> ScheduleResult:
    """Schedule the order's one shipment, unless it exists or the order was canceled."""
    await uow.shipments.serialize_order(order.order_id)
    existing = await uow.shipments.get(order.order_id)
    canceled = existing is None and await uow.canceled_orders.contains(order.order_id)
    decision = decide_schedule(existing, order_canceled=canceled)
    if decision is not ScheduleDecision.SCHEDULE:
        return ScheduleResult(decision, existing)
    at = await uow.now()
    for _ in range(MAX_TRACKING_DRAWS):
        shipment = schedule(
            shipment_id=shipment_ids(),
            order_id=order.order_id,
            user_id=order.user_id,
            destination=order.destination,
            tracking_code=tracking_codes(),
            at=at,
            correlation_id=order.correlation_id,
            traceparent=order.traceparent,
        )
        try:
            await uow.shipments.add(shipment)
        except TrackingCodeTakenError:
            continue
        await uow.events.scheduled(shipment)
        return ScheduleResult(decision, shipment)
    raise RuntimeError(f"no free tracking code after {MAX_TRACKING_DRAWS} draws")


async def cancel_shipment(uow: UnitOfWork, order_id: uuid.UUID, *, reason: str) -> CancelResult:
    """Cancel the order's shipment if it has not left; remember the cancel if it has
    none yet (so a confirm that arrives later schedules nothing)."""
    await uow.shipments.serialize_order(order_id)
    shipment = await uow.shipments.lock(order_id)
    decision = decide_cancel(shipment)
    if decision is CancelDecision.REMEMBER:
        await uow.canceled_orders.remember(order_id, reason, await uow.now())
    elif decision is CancelDecision.CANCEL:
        assert shipment is not None
        shipment = shipment.canceled(await uow.now())
        await uow.shipments.record_change(shipment)
        await uow.events.updated(shipment)
    return CancelResult(decision, shipment)


async def advance_due(uow: UnitOfWork, *, step_seconds: float, limit: int) -> list[Shipment]:
    """Move every shipment whose current status is ``step_seconds`` old one step on."""
    due = await uow.shipments.lock_due(step_seconds, limit)
    if not due:
        return []
    at = await uow.now()
    moved = []
    for shipment in due:
        changed = shipment.advanced(at)
        await uow.shipments.record_change(changed)
        await uow.events.updated(changed)
        moved.append(changed)
    return moved


class ShipmentQueries:
    """Read side for REST and gRPC; authorization is the caller's business."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def get(self, order_id: uuid.UUID) -> Shipment | None:
        async with self._uow() as uow:
            return await uow.shipments.get(order_id)

    async def get_many(self, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Shipment]:
        async with self._uow() as uow:
            return await uow.shipments.get_many(order_ids)
