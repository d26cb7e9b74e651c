"""100 requests per minute per user on order routes, with Kong's headers."""

from __future__ import annotations

import asyncio
import time

import httpx

from generated import catalog
from tests.e2e.conftest import Account, register_and_login

LIMIT = catalog.RATE_LIMIT_PER_MINUTE
#: The limiter counts per calendar minute: start with enough of it left for all calls.
NEEDED_SECONDS = 20


async def _fresh_window() -> None:
    left = 60 - time.time() % 60
    if left < NEEDED_SECONDS:
        await asyncio.sleep(left + 0.5)  # the clock itself is the condition here


async def test_the_101st_request_in_a_minute_is_429_and_others_are_unaffected(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    other: Account = await register_and_login(gateway)
    await _fresh_window()
    statuses = []
    remaining = []
    for _ in range(LIMIT):
        response = await gateway.get("/api/orders", headers=account.bearer)
        statuses.append(response.status_code)
        remaining.append(int(response.headers["x-ratelimit-remaining-minute"]))
        assert response.headers["x-ratelimit-limit-minute"] == str(LIMIT)
    assert 429 not in statuses
    assert remaining == list(range(LIMIT - 1, -1, -1))

    limited = await gateway.get("/api/orders", headers=account.bearer)
    assert limited.status_code == 429
    assert limited.json()["message"] == "API rate limit exceeded"
    assert limited.headers["x-ratelimit-remaining-minute"] == "0"
    assert limited.headers["ratelimit-limit"] == str(LIMIT)
    assert limited.headers["ratelimit-remaining"] == "0"
    assert 0 < int(limited.headers["retry-after"]) <= 60
    assert 0 < int(limited.headers["ratelimit-reset"]) <= 60

    unaffected = await gateway.get("/api/orders", headers=other.bearer)
    assert unaffected.status_code != 429
    assert unaffected.headers["x-ratelimit-remaining-minute"] == str(LIMIT - 1)
