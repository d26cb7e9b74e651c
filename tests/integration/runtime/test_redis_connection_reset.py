"""Redis being reset never fails a request: the caches and counters carry on without it.

Found by the chaos soak (tests/chaos/soak.py, Redis connections reset): on uvloop, the
services' event loop, the first command on a connection the peer has reset raises a
RuntimeError ("the handler is closed", MagicStack/uvloop#506) that redis-py does not
translate into one of its errors. Inventory's cache invalidation, run after a
reservation had committed, let it through: ReserveProducts answered INTERNAL, the saga
took the reservation for never made, canceled the order and left its stock reserved.

Real Redis through a chaos proxy route, on a uvloop event loop like the services'.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
import uvloop
from redis.asyncio import Redis

from handwritten.auth.adapters.throttle import RedisLoginAttemptCounter
from handwritten.chaos import ChaosProxy, Endpoint
from handwritten.inventory.adapters.cache import RedisProductCache
from handwritten.orders.adapters.cache import RedisOrderCache
from tests.e2e.conftest import wait_for

Call = Callable[[Redis], Awaitable[object]]
CALLS: dict[str, Call] = {
    "inventory cache invalidate": lambda redis: RedisProductCache(redis, ttl_seconds=5).invalidate(
        [uuid.uuid4()]
    ),
    "inventory cache read": lambda redis: RedisProductCache(redis, ttl_seconds=5).get_many(
        [uuid.uuid4()]
    ),
    "orders cache read": lambda redis: RedisOrderCache(redis, ttl_seconds=5).get(uuid.uuid4()),
    "login attempts": lambda redis: RedisLoginAttemptCounter(
        redis, account_window_seconds=60, client_window_seconds=60
    ).add_attempt(f"chaos-{uuid.uuid4()}@example.com", "203.0.113.9"),
}


async def _after_a_reset(call: Call) -> None:
    proxy = ChaosProxy("redis", Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 6379))
    await proxy.start()
    redis = Redis.from_url(f"redis://{proxy.address}/0")
    try:
        await call(redis)  # connected and working
        assert proxy.reset_connections() == 1
        await _seen_by_the_client(redis)
        for _ in range(3):  # the first call meets the dead connection, the next reconnect
            await call(redis)
    finally:
        await redis.aclose()
        await proxy.stop()


async def _seen_by_the_client(redis: Redis) -> None:
    """Wait until the event loop has closed the pooled connection's transport (the
    RST arrived) while redis-py still holds it as connected: the case uvloop reports
    as a RuntimeError. redis-py keeps no public view of its pooled connections."""
    connections = redis.connection_pool._available_connections
    assert connections, "the pool holds the connection of the first call"

    async def closed() -> bool:
        return all(c._writer.transport.is_closing() for c in connections)

    await wait_for(closed, seconds=10, what="the reset to reach the client")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_reset_redis_connection_fails_nothing_on_uvloop(name: str) -> None:
    uvloop.run(_after_a_reset(CALLS[name]))
