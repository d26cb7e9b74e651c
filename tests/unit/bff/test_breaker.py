"""The async guard over pybreaker: what counts as a failure, and Redis outages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pybreaker
import pytest
import redis

from handwritten.bff.adapters.breaker import (
    AnsweredError,
    Breaker,
    CircuitOpenError,
    SharedState,
    state_client,
)


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


def breaker(
    executor: ThreadPoolExecutor, storage: pybreaker.CircuitBreakerStorage | None = None
) -> Breaker:
    return Breaker(
        "orders",
        storage or pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED),
        fail_max=2,
        reset_timeout_seconds=60,
        executor=executor,
    )


async def fail() -> None:
    raise ConnectionRefusedError("refused")


async def answered() -> None:
    raise AnsweredError(LookupError("NOT_FOUND"))


async def test_failures_open_it_and_open_means_not_attempted(executor: ThreadPoolExecutor) -> None:
    guard = breaker(executor)
    attempts = 0

    async def counted() -> None:
        nonlocal attempts
        attempts += 1
        await fail()

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):  # the opening failure is reported as is
            await guard.call(counted)
    assert guard.state == "open"

    with pytest.raises(CircuitOpenError):
        await guard.call(counted)
    assert attempts == 2


async def test_business_answers_and_successes_keep_it_closed(executor: ThreadPoolExecutor) -> None:
    guard = breaker(executor)

    async def ok() -> str:
        return "fine"

    for _ in range(5):
        with pytest.raises(AnsweredError):
            await guard.call(answered)
    with pytest.raises(ConnectionRefusedError):
        await guard.call(fail)
    assert await guard.call(ok) == "fine"  # and resets the count
    with pytest.raises(ConnectionRefusedError):
        await guard.call(fail)
    assert guard.state == "closed"


async def test_a_cancelled_call_does_not_count_as_a_failure(executor: ThreadPoolExecutor) -> None:
    guard = breaker(executor)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    for _ in range(3):
        task = asyncio.create_task(guard.call(hang))
        await started.wait()
        started.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    executor.submit(lambda: None).result()  # the bookkeeping submitted on cancel is done
    assert guard.state == "closed"


class UnreachableRedis:
    """Stands in for a sync Redis client during an outage; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def _refuse(self, *_: object, **__: object) -> None:
        self.attempts += 1
        raise redis.ConnectionError("Connection refused")

    get = set = pipeline = _refuse


def test_the_state_client_fails_fast() -> None:
    # redis-py's default (three retries with backoff) would cost seconds per
    # operation during an outage, in the path of every guarded call.
    client = state_client("redis://127.0.0.1:6379/0")
    retry = client.get_retry()
    assert retry is not None and retry.get_retries() == 0
    assert client.connection_pool.connection_kwargs["socket_connect_timeout"] <= 0.25
    client.close()


async def test_redis_down_falls_back_to_this_process_for_a_cooldown(
    executor: ThreadPoolExecutor,
) -> None:
    unreachable = UnreachableRedis()
    storage = SharedState(
        unreachable,
        namespace="test",
        name="orders",
        cooldown_seconds=60,
    )
    guard = await asyncio.get_running_loop().run_in_executor(
        executor, lambda: breaker(executor, storage)
    )
    assert unreachable.attempts == 1  # one failure starts the cooldown

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            await guard.call(fail)
    assert guard.state == "open"  # the breaker still works, per process
    with pytest.raises(CircuitOpenError):
        await guard.call(fail)

    assert unreachable.attempts == 1  # not retried during the cooldown
