"""Login throttling per account and per client address (Redis)."""

from __future__ import annotations

import hashlib
import time

import httpx
import pytest
from redis.asyncio import Redis

from handwritten.auth.adapters.throttle import RedisLoginAttemptCounter
from handwritten.auth.app import open_redis
from handwritten.auth.domain.throttle import AttemptCount
from handwritten.auth.settings import AuthSettings
from tests.integration.auth.conftest import (
    PASSWORD,
    assert_problem,
    login,
    make_settings,
    register,
    running,
    unique_email,
    unique_ip,
)

pytestmark = pytest.mark.infra
WRONG = "Wrong-Passw0rd!"


async def test_failed_logins_for_one_account_are_throttled(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    limit = settings.login_max_failures_per_account
    victim, _ = await register(client)
    other, _ = await register(client)
    ip = unique_ip()
    for _ in range(limit):
        assert_problem(await login(client, victim, WRONG, ip=ip), 401)
    throttled = await login(client, victim, WRONG, ip=ip)
    body = assert_problem(throttled, 429)
    assert "Too many failed login attempts" in body["detail"]
    retry_after = int(throttled.headers["retry-after"])
    assert 0 < retry_after <= settings.login_account_window_seconds
    # The right password does not help while the window lasts, from anywhere.
    assert_problem(await login(client, victim, PASSWORD, ip=unique_ip()), 429)
    # Another account, even from the same address, still logs in.
    assert (await login(client, other, PASSWORD, ip=ip)).status_code == 200


async def test_unknown_accounts_are_throttled_too(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    email = unique_email("ghost")
    for _ in range(settings.login_max_failures_per_account):
        assert_problem(await login(client, email, WRONG), 401)
    assert_problem(await login(client, email, WRONG), 429)


async def test_a_successful_login_clears_the_account_counter(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    email, _ = await register(client)
    almost = settings.login_max_failures_per_account - 1
    for _ in range(almost):
        assert_problem(await login(client, email, WRONG), 401)
    assert (await login(client, email)).status_code == 200
    for _ in range(almost):
        assert_problem(await login(client, email, WRONG), 401)
    assert (await login(client, email)).status_code == 200


async def test_failed_logins_from_one_address_are_throttled() -> None:
    async with running(make_settings(login_max_failures_per_ip=3)) as (_, client):
        ip = unique_ip()
        accounts = [(await register(client))[0] for _ in range(4)]
        for email in accounts[:3]:
            assert_problem(await login(client, email, WRONG, ip=ip), 401)
        throttled = await login(client, accounts[3], PASSWORD, ip=ip)
        assert_problem(throttled, 429)
        assert int(throttled.headers["retry-after"]) > 0
        # The same account from another address is fine: the limit is the address's.
        assert (await login(client, accounts[3], PASSWORD, ip=unique_ip())).status_code == 200


async def test_successful_logins_do_not_use_up_the_address_budget() -> None:
    async with running(make_settings(login_max_failures_per_ip=2)) as (_, client):
        ip = unique_ip()
        email, _ = await register(client)
        for _ in range(5):
            assert (await login(client, email, ip=ip)).status_code == 200


async def test_only_the_last_forwarded_address_counts(client: httpx.AsyncClient) -> None:
    # A client cannot dodge the per-address limit by prepending addresses of its own:
    # the gateway appends the real one last.
    email, _ = await register(client)
    ip = unique_ip()
    response = await client.post(
        "/api/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": f"1.2.3.4, {ip}"},
    )
    assert response.status_code == 200


async def test_the_counter_fails_open_when_redis_is_unreachable() -> None:
    # Port 1 refuses connections: logins keep working, unthrottled (and logged),
    # without seconds of client retries first.
    redis = open_redis("redis://127.0.0.1:1/0")
    counter = RedisLoginAttemptCounter(redis, account_window_seconds=60, client_window_seconds=60)
    try:
        started = time.monotonic()
        assert await counter.add_attempt("a@example.com", "10.0.0.1") == (
            AttemptCount(0, 0),
            AttemptCount(0, 0),
        )
        await counter.succeeded("a@example.com", "10.0.0.1")
        assert time.monotonic() - started < 2
    finally:
        await redis.aclose()


async def test_counters_expire_and_success_leaves_no_key_without_ttl(
    settings: AuthSettings,
) -> None:
    redis = Redis.from_url(settings.redis_url)
    counter = RedisLoginAttemptCounter(redis, account_window_seconds=60, client_window_seconds=90)
    account, client = unique_email(), unique_ip()
    try:
        first = await counter.add_attempt(account, client)
        second = await counter.add_attempt(account, client)
        assert (first[0].attempts, second[0].attempts) == (1, 2)
        assert 0 < second[0].ttl_seconds <= 60 and 60 < second[1].ttl_seconds <= 90
        digest = hashlib.sha256(account.encode()).hexdigest()
        keys = [f"auth:login-attempts:account:{digest}", f"auth:login-attempts:client:{client}"]
        assert await redis.exists(*keys) == 2
        # The e-mail itself never appears in a key: only its SHA-256 does.
        assert [key async for key in redis.scan_iter(match=f"*{account}*")] == []
        await counter.succeeded(account, client)
        await counter.succeeded(account, client)
        await counter.succeeded(account, client)  # more successes than attempts
        assert await redis.exists(*keys) == 0
    finally:
        await redis.aclose()
