"""The reservation state machine and what repeated or late calls do."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from handwritten.inventory.domain.errors import ReservationConflictError
from handwritten.inventory.domain.reservations import (
    CommitAction,
    IllegalTransitionError,
    Reservation,
    ReservationLine,
    ReservationStatus,
    decide_commit,
    decide_release,
    decide_restore,
    repeated_reserve,
    reservation_lines,
    stock_to_move,
)
from handwritten.inventory.domain.stock import RequestedItem, StockLevel

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
P1, P2 = uuid.UUID(int=1), uuid.UUID(int=2)
ORDER = uuid.uuid4()


def reservation(
    status: ReservationStatus = ReservationStatus.RESERVED,
    expires_in: timedelta = timedelta(minutes=15),
    order_id: uuid.UUID = ORDER,
) -> Reservation:
    return Reservation(
        order_id,
        (
            ReservationLine(P1, "One", 2, Decimal("10.00")),
            ReservationLine(P2, "Two", 1, Decimal("5.50")),
        ),
        status,
        NOW + expires_in,
    )


ITEMS = [RequestedItem(P2, 1), RequestedItem(P1, 2)]


def test_lines_are_priced_from_the_stock_and_sorted_by_product() -> None:
    stock = {
        P1: StockLevel(P1, "One", Decimal("10.00"), 9),
        P2: StockLevel(P2, "Two", Decimal("5.50"), 9),
    }
    assert reservation_lines(ITEMS, stock) == reservation().lines


@pytest.mark.parametrize("final", [ReservationStatus.RELEASED, ReservationStatus.EXPIRED])
def test_only_reserved_moves_and_final_states_stay_final(final: ReservationStatus) -> None:
    moved = reservation().moved_to(final)
    assert moved.status is final
    for target in ReservationStatus:
        with pytest.raises(IllegalTransitionError):
            moved.moved_to(target)


def test_a_committed_reservation_can_only_be_returned_which_is_final() -> None:
    committed = reservation().moved_to(ReservationStatus.COMMITTED)
    for target in ReservationStatus:
        if target is not ReservationStatus.RETURNED:
            with pytest.raises(IllegalTransitionError):
                committed.moved_to(target)
    returned = committed.moved_to(ReservationStatus.RETURNED)
    for target in ReservationStatus:
        with pytest.raises(IllegalTransitionError):
            returned.moved_to(target)
    with pytest.raises(IllegalTransitionError):
        reservation().moved_to(ReservationStatus.RETURNED)


def test_restore_decisions() -> None:
    assert decide_restore(reservation(ReservationStatus.COMMITTED)) is True
    for status in (
        ReservationStatus.RESERVED,
        ReservationStatus.RELEASED,
        ReservationStatus.EXPIRED,
        ReservationStatus.RETURNED,
    ):
        assert decide_restore(reservation(status)) is False
    assert decide_restore(None) is False
    assert decide_release(reservation(ReservationStatus.RETURNED)) is False


def test_repeating_a_reserve_with_the_same_items_replays_it() -> None:
    original = reservation()
    assert repeated_reserve(original, ITEMS, NOW) is original
    committed = reservation(ReservationStatus.COMMITTED, expires_in=-timedelta(hours=1))
    assert repeated_reserve(committed, ITEMS, NOW) is committed


@pytest.mark.parametrize(
    "items",
    [[RequestedItem(P1, 2)], [RequestedItem(P1, 3), RequestedItem(P2, 1)]],
)
def test_repeating_a_reserve_with_other_items_is_a_conflict(items: list[RequestedItem]) -> None:
    with pytest.raises(ReservationConflictError, match="different items"):
        repeated_reserve(reservation(), items, NOW)


@pytest.mark.parametrize(
    ("status", "expires_in", "shown"),
    [
        (ReservationStatus.RELEASED, timedelta(minutes=5), "RELEASED"),
        (ReservationStatus.EXPIRED, -timedelta(minutes=5), "EXPIRED"),
        (ReservationStatus.RESERVED, timedelta(0), "EXPIRED"),  # due, not yet swept
    ],
)
def test_repeating_a_reserve_that_no_longer_holds_stock_is_a_conflict(
    status: ReservationStatus, expires_in: timedelta, shown: str
) -> None:
    with pytest.raises(ReservationConflictError, match=shown):
        repeated_reserve(reservation(status, expires_in), ITEMS, NOW)


def test_commit_decisions() -> None:
    assert decide_commit(reservation(), NOW) is CommitAction.COMMIT
    assert decide_commit(reservation(ReservationStatus.COMMITTED), NOW) is CommitAction.NOTHING
    assert decide_commit(reservation(expires_in=-timedelta(seconds=1)), NOW) is CommitAction.EXPIRE
    for status in (ReservationStatus.RELEASED, ReservationStatus.EXPIRED):
        with pytest.raises(ReservationConflictError, match=status.value):
            decide_commit(reservation(status), NOW)


def test_release_decisions() -> None:
    assert decide_release(reservation()) is True
    assert decide_release(reservation(expires_in=-timedelta(minutes=1))) is True
    assert decide_release(None) is False
    assert decide_release(reservation(ReservationStatus.RELEASED)) is False
    assert decide_release(reservation(ReservationStatus.EXPIRED)) is False
    with pytest.raises(ReservationConflictError, match="COMMITTED"):
        decide_release(reservation(ReservationStatus.COMMITTED))


def test_stock_to_move_sums_per_product_in_lock_order() -> None:
    other = reservation(order_id=uuid.uuid4())
    assert stock_to_move([reservation(), other]) == [(P1, 4), (P2, 2)]
