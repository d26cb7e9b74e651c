"""The shipment's status rules and the decisions taken on order events."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from handwritten.shipping.domain.route import ORIGIN, Destination
from handwritten.shipping.domain.shipments import (
    ADVANCING,
    CARRIER_TIMEZONE,
    TERMINAL,
    CancelDecision,
    ScheduleDecision,
    Shipment,
    ShipmentStateError,
    ShipmentStatus,
    can_cancel,
    decide_cancel,
    decide_schedule,
    next_status,
    schedule,
)

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a Monday
STEP = dt.timedelta(seconds=5)
CAMPINAS = Destination("Campinas", "SP")


def scheduled(at: dt.datetime = T0, destination: Destination = CAMPINAS) -> Shipment:
    return schedule(
        shipment_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        destination=destination,
        tracking_code="MC-0000-0000-0001",
        at=at,
        correlation_id="corr-1",
    )


def test_statuses_advance_one_step_at_a_time_and_stop_when_final() -> None:
    assert next_status(ShipmentStatus.SCHEDULED) is ShipmentStatus.IN_TRANSIT
    assert next_status(ShipmentStatus.IN_TRANSIT) is ShipmentStatus.DELIVERED
    assert next_status(ShipmentStatus.DELIVERED) is None
    assert next_status(ShipmentStatus.CANCELED) is None
    assert set(ShipmentStatus) == ADVANCING | TERMINAL
    assert not ADVANCING & TERMINAL


def test_only_a_scheduled_shipment_can_be_canceled() -> None:
    assert [s for s in ShipmentStatus if can_cancel(s)] == [ShipmentStatus.SCHEDULED]


def test_a_new_shipment_starts_scheduled_at_the_distribution_center() -> None:
    shipment = scheduled()
    assert shipment.status is ShipmentStatus.SCHEDULED
    assert [(c.status, c.location, c.occurred_at) for c in shipment.history] == [
        (ShipmentStatus.SCHEDULED, ORIGIN, T0)
    ]
    assert shipment.created_at == shipment.updated_at == T0
    assert shipment.delivered_at is None
    # Two business days inside São Paulo state, from Monday.
    assert shipment.estimated_delivery_date == dt.date(2026, 3, 4)


def test_the_estimate_uses_the_carrier_calendar() -> None:
    # 01:00 UTC on Saturday is still Friday evening in Brasília.
    late_friday = dt.datetime(2026, 3, 7, 1, 0, tzinfo=dt.UTC)
    assert late_friday.astimezone(CARRIER_TIMEZONE).date() == dt.date(2026, 3, 6)
    assert scheduled(at=late_friday).estimated_delivery_date == dt.date(2026, 3, 10)


def test_naive_instants_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        scheduled(at=dt.datetime(2026, 3, 2, 12, 0))


def test_full_progression_records_every_step_with_a_location() -> None:
    shipment = scheduled()
    in_transit = shipment.advanced(T0 + STEP)
    delivered = in_transit.advanced(T0 + 2 * STEP)

    assert in_transit.status is ShipmentStatus.IN_TRANSIT
    assert in_transit.latest.location == "In transit to Campinas - SP"
    assert in_transit.updated_at == T0 + STEP
    assert in_transit.delivered_at is None

    assert delivered.status is ShipmentStatus.DELIVERED
    assert delivered.delivered_at == T0 + 2 * STEP
    assert [c.status for c in delivered.history] == [
        ShipmentStatus.SCHEDULED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.DELIVERED,
    ]
    assert all(change.location for change in delivered.history)
    assert [c.occurred_at for c in delivered.history] == [T0, T0 + STEP, T0 + 2 * STEP]
    # The original is untouched (frozen values, new history tuples).
    assert shipment.status is ShipmentStatus.SCHEDULED and len(shipment.history) == 1

    with pytest.raises(ShipmentStateError):
        delivered.advanced(T0 + 3 * STEP)


def test_cancel_before_transit_records_an_unknown_location() -> None:
    canceled = scheduled().canceled(T0 + STEP)
    assert canceled.status is ShipmentStatus.CANCELED
    assert canceled.latest.location is None
    assert [c.status for c in canceled.history] == [
        ShipmentStatus.SCHEDULED,
        ShipmentStatus.CANCELED,
    ]
    with pytest.raises(ShipmentStateError):
        canceled.advanced(T0 + 2 * STEP)
    with pytest.raises(ShipmentStateError):
        canceled.canceled(T0 + 2 * STEP)


def test_cancel_after_leaving_is_refused() -> None:
    in_transit = scheduled().advanced(T0 + STEP)
    with pytest.raises(ShipmentStateError):
        in_transit.canceled(T0 + 2 * STEP)
    with pytest.raises(ShipmentStateError):
        in_transit.advanced(T0 + 2 * STEP).canceled(T0 + 3 * STEP)


def test_confirm_schedules_only_once_and_never_after_a_cancel() -> None:
    assert decide_schedule(None, order_canceled=False) is ScheduleDecision.SCHEDULE
    # Cancel-before-confirm: the remembered cancel wins, the order never ships.
    assert decide_schedule(None, order_canceled=True) is ScheduleDecision.ORDER_CANCELED
    existing = scheduled()
    assert decide_schedule(existing, order_canceled=False) is ScheduleDecision.ALREADY_SCHEDULED
    assert decide_schedule(existing, order_canceled=True) is ScheduleDecision.ALREADY_SCHEDULED


def test_cancel_decisions_by_status() -> None:
    shipment = scheduled()
    assert decide_cancel(None) is CancelDecision.REMEMBER
    assert decide_cancel(shipment) is CancelDecision.CANCEL
    assert decide_cancel(shipment.canceled(T0)) is CancelDecision.ALREADY_CANCELED
    in_transit = shipment.advanced(T0)
    assert decide_cancel(in_transit) is CancelDecision.TOO_LATE
    assert decide_cancel(in_transit.advanced(T0)) is CancelDecision.TOO_LATE


def test_customers_see_their_own_shipments_admins_all() -> None:
    shipment = scheduled()
    owner = str(shipment.user_id)
    stranger = str(uuid.uuid4())
    assert shipment.visible_to(owner, admin=False)
    assert not shipment.visible_to(stranger, admin=False)
    assert shipment.visible_to(stranger, admin=True)
