"""Shipment events as the generated ShipmentScheduled / ShipmentUpdated payloads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from opentelemetry import trace

from generated.models.events import (
    ShipmentScheduledPayload,
    ShipmentUpdatedPayload,
)
from generated.models.events import ShipmentStatus as EventShipmentStatus
from generated.services.shipping.events import ShippingEventPublisher
from handwritten.runtime.context import correlation_id
from handwritten.runtime.tracing import ORDER_ID, bound_ids, resumed_span
from handwritten.shipping.domain.shipments import Shipment
from handwritten.shipping.service_layer.ports import ShipmentEvents


@contextmanager
def _correlated(shipment: Shipment) -> Iterator[None]:
    """Run in the order's context when nothing set one: its saga correlation id, and
    a span continuing the order's trace from where the shipment was scheduled.

    A consumed event already set both (the runner does); the progression job has
    neither, and its updates should still join the order's story (logs and trace).
    """
    with ExitStack() as scope:
        if correlation_id.get() is None and shipment.correlation_id is not None:
            scope.callback(correlation_id.reset, correlation_id.set(shipment.correlation_id))
        if not trace.get_current_span().get_span_context().is_valid:
            scope.enter_context(
                resumed_span(
                    f"shipment {shipment.status.value.lower()}",
                    shipment.traceparent,
                    attributes={
                        ORDER_ID: str(shipment.order_id),
                        "shipment.id": str(shipment.shipment_id),
                        "shipment.status": shipment.status.value,
                    },
                )
            )
            scope.enter_context(bound_ids(order_id=shipment.order_id))
        yield


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
