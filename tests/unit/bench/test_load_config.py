"""The load generator's configuration and how it classifies order outcomes."""

from __future__ import annotations

import pytest

from bench.accounts import User
from bench.load import LoadConfig, order_outcomes, parse_weights
from bench.traffic import DEFAULT_MIX, PlacedOrder, settled


def test_weights_parse_from_the_command_line() -> None:
    assert parse_weights("browse=30, order=25,") == {"browse": 30.0, "order": 25.0}


@pytest.mark.parametrize("text", ["browse", "order=-1", "order=x"])
def test_bad_weights_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_weights(text)


def test_unknown_scenarios_and_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenarios"):
        LoadConfig(mix={"shop": 1.0})
    with pytest.raises(ValueError, match="payment tokens"):
        LoadConfig(tokens={"amex": 1.0})
    with pytest.raises(ValueError, match="positive"):
        LoadConfig(rate=0)
    with pytest.raises(ValueError, match="positive weight"):
        LoadConfig(mix={"browse": 0.0})


def test_the_user_pool_grows_with_the_rate_on_rate_limited_routes() -> None:
    assert LoadConfig(rate=1.0).pool_size() == 5  # the floor
    small, large = LoadConfig(rate=20.0).pool_size(), LoadConfig(rate=100.0).pool_size()
    assert small < large
    # At 100 arrivals/s the default mix sends ~57 requests/s to the order routes: each
    # user may send 90 a minute, so at least 38 users are needed (50% margin → 57).
    order_route_share = (
        DEFAULT_MIX["order"] + DEFAULT_MIX["cancel"] + 2 * DEFAULT_MIX["my_orders"]
    ) / sum(DEFAULT_MIX.values())
    assert large >= 100 * order_route_share * 60 / 90
    assert LoadConfig(rate=100.0, users=7).pool_size() == 7


def order(token: str, status: str, reason: str | None = None) -> PlacedOrder:
    return PlacedOrder("id", User("a@example.com"), token, status, reason)


def test_order_outcomes_by_token_and_unexpected_ones() -> None:
    orders = [
        order("tok_visa", "CONFIRMED"),
        order("tok_visa", "DELIVERED"),
        order("tok_visa", "CANCELED", "CUSTOMER_REQUEST"),
        order("tok_visa", "CANCELED", "OUT_OF_STOCK"),  # unexpected for a good card
        order("tok_chargeDeclined", "CANCELED", "PAYMENT_FAILED"),
        order("tok_chargeDeclined", "CONFIRMED"),  # unexpected: a declined card paid
        order("tok_timeout", "PENDING"),
    ]
    outcome = order_outcomes(orders)
    assert outcome["placed"] == 7
    assert outcome["confirmed"] == 3
    assert outcome["canceled"] == 3
    assert outcome["unsettled"] == 1
    assert outcome["canceled_by_reason"] == {
        "CUSTOMER_REQUEST": 1,
        "OUT_OF_STOCK": 1,
        "PAYMENT_FAILED": 1,
    }
    assert outcome["by_token"]["tok_visa"] == {"canceled": 2, "confirmed": 2}
    assert outcome["by_token"]["tok_timeout"] == {"unsettled": 1}
    assert outcome["unexpected"] == 2


def test_settled_means_confirmed_or_beyond_or_canceled() -> None:
    assert not settled(order("tok_visa", "PENDING"))
    assert all(
        settled(order("tok_visa", s)) for s in ("CONFIRMED", "SHIPPED", "DELIVERED", "CANCELED")
    )
