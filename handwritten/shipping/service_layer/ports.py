"""What the use cases need from the outside world; ``adapters`` implements it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol
from uuid import UUID

from handwritten.shipping.domain.shipments import Shipment


class TrackingCodeTakenError(Exception):
    """The tracking code drawn for a new shipment already exists (draw another)."""


class ShipmentRepository(Protocol):
    async def serialize_order(self, order_id: UUID) -> None:
        """Block every other confirm/cancel of ``order_id`` until this transaction ends.

        orders.confirmed and orders.canceled travel on different topics, so two
        replicas may handle them at the same time; without this, each could miss
        the other's write (schedule + remember-cancel both commit).
        """
        ...

    async def get(self, order_id: UUID) -> Shipment | None: ...

    async def get_many(self, order_ids: Sequence[UUID]) -> dict[UUID, Shipment]: ...

    async def lock(self, order_id: UUID) -> Shipment | None:
        """The order's shipment, its row locked until the end of the transaction."""
        ...

    async def add(self, shipment: Shipment) -> None:
        """Insert a new shipment with its first history entry.

        Raises ``TrackingCodeTakenError`` (leaving the transaction usable) when the
        tracking code is already used.
        """
        ...

    async def record_change(self, shipment: Shipment) -> None:
        """Persist the shipment's new status and its latest history entry."""
        ...

    async def lock_due(self, step_seconds: float, limit: int) -> list[Shipment]:
        """Up to ``limit`` shipments that can advance and have kept their status for
        ``step_seconds``, locked, skipping rows another transaction holds (a
        replica's job, a cancel in progress)."""
        ...


class CanceledOrders(Protocol):
    """Orders canceled before their shipment was scheduled."""

    async def remember(self, order_id: UUID, reason: str, at: dt.datetime) -> None:
        """Record the cancel (idempotent)."""
        ...

    async def contains(self, order_id: UUID) -> bool: ...


class ShipmentEvents(Protocol):
    """Domain events of shipments, recorded in the same transaction."""

    async def scheduled(self, shipment: Shipment) -> None: ...

    async def updated(self, shipment: Shipment) -> None:
        """The shipment's latest history entry happened."""
        ...


class UnitOfWork(Protocol):
    """One database transaction: committed when the block exits normally."""

    @property
    def shipments(self) -> ShipmentRepository: ...

    @property
    def canceled_orders(self) -> CanceledOrders: ...

    @property
    def events(self) -> ShipmentEvents: ...

    async def now(self) -> dt.datetime:
        """The database clock (one clock for every replica)."""
        ...


UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]
