"""Deadlines, circuit breakers (shared through Redis) and graceful degradation."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from grpclib.const import Status
from redis.asyncio import Redis

from tests.integration.bff.conftest import CALL_TIMEOUT, Bff, Downstreams, seed, wait_for

pytestmark = pytest.mark.infra  # Redis (breaker state, summary cache)

ORDERS_WITH_SHIPPING = "{ orders { id status shipping { status trackingCode } } }"
ORDERS_WITH_NAMES = "{ orders { id items { productId productName } } }"


def errors_at(body: dict[str, Any], *path_prefix: str) -> list[dict[str, Any]]:
    return [
        e
        for e in body.get("errors", [])
        if e.get("path", [])[: len(path_prefix)] == list(path_prefix)
    ]


async def test_shipping_down_returns_the_orders_with_shipping_null_and_an_error_per_path(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=4)
    await downstreams.served["shipping"].stop()

    body = await bff.graphql(ORDERS_WITH_SHIPPING, user=data.customer)

    orders = body["data"]["orders"]
    assert [order["id"] for order in orders] == [order.order_id for order in data.orders]
    assert all(order["status"] == "CONFIRMED" for order in orders)
    assert [order["shipping"] for order in orders] == [None] * 4
    errors = body["errors"]
    assert sorted(tuple(error["path"]) for error in errors) == [
        ("orders", index, "shipping") for index in range(4)
    ]
    for error in errors:
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["service"] == "shipping"
        assert "shipping service is unavailable" in error["message"]
        assert "127.0.0.1" not in error["message"]


async def test_inventory_down_falls_back_to_the_name_at_order_time_with_a_marked_error(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=3)
    downstreams.inventory.fail_with = Status.UNAVAILABLE

    body = await bff.graphql(ORDERS_WITH_NAMES, user=data.customer)

    assert downstreams.calls()["inventory/GetProducts"] == 1  # one batch, failed once
    items = [item for order in body["data"]["orders"] for item in order["items"]]
    assert all(item["productName"].endswith("(at order time)") for item in items)
    degraded = body["errors"]
    assert len(degraded) == len(items)
    for error in degraded:
        assert error["path"][0] == "orders" and error["path"][2:4] == ["items", error["path"][3]]
        assert error["path"][-1] == "productName"
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["service"] == "inventory"
        assert error["extensions"]["degraded"] is True


async def test_inventory_down_and_no_name_on_the_line_nulls_the_field_with_an_error(
    bff: Bff, downstreams: Downstreams
) -> None:
    product = downstreams.inventory.add("Lamp", "59.90")
    customer = "6f1c1bb2-7a53-4b59-9a37-1f1f6e1b5a10"
    downstreams.orders.add(customer, [(product, 1)], product_names={product: ""})
    await downstreams.served["inventory"].stop()

    body = await bff.graphql(ORDERS_WITH_NAMES, user=customer)

    assert body["data"]["orders"][0]["items"][0]["productName"] is None
    (error,) = body["errors"]
    assert error["path"] == ["orders", 0, "items", 0, "productName"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert "degraded" not in error["extensions"]


async def test_a_hung_shipping_is_cut_at_the_deadline(bff: Bff, downstreams: Downstreams) -> None:
    data = seed(downstreams, orders=2, shipped_every=1)
    downstreams.shipping.delay = 30.0  # far beyond the BFF's deadline

    started = time.perf_counter()
    body = await bff.graphql(ORDERS_WITH_SHIPPING, user=data.customer)
    elapsed = time.perf_counter() - started

    assert [order["shipping"] for order in body["data"]["orders"]] == [None, None]
    assert {e["extensions"]["reason"] for e in body["errors"]} == {"deadline_exceeded"}
    assert downstreams.calls()["shipping/GetShipments"] == 1
    assert elapsed < 10 * CALL_TIMEOUT  # bounded by the deadline, not the 30 s hang


async def test_breaker_opens_after_n_failures_fails_fast_then_closes_after_recovery(
    bff: Bff, downstreams: Downstreams, redis: Redis
) -> None:
    data = seed(downstreams, orders=2, shipped_every=1)
    fail_max = bff.settings.breaker_fail_max
    downstreams.shipping.delay = 30.0  # every call hangs until the deadline

    for attempt in range(fail_max):
        body = await bff.graphql(ORDERS_WITH_SHIPPING, user=data.customer)
        assert {e["extensions"]["reason"] for e in body["errors"]} == {"deadline_exceeded"}
        assert downstreams.calls()["shipping/GetShipments"] == attempt + 1
    assert await redis.get(bff.breaker_key("shipping")) == b"open"

    # Open: the next queries do not reach shipping (the counter stays), and none waits
    # for a deadline (any attempt would cost a full one: the server hangs).
    for _ in range(5):
        started = time.perf_counter()
        body = await bff.graphql(ORDERS_WITH_SHIPPING, user=data.customer)
        elapsed = time.perf_counter() - started
        assert [o["shipping"] for o in body["data"]["orders"]] == [None, None]
        assert {e["extensions"]["reason"] for e in body["errors"]} == {"circuit_open"}
        assert elapsed < CALL_TIMEOUT
    assert downstreams.calls()["shipping/GetShipments"] == fail_max

    # Recovery: after reset_timeout one trial call goes through and closes the breaker.
    downstreams.shipping.delay = 0.0
    answers: list[dict[str, Any]] = []

    async def shipping_is_back() -> bool:
        answers.append(await bff.graphql(ORDERS_WITH_SHIPPING, user=data.customer))
        return "errors" not in answers[-1]

    await wait_for(shipping_is_back, what="the shipping breaker to close")
    assert [o["shipping"]["status"] for o in answers[-1]["data"]["orders"]] == [
        "DELIVERED",
        "SCHEDULED",
    ]
    assert downstreams.calls()["shipping/GetShipments"] == fail_max + 1  # just the trial
    assert await redis.get(bff.breaker_key("shipping")) == b"closed"
    assert await redis.get(bff.breaker_key("shipping", "fail_counter")) == b"0"


async def test_breaker_state_is_shared_by_replicas_through_redis(
    start_bff: Callable[..., Any], downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=1, shipped_every=1)
    downstreams.shipping.fail_with = Status.UNAVAILABLE
    async with (
        start_bff(breaker_reset_timeout_seconds=60.0) as first,
        start_bff(breaker_reset_timeout_seconds=60.0) as second,
    ):
        for _ in range(first.settings.breaker_fail_max):
            body = await first.graphql(ORDERS_WITH_SHIPPING, user=data.customer)
            assert {e["extensions"]["reason"] for e in body["errors"]} == {"unavailable"}
        calls = downstreams.calls()["shipping/GetShipments"]

        body = await second.graphql(ORDERS_WITH_SHIPPING, user=data.customer)

        assert {e["extensions"]["reason"] for e in body["errors"]} == {"circuit_open"}
        assert downstreams.calls()["shipping/GetShipments"] == calls


async def test_business_answers_do_not_trip_the_breaker(
    bff: Bff, downstreams: Downstreams, redis: Redis
) -> None:
    data = seed(downstreams, orders=1)
    unknown = "0b8c5c44-3c5a-4d8e-9a0e-5e2f3b7d9c11"

    for _ in range(bff.settings.breaker_fail_max + 2):
        body = await bff.graphql(
            f'{{ orderSummary(id: "{unknown}") {{ id }} }}', user=data.customer
        )
        assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"

    assert downstreams.calls()["orders/GetOrderSummary"] == bff.settings.breaker_fail_max + 2
    assert await redis.get(bff.breaker_key("orders")) in (None, b"closed")


async def test_orders_down_is_a_clear_error_and_then_an_immediate_one(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=2)
    await downstreams.served["orders"].stop()

    reasons = []
    for _ in range(bff.settings.breaker_fail_max):
        body = await bff.graphql("{ orders { id } }", user=data.customer)
        assert body["data"] is None
        (error,) = body["errors"]
        assert error["path"] == ["orders"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert error["extensions"]["service"] == "orders"
        assert error["message"] == "The orders service is unavailable right now; try again shortly."
        reasons.append(error["extensions"]["reason"])
    assert set(reasons) == {"unreachable"}

    # A hung orders would cost a deadline per query; open, it costs nothing.
    await downstreams.served["orders"].start()
    downstreams.orders.delay = 30.0
    started = time.perf_counter()
    body = await bff.graphql("{ orders { id } }", user=data.customer)
    assert body["errors"][0]["extensions"]["reason"] == "circuit_open"
    assert time.perf_counter() - started < CALL_TIMEOUT
    assert downstreams.calls().get("orders/ListOrders", 0) == 0


async def test_order_summary_degrades_only_the_shipping_part(
    bff: Bff, downstreams: Downstreams
) -> None:
    data = seed(downstreams, orders=1, shipped_every=1)
    order_id = data.orders[0].order_id
    downstreams.shipping.fail_with = Status.INTERNAL
    query = (
        f'{{ orderSummary(id: "{order_id}") {{ id status totalAmount estimatedDeliveryDate }} }}'
    )

    body = await bff.graphql(query, user=data.customer)

    summary = body["data"]["orderSummary"]
    assert summary["id"] == order_id
    assert summary["totalAmount"] == data.orders[0].total_amount
    assert summary["estimatedDeliveryDate"] is None
    (error,) = body["errors"]
    assert error["path"] == ["orderSummary", "estimatedDeliveryDate"]
    assert error["extensions"]["service"] == "shipping"

    # A degraded summary is not cached: once shipping is back, the date shows.
    downstreams.shipping.fail_with = None
    body = await bff.graphql(query, user=data.customer)
    assert "errors" not in body
    assert body["data"]["orderSummary"]["estimatedDeliveryDate"] == "2025-03-05"
