"""Readiness probes of the dependencies a service uses."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
from redis.asyncio import Redis

Probe = Callable[[], Awaitable[None]]


def postgres_probe(pool: asyncpg.Pool) -> Probe:
    async def probe() -> None:
        async with pool.acquire(timeout=2) as connection:
            await connection.fetchval("SELECT 1")

    return probe


def redis_probe(redis: Redis) -> Probe:
    async def probe() -> None:
        await redis.ping()

    return probe


def kafka_probe(bootstrap_servers: str) -> Probe:
    """A TCP connect to a bootstrap broker: cheap, and enough to say 'reachable'."""

    async def probe() -> None:
        host, _, port = bootstrap_servers.split(",")[0].rpartition(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        await writer.wait_closed()

    return probe


async def run_probes(probes: Mapping[str, Probe], seconds_each: float = 2.0) -> dict[str, str]:
    """``{name: "ok" | "error: …"}`` for every probe, run concurrently."""

    async def one(probe: Probe) -> str:
        try:
            await asyncio.wait_for(probe(), seconds_each)
        except Exception as exc:
            return f"error: {type(exc).__name__}: {exc}"[:200]
        return "ok"

    names = sorted(probes)
    results = await asyncio.gather(*(one(probes[name]) for name in names))
    return dict(zip(names, results, strict=True))
