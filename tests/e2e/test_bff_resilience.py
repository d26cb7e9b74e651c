"""Shipping down behind the GraphQL BFF, through the gateway of the running stack.

The shipping service is stopped with the local runner's own stop. The BFF then
answers orders without their shipment: ``shipping`` null and an error entry at each
such path. To tell a breaker that fails fast from a downstream that fails fast by
itself (a stopped server refuses connections at once), shipping's gRPC port is then
held by a listener that accepts and never answers, as a hung server would: each call
costs the BFF its full deadline until ``BREAKER_FAIL_MAX`` consecutive failures open
the breaker; from then on calls are refused in the BFF without a byte sent. Once
shipping runs again, the breaker stays open until its reset timeout has passed, then
a trial call closes it and shipping data comes back.

The breaker's state is read where the BFF keeps it, in Redis (``SharedState``:
``<BREAKER_NAMESPACE>:shipping:state`` and ``…:opened_at``); call outcomes and their
durations come from the BFF's ``bff_downstream_call_seconds`` histogram. The limits
are the BFF's settings as this process sees them: the stack runs with the same
environment (the local defaults), fail_max 5, reset timeout 15 s, deadline 1 s.
Shipping is started again in any case, so the stack is left as it was found.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from generated import catalog
from handwritten.bff.settings import BffSettings
from tests.e2e.bff_support import (
    black_hole,
    graphql,
    new_products,
    place_order,
    scrape,
    total,
    wait_shipments,
)
from tests.e2e.conftest import Account, register_and_login
from tests.e2e.saga_support import is_ready, poll, restart, stop

SETTINGS = BffSettings()
DEADLINE = SETTINGS.shipping_timeout_seconds


def _grpc_port(service: str) -> int:
    port = catalog.SERVICES[service].grpc_port
    assert port is not None, f"the catalog gives {service} no gRPC port"
    return port


SHIPPING_GRPC_PORT = _grpc_port("shipping")
QUERY = """
query Mine {
  orders(first: 10) { id status items { productName } shipping { trackingCode status } }
}
"""


@dataclass(frozen=True)
class Customer:
    account: Account
    product_name: str
    order_ids: frozenset[str]


@pytest.fixture(scope="module")
async def customer(gateway: httpx.AsyncClient, admin: Account) -> Customer:
    (product,) = await new_products(gateway, admin, ["42.00"])
    account = await register_and_login(gateway)
    orders = {await place_order(gateway, account, [(product["productId"], 1)]) for _ in range(2)}
    await wait_shipments(gateway, account, orders)
    return Customer(account, product["name"], frozenset(orders))


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(SETTINGS.redis_url)
    yield client
    await client.aclose()


def breaker_key(field: str) -> str:
    return f"{SETTINGS.breaker_namespace}:shipping:{field}"


async def breaker_state(redis: Redis) -> str:
    """The shared state of the shipping breaker (unset means closed)."""
    value = await redis.get(breaker_key("state"))
    if value is None:
        return "closed"
    return value.decode() if isinstance(value, bytes) else str(value)


async def shipping_calls(outcome: str) -> tuple[float, float]:
    """(count, total seconds) of the BFF's GetShipments calls that ended in ``outcome``."""
    samples = await scrape("bff")
    labels = {"downstream": "shipping", "method": "GetShipments", "outcome": outcome}
    return (
        total(samples, "bff_downstream_call_seconds_count", **labels),
        total(samples, "bff_downstream_call_seconds_sum", **labels),
    )


def degraded_reasons(body: dict[str, Any], customer: Customer) -> set[str]:
    """Check the degraded answer (orders and their items intact, every shipment null
    with a SERVICE_UNAVAILABLE error at its path); return the errors' reasons."""
    orders = body["data"]["orders"]
    assert {o["id"] for o in orders} == customer.order_ids
    assert all(o["status"] in ("CONFIRMED", "SHIPPED", "DELIVERED") for o in orders), orders
    assert all(o["items"] == [{"productName": customer.product_name}] for o in orders), orders
    assert [o["shipping"] for o in orders] == [None] * len(orders)
    errors = body["errors"]
    assert sorted(tuple(e["path"]) for e in errors) == [
        ("orders", index, "shipping") for index in range(len(orders))
    ], errors
    assert {(e["extensions"]["code"], e["extensions"]["service"]) for e in errors} == {
        ("SERVICE_UNAVAILABLE", "shipping")
    }, errors
    return {str(e["extensions"]["reason"]) for e in errors}


def complete(body: dict[str, Any], customer: Customer) -> bool:
    """Every order with its shipment and no error at all."""
    orders = body["data"]["orders"] if body.get("data") else []
    return (
        "errors" not in body
        and {o["id"] for o in orders} == customer.order_ids
        and all(o["shipping"] and o["shipping"]["trackingCode"] for o in orders)
    )


async def test_shipping_down_degrades_opens_the_breaker_and_recovers_after_the_reset_timeout(
    gateway: httpx.AsyncClient, customer: Customer, redis: Redis
) -> None:
    account = customer.account

    async def answered_in_full() -> bool:
        return complete(await graphql(gateway, account, QUERY), customer)

    # Shipping answers (once any earlier outage's breaker has closed), so the breaker
    # starts closed with its failure count reset.
    await poll(
        answered_in_full,
        seconds=SETTINGS.breaker_reset_timeout_seconds + 30,
        what="the BFF to answer with shipping data",
    )
    try:
        await asyncio.to_thread(stop, "shipping")

        # Stopped: connections are refused; the orders come without their shipments.
        reasons = degraded_reasons(await graphql(gateway, account, QUERY), customer)
        assert reasons <= {"unreachable", "circuit_open"}, reasons
        failures = 1

        async with black_hole(SHIPPING_GRPC_PORT) as hung:
            # Hung: each call waits for the deadline, until fail_max failures open it.
            timed_out_before = await shipping_calls("deadline_exceeded")
            while await breaker_state(redis) != "open":
                # Anybody else's failures count too, so it may open sooner, never later.
                assert failures < SETTINGS.breaker_fail_max, (
                    f"the breaker is still {await breaker_state(redis)!r} after "
                    f"{failures} consecutive failures (fail_max {SETTINGS.breaker_fail_max})"
                )
                reasons = degraded_reasons(await graphql(gateway, account, QUERY), customer)
                assert reasons <= {"deadline_exceeded", "circuit_open"}, reasons
                failures += 1
            timed_out_after = await shipping_calls("deadline_exceeded")
            hung_calls = timed_out_after[0] - timed_out_before[0]
            assert hung_calls >= 1, "no call reached the hung server"
            # The hung calls really cost the deadline (what a breaker is there to save).
            hung_seconds = (timed_out_after[1] - timed_out_before[1]) / hung_calls
            assert hung_seconds >= 0.9 * DEADLINE, hung_seconds
            opened_at = float(await redis.get(breaker_key("opened_at")) or 0)
            assert opened_at > 0

            # Open: refused inside the BFF, nothing sent to shipping, far below the deadline.
            sent_before = hung.received
            rejected_before = await shipping_calls("circuit_open")
            for _ in range(3):
                reasons = degraded_reasons(await graphql(gateway, account, QUERY), customer)
                assert reasons == {"circuit_open"}, reasons
            rejected_after = await shipping_calls("circuit_open")
            rejected = rejected_after[0] - rejected_before[0]
            assert rejected >= 3, rejected
            rejected_seconds = (rejected_after[1] - rejected_before[1]) / rejected
            assert rejected_seconds < DEADLINE / 2, rejected_seconds
            assert hung.received == sent_before, "the open breaker let a call through"
            assert await breaker_state(redis) == "open"

        await restart("shipping")

        # Back, but the breaker keeps refusing until its reset timeout has passed;
        # then a trial call goes through and closes it.
        answers: list[dict[str, Any]] = []

        async def shipping_is_back() -> bool:
            answers.append(await graphql(gateway, account, QUERY))
            if complete(answers[-1], customer):
                return True
            # The first poll after the reset timeout is the trial; a little slack for it.
            assert time.time() < opened_at + SETTINGS.breaker_reset_timeout_seconds + 5, (
                "the reset timeout has passed and shipping is still missing",
                answers[-1],
            )
            assert degraded_reasons(answers[-1], customer) == {"circuit_open"}, answers[-1]
            return False

        await poll(
            shipping_is_back,
            seconds=SETTINGS.breaker_reset_timeout_seconds + 30,
            what="the shipping breaker to close",
        )
        assert time.time() >= opened_at + SETTINGS.breaker_reset_timeout_seconds
        assert await breaker_state(redis) == "closed"
        assert int(await redis.get(breaker_key("fail_counter")) or 0) == 0
    finally:
        if not await asyncio.to_thread(is_ready, "shipping"):
            await restart("shipping")
