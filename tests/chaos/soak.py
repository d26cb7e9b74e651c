"""The long chaos soak (`make chaos`): every fault in turn under one continuous load.

Not collected by `make test` (the file name does not match test_*.py); `make chaos`
names it explicitly. The services run wired through the chaos proxy for the whole
soak (orders, inventory, payment and the BFF reach PostgreSQL, Redis, inventory's
gRPC server and Kafka through it; payment also fails a share of visa charges), while
orders (visa, declined and silent cards) arrive evenly. Each fault gets one segment
of CHAOS_DURATION seconds and CHAOS_ORDERS orders:

 1. no fault (the payment failure rate only)   5. payment's Kafka black-holed
 2. PostgreSQL connections reset every 2 s      6. Redis connections reset, then black-holed
 3. inventory gRPC 500 ms slower                7. the Kafka broker SIGKILLed and restarted
 4. inventory gRPC black-holed                  8. every process SIGKILLed once

The invariant checker samples throughout and checks everything at the end.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import httpx
import pytest

from handwritten.chaos import Direction, Fault, Mode
from handwritten.payment.adapters.gateway import failure_roll
from tests.chaos import stack
from tests.chaos.conftest import CHAOS_DURATION, CHAOS_ORDERS, CHAOS_SAGA_BOUND, Proxy
from tests.chaos.invariants import BROKER_MAY_OUTLAST_THE_PAYMENT_TIMEOUT, Expectations
from tests.chaos.load import token_mix
from tests.chaos.scenario import Context, run_scenario
from tests.e2e.conftest import Account

SOAK_FAILURE_RATE = float(os.environ.get("CHAOS_PAYMENT_FAILURE_RATE", "0.2"))
#: Seconds each black hole lasts: long enough for timeouts to fire, well under the
#: saga's 30 s payment timeout and Kafka's consumer session timeout.
BLACKHOLE_SECONDS = 5.0
KILL_ORDER = ["payment", "shipping", "inventory", "orders", "analytics", "bff", "auth", "gateway"]

pytestmark = pytest.mark.usefixtures("stack_ready")


def wiring(proxy: Proxy) -> dict[str, dict[str, str]]:
    """Which services reach what through the proxy during the soak."""
    redis = f"redis://{proxy.redis}/0"
    return {
        "inventory": {"DATABASE_URL": proxy.database_url("inventory"), "REDIS_URL": redis},
        "payment": {
            "DATABASE_URL": proxy.database_url("payment"),
            "KAFKA_BOOTSTRAP_SERVERS": proxy.kafka,
            "PAYMENT_FAILURE_RATE": str(SOAK_FAILURE_RATE),
        },
        "orders": {
            "DATABASE_URL": proxy.database_url("orders"),
            "REDIS_URL": redis,
            "INVENTORY_GRPC_TARGET": proxy.inventory_grpc,
        },
        "bff": {"INVENTORY_GRPC_TARGET": proxy.inventory_grpc, "REDIS_URL": redis},
    }


async def test_soak_every_fault_in_turn_under_continuous_load(
    gateway: httpx.AsyncClient,
    admin: Account,
    shoppers: list[Account],
    kafka_bootstrap: str,
    kafka_chaos_listener: None,
    clear_faults: Proxy,
) -> None:
    proxy = clear_faults
    wired = wiring(proxy)
    segment = CHAOS_DURATION
    done: list[str] = []

    async def during(name: str, fault: Callable[[], Awaitable[None]]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + segment
        try:
            await fault()
        finally:
            await proxy.control.clear_all()
        done.append(name)
        await asyncio.sleep(max(0.0, end - loop.time()))

    async def nothing() -> None:
        return

    async def postgres_resets() -> None:
        for _ in range(max(1, int(segment / 2))):
            await proxy.control.reset("postgres")
            await asyncio.sleep(2.0)

    async def slow_inventory() -> None:
        slow = Fault(latency_ms=500, direction=Direction.DOWNSTREAM)
        await proxy.control.set_fault("inventory-grpc", slow)
        await asyncio.sleep(segment * 0.8)

    async def blackhole(route: str) -> None:
        await proxy.control.set_fault(route, Fault(mode=Mode.BLACKHOLE))
        await asyncio.sleep(BLACKHOLE_SECONDS)

    async def redis_trouble() -> None:
        await proxy.control.reset("redis")
        await asyncio.sleep(1.0)
        await blackhole("redis")

    async def broker_restart() -> None:
        await asyncio.to_thread(stack.kill_kafka_hard)
        try:
            await asyncio.sleep(3.0)
        finally:
            await stack.kafka_up()

    async def kill_each() -> None:
        for name in KILL_ORDER:
            await asyncio.to_thread(stack.kill_hard, name)
            try:
                await asyncio.sleep(0.5)
            finally:
                await stack.start(name, wired.get(name))
            await asyncio.sleep(segment / len(KILL_ORDER) / 2)

    timeline: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("baseline", nothing),
        ("postgres-resets", postgres_resets),
        ("inventory-grpc-500ms", slow_inventory),
        ("inventory-grpc-blackhole", lambda: blackhole("inventory-grpc")),
        ("payment-kafka-blackhole", lambda: blackhole("kafka")),
        ("redis-reset-and-blackhole", redis_trouble),
        ("kafka-broker-restart", broker_restart),
        ("kill-9-each-process", kill_each),
    ]

    async def faults(_: Context) -> None:
        for name, fault in timeline:
            print(f"[chaos] soak segment: {name}")
            await during(name, fault)

    async with stack.rewired(wired):
        outcome = await run_scenario(
            "soak",
            gateway=gateway,
            admin=admin,
            accounts=shoppers,
            kafka_bootstrap=kafka_bootstrap,
            tokens=token_mix(CHAOS_ORDERS * len(timeline), declined=0.15, timeout=0.05),
            seconds=segment * len(timeline),
            faults=faults,
            fault={
                "segments": [name for name, _ in timeline],
                "segment_seconds": segment,
                "payment_failure_rate": SOAK_FAILURE_RATE,
            },
            saga_bound_seconds=CHAOS_SAGA_BOUND,
            expectations=Expectations(
                visa_fails=lambda order_id: failure_roll(order_id) < SOAK_FAILURE_RATE,
                # The broker restart may outlast the saga's 30 s payment timeout.
                cancel_reasons=BROKER_MAY_OUTLAST_THE_PAYMENT_TIMEOUT.cancel_reasons,
            ),
            reads=True,
        )
    outcome.assert_no_violations()
    assert done == [name for name, _ in timeline]
