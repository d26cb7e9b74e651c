"""The reports: their result types, range rules and the arithmetic done on the way out.

The store computes counts and exact sums; what is left here is the part both APIs
share: validating a date range, filling days without sales, and the half-even
average. ``daily_sales`` / ``order_funnel`` compute the same reports from
``OrderFacts`` in memory: they define the rules the SQL implements, and the tests
compare the two.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

from handwritten.analytics.domain.orders import OrderFacts, OrderStatus

#: Most days one report may cover (the API's maxItems), ``from`` and ``to`` included.
MAX_RANGE_DAYS = 366
#: Default and bounds of the top-products ``limit``.
DEFAULT_TOP_LIMIT = 10
MAX_TOP_LIMIT = 100
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class InvalidRangeError(ValueError):
    """A report range that breaks the rules (reversed, too long)."""


@dataclass(frozen=True)
class DateRange:
    """UTC calendar days ``first`` to ``last``, both included."""

    first: dt.date
    last: dt.date

    @classmethod
    def checked(cls, first: dt.date, last: dt.date) -> DateRange:
        """The range, or ``InvalidRangeError`` when ``first`` is after ``last`` or it
        covers more than ``MAX_RANGE_DAYS`` days."""
        if first > last:
            raise InvalidRangeError("`from` must not be after `to`.")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise InvalidRangeError(f"The range may cover at most {MAX_RANGE_DAYS} days.")
        return cls(first, last)

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    def clipped(self, first: dt.date, last: dt.date) -> DateRange | None:
        """The part of this range within ``first``..``last`` (``None`` if disjoint)."""
        start, end = max(self.first, first), min(self.last, last)
        return DateRange(start, end) if start <= end else None


def money(value: Decimal) -> Decimal:
    """Two places, rounded half-even (exact input stays exact)."""
    return value.quantize(CENT, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class DaySales:
    """Sales of one UTC day: the orders counted there and their exact revenue."""

    date: dt.date
    orders: int
    revenue: Decimal

    @property
    def average(self) -> Decimal:
        """revenue / orders, half-even to two places; 0.00 without orders."""
        if self.orders == 0:
            return ZERO
        return money(self.revenue / self.orders)


def with_empty_days(sales: Iterable[DaySales], days: DateRange) -> list[DaySales]:
    """One entry per day of ``days``, oldest first, zeros where ``sales`` has none."""
    by_day = {day.date: day for day in sales}
    return [by_day.get(day, DaySales(day, 0, ZERO)) for day in days.days()]


@dataclass(frozen=True)
class ProductSales:
    """One product's sales over a range."""

    product_id: str
    product_name: str
    units_sold: int
    order_count: int
    revenue: Decimal


@dataclass(frozen=True)
class CancellationCount:
    reason: str
    count: int


@dataclass(frozen=True)
class OrderFunnel:
    """Orders placed in a range: how far they got, and where they are now."""

    created: int
    paid: int
    confirmed: int
    shipped: int
    delivered: int
    canceled: int
    #: Current status → orders; every status present (0 when none).
    by_status: dict[OrderStatus, int] = field(default_factory=dict)
    #: Canceled orders per reason, most frequent first (ties by reason).
    canceled_by_reason: list[CancellationCount] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryTimes:
    """Orders delivered in a range and their mean time from placement to delivery."""

    delivered: int
    average: dt.timedelta | None


# ------------------------------------------------------------- reference semantics


def daily_sales(orders: Iterable[OrderFacts], days: DateRange) -> list[DaySales]:
    """Sales per day of ``days`` (days without sales omitted), by the revenue rule:
    an order counts once, with its total, on the UTC day of its confirmation, unless
    it has been canceled or refunded since."""
    totals: dict[dt.date, tuple[int, Decimal]] = {}
    for order in orders:
        day = order.sale_date
        if day is None or not days.first <= day <= days.last or order.total_amount is None:
            continue
        count, revenue = totals.get(day, (0, ZERO))
        totals[day] = (count + 1, revenue + order.total_amount)
    return [DaySales(day, *totals[day]) for day in sorted(totals)]


def _placed_in(order: OrderFacts, days: DateRange) -> bool:
    placed = order.placed_at
    return placed is not None and days.first <= placed.astimezone(dt.UTC).date() <= days.last


def order_funnel(orders: Iterable[OrderFacts], days: DateRange) -> OrderFunnel:
    """The funnel of the orders placed in ``days``."""
    placed = [order for order in orders if _placed_in(order, days)]
    reasons = Counter(o.cancel_reason or "UNKNOWN" for o in placed if o.canceled_at is not None)
    statuses = Counter(order.status for order in placed)
    return OrderFunnel(
        created=len(placed),
        paid=sum(1 for o in placed if o.paid_at is not None or o.furthest_stage >= 1),
        confirmed=sum(1 for o in placed if o.furthest_stage >= 1),
        shipped=sum(1 for o in placed if o.furthest_stage >= 2),
        delivered=sum(1 for o in placed if o.furthest_stage >= 3),
        canceled=sum(1 for o in placed if o.canceled_at is not None),
        by_status={status: statuses.get(status, 0) for status in OrderStatus},
        canceled_by_reason=[
            CancellationCount(reason, count)
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
        ],
    )
