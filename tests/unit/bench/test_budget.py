"""The client-side mirror of the gateway's per-user, per-minute rate limits."""

from __future__ import annotations

import httpx

from bench.accounts import (
    GRAPHQL,
    ORDERS,
    Auth,
    RateBudget,
    User,
    UserPool,
    rate_limited_route,
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_user_gets_at_most_the_budget_per_minute_window() -> None:
    clock = Clock(600.0)  # the start of a minute
    budget = RateBudget(per_minute=3, clock=clock)
    assert [budget.try_take("ana", ORDERS) for _ in range(4)] == [True, True, True, False]
    assert budget.remaining("ana", ORDERS) == 0
    clock.now = 659.9  # same window
    assert not budget.try_take("ana", ORDERS)
    clock.now = 660.0  # next window: the count starts again
    assert budget.remaining("ana", ORDERS) == 3
    assert budget.try_take("ana", ORDERS)


def test_routes_and_users_are_counted_separately() -> None:
    budget = RateBudget(per_minute=1, clock=Clock(0.0))
    assert budget.try_take("ana", ORDERS)
    assert budget.try_take("ana", GRAPHQL)
    assert budget.try_take("bia", ORDERS)
    assert not budget.try_take("ana", ORDERS)


def test_taking_several_at_once_is_all_or_nothing() -> None:
    budget = RateBudget(per_minute=3, clock=Clock(0.0))
    assert budget.try_take("ana", ORDERS, 2)
    assert not budget.try_take("ana", ORDERS, 2)
    assert budget.remaining("ana", ORDERS) == 1


def test_seconds_to_next_window() -> None:
    assert RateBudget(clock=Clock(125.0)).seconds_to_next_window() == 55.0


async def test_the_pool_rotates_over_users_with_budget_left() -> None:
    async with httpx.AsyncClient() as client:  # never used: no request is sent
        users = [User("a@example.com"), User("b@example.com")]
        pool = UserPool(Auth(client), users, RateBudget(per_minute=2, clock=Clock(0.0)))
        taken = [pool.take(ORDERS) for _ in range(5)]
    assert [u.email if u else None for u in taken] == [
        "a@example.com",
        "b@example.com",
        "a@example.com",
        "b@example.com",
        None,
    ]


def test_which_paths_are_rate_limited() -> None:
    assert rate_limited_route("/api/orders") == ORDERS
    assert rate_limited_route("/api/orders/1/cancel") == ORDERS
    assert rate_limited_route("/graphql/mobile") == GRAPHQL
    assert rate_limited_route("/api/inventory/products") is None
