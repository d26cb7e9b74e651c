"""Delivery estimates count business days by distance from São Paulo."""

from __future__ import annotations

import datetime as dt

import pytest

from handwritten.shipping.domain.route import (
    Destination,
    add_business_days,
    estimate_delivery_date,
    transit_days,
)

MONDAY = dt.date(2026, 3, 2)
FRIDAY = dt.date(2026, 3, 6)


def test_business_days_skip_weekends() -> None:
    assert add_business_days(MONDAY, 0) == MONDAY
    assert add_business_days(MONDAY, 4) == FRIDAY
    assert add_business_days(FRIDAY, 1) == dt.date(2026, 3, 9)  # the next Monday
    saturday = dt.date(2026, 3, 7)
    assert add_business_days(saturday, 1) == dt.date(2026, 3, 9)
    with pytest.raises(ValueError):
        add_business_days(MONDAY, -1)


@pytest.mark.parametrize(("state", "days"), [("SP", 2), ("RJ", 4), ("RS", 4), ("AM", 7)])
def test_transit_days_grow_with_distance(state: str, days: int) -> None:
    assert transit_days(Destination("Somewhere", state)) == days


def test_estimate_is_in_the_future_on_a_weekday() -> None:
    for offset in range(14):
        day = MONDAY + dt.timedelta(days=offset)
        for state in ("SP", "MG", "BA"):
            estimate = estimate_delivery_date(day, Destination("City", state))
            assert estimate > day
            assert estimate.weekday() < 5
