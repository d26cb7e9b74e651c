"""The shipment aggregate: its status rules, history and the decisions on order events.

A shipment is scheduled once per order and then moves one step at a time::

    SCHEDULED → IN_TRANSIT → DELIVERED
        ↓
    CANCELED          (only before it leaves: the orders service refuses cancels
                       once shipped, so a late cancel changes nothing here)

Every change appends a ``StatusChange`` to the history, which therefore always
starts with SCHEDULED and ends with the current status.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, replace

from handwritten.shipping.domain.route import (
    ORIGIN,
    Destination,
    delivered_location,
    estimate_delivery_date,
    in_transit_location,
)

#: The carrier's calendar: Brasília time (UTC−3; Brazil has had no DST since 2019).
CARRIER_TIMEZONE = dt.timezone(dt.timedelta(hours=-3), "BRT")


class ShipmentStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


_NEXT: dict[ShipmentStatus, ShipmentStatus] = {
    ShipmentStatus.SCHEDULED: ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.IN_TRANSIT: ShipmentStatus.DELIVERED,
}
#: Statuses the progression job still has to move forward.
ADVANCING = frozenset(_NEXT)
TERMINAL = frozenset({ShipmentStatus.DELIVERED, ShipmentStatus.CANCELED})


class ShipmentStateError(ValueError):
    """A change the shipment's current status does not allow."""


def next_status(status: ShipmentStatus) -> ShipmentStatus | None:
    """The status after ``status`` on the timer, ``None`` when it is final."""
    return _NEXT.get(status)


def can_cancel(status: ShipmentStatus) -> bool:
    """Only a shipment that has not left the warehouse can be canceled."""
    return status is ShipmentStatus.SCHEDULED


@dataclass(frozen=True)
class StatusChange:
    """One entry of a shipment's history."""

    status: ShipmentStatus
    location: str | None
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Shipment:
    shipment_id: uuid.UUID
    order_id: uuid.UUID
    #: Owner of the order (from orders.confirmed): only they and admins may see it.
    user_id: uuid.UUID
    tracking_code: str
    status: ShipmentStatus
    destination: Destination
    estimated_delivery_date: dt.date
    history: tuple[StatusChange, ...]
    created_at: dt.datetime
    updated_at: dt.datetime
    delivered_at: dt.datetime | None = None
    #: Correlation id of the order's saga: timer-driven updates carry it on, so the
    #: whole life of the order stays one story in logs and traces.
    correlation_id: str | None = None
    #: W3C traceparent of the span that scheduled it: the timer-driven changes
    #: continue the order's trace from there.
    traceparent: str | None = None

    @property
    def latest(self) -> StatusChange:
        return self.history[-1]

    def visible_to(self, user_id: str, *, admin: bool) -> bool:
        """Customers see the shipments of their own orders; admins see all."""
        return admin or str(self.user_id) == user_id

    def advanced(self, at: dt.datetime) -> Shipment:
        """The shipment one step further along (``ShipmentStateError`` when final)."""
        target = next_status(self.status)
        if target is None:
            raise ShipmentStateError(f"a {self.status} shipment does not move any further")
        if target is ShipmentStatus.IN_TRANSIT:
            return self._changed(StatusChange(target, in_transit_location(self.destination), at))
        return replace(
            self._changed(StatusChange(target, delivered_location(self.destination), at)),
            delivered_at=at,
        )

    def canceled(self, at: dt.datetime) -> Shipment:
        """The shipment canceled (``ShipmentStateError`` once it has left)."""
        if not can_cancel(self.status):
            raise ShipmentStateError(f"a {self.status} shipment can no longer be canceled")
        # Where a canceled parcel is, is not known (the events contract says null).
        return self._changed(StatusChange(ShipmentStatus.CANCELED, None, at))

    def _changed(self, change: StatusChange) -> Shipment:
        return replace(
            self,
            status=change.status,
            history=(*self.history, change),
            updated_at=change.occurred_at,
        )


def schedule(
    *,
    shipment_id: uuid.UUID,
    order_id: uuid.UUID,
    user_id: uuid.UUID,
    destination: Destination,
    tracking_code: str,
    at: dt.datetime,
    correlation_id: str | None = None,
    traceparent: str | None = None,
) -> Shipment:
    """A new SCHEDULED shipment waiting at the distribution center."""
    if at.tzinfo is None:
        raise ValueError("shipments are scheduled at an aware instant")
    scheduled_on = at.astimezone(CARRIER_TIMEZONE).date()
    return Shipment(
        shipment_id=shipment_id,
        order_id=order_id,
        user_id=user_id,
        tracking_code=tracking_code,
        status=ShipmentStatus.SCHEDULED,
        destination=destination,
        estimated_delivery_date=estimate_delivery_date(scheduled_on, destination),
        history=(StatusChange(ShipmentStatus.SCHEDULED, ORIGIN, at),),
        created_at=at,
        updated_at=at,
        correlation_id=correlation_id,
        traceparent=traceparent,
    )


class ScheduleDecision(enum.Enum):
    """What an ``orders.confirmed`` does."""

    SCHEDULE = "schedule"
    #: The order already has its shipment (a redelivery, or a new event id for the
    #: same confirmation): one shipment per order, nothing new.
    ALREADY_SCHEDULED = "already-scheduled"
    #: The cancel overtook the confirm (they travel on different topics): the order
    #: must never ship.
    ORDER_CANCELED = "order-canceled"


def decide_schedule(existing: Shipment | None, *, order_canceled: bool) -> ScheduleDecision:
    if existing is not None:
        return ScheduleDecision.ALREADY_SCHEDULED
    if order_canceled:
        return ScheduleDecision.ORDER_CANCELED
    return ScheduleDecision.SCHEDULE


class CancelDecision(enum.Enum):
    """What an ``orders.canceled`` does."""

    CANCEL = "cancel"
    #: No shipment yet: remember the cancel so a later confirm schedules nothing.
    REMEMBER = "remember"
    ALREADY_CANCELED = "already-canceled"
    #: In transit or delivered: nothing changes (the orders service should not have
    #: canceled; worth a warning, not a failure, or the consumer would be stuck).
    TOO_LATE = "too-late"


def decide_cancel(shipment: Shipment | None) -> CancelDecision:
    if shipment is None:
        return CancelDecision.REMEMBER
    if shipment.status is ShipmentStatus.CANCELED:
        return CancelDecision.ALREADY_CANCELED
    if can_cancel(shipment.status):
        return CancelDecision.CANCEL
    return CancelDecision.TOO_LATE
