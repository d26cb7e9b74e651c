"""Reservation events as the generated InventoryReserved / InventoryReleased payloads."""

from __future__ import annotations

from datetime import datetime

from generated.models.events import (
    InventoryReleasedPayload,
    InventoryReleaseReason,
    InventoryReservedPayload,
    ReservationItem,
)
from generated.services.inventory.events import InventoryEventPublisher
from handwritten.inventory.domain.reservations import ReleaseReason, Reservation
from handwritten.inventory.service_layer.ports import ReservationEvents


def _items(reservation: Reservation) -> list[ReservationItem]:
    return [
        ReservationItem(product_id=line.product_id, quantity=line.quantity)
        for line in reservation.lines
    ]


class PublishedReservationEvents(ReservationEvents):
    """Sends through the generated publisher (the outbox, inside the transaction)."""

    def __init__(self, publisher: InventoryEventPublisher) -> None:
        self._publisher = publisher

    async def reserved(self, reservation: Reservation, at: datetime) -> None:
        await self._publisher.inventory_reserved(
            InventoryReservedPayload(
                order_id=reservation.order_id,
                items=_items(reservation),
                expires_at=reservation.expires_at,
                reserved_at=at,
            )
        )

    async def released(self, reservation: Reservation, reason: ReleaseReason, at: datetime) -> None:
        await self._publisher.inventory_released(
            InventoryReleasedPayload(
                order_id=reservation.order_id,
                items=_items(reservation),
                reason=InventoryReleaseReason(reason.value),
                released_at=at,
            )
        )


class UnpublishedReservationEvents(ReservationEvents):
    """Records nothing: for deployments (and tests) without the outbox."""

    async def reserved(self, reservation: Reservation, at: datetime) -> None:
        return None

    async def released(self, reservation: Reservation, reason: ReleaseReason, at: datetime) -> None:
        return None
