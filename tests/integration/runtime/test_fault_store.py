"""Fault flags kept in the real Redis: shared, limited, expiring, scoped.

Each test writes under a prefix of its own, so it never meets the running stack's
flags (nor another engineer's).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from redis.asyncio import Redis

from handwritten.runtime.context import correlation_id
from handwritten.runtime.faults import (
    STORE_RETRY_SECONDS,
    FaultSwitchboard,
    RedisFaultStore,
    StoredFlag,
    open_switchboard,
    parse_env_flags,
)
from handwritten.runtime.settings import ServiceSettings

REDIS_URL = "redis://127.0.0.1:6379/0"
PAYMENT = "create_order.process_payment"
REQUESTED = "payments.requested"
ORDER = str(uuid.uuid4())
USER = str(uuid.uuid4())


class Clock:
    """A clock the test moves (flags expire by it)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def prefix(redis: Redis) -> AsyncIterator[str]:
    value = f"test:faults:{uuid.uuid4().hex}:"
    try:
        yield value
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{value}*")]
        if keys:
            await redis.delete(*keys)


def board(redis: Redis, prefix: str, clock: Clock, **kwargs: object) -> FaultSwitchboard:
    store = RedisFaultStore(redis, prefix=prefix)
    return FaultSwitchboard("payment", enabled=True, store=store, clock=clock, **kwargs)  # type: ignore[arg-type]


async def test_a_flag_set_on_one_replica_fires_on_another(redis: Redis, prefix: str) -> None:
    clock = Clock(1_000.0)
    setter, other = board(redis, prefix, clock), board(redis, prefix, clock)
    await setter.put(PAYMENT, "fail", {"userId": USER}, ttl_seconds=60)
    fault = await other.check(REQUESTED, orderId=ORDER, userId=USER)
    assert fault is not None and fault.mode == "fail"
    assert await other.check(REQUESTED, orderId=ORDER, userId=str(uuid.uuid4())) is None
    (listed,) = await setter.flags()
    assert (listed.flag.point, listed.flag.match, listed.fired) == (
        PAYMENT,
        (("userId", USER),),
        1,
    )


async def test_flags_expire_with_their_ttl(redis: Redis, prefix: str) -> None:
    clock = Clock(1_000.0)
    switchboard = board(redis, prefix, clock)
    await switchboard.put(PAYMENT, "hang", ttl_seconds=5)
    assert await switchboard.check(REQUESTED, orderId=ORDER) is not None
    ttl = await redis.pttl(f"{prefix}{PAYMENT}")
    assert 0 < ttl <= 5_000  # Redis drops the point's hash with its last flag
    clock.now += 5
    assert await switchboard.check(REQUESTED, orderId=ORDER) is None
    assert await switchboard.flags() == []


async def test_a_limited_flag_fires_exactly_times_even_under_concurrency(
    redis: Redis, prefix: str
) -> None:
    clock = Clock(1_000.0)
    replicas = [board(redis, prefix, clock) for _ in range(4)]
    await replicas[0].put(PAYMENT, "fail", {"orderId": ORDER}, times=3)
    results = await asyncio.gather(
        *(replicas[i % 4].check(REQUESTED, orderId=ORDER) for i in range(20))
    )
    assert sum(result is not None for result in results) == 3
    assert await replicas[0].flags() == []  # used up: removed


async def test_putting_the_same_match_replaces_the_flag_and_resets_its_count(
    redis: Redis, prefix: str
) -> None:
    clock = Clock(1_000.0)
    switchboard = board(redis, prefix, clock)
    await switchboard.put(PAYMENT, "fail", {"orderId": ORDER}, times=2)
    assert await switchboard.check(REQUESTED, orderId=ORDER) is not None
    await switchboard.put(PAYMENT, "duplicate", {"orderId": ORDER}, times=2)
    (stored,) = await switchboard.flags()
    assert (stored.flag.mode, stored.fired) == ("duplicate", 0)


async def test_removing_takes_only_the_flag_with_that_exact_match(
    redis: Redis, prefix: str
) -> None:
    clock = Clock(1_000.0)
    switchboard = board(redis, prefix, clock)
    await switchboard.put(PAYMENT, "fail", {"orderId": ORDER})
    await switchboard.put(PAYMENT, "hang", {"orderId": ORDER, "userId": USER})
    assert await switchboard.remove(PAYMENT, {"orderId": ORDER}) is True
    assert await switchboard.remove(PAYMENT, {"orderId": ORDER}) is False
    (left,) = await switchboard.flags()
    assert left.flag.mode == "hang"


async def test_the_most_specific_flag_wins_and_env_flags_come_after_stored_ones(
    redis: Redis, prefix: str
) -> None:
    clock = Clock(1_000.0)
    switchboard = board(redis, prefix, clock, env_flags=parse_env_flags(f"{PAYMENT}=hang"))
    token = correlation_id.set("fault-store-test")
    try:
        await switchboard.put(PAYMENT, "duplicate", {"correlationId": "fault-store-test"})
        await switchboard.put(PAYMENT, "fail")
        first = await switchboard.check(REQUESTED, orderId=ORDER)
        assert first is not None and first.mode == "duplicate"
        await switchboard.remove(PAYMENT, {"correlationId": "fault-store-test"})
        second = await switchboard.check(REQUESTED, orderId=ORDER)
        assert second is not None and second.mode == "fail"
        await switchboard.remove(PAYMENT)
        third = await switchboard.check(REQUESTED, orderId=ORDER)
        assert third is not None and (third.mode, third.flag.source) == ("hang", "env")
    finally:
        correlation_id.reset(token)


class CountingStore(RedisFaultStore):
    """Counts the reads, to see when the switchboard leaves Redis alone."""

    reads = 0

    async def flags(self, point: str) -> list[StoredFlag]:
        self.reads += 1
        return await super().flags(point)


async def test_an_unreachable_redis_injects_nothing_and_is_left_alone_a_while() -> None:
    unreachable = Redis.from_url(
        "redis://127.0.0.1:1/0", socket_timeout=0.2, socket_connect_timeout=0.2
    )
    clock = Clock(1_000.0)
    store = CountingStore(unreachable)
    try:
        switchboard = FaultSwitchboard("payment", enabled=True, store=store, clock=clock)
        assert await switchboard.check(REQUESTED, orderId=ORDER) is None
        assert await switchboard.check(REQUESTED, orderId=ORDER) is None
        assert store.reads == 1  # the second call did not wait on Redis
        clock.now += STORE_RETRY_SECONDS
        assert await switchboard.check(REQUESTED, orderId=ORDER) is None
        assert store.reads == 2
    finally:
        await unreachable.aclose()


async def test_open_switchboard_follows_the_settings(redis: Redis) -> None:
    def settings(**env: object) -> ServiceSettings:
        return ServiceSettings(service_name="payment", http_port=0, redis_url=REDIS_URL, **env)  # type: ignore[arg-type]

    async with AsyncExitStack() as stack:
        off = await open_switchboard(settings(mc_faults=f"{PAYMENT}=fail"), stack)
        assert off.enabled is False and off.store is None
        on = await open_switchboard(
            settings(mc_faults_enabled=True, mc_faults=f"{PAYMENT}=fail"), stack, redis=redis
        )
        assert on.enabled is True and on.store is not None
        assert [(f.point, f.mode) for f in on.env_flags] == [(PAYMENT, "fail")]
        with pytest.raises(ValueError, match="MC_FAULTS"):
            await open_switchboard(settings(mc_faults_enabled=True, mc_faults="typo=fail"), stack)
