"""Shipment events as the generated ShipmentScheduled / ShipmentUpdated payloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from generated.models.events import (
    ShipmentScheduledPayload,
    ShipmentUpdatedPayload,
)
from generated.models.events import ShipmentStatus as EventShipmentStatus
from generated.services.shipping.events import ShippingEventPublisher
from handwritten.runtime.context import correlation_id
from handwritten.shipping.domain.shipments import Shipment
from handwritten.shipping.service_layer.ports import ShipmentEvents


@contextmanager
def _correlated(shipment: Shipment) -> Iterator[None]:
    """Run with the shipment's saga correlation id when nothing set one.

    A consumed event already set the context (the runner does); the progression
    job has none, and its updates should still join the order's story.
    """
    if correlation_id.get() is not None or shipment.correlation_id is None:
        yield
        return
    token = correlation_id.set(shipment.correlation_id)
    try:
        yield
    finally:
        correlation_id.reset(token)


class PublishedShipmentEvents(ShipmentEvents):
    """Sends through the generated publisher (the outbox, inside the transaction).

    ``causation_id`` is the event id of the consumed event that caused these (none
    for the timer-driven steps).
    """

    def __init__(
        self, publisher: ShippingEventPublisher, *, causation_id: str | None = None
    ) -> None:
        self._publisher = publisher
        self._causation_id = causation_id

    async def scheduled(self, shipment: Shipment) -> None:
        with _correlated(shipment):
            await self._publisher.shipping_scheduled(
                ShipmentScheduledPayload(
                    order_id=shipment.order_id,
                    shipment_id=shipment.shipment_id,
                    tracking_code=shipment.tracking_code,
                    estimated_delivery_date=shipment.estimated_delivery_date,
                    scheduled_at=shipment.created_at,
                ),
                causation_id=self._causation_id,
            )

    async def updated(self, shipment: Shipment) -> None:
        change = shipment.latest
        with _correlated(shipment):
            await self._publisher.shipping_updated(
                ShipmentUpdatedPayload(
                    order_id=shipment.order_id,
                    shipment_id=shipment.shipment_id,
                    tracking_code=shipment.tracking_code,
                    status=EventShipmentStatus(change.status.value),
                    location=change.location,
                    occurred_at=change.occurred_at,
                ),
                causation_id=self._causation_id,
            )
