"""Report rules without a store: ranges, empty days, averages, and the reference
semantics of sales by day and the funnel."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from generated.events.registry import Event
from handwritten.analytics.domain.orders import OrderFacts, OrderStatus
from handwritten.analytics.domain.projection import project_all
from handwritten.analytics.domain.reports import (
    DateRange,
    DaySales,
    InvalidRangeError,
    daily_sales,
    order_funnel,
    with_empty_days,
)
from tests.unit.analytics.factory import Item, OrderStory

DAY = dt.datetime(2031, 2, 10, 12, tzinfo=dt.UTC)
FIRST = dt.date(2031, 2, 10)


def facts(*journeys: list[Event[Any]]) -> list[OrderFacts]:
    return list(project_all([e for events in journeys for e in events]).orders.values())


def test_a_range_of_366_days_is_accepted_367_is_not() -> None:
    assert len(DateRange.checked(FIRST, FIRST + dt.timedelta(days=365)).days()) == 366
    with pytest.raises(InvalidRangeError, match="366"):
        DateRange.checked(FIRST, FIRST + dt.timedelta(days=366))


def test_a_reversed_range_is_refused_and_one_day_is_fine() -> None:
    with pytest.raises(InvalidRangeError, match="after"):
        DateRange.checked(FIRST, FIRST - dt.timedelta(days=1))
    assert DateRange.checked(FIRST, FIRST).days() == [FIRST]


def test_clipping_a_range() -> None:
    days = DateRange(dt.date(1, 1, 1), dt.date(1970, 1, 5))
    assert days.clipped(dt.date(1970, 1, 1), dt.date(2149, 6, 6)) == DateRange(
        dt.date(1970, 1, 1), dt.date(1970, 1, 5)
    )
    assert DateRange(dt.date(1, 1, 1), dt.date(1, 2, 1)).clipped(FIRST, FIRST) is None


def test_days_without_sales_are_filled_with_zeros() -> None:
    days = DateRange(FIRST, FIRST + dt.timedelta(days=2))
    sold = DaySales(FIRST + dt.timedelta(days=1), 2, Decimal("10.00"))
    filled = with_empty_days([sold], days)
    assert [(d.date, d.orders, d.revenue) for d in filled] == [
        (FIRST, 0, Decimal("0.00")),
        (sold.date, 2, Decimal("10.00")),
        (FIRST + dt.timedelta(days=2), 0, Decimal("0.00")),
    ]
    assert filled[0].average == Decimal("0.00")


@pytest.mark.parametrize(
    ("revenue", "orders", "average"),
    [
        ("10.00", 3, "3.33"),
        ("0.05", 2, "0.02"),  # 0.025 → half-even down
        ("0.15", 2, "0.08"),  # 0.075 → half-even up
        ("99999999.99", 1, "99999999.99"),
    ],
)
def test_average_order_value_is_rounded_half_even(revenue: str, orders: int, average: str) -> None:
    assert DaySales(FIRST, orders, Decimal(revenue)).average == Decimal(average)


def test_daily_sales_follow_the_revenue_rule() -> None:
    mug = Item(uuid.uuid4(), "Mug", 1, Decimal("10.10"))
    kept = OrderStory(DAY, [mug])
    also_kept = OrderStory(DAY, [Item(mug.product_id, "Mug", 2, Decimal("10.10"))])
    canceled = OrderStory(DAY, [mug])
    pending = OrderStory(DAY, [mug])
    next_day = OrderStory(DAY + dt.timedelta(days=1), [mug])
    orders = facts(
        kept.confirmed_journey(),
        also_kept.delivered_journey(),
        canceled.canceled_after_confirmation(),
        [pending.created()],
        next_day.confirmed_journey(),
    )
    sales = daily_sales(orders, DateRange(FIRST, FIRST + dt.timedelta(days=1)))
    assert sales == [
        DaySales(FIRST, 2, Decimal("30.30")),
        DaySales(FIRST + dt.timedelta(days=1), 1, Decimal("10.10")),
    ]
    assert daily_sales(orders, DateRange(FIRST, FIRST)) == sales[:1]


def test_the_funnel_counts_stages_reached_and_current_statuses() -> None:
    item = [Item(uuid.uuid4(), "Lamp", 1, Decimal("50.00"))]
    delivered = OrderStory(DAY, item)
    canceled = OrderStory(DAY, item)
    declined = OrderStory(DAY, item)
    pending = OrderStory(DAY, item)
    outside = OrderStory(DAY - dt.timedelta(days=1), item)
    orders = facts(
        delivered.delivered_journey(),
        canceled.canceled_after_confirmation(),
        declined.payment_declined(),
        [pending.created()],
        outside.confirmed_journey(),
    )
    funnel = order_funnel(orders, DateRange(FIRST, FIRST))
    assert (funnel.created, funnel.paid, funnel.confirmed) == (4, 2, 2)
    assert (funnel.shipped, funnel.delivered, funnel.canceled) == (1, 1, 2)
    assert funnel.by_status == {
        OrderStatus.PENDING: 1,
        OrderStatus.CONFIRMED: 0,
        OrderStatus.SHIPPED: 0,
        OrderStatus.DELIVERED: 1,
        OrderStatus.CANCELED: 2,
    }
    assert sum(funnel.by_status.values()) == funnel.created
    assert [(c.reason, c.count) for c in funnel.canceled_by_reason] == [
        ("CUSTOMER_REQUEST", 1),
        ("PAYMENT_FAILED", 1),
    ]
