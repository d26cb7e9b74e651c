"""The pure projection: event → row changes, the join laws, statuses, the revenue
rule and the dedupe decisions (no ClickHouse, no Kafka)."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest

from generated.events.registry import Event
from handwritten.analytics.domain.orders import (
    JOIN_RULES,
    OrderFacts,
    OrderStatus,
    PaymentStatus,
    ShippingStatus,
)
from handwritten.analytics.domain.projection import (
    dedupe_key,
    fresh_events,
    order_lines,
    project,
    project_all,
)
from tests.unit.analytics.factory import (
    Item,
    OrderStory,
    redelivered,
    republished,
    user_registered,
)

DAY = dt.datetime(2031, 7, 14, 9, 30, tzinfo=dt.UTC)
MUG = Item(uuid.uuid4(), "Mug", 2, Decimal("10.25"))
PEN = Item(uuid.uuid4(), "Pen", 1, Decimal("3.10"))


def story(**options: Any) -> OrderStory:
    return OrderStory(DAY, [MUG, PEN], **options)


def state(events: list[Event[Any]]) -> OrderFacts:
    projection = project_all(events)
    [facts] = projection.orders.values()
    return facts


# ------------------------------------------------------------------ event → rows


def test_order_created_gives_amount_time_user_and_lines() -> None:
    order = story()
    projection = project(order.created())
    facts = projection.orders[order.order_id]
    assert facts.total_amount == Decimal("23.60")
    assert facts.created_at == DAY
    assert facts.user_id == order.user_id
    assert facts.confirmed_at is None
    lines = {line.product_id: line for line in projection.lines.values()}
    assert lines[MUG.product_id].quantity == 2
    assert lines[MUG.product_id].revenue == Decimal("20.50")
    assert lines[PEN.product_id].revenue == Decimal("3.10")


def test_repeated_product_lines_are_summed_per_product() -> None:
    order_id = uuid.uuid4()
    twice = [MUG, Item(MUG.product_id, "Mug", 3, Decimal("9.00"))]
    [line] = order_lines(order_id, [item_model(item) for item in twice])
    assert line.quantity == 5
    assert line.revenue == Decimal("47.50")


def item_model(item: Item) -> Any:
    from generated.models.events import OrderItem

    return OrderItem.model_validate(item.wire())


def test_each_event_type_sets_its_facts() -> None:
    order = story()
    assert project(order.paid()).orders[order.order_id].payment_id == order.payment_id
    confirmed = project(order.confirmed()).orders[order.order_id]
    assert confirmed.confirmed_at == order.at(2)
    assert confirmed.total_amount == order.total
    canceled = project(order.canceled("OUT_OF_STOCK")).orders[order.order_id]
    assert (canceled.canceled_at, canceled.cancel_reason) == (order.at(30), "OUT_OF_STOCK")
    assert project(order.refunded()).orders[order.order_id].refunded_at == order.at(31)
    voided = project(order.refunded(charged=False)).orders[order.order_id]
    assert (voided.refunded_at, voided.payment_voided_at) == (None, order.at(31))
    scheduled = project(order.scheduled()).orders[order.order_id]
    assert scheduled.tracking_code == order.tracking_code
    assert scheduled.estimated_delivery_date == dt.date(2031, 7, 17)
    in_transit = project(order.shipment("IN_TRANSIT", 50)).orders[order.order_id]
    assert in_transit.shipment_in_transit_at == order.at(50)
    assert project(order.shipped()).orders[order.order_id].shipped_at == order.at(60)
    assert project(order.delivered()).orders[order.order_id].delivered_at == order.at(120)


def test_user_registered_gives_a_profile_and_no_order() -> None:
    user = uuid.uuid4()
    projection = project(user_registered(user, "ana@example.com", DAY))
    assert projection.orders == {}
    assert projection.users[user].email == "ana@example.com"


# ------------------------------------------------------------------- join laws


def test_join_is_order_independent_and_idempotent() -> None:
    """Any arrival order, with any duplicates, gives the same state."""
    order = story()
    events = order.delivered_journey()
    expected = state(events)
    rng = random.Random(7)
    for _ in range(50):
        shuffled = events + rng.sample(events, k=rng.randint(0, len(events)))
        rng.shuffle(shuffled)
        assert state(shuffled) == expected


def test_join_keeps_the_earliest_time_and_ignores_unknowns() -> None:
    order_id = uuid.uuid4()
    early = OrderFacts(order_id, confirmed_at=DAY)
    late = OrderFacts(order_id, confirmed_at=DAY + dt.timedelta(hours=1), total_amount=Decimal("5"))
    joined = late.join(early)
    assert joined.confirmed_at == DAY
    assert joined.total_amount == Decimal("5")
    assert joined.join(joined) == joined


def test_facts_of_different_orders_do_not_join() -> None:
    with pytest.raises(ValueError, match="cannot join"):
        OrderFacts(uuid.uuid4()).join(OrderFacts(uuid.uuid4()))


def test_every_fact_field_has_a_join_rule() -> None:
    fields = set(OrderFacts(uuid.uuid4()).values()) - {"order_id"}
    assert fields == set(JOIN_RULES)


# -------------------------------------------------------------------- statuses


def test_statuses_along_the_happy_path() -> None:
    order = story()
    steps = order.delivered_journey()
    assert state(steps[:1]).status is OrderStatus.PENDING
    assert state(steps[:1]).payment_status is PaymentStatus.PENDING
    assert state(steps[:1]).shipping_status is None
    assert state(steps[:3]).status is OrderStatus.CONFIRMED
    assert state(steps[:3]).payment_status is PaymentStatus.PROCESSED
    assert state(steps[:4]).shipping_status is ShippingStatus.SCHEDULED
    assert state(steps[:5]).shipping_status is ShippingStatus.IN_TRANSIT
    assert state(steps[:6]).status is OrderStatus.SHIPPED
    final = state(steps)
    assert final.status is OrderStatus.DELIVERED
    assert final.shipping_status is ShippingStatus.DELIVERED
    assert final.furthest_stage == 3


def test_cancellation_wins_whatever_arrives_later() -> None:
    order = story()
    events = order.canceled_after_confirmation()
    final = state(list(reversed(events)))
    assert final.status is OrderStatus.CANCELED
    assert final.payment_status is PaymentStatus.REFUNDED
    assert final.shipping_status is ShippingStatus.CANCELED
    assert final.furthest_stage == 1  # it had been confirmed


def test_declined_payment_path() -> None:
    final = state(story().payment_declined())
    assert final.status is OrderStatus.CANCELED
    assert final.cancel_reason == "PAYMENT_FAILED"
    assert final.payment_status is PaymentStatus.FAILED
    assert not final.counts_as_sale


def test_a_void_without_any_charge_is_voided() -> None:
    order = story()
    final = state([order.created(), order.refunded(charged=False)])
    assert final.payment_status is PaymentStatus.VOIDED


# ---------------------------------------------------------------- revenue rule


def test_a_confirmed_order_counts_on_its_confirmation_day() -> None:
    order = OrderStory(dt.datetime(2031, 7, 14, 23, 59, tzinfo=dt.UTC), [MUG])
    final = state([order.created(), order.confirmed(minutes=2)])  # confirmed after midnight
    assert final.counts_as_sale
    assert final.sale_date == dt.date(2031, 7, 15)
    assert final.placed_at is not None and final.placed_at.date() == dt.date(2031, 7, 14)


def test_the_sale_day_is_the_utc_day() -> None:
    brasilia = dt.timezone(dt.timedelta(hours=-3))
    order = OrderStory(dt.datetime(2031, 7, 14, 22, 0, tzinfo=brasilia), [MUG])
    final = state([order.confirmed(minutes=0)])
    assert final.sale_date == dt.date(2031, 7, 15)


def test_pending_orders_do_not_count() -> None:
    assert not state([story().created()]).counts_as_sale


@pytest.mark.parametrize("undo", ["canceled", "refunded"])
def test_cancel_or_refund_after_confirmation_removes_the_sale(undo: str) -> None:
    order = story()
    later = order.canceled() if undo == "canceled" else order.refunded()
    final = state([*order.confirmed_journey(), later])
    assert not final.counts_as_sale
    assert final.sale_date is None


def test_a_refund_seen_before_the_confirmation_still_removes_the_sale() -> None:
    order = story()
    assert not state([order.refunded(), *order.confirmed_journey()]).counts_as_sale


# ------------------------------------------------------------- dedupe decisions


def test_events_are_deduplicated_on_their_event_id() -> None:
    created = story().created()
    assert dedupe_key(redelivered(created)) == dedupe_key(created)
    assert dedupe_key(republished(created)) != dedupe_key(created)


def test_payment_replies_are_deduplicated_on_the_payment_id() -> None:
    order = story()
    for reply in (order.paid(), order.payment_failed(), order.refunded()):
        assert dedupe_key(republished(reply)) == dedupe_key(reply)
        assert str(order.payment_id) in dedupe_key(reply)
    assert dedupe_key(order.paid()) != dedupe_key(order.refunded())


def test_a_refund_without_payment_id_falls_back_to_its_event_id() -> None:
    void = story().refunded(charged=False)
    assert dedupe_key(void) == f"event:{void.headers.event_id}"
    assert dedupe_key(republished(void)) != dedupe_key(void)


def test_fresh_events_drops_seen_and_repeated_keys() -> None:
    order = story()
    created, paid, confirmed = order.confirmed_journey()
    batch = [created, paid, republished(paid), redelivered(created), confirmed, confirmed]
    fresh, duplicates = fresh_events(batch, seen=[dedupe_key(confirmed)])
    assert fresh == [created, paid]
    assert duplicates == 4
