"""Property: for any valid command sequence, full replay == snapshot + tail == live.

Driven the way ``AggregateRepository`` drives the aggregate: decide on the live
state, normalise the events (JSON round trip, schema version), apply them, and
snapshot when due. The read-model row (``view_of``) must agree too, since the
projection and its rebuild are computed from these states.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from handwritten.orders.domain.errors import InvalidTransitionError
from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import (
    ORDER,
    CancelReason,
    Order,
    OrderState,
    cancel,
    confirm,
    mark_delivered,
    mark_shipped,
    place,
    record_refund,
    schedule_shipment,
)
from handwritten.orders.domain.pricing import PricedLine
from handwritten.orders.service_layer.read_model import view_of
from handwritten.runtime.eventstore import (
    DomainEvent,
    Loaded,
    Snapshot,
    fold,
    normalized,
    rebuild,
    snapshot_due,
    take_snapshot,
)
from tests.unit.orders.factories import ADDRESS, T0

PAYMENTS = [uuid.UUID(int=n) for n in range(1, 4)]
TRACKING_CODES = ["BR-00000001", "BR-00000002"]

Step = tuple[str, int, int]  # (command, choice, minutes later)

steps = st.tuples(
    st.sampled_from(["confirm", "cancel", "schedule", "ship", "deliver", "refund"]),
    st.integers(0, 3),
    st.integers(0, 600),
)
priced_lines = st.lists(
    st.tuples(
        st.integers(1, 1000),
        st.decimals(min_value=Decimal("0.01"), max_value=Decimal("9999.99"), places=2),
    ),
    min_size=1,
    max_size=5,
)


def _decide(step: Step, at: datetime) -> Callable[[Order], list[DomainEvent]]:
    kind, choice, _ = step
    if kind == "confirm":
        return lambda order: confirm(order, payment_id=PAYMENTS[choice % len(PAYMENTS)], now=at)
    if kind == "cancel":
        reason = list(CancelReason)[choice]
        return lambda order: cancel(order, reason=reason, now=at, detail=f"detail {choice}")
    if kind == "ship":
        code = TRACKING_CODES[choice % len(TRACKING_CODES)]
        return lambda order: mark_shipped(order, tracking_code=code, now=at)
    if kind == "schedule":
        code = TRACKING_CODES[choice % len(TRACKING_CODES)]
        return lambda order: schedule_shipment(order, tracking_code=code, now=at)
    if kind == "refund":
        paid = None if choice == 0 else PAYMENTS[choice % len(PAYMENTS)]
        return lambda order: record_refund(order, payment_id=paid, now=at)
    return lambda order: mark_delivered(order, now=at)


@settings(max_examples=200, deadline=None)
@given(
    lines=priced_lines,
    commands=st.lists(steps, max_size=30),
    every=st.integers(0, 4),
    split=st.integers(0, 40),
)
def test_replay_with_or_without_snapshot_equals_the_live_state(
    lines: list[tuple[int, Decimal]], commands: list[Step], every: int, split: int
) -> None:
    order_id = uuid.uuid4()
    priced = [PricedLine(uuid.uuid4(), f"P{i}", q, Money(p)) for i, (q, p) in enumerate(lines)]
    history = [
        normalized(ORDER, event)
        for event in place(
            None,
            order_id=order_id,
            user_id=uuid.uuid4(),
            lines=priced,
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
            now=T0,
        )
    ]
    live: OrderState = fold(ORDER, None, history)
    latest: Snapshot | None = None
    at = T0
    for step in commands:
        at += timedelta(minutes=step[2])
        assert live is not None
        try:
            decided = [normalized(ORDER, event) for event in _decide(step, at)(live)]
        except InvalidTransitionError:
            continue
        for event in decided:
            live = ORDER.apply(live, event)
            history.append(event)
        last_snapshot = 0 if latest is None else latest.last_sequence_number
        if decided and snapshot_due(last_snapshot, len(history), every):
            latest = take_snapshot(ORDER, Loaded(order_id, live, len(history)))
    assert live is not None
    assert live.total.amount == sum((Decimal(q) * p for q, p in lines), Decimal("0"))
    numbered = list(enumerate(history, start=1))

    full = rebuild(ORDER, order_id, None, numbered)
    assert full.state == live
    assert full.version == len(history)
    assert view_of(live, len(history)) == view_of(full.state, full.version)

    if latest is not None:
        tail = numbered[latest.last_sequence_number :]
        assert rebuild(ORDER, order_id, latest, tail).state == live

    cut = min(split, len(history))
    if cut:
        at_cut = fold(ORDER, None, history[:cut])
        snapshot = take_snapshot(ORDER, Loaded(order_id, at_cut, cut))
        assert rebuild(ORDER, order_id, snapshot, numbered[cut:]).state == live

    # A snapshot of an older format is ignored: a full replay still gives the state.
    outdated = Snapshot(order_id, "Order", ORDER.snapshot_version - 1, {"old": True}, cut or 1)
    assert rebuild(ORDER, order_id, outdated, numbered).state == live


@settings(max_examples=100, deadline=None)
@given(commands=st.lists(steps, max_size=30))
def test_status_only_moves_along_the_lifecycle(commands: list[Step]) -> None:
    """PENDING → CONFIRMED → SHIPPED → DELIVERED, or CANCELED, never backwards."""
    allowed = {
        "PENDING": {"PENDING", "CONFIRMED", "CANCELED"},
        "CONFIRMED": {"CONFIRMED", "SHIPPED", "CANCELED"},
        "SHIPPED": {"SHIPPED", "DELIVERED"},
        "DELIVERED": {"DELIVERED"},
        "CANCELED": {"CANCELED"},
    }
    state = fold(
        ORDER,
        None,
        place(
            None,
            order_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            lines=[PricedLine(uuid.uuid4(), "P", 1, Money.parse("1.00"))],
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
            now=T0,
        ),
    )
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for step in commands:
        assert state is not None
        before = state.status.value
        try:
            events = _decide(step, at)(state)
        except InvalidTransitionError:
            continue
        state = fold(ORDER, state, events)
        assert state is not None
        assert state.status.value in allowed[before]
        assert (state.cancel_reason is not None) == (state.status.value == "CANCELED")
