"""Kong's redis policy counters: one Lua call per period does INCR (+ EXPIRE on the
first hit) and returns the count before this request (``policies/init.lua``)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from handwritten.runtime.failures import REDIS_UNAVAILABLE

#: Verbatim from Kong 3.8.1's redis policy, so counters are shared with a real Kong.
INCREMENT_SCRIPT = """
        local cache_key, expiration = KEYS[1], ARGV[1]
        local result_incr = redis.call("incr", cache_key)
        if result_incr == 1 then
          redis.call("expire", cache_key, expiration)
        end

        return result_incr - 1
      """


class RateStoreError(Exception):
    """Redis could not count (down, timed out…): fault_tolerant decides what next."""


class RedisCounters:
    """Fixed-window counters in Redis, one client per socket timeout."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._clients: dict[int, Redis] = {}
        self._scripts: dict[int, Any] = {}

    def _script(self, timeout_ms: int) -> Any:
        if timeout_ms not in self._scripts:
            seconds = timeout_ms / 1000
            client = Redis.from_url(
                self._url, socket_timeout=seconds, socket_connect_timeout=seconds
            )
            self._clients[timeout_ms] = client
            self._scripts[timeout_ms] = client.register_script(INCREMENT_SCRIPT)
        return self._scripts[timeout_ms]

    async def usage(self, key: str, expire_seconds: int, *, timeout_ms: int) -> int:
        """Count this request and return the window's count before it."""
        try:
            result = await self._script(timeout_ms)(keys=[key], args=[expire_seconds])
        except REDIS_UNAVAILABLE as exc:
            raise RateStoreError(f"{type(exc).__name__}: {exc}") from exc
        return int(result)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
        self._scripts.clear()
