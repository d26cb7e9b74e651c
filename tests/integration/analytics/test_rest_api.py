"""The admin REST API: authentication and authorization, shapes, range rules."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.integration.analytics.conftest import Analytics, assert_problem, unique_day
from tests.support.jwks import TokenIssuer

pytestmark = pytest.mark.infra  # Kafka, Redis

ROUTES = [
    "/api/analytics/sales-by-day",
    "/api/analytics/top-products",
    "/api/analytics/order-funnel",
]


def window(days: int = 1) -> dict[str, str]:
    first = unique_day()
    return {
        "from": first.isoformat(),
        "to": (first + dt.timedelta(days=days - 1)).isoformat(),
    }


@pytest.mark.parametrize("route", ROUTES)
async def test_without_a_token_it_is_401(analytics: Analytics, route: str) -> None:
    response = await analytics.http.get(route, params=window())
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("route", ROUTES)
async def test_a_customer_gets_403(analytics: Analytics, issuer: TokenIssuer, route: str) -> None:
    response = await analytics.http.get(route, params=window(), headers=issuer.headers())
    assert_problem(response, 403)


async def test_a_token_from_another_key_is_401(analytics: Analytics, issuer: TokenIssuer) -> None:
    stranger = TokenIssuer(kid=issuer.kid)  # same kid, different key
    response = await analytics.http.get(
        ROUTES[0], params=window(), headers=stranger.admin_headers()
    )
    assert_problem(response, 401)


async def test_admin_gets_every_day_of_the_range_with_zeros(
    analytics: Analytics, issuer: TokenIssuer
) -> None:
    params = window(days=3)
    response = await analytics.http.get(ROUTES[0], params=params, headers=issuer.admin_headers())
    assert response.status_code == 200, response.text
    first = dt.date.fromisoformat(params["from"])
    assert response.json() == [
        {
            "date": (first + dt.timedelta(days=n)).isoformat(),
            "totalOrders": 0,
            "totalRevenue": "0.00",
            "avgOrderValue": "0.00",
        }
        for n in range(3)
    ]


async def test_admin_gets_an_empty_ranking_and_a_zero_funnel(
    analytics: Analytics, issuer: TokenIssuer
) -> None:
    params = window()
    top = await analytics.http.get(ROUTES[1], params=params, headers=issuer.admin_headers())
    assert (top.status_code, top.json()) == (200, [])
    funnel = await analytics.http.get(ROUTES[2], params=params, headers=issuer.admin_headers())
    assert funnel.status_code == 200
    body = funnel.json()
    assert body["totalOrders"] == 0
    assert [s["status"] for s in body["statuses"]] == [
        "PENDING",
        "CONFIRMED",
        "SHIPPED",
        "DELIVERED",
        "CANCELED",
    ]


async def test_366_days_is_the_longest_range(analytics: Analytics, issuer: TokenIssuer) -> None:
    longest = await analytics.http.get(
        ROUTES[0], params=window(days=366), headers=issuer.admin_headers()
    )
    assert longest.status_code == 200
    assert len(longest.json()) == 366
    body = assert_problem(
        await analytics.http.get(
            ROUTES[0], params=window(days=367), headers=issuer.admin_headers()
        ),
        422,
    )
    assert body["errors"][0]["field"] == "to"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2031-01-02", "to": "2031-01-01"},
        {"from": "2031-01-01"},
        {"from": "not-a-date", "to": "2031-01-01"},
        {"from": "2031-01-01", "to": "2031-01-01", "limit": "0"},
        {"from": "2031-01-01", "to": "2031-01-01", "limit": "101"},
    ],
)
async def test_bad_queries_are_422(
    analytics: Analytics, issuer: TokenIssuer, params: dict[str, str]
) -> None:
    response = await analytics.http.get(ROUTES[1], params=params, headers=issuer.admin_headers())
    assert assert_problem(response, 422)["errors"]


async def test_dates_clickhouse_cannot_hold_are_just_empty(
    analytics: Analytics, issuer: TokenIssuer
) -> None:
    response = await analytics.http.get(
        ROUTES[0], params={"from": "0001-01-01", "to": "0001-01-02"}, headers=issuer.admin_headers()
    )
    assert response.status_code == 200
    assert [day["totalOrders"] for day in response.json()] == [0, 0]


async def test_health(analytics: Analytics) -> None:
    ready = await analytics.http.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"clickhouse": "ok"}
