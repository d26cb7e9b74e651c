"""Use cases of stock: check, reserve, commit, release, restore, expire reservations.

No oversell, by construction: a reservation locks its product rows in one global
order, decides on the locked snapshot, and moves stock with conditional updates
(``available_quantity >= n``) inside one transaction; the table's CHECK
constraints are the last line of defence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from handwritten.inventory.domain.errors import (
    ReservationConflictError,
    ReservationNotFoundError,
    StockInvariantError,
)
from handwritten.inventory.domain.reservations import (
    CommitAction,
    ReleaseReason,
    Reservation,
    ReservationStatus,
    decide_commit,
    decide_release,
    decide_restore,
    repeated_reserve,
    reservation_lines,
    stock_to_move,
)
from handwritten.inventory.domain.stock import (
    Availability,
    RequestedItem,
    Unavailable,
    assess,
    lock_order,
)
from handwritten.inventory.service_layer.ports import ProductCache, UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class ReserveOutcome:
    """Either the (new or replayed) reservation, or why nothing was reserved."""

    reservation: Reservation | None
    unavailable: tuple[Unavailable, ...] = ()

    @property
    def reserved(self) -> bool:
        return self.reservation is not None


class StockKeeper:
    """Owns every change of stock quantities."""

    def __init__(
        self, uow: UnitOfWorkFactory, cache: ProductCache, *, reservation_ttl_seconds: float
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._ttl = reservation_ttl_seconds

    async def check(self, items: Sequence[RequestedItem]) -> Availability:
        """Read-only availability with current names and prices (never from the cache:
        orders are priced from this answer)."""
        async with self._uow() as uow:
            stock = await uow.products.stock([item.product_id for item in items])
        return assess(items, stock)

    async def reserve(self, order_id: UUID, items: Sequence[RequestedItem]) -> ReserveOutcome:
        """Hold every item for ``order_id``, or none; idempotent per order id.

        A refused attempt records nothing, so a retry is evaluated afresh.
        """
        async with self._uow() as uow:
            await uow.reservations.serialize(order_id)
            existing = await uow.reservations.get(order_id)
            if existing is not None:
                return ReserveOutcome(repeated_reserve(existing, items, await uow.now()))
            stock = await uow.products.lock_stock([item.product_id for item in items])
            availability = assess(items, stock)
            if not availability.available:
                return ReserveOutcome(None, availability.unavailable)
            lines = reservation_lines(items, stock)
            for line in lines:  # sorted by product id: the lock order
                if not await uow.products.hold(line.product_id, line.quantity):
                    raise StockInvariantError(f"could not hold {line} under lock")
            reservation = await uow.reservations.add(order_id, lines, self._ttl)
            await uow.events.reserved(reservation, await uow.now())
        await self._cache.invalidate([line.product_id for line in reservation.lines])
        return ReserveOutcome(reservation)

    async def commit(self, order_id: UUID) -> None:
        """Debit the held stock for good; a repeated commit is a no-op.

        ``ReservationNotFoundError`` for an unknown order; ``ReservationConflictError`` when
        the reservation was released or has expired (an expired one still RESERVED
        is expired on the spot, stock returned, before refusing).
        """
        async with self._uow() as uow:
            reservation = await uow.reservations.lock(order_id)
            if reservation is None:
                raise ReservationNotFoundError(order_id)
            action = decide_commit(reservation, await uow.now())
            if action is CommitAction.NOTHING:
                return
            if action is CommitAction.EXPIRE:
                await self._return_stock(uow, [reservation], ReleaseReason.RESERVATION_EXPIRED)
            else:
                committed = reservation.moved_to(ReservationStatus.COMMITTED)
                for product_id, quantity in stock_to_move([committed]):
                    await uow.products.debit_held(product_id, quantity)
                await uow.reservations.set_status(order_id, committed.status)
        await self._cache.invalidate([line.product_id for line in reservation.lines])
        if action is CommitAction.EXPIRE:
            raise ReservationConflictError(order_id, "is EXPIRED")

    async def release(self, order_id: UUID) -> bool:
        """Return the held stock (compensation); False when there was nothing to release.

        ``ReservationConflictError`` for a committed reservation.
        """
        async with self._uow() as uow:
            reservation = await uow.reservations.lock(order_id)
            if not decide_release(reservation):
                return False
            assert reservation is not None
            await self._return_stock(uow, [reservation], ReleaseReason.ORDER_CANCELED)
        await self._cache.invalidate([line.product_id for line in reservation.lines])
        return True

    async def restore(self, order_id: UUID) -> bool:
        """Put a committed reservation's sold stock back on sale (a confirmed order
        canceled before shipping); False when there was nothing to restore.

        Idempotent per order id: the reservation moves COMMITTED → RETURNED under
        its row lock, so a repeated or concurrent call finds it RETURNED and does
        nothing.
        """
        async with self._uow() as uow:
            reservation = await uow.reservations.lock(order_id)
            if not decide_restore(reservation):
                return False
            assert reservation is not None
            returned = reservation.moved_to(ReservationStatus.RETURNED)
            for product_id, quantity in stock_to_move([returned]):
                await uow.products.return_sold(product_id, quantity)
            await uow.reservations.set_status(
                order_id, returned.status, current=ReservationStatus.COMMITTED
            )
            await uow.events.released(returned, ReleaseReason.ORDER_CANCELED, await uow.now())
        await self._cache.invalidate([line.product_id for line in reservation.lines])
        return True

    async def expire_due(self, limit: int) -> int:
        """Release up to ``limit`` reservation lines past their expiry; returns the
        number of reservations expired. Safe to run on every replica at once."""
        async with self._uow() as uow:
            due = await uow.reservations.lock_due(limit)
            if due:
                await self._return_stock(uow, due, ReleaseReason.RESERVATION_EXPIRED)
        if due:
            await self._cache.invalidate(
                lock_order(line.product_id for reservation in due for line in reservation.lines)
            )
        return len(due)

    @staticmethod
    async def _return_stock(
        uow: UnitOfWork, reservations: Sequence[Reservation], reason: ReleaseReason
    ) -> None:
        status = (
            ReservationStatus.EXPIRED
            if reason is ReleaseReason.RESERVATION_EXPIRED
            else ReservationStatus.RELEASED
        )
        moved = [reservation.moved_to(status) for reservation in reservations]
        for product_id, quantity in stock_to_move(moved):
            await uow.products.return_held(product_id, quantity)
        now = await uow.now()
        for reservation in moved:
            await uow.reservations.set_status(reservation.order_id, reservation.status)
            await uow.events.released(reservation, reason, now)
