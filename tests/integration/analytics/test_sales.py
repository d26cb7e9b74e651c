"""Sales figures from events on the real topics: exact numbers, unchanged by
duplicates (same and new event ids), and the same after a rebuild from history.

One session-wide scenario: seven orders on a unique day D (and D+1) on every path
the revenue rule distinguishes, published in random order across topics.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.events.registry import Event
from generated.grpc.analytics.v1 import (
    GetOrderFunnelRequest,
    GetSalesByDayRequest,
    GetTopProductsRequest,
)
from handwritten.analytics.app import rebuild_store
from tests.integration.analytics.conftest import Analytics, Producer, unique_day
from tests.support.jwks import TokenIssuer
from tests.unit.analytics.factory import Item, OrderStory, redelivered, republished, user_registered

pytestmark = pytest.mark.infra  # Kafka, Redis


@dataclasses.dataclass
class Scenario:
    day: dt.date
    events: list[Event[Any]]
    products: dict[str, uuid.UUID]

    @property
    def window(self) -> dict[str, str]:
        """D-1 .. D+2, as REST query parameters."""
        first = self.day - dt.timedelta(days=1)
        return {"from": first.isoformat(), "to": (self.day + dt.timedelta(days=2)).isoformat()}

    def expected_sales(self) -> list[dict[str, Any]]:
        def entry(offset: int, orders: int, revenue: str, average: str) -> dict[str, Any]:
            day = (self.day + dt.timedelta(days=offset)).isoformat()
            return {
                "date": day,
                "totalOrders": orders,
                "totalRevenue": revenue,
                "avgOrderValue": average,
            }

        return [
            entry(-1, 0, "0.00", "0.00"),
            # A (100.00, delivered) and B (50.25); 150.25 / 2 = 75.125 → half-even 75.12.
            entry(0, 2, "150.25", "75.12"),
            # F, placed on D at 23:58, confirmed on D+1 at 00:00.
            entry(1, 1, "33.33", "33.33"),
            entry(2, 0, "0.00", "0.00"),
        ]


def build_scenario() -> Scenario:
    day = unique_day()
    at = dt.datetime.combine(day, dt.time(9, 0), tzinfo=dt.UTC)
    products = {name: uuid.uuid4() for name in ("Mug", "Pen", "Lamp", "Cup", "Vase", "Sofa")}

    def item(name: str, quantity: int, price: str) -> Item:
        return Item(products[name], name, quantity, Decimal(price))

    a = OrderStory(at, [item("Mug", 2, "25.00"), item("Pen", 1, "50.00")])
    b = OrderStory(at + dt.timedelta(hours=1), [item("Lamp", 1, "50.25")])
    c = OrderStory(at, [item("Sofa", 1, "999.99")])
    declined = OrderStory(at, [item("Vase", 1, "10.00")])
    pending = OrderStory(at, [item("Vase", 1, "7.77")])
    f = OrderStory(
        dt.datetime.combine(day, dt.time(23, 58), tzinfo=dt.UTC), [item("Cup", 1, "33.33")]
    )
    g = OrderStory(at + dt.timedelta(days=1), [item("Sofa", 1, "44.44")])
    events = [
        *a.delivered_journey(),
        *b.confirmed_journey(),
        *c.canceled_after_confirmation(),
        *declined.payment_declined(),
        pending.created(),
        *f.confirmed_journey(),  # confirmed 2 minutes after placement: the next day
        *g.confirmed_journey(),
        g.refunded(),  # refunded without a cancellation: no longer a sale
        user_registered(a.user_id, f"a-{a.user_id.hex[:6]}@example.com", at),
    ]
    random.shuffle(events)
    return Scenario(day, events, products)


@pytest.fixture(scope="session")
async def scenario(analytics: Analytics, producer: Producer) -> Scenario:
    built = build_scenario()
    await producer.publish(built.events)
    await producer.consumed(analytics.group)
    return built


async def sales(analytics: Analytics, issuer: TokenIssuer, window: dict[str, str]) -> Any:
    response = await analytics.http.get(
        "/api/analytics/sales-by-day", params=window, headers=issuer.admin_headers()
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_sales_by_day_has_exact_counts_and_revenue(
    analytics: Analytics, scenario: Scenario, issuer: TokenIssuer
) -> None:
    assert await sales(analytics, issuer, scenario.window) == scenario.expected_sales()


async def test_order_funnel_and_top_products(
    analytics: Analytics, scenario: Scenario, issuer: TokenIssuer
) -> None:
    day = {"from": scenario.day.isoformat(), "to": scenario.day.isoformat()}
    funnel = await analytics.http.get(
        "/api/analytics/order-funnel", params=day, headers=issuer.admin_headers()
    )
    assert funnel.status_code == 200, funnel.text
    assert funnel.json() == {
        "from": scenario.day.isoformat(),
        "to": scenario.day.isoformat(),
        "totalOrders": 6,  # A, B, C, declined, pending, F (G was placed on D+1)
        "statuses": [
            {"status": "PENDING", "count": 1},
            {"status": "CONFIRMED", "count": 2},
            {"status": "SHIPPED", "count": 0},
            {"status": "DELIVERED", "count": 1},
            {"status": "CANCELED", "count": 2},
        ],
    }
    top = await analytics.http.get(
        "/api/analytics/top-products", params=day, headers=issuer.admin_headers()
    )
    assert top.status_code == 200, top.text
    ids = scenario.products
    assert top.json() == [
        {"productId": str(ids["Mug"]), "unitsSold": 2, "orderCount": 1, "revenue": "50.00"},
        {"productId": str(ids["Lamp"]), "unitsSold": 1, "orderCount": 1, "revenue": "50.25"},
        {"productId": str(ids["Pen"]), "unitsSold": 1, "orderCount": 1, "revenue": "50.00"},
        {"productId": str(ids["Cup"]), "unitsSold": 1, "orderCount": 1, "revenue": "33.33"},
    ]


async def test_grpc_sales_by_day_lists_only_days_with_sales(
    analytics: Analytics, scenario: Scenario
) -> None:
    window = scenario.window
    reply = await analytics.stub.get_sales_by_day(
        GetSalesByDayRequest(from_date=window["from"], to_date=window["to"])
    )
    assert [(d.date, d.total_orders, d.total_revenue, d.avg_order_value) for d in reply.days] == [
        (scenario.day.isoformat(), 2, "150.25", "75.12"),
        ((scenario.day + dt.timedelta(days=1)).isoformat(), 1, "33.33", "33.33"),
    ]


async def test_grpc_funnel_and_top_products(analytics: Analytics, scenario: Scenario) -> None:
    day = scenario.day.isoformat()
    reply = await analytics.stub.get_order_funnel(GetOrderFunnelRequest(from_date=day, to_date=day))
    funnel = reply.funnel
    assert funnel is not None
    assert (funnel.created, funnel.paid, funnel.confirmed) == (6, 4, 4)
    assert (funnel.shipped, funnel.delivered, funnel.canceled) == (1, 1, 2)
    assert [(c.reason, c.count) for c in funnel.canceled_by_reason] == [
        ("CUSTOMER_REQUEST", 1),
        ("PAYMENT_FAILED", 1),
    ]
    top = await analytics.stub.get_top_products(
        GetTopProductsRequest(from_date=day, to_date=day, limit=2)
    )
    assert [(p.product_name, p.units_sold, p.revenue) for p in top.products] == [
        ("Mug", 2, "50.00"),
        ("Lamp", 1, "50.25"),
    ]


@pytest.mark.parametrize(
    ("first", "last"),
    [("2031-13-01", "2031-01-02"), ("2031-01-02", "2031-01-01"), ("2031-01-01", "2032-01-03")],
)
async def test_grpc_rejects_bad_ranges(analytics: Analytics, first: str, last: str) -> None:
    with pytest.raises(GRPCError) as error:
        await analytics.stub.get_sales_by_day(GetSalesByDayRequest(from_date=first, to_date=last))
    assert error.value.status is Status.INVALID_ARGUMENT


async def test_duplicates_change_nothing(
    analytics: Analytics, scenario: Scenario, producer: Producer, issuer: TokenIssuer
) -> None:
    """Every event again with its own event id (a redelivery) and under a new one
    (payment replies re-published with the same paymentId, and everything else)."""
    again = [redelivered(e) for e in scenario.events] + [republished(e) for e in scenario.events]
    random.shuffle(again)
    await producer.publish(again)
    await producer.consumed(analytics.group)
    assert await sales(analytics, issuer, scenario.window) == scenario.expected_sales()


async def test_rebuild_from_history_gives_the_same_numbers(
    analytics: Analytics, scenario: Scenario, issuer: TokenIssuer
) -> None:
    before = await sales(analytics, issuer, scenario.window)
    result = await rebuild_store(analytics.settings)
    assert result.applied >= len(scenario.events)
    assert await sales(analytics, issuer, scenario.window) == before == scenario.expected_sales()
    day = scenario.day.isoformat()
    reply = await analytics.stub.get_order_funnel(GetOrderFunnelRequest(from_date=day, to_date=day))
    assert reply.funnel is not None and reply.funnel.created == 6
