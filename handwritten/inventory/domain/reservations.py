"""Stock reservations of orders and their state machine.

An order's reservation is a set of lines (one per product) that share one status::

    RESERVED ──commit──▶ COMMITTED ──restore──▶ RETURNED  (sold stock back on sale)
        │ ├───release──▶ RELEASED    (saga compensation: stock returned)
        │ └───expiry───▶ EXPIRED     (not committed before expires_at: stock returned)

RETURNED, RELEASED and EXPIRED are final; a COMMITTED reservation only moves on
when a confirmed order is canceled before it ships (the saga's reversal). Every
operation is idempotent per order id; the decision functions below say what a
repeated or late call does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from uuid import UUID

from handwritten.inventory.domain.errors import ReservationConflictError
from handwritten.inventory.domain.stock import RequestedItem, StockLevel, lock_order


class ReservationStatus(StrEnum):
    RESERVED = "RESERVED"
    COMMITTED = "COMMITTED"
    RELEASED = "RELEASED"
    EXPIRED = "EXPIRED"
    RETURNED = "RETURNED"


class ReleaseReason(StrEnum):
    """Why held stock went back to available (the event's ``reason``)."""

    ORDER_CANCELED = "ORDER_CANCELED"
    RESERVATION_EXPIRED = "RESERVATION_EXPIRED"


_ALLOWED: Mapping[ReservationStatus, frozenset[ReservationStatus]] = {
    ReservationStatus.RESERVED: frozenset(
        {ReservationStatus.COMMITTED, ReservationStatus.RELEASED, ReservationStatus.EXPIRED}
    ),
    ReservationStatus.COMMITTED: frozenset({ReservationStatus.RETURNED}),
    ReservationStatus.RELEASED: frozenset(),
    ReservationStatus.EXPIRED: frozenset(),
    ReservationStatus.RETURNED: frozenset(),
}


class IllegalTransitionError(ValueError):
    """A status change the state machine does not allow (a programming error)."""


@dataclass(frozen=True)
class ReservationLine:
    """One product held for an order, with its name and price at reservation time."""

    product_id: UUID
    product_name: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class Reservation:
    """An order's reservation: its lines (sorted by product id) and shared status."""

    order_id: UUID
    lines: tuple[ReservationLine, ...]
    status: ReservationStatus
    expires_at: datetime

    def is_due(self, now: datetime) -> bool:
        """Still holding stock although its time is up."""
        return self.status is ReservationStatus.RESERVED and self.expires_at <= now

    def holds_stock(self, now: datetime) -> bool:
        return self.status is ReservationStatus.RESERVED and not self.is_due(now)

    def matches(self, items: Iterable[RequestedItem]) -> bool:
        """Same products in the same quantities (order of the items is irrelevant)."""
        wanted = {(item.product_id, item.quantity) for item in items}
        return wanted == {(line.product_id, line.quantity) for line in self.lines}

    def moved_to(self, status: ReservationStatus) -> Reservation:
        """This reservation in ``status``; ``IllegalTransitionError`` if not allowed."""
        if status not in _ALLOWED[self.status]:
            raise IllegalTransitionError(f"{self.status} → {status} is not allowed")
        return replace(self, status=status)


def reservation_lines(
    items: Sequence[RequestedItem], stock: Mapping[UUID, StockLevel]
) -> tuple[ReservationLine, ...]:
    """Lines for ``items``, priced from ``stock`` (which must hold every product)."""
    lines = [
        ReservationLine(
            item.product_id,
            stock[item.product_id].name,
            item.quantity,
            stock[item.product_id].unit_price,
        )
        for item in items
    ]
    return tuple(sorted(lines, key=lambda line: line.product_id))


def stock_to_move(reservations: Iterable[Reservation]) -> list[tuple[UUID, int]]:
    """Total quantity per product over ``reservations``, in lock order."""
    totals: Counter[UUID] = Counter()
    for reservation in reservations:
        for line in reservation.lines:
            totals[line.product_id] += line.quantity
    return [(product_id, totals[product_id]) for product_id in lock_order(totals)]


def repeated_reserve(
    existing: Reservation, items: Sequence[RequestedItem], now: datetime
) -> Reservation:
    """What a second ReserveProducts for an order that has a reservation returns.

    The same items while the stock is held (or already committed) replay the
    original reservation. Different items, or a reservation that no longer holds
    stock (released, expired, or past its expiry), are a conflict: reusing the order
    id would otherwise claim stock that is not held.
    """
    if not existing.matches(items):
        raise ReservationConflictError(
            existing.order_id, "already reserved with different items or quantities"
        )
    if existing.status is ReservationStatus.COMMITTED or existing.holds_stock(now):
        return existing
    status = "EXPIRED" if existing.is_due(now) else existing.status.value
    raise ReservationConflictError(existing.order_id, f"is {status} and no longer holds stock")


class CommitAction(Enum):
    COMMIT = "commit"
    #: Already committed: nothing to do, report success again.
    NOTHING = "nothing"
    #: Past its expiry but not yet swept: expire it now, then refuse the commit.
    EXPIRE = "expire"


def decide_commit(reservation: Reservation, now: datetime) -> CommitAction:
    """Commit outcome; ``ReservationConflictError`` when released or expired."""
    if reservation.status is ReservationStatus.COMMITTED:
        return CommitAction.NOTHING
    if reservation.is_due(now):
        return CommitAction.EXPIRE
    if reservation.status is ReservationStatus.RESERVED:
        return CommitAction.COMMIT
    raise ReservationConflictError(reservation.order_id, f"is {reservation.status.value}")


def decide_release(reservation: Reservation | None) -> bool:
    """True when the release returns stock; ``False`` when there is nothing to release.

    Released, expired or unknown reservations are a no-op; a committed reservation
    is refused with ``ReservationConflictError`` (its stock is already sold).
    A RESERVED reservation past its expiry is still released here: the stock goes
    back either way, and the caller's intent (cancel) is the more precise reason.
    """
    if reservation is None:
        return False
    if reservation.status is ReservationStatus.COMMITTED:
        raise ReservationConflictError(reservation.order_id, "is COMMITTED and cannot be released")
    return reservation.status is ReservationStatus.RESERVED


def decide_restore(reservation: Reservation | None) -> bool:
    """True when restoring puts sold stock back on sale (a COMMITTED reservation).

    Everything else is a no-op (``False``), never an error: a restored one was
    already returned, and one that was never committed holds no sold stock (a held
    reservation is ReleaseReservation's business, which the saga also runs).
    """
    return reservation is not None and reservation.status is ReservationStatus.COMMITTED
