"""What the use cases need from the outside world; ``adapters`` implements it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol
from uuid import UUID

from handwritten.inventory.domain.products import NewProduct, Product, ProductChanges
from handwritten.inventory.domain.reservations import (
    ReleaseReason,
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from handwritten.inventory.domain.stock import StockLevel
from handwritten.inventory.service_layer.paging import PageKey


class ProductRepository(Protocol):
    async def get(self, product_id: UUID) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]: ...

    async def page(self, after: PageKey | None, limit: int) -> list[Product]:
        """Up to ``limit`` products after ``after``, by (created_at, product_id)."""
        ...

    async def add(self, product: NewProduct) -> Product: ...

    async def update(self, product_id: UUID, changes: ProductChanges) -> Product | None: ...

    async def stock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        """Current stock, without locking (a read-only snapshot)."""
        ...

    async def lock_stock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        """Current stock, with the rows locked until the end of the transaction.

        Rows are locked in ``lock_order`` so concurrent writers never deadlock.
        """
        ...

    async def hold(self, product_id: UUID, quantity: int) -> bool:
        """Move ``quantity`` from available to reserved if that much is available."""
        ...

    async def debit_held(self, product_id: UUID, quantity: int) -> None:
        """Remove ``quantity`` from reserved for good (sold)."""
        ...

    async def return_held(self, product_id: UUID, quantity: int) -> None:
        """Move ``quantity`` from reserved back to available."""
        ...

    async def return_sold(self, product_id: UUID, quantity: int) -> None:
        """Put ``quantity`` sold (committed) units back to available."""
        ...


class ReservationRepository(Protocol):
    async def serialize(self, order_id: UUID) -> None:
        """Block other ReserveProducts of ``order_id`` until this transaction ends."""
        ...

    async def get(self, order_id: UUID) -> Reservation | None: ...

    async def lock(self, order_id: UUID) -> Reservation | None:
        """The reservation with its rows locked until the end of the transaction."""
        ...

    async def add(
        self, order_id: UUID, lines: Sequence[ReservationLine], ttl_seconds: float
    ) -> Reservation: ...

    async def set_status(
        self,
        order_id: UUID,
        status: ReservationStatus,
        *,
        current: ReservationStatus = ReservationStatus.RESERVED,
    ) -> None:
        """Move every line of the order from ``current`` to ``status``."""
        ...

    async def lock_due(self, limit: int) -> list[Reservation]:
        """Whole RESERVED reservations past their expiry, locked, skipping any that
        another transaction (a replica's expiry job, a commit) is working on."""
        ...


class ReservationEvents(Protocol):
    """Domain events of reservations, recorded in the same transaction."""

    async def reserved(self, reservation: Reservation, at: datetime) -> None: ...

    async def released(
        self, reservation: Reservation, reason: ReleaseReason, at: datetime
    ) -> None: ...


class UnitOfWork(Protocol):
    """One database transaction: committed when the block exits normally."""

    @property
    def products(self) -> ProductRepository: ...

    @property
    def reservations(self) -> ReservationRepository: ...

    @property
    def events(self) -> ReservationEvents: ...

    async def now(self) -> datetime:
        """The database clock (one clock for every replica)."""
        ...


UnitOfWorkFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


class ProductCache(Protocol):
    """A best-effort read cache: a failure is a miss, never an error."""

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]: ...

    async def put_many(self, products: Sequence[Product]) -> None: ...

    async def invalidate(self, product_ids: Sequence[UUID]) -> None: ...
