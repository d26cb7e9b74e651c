"""Redis cache of report results: a short TTL, and a generation for invalidation.

Keys are ``analytics:<database>:v1:<generation>:<report key>``; the generation is a
counter in Redis that ``invalidate`` increments (one ``INCR``), which makes every
earlier entry unreachable at once, on every replica; the orphans expire with their
TTL. The counter itself expires after a day without events: by then every entry of
every generation has expired too, so starting again from 0 serves nothing stale.
A lookup reads the generation first and hands back the slot of that generation, so
a result computed while a batch was being applied can only be stored under the old
generation.

Best effort: Redis slow or down means cache misses and a warning, never a failed
report.
"""

from __future__ import annotations

from redis.asyncio import Redis

from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
#: Bump when the cached shapes change: older entries are then ignored.
_VERSION = "v1"
#: How long the generation counter outlives the last invalidation.
_GENERATION_TTL_MS = 24 * 3600 * 1000


class RedisResultCache:
    """``ResultCache`` on Redis; entries live ``ttl_seconds``."""

    def __init__(self, redis: Redis, *, namespace: str, ttl_seconds: float) -> None:
        self._redis = redis
        self._prefix = f"analytics:{namespace}:{_VERSION}"
        self._generation_key = f"{self._prefix}:generation"
        self._ttl_ms = max(1, int(ttl_seconds * 1000))
        self._generation_ttl_ms = max(_GENERATION_TTL_MS, 2 * self._ttl_ms)

    async def fetch(self, key: str) -> tuple[str | None, str | None]:
        try:
            generation = await self._redis.get(self._generation_key)
            slot = f"{self._prefix}:{int(generation or 0)}:{key}"
            value = await self._redis.get(slot)
        except REDIS_UNAVAILABLE as exc:
            log.warning("report cache read failed", error=str(exc))
            return None, None
        if value is None:
            return None, slot
        return value.decode() if isinstance(value, bytes) else str(value), slot

    async def put(self, slot: str, value: str) -> None:
        try:
            await self._redis.set(slot, value, px=self._ttl_ms)
        except REDIS_UNAVAILABLE as exc:
            log.warning("report cache write failed", error=str(exc))

    async def invalidate(self) -> None:
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._generation_key)
                pipe.pexpire(self._generation_key, self._generation_ttl_ms)
                await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            # Entries still expire with their TTL: that bounds the staleness.
            log.warning("report cache invalidation failed", error=str(exc))


class NoResultCache:
    """Caching disabled (ANALYTICS_CACHE_TTL_SECONDS=0)."""

    async def fetch(self, key: str) -> tuple[str | None, str | None]:
        return None, None

    async def put(self, slot: str, value: str) -> None:
        return None

    async def invalidate(self) -> None:
        return None
