"""Chaos scenarios on the running stack, each with the invariant checker throughout.

Every scenario places orders through the gateway (a mix of payment tokens, on
contended stock), breaks one thing mid-load, repairs it, lets every saga settle and
then checks all invariants (tests/chaos/invariants.py); its summary goes to
.local/reports/chaos/. The sizes come from CHAOS_ORDERS / CHAOS_DURATION: small in
`make test`, large in `make chaos`. Each scenario restores the stack (services on
their default environment, broker up, faults cleared) whatever happens.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

import httpx
import pytest

from handwritten.chaos import Direction, Fault, Mode
from handwritten.payment.adapters.gateway import failure_roll
from tests.chaos import stack
from tests.chaos.conftest import CHAOS_DURATION, CHAOS_ORDERS, CHAOS_SAGA_BOUND, Proxy
from tests.chaos.invariants import BROKER_MAY_OUTLAST_THE_PAYMENT_TIMEOUT, Expectations
from tests.chaos.load import Line, PlacedOrder, create_product, token_mix
from tests.chaos.scenario import Context, run_scenario
from tests.e2e.conftest import Account
from tests.e2e.saga_support import ADDRESS

PAYMENT_FAILURE_RATE = float(os.environ.get("CHAOS_PAYMENT_FAILURE_RATE", "0.4"))
#: Orders' CheckAvailability deadline is 2 s (INVENTORY_TIMEOUT_SECONDS) and the saga's
#: ReserveProducts deadline 3 s: 500 ms is slow but in time, 2.5 s is too slow for
#: the first and still in time for the second.
SLOW_MS, TOO_SLOW_MS = 500, 2500
#: Each process of the stack, killed once, two at a time (the soak kills them one by
#: one): restarts are what takes time here, and a pair is a harsher fault anyway.
KILL_PAIRS = [
    ("payment", "shipping"),
    ("inventory", "analytics"),
    ("orders", "bff"),
    ("auth", "gateway"),
]

pytestmark = pytest.mark.usefixtures("stack_ready")


def _common(
    gateway: httpx.AsyncClient, admin: Account, shoppers: list[Account], kafka_bootstrap: str
) -> dict[str, Any]:
    return {
        "gateway": gateway,
        "admin": admin,
        "accounts": shoppers,
        "kafka_bootstrap": kafka_bootstrap,
        "saga_bound_seconds": CHAOS_SAGA_BOUND,
    }


async def test_payment_gateway_failing_a_share_of_charges(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    chaos_stack: None,
) -> None:
    rate = PAYMENT_FAILURE_RATE

    async def faults(_: Context) -> None:
        return  # the failure rate is on for the whole load

    async with stack.rewired({"payment": {"PAYMENT_FAILURE_RATE": str(rate)}}):
        outcome = await run_scenario(
            "payment-failure-rate",
            **_common(gateway, admin, shoppers, kafka_bootstrap),
            tokens=token_mix(CHAOS_ORDERS, declined=0.15),
            seconds=CHAOS_DURATION,
            faults=faults,
            fault={"payment_failure_rate": rate},
            expectations=Expectations(visa_fails=lambda order_id: failure_roll(order_id) < rate),
        )
    outcome.assert_no_violations()
    # The checker held every visa order to its predicted fate; make sure some did fail.
    visa = [o.order_id for o in outcome.load.placed if o.token == "tok_visa"]
    assert any(failure_roll(order_id) < rate for order_id in visa), visa


async def test_postgres_connections_reset_under_load(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    clear_faults: Proxy,
) -> None:
    proxy = clear_faults
    resets: list[int] = []

    async def faults(context: Context) -> None:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(context.seconds * 0.2)
        try:
            end = loop.time() + context.seconds * 0.5
            while loop.time() < end:
                resets.append(await proxy.control.reset("postgres"))
                await asyncio.sleep(1.5)
            # A moment when new connections are reset as well (reconnects fail too).
            await proxy.control.set_fault("postgres", Fault(mode=Mode.RESET))
            await asyncio.sleep(1.0)
        finally:
            await proxy.control.clear("postgres")

    wiring = {name: {"DATABASE_URL": proxy.database_url(name)} for name in ("orders", "inventory")}
    async with stack.rewired(wiring):
        outcome = await run_scenario(
            "postgres-resets",
            **_common(gateway, admin, shoppers, kafka_bootstrap),
            tokens=token_mix(CHAOS_ORDERS),
            seconds=CHAOS_DURATION,
            faults=faults,
            fault={"postgres": "connections of orders and inventory reset every 1.5 s"},
        )
        route = await proxy.control.route("postgres")
    outcome.assert_no_violations()
    assert sum(resets) > 0 and route.stats.resets >= sum(resets), (resets, route.stats)


async def test_inventory_grpc_slow_then_too_slow(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    clear_faults: Proxy,
) -> None:
    proxy = clear_faults
    probe: dict[str, Any] = {}

    async def faults(context: Context) -> None:
        slow = Fault(latency_ms=SLOW_MS, direction=Direction.DOWNSTREAM)
        try:
            await proxy.control.set_fault("inventory-grpc", slow)
            await asyncio.sleep(context.seconds * 0.6)
            await proxy.control.set_fault(
                "inventory-grpc", Fault(latency_ms=TOO_SLOW_MS, direction=Direction.DOWNSTREAM)
            )
            probe.update(await _probe_deadline(gateway, admin, shoppers[-1], context))
            await asyncio.sleep(context.seconds * 0.1)
        finally:
            await proxy.control.clear("inventory-grpc")
        probe["after"] = await _place_again(gateway, shoppers[-1], context, probe)

    async with stack.rewired({"orders": {"INVENTORY_GRPC_TARGET": proxy.inventory_grpc}}):
        outcome = await run_scenario(
            "inventory-grpc-latency",
            **_common(gateway, admin, shoppers, kafka_bootstrap),
            tokens=token_mix(CHAOS_ORDERS),
            seconds=CHAOS_DURATION,
            faults=faults,
            fault={"inventory_grpc_latency_ms": [SLOW_MS, TOO_SLOW_MS]},
        )
        route = await proxy.control.route("inventory-grpc")
    outcome.assert_no_violations()
    assert route.stats.bytes_downstream > 0, route.stats
    # Too slow: the order request fails fast with 503 (a deadline, not a hang) and
    # creates nothing; the same request succeeds once inventory is fast again.
    assert probe["status"] == 503, probe
    assert probe["seconds"] < 15, probe
    assert probe["after"] == 201, probe


async def _probe_deadline(
    gateway: httpx.AsyncClient, admin: Account, account: Account, context: Context
) -> dict[str, Any]:
    # A product of the probe's own (the load may have sold the others out), checked
    # like the scenario's (stock conservation, no stray order) but not on sale to the
    # load, which would otherwise sell its 5 units before the probe places again.
    product = await create_product(gateway, admin, stock=5)
    context.shop.products[product] = 5
    key = f"chaos-probe-{uuid.uuid4()}"
    body = {
        "items": [{"productId": product, "quantity": 1}],
        "shippingAddress": ADDRESS,
        "paymentMethod": {"token": "tok_visa"},
    }
    started = time.monotonic()
    response = await gateway.post(
        "/api/orders", json=body, headers={**account.bearer, "Idempotency-Key": key}, timeout=60
    )
    return {
        "key": key,
        "body": body,
        "status": response.status_code,
        "seconds": round(time.monotonic() - started, 2),
    }


async def _place_again(
    gateway: httpx.AsyncClient, account: Account, context: Context, probe: dict[str, Any]
) -> int:
    """The probe's request again (same key); a 201 is tracked like any load order."""
    started = time.monotonic()
    for _ in range(20):
        response = await gateway.post(
            "/api/orders",
            json=probe["body"],
            headers={**account.bearer, "Idempotency-Key": probe["key"]},
            timeout=60,
        )
        if response.status_code == 201:
            context.checker.track(
                PlacedOrder(
                    order_id=str(response.json()["orderId"]),
                    user_id=account.id,
                    token="tok_visa",
                    lines=tuple(
                        Line(item["productId"], item["quantity"]) for item in probe["body"]["items"]
                    ),
                    idempotency_key=probe["key"],
                    attempts=1,
                    seconds=time.monotonic() - started,
                )
            )
        if response.status_code not in (409, 503) or "unavailableProducts" in response.text:
            return response.status_code
        await asyncio.sleep(1.0)
    return response.status_code


async def test_kafka_broker_killed_and_restarted_under_load(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    chaos_stack: None,
) -> None:
    outage: dict[str, float] = {}

    async def faults(context: Context) -> None:
        await asyncio.sleep(context.seconds * 0.3)
        started = time.monotonic()
        await asyncio.to_thread(stack.kill_kafka_hard)
        try:
            await asyncio.sleep(3.0)
        finally:
            await stack.kafka_up()
            outage["seconds"] = round(time.monotonic() - started, 1)

    outcome = await run_scenario(
        "kafka-broker-restart",
        **_common(gateway, admin, shoppers, kafka_bootstrap),
        tokens=token_mix(CHAOS_ORDERS),
        seconds=CHAOS_DURATION,
        faults=faults,
        fault={"kafka": "broker SIGKILLed mid-load, started again after 3 s"},
        expectations=BROKER_MAY_OUTLAST_THE_PAYMENT_TIMEOUT,
    )
    print(f"[chaos] broker outage: {outage}")
    outcome.assert_no_violations()
    assert outage["seconds"] > 3.0


async def test_every_process_killed_once_under_load(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    chaos_stack: None,
) -> None:
    killed: list[str] = []

    async def kill_and_start(name: str) -> None:
        started = time.monotonic()
        await asyncio.to_thread(stack.kill_hard, name)
        killed.append(name)
        try:
            await asyncio.sleep(0.5)
        finally:
            await stack.start(name)
        print(f"[chaos] {name} killed and ready again in {time.monotonic() - started:.1f} s")

    async def faults(context: Context) -> None:
        # Pair after pair, each once the previous pair is back; the load goes on until
        # the last is (see run_scenario).
        for pair in KILL_PAIRS:
            await asyncio.sleep(context.seconds / len(KILL_PAIRS))
            results = await asyncio.gather(
                *(kill_and_start(name) for name in pair), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result

    outcome = await run_scenario(
        "kill-9-each-process",
        **_common(gateway, admin, shoppers, kafka_bootstrap),
        tokens=token_mix(CHAOS_ORDERS),
        seconds=2 * CHAOS_DURATION,
        stock_for=4 * CHAOS_ORDERS,
        faults=faults,
        fault={"kill_9": KILL_PAIRS},
        reads=True,
    )
    outcome.assert_no_violations()
    every = [name for pair in KILL_PAIRS for name in pair]
    assert sorted(killed) == sorted(every)
    assert all(stack.is_ready(name) for name in every)
