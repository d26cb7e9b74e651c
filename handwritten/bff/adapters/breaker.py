"""Circuit breakers (pybreaker) whose state replicas share through Redis.

One breaker per downstream (orders, inventory, shipping). ``fail_max``
consecutive failures open it; while open, calls fail at once without touching the
network; ``reset_timeout`` seconds after opening, calls go through again
(half-open) and the first outcome closes the breaker or opens it for another
``reset_timeout``.

Why not pybreaker's ``CircuitRedisStorage`` as is: it is built on the *sync*
redis client (fine, see below) but (1) its constructor raises when Redis is down,
so the BFF could not start; (2) while Redis is down every breaker operation pays
the socket timeout, logs a stack trace, and reads the failure counter as 0, so no
breaker can ever open; (3) it stores ``opened_at`` in whole seconds. ``SharedState``
keeps its idea (the same four values in Redis, so replicas agree) and falls back to
per-process state for a cool-down after a Redis error, so a Redis outage costs one
short timeout (no retries) per cool-down, not one per call, and the breakers keep
working per replica meanwhile. Keys expire a day after their last write.

Sync Redis in an async service: pybreaker's state machine is synchronous and calls
its storage inline, so the bookkeeping before and after a call (two or three Redis
round trips) runs in a small dedicated thread pool, never on the event loop. Only
the guarded gRPC call itself runs on the loop.

What counts as a failure: no answer (refused, reset, deadline exceeded) or a status
saying the server is unwell (UNAVAILABLE, INTERNAL…). A business answer (NOT_FOUND,
INVALID_ARGUMENT…) proves the downstream healthy: the client raises it wrapped in
``AnsweredError`` and it counts as a success. A cancelled call (the client went away)
says nothing about the downstream, but pybreaker has no neutral outcome: it counts
as a success too, rather than risk opening a healthy breaker.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import pybreaker
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from handwritten.runtime.breaker_metrics import (
    record_rejection,
    record_state,
    record_transition,
)
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")

#: Redis keys live this long after their last write; a breaker's state older than
#: that has long outlived any reset timeout.
KEY_TTL_SECONDS = 24 * 3600
_REDIS_ERRORS = REDIS_UNAVAILABLE

#: The ``service`` label of the breakers' metrics (``handwritten.runtime.breaker_metrics``).
METRICS_SERVICE = "bff"


def state_client(url: str, *, timeout_seconds: float = 0.25) -> Redis:
    """The sync Redis client of the breakers' state: short timeouts and no retries.

    redis-py retries a failed command three times with backoff by default: seconds
    of waiting per operation during an outage, in the path of every guarded call.
    Here one quick failure is enough to fall back (see ``SharedState``).
    """
    return Redis.from_url(
        url,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )


class AnsweredError(Exception):
    """The downstream answered with a business error: it is healthy.

    Raised inside the guarded call so the breaker records a success; the client
    unwraps ``error`` right after.
    """

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class CircuitOpenError(Exception):
    """The breaker is open: the call was not attempted."""


# pybreaker is untyped for mypy here (follow_imports = skip in pyproject).
class SharedState(pybreaker.CircuitBreakerStorage):  # type: ignore[misc]
    """Breaker state in Redis under ``{namespace}:{name}:*``, per process while Redis fails."""

    def __init__(
        self,
        redis: Redis,
        *,
        namespace: str,
        name: str,
        cooldown_seconds: float = 5.0,
    ) -> None:
        super().__init__("redis")
        self._redis = redis
        self._prefix = f"{namespace}:{name}"
        self._cooldown = cooldown_seconds
        self._retry_redis_at = 0.0
        # Mirrors every write, so a fallback continues from this process's last view.
        self._local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)

    def _key(self, field: str) -> str:
        return f"{self._prefix}:{field}"

    def _use_redis(self) -> bool:
        return time.monotonic() >= self._retry_redis_at

    def _redis_failed(self, exc: BaseException) -> None:
        if self._use_redis():
            log.warning(
                "circuit breaker state unavailable in Redis; using this process's state",
                breaker=self._prefix,
                error=repr(exc),
                retry_in_seconds=self._cooldown,
            )
        self._retry_redis_at = time.monotonic() + self._cooldown

    def _read(self, field: str) -> str | None:
        """The value (``None``: unset); ``_RedisUnavailableError`` when Redis cannot be used."""
        if not self._use_redis():
            raise _RedisUnavailableError
        try:
            value = self._redis.get(self._key(field))
        except _REDIS_ERRORS as exc:
            self._redis_failed(exc)
            raise _RedisUnavailableError from exc
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    def _write(self, field: str, value: str | int | float) -> None:
        if not self._use_redis():
            return
        try:
            self._redis.set(self._key(field), value, ex=KEY_TTL_SECONDS)
        except _REDIS_ERRORS as exc:
            self._redis_failed(exc)

    def _increment(self, field: str) -> None:
        if not self._use_redis():
            return
        try:
            with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(self._key(field))
                pipe.expire(self._key(field), KEY_TTL_SECONDS)
                pipe.execute()
        except _REDIS_ERRORS as exc:
            self._redis_failed(exc)

    def _read_int(self, field: str, local: int) -> int:
        try:
            value = self._read(field)
        except _RedisUnavailableError:
            return local
        return int(value) if value else 0

    # ------------------------------------------------- pybreaker's storage API

    @property
    def state(self) -> str:
        try:
            value = self._read("state")
        except _RedisUnavailableError:
            return str(self._local.state)
        return value or str(pybreaker.STATE_CLOSED)

    @state.setter
    def state(self, state: str) -> None:
        self._local.state = state
        self._write("state", state)

    def increment_counter(self) -> None:
        self._local.increment_counter()
        self._increment("fail_counter")

    def reset_counter(self) -> None:
        self._local.reset_counter()
        self._write("fail_counter", 0)

    def increment_success_counter(self) -> None:
        self._local.increment_success_counter()
        self._increment("success_counter")

    def reset_success_counter(self) -> None:
        self._local.reset_success_counter()
        self._write("success_counter", 0)

    @property
    def counter(self) -> int:
        return self._read_int("fail_counter", self._local.counter)

    @property
    def success_counter(self) -> int:
        return self._read_int("success_counter", self._local.success_counter)

    @property
    def opened_at(self) -> dt.datetime | None:
        try:
            value = self._read("opened_at")
        except _RedisUnavailableError:
            local: dt.datetime | None = self._local.opened_at
            return local
        if not value:
            return None
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC)

    @opened_at.setter
    def opened_at(self, now: dt.datetime) -> None:
        self._local.opened_at = now
        # Sub-second precision (pybreaker's storage keeps whole seconds), so a short
        # reset timeout means what it says.
        self._write("opened_at", repr(now.timestamp()))


class _RedisUnavailableError(Exception):
    """Redis is not to be used right now (internal to ``SharedState``)."""


class _StateListener(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
    """Logs transitions and exports them (state gauge, transitions counter)."""

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        record_transition(
            METRICS_SERVICE,
            cb.name,
            None if old_state is None else old_state.name,
            new_state.name,
        )
        log.warning(
            "circuit breaker state changed",
            downstream=cb.name,
            old=None if old_state is None else old_state.name,
            new=new_state.name,
        )


def _is_neutral(exc: BaseException) -> bool:
    # AnsweredError: the downstream is healthy. Cancellation/GeneratorExit: see module doc.
    return isinstance(exc, AnsweredError | asyncio.CancelledError | GeneratorExit)


class Breaker:
    """Guards async calls to one downstream with a pybreaker ``CircuitBreaker``."""

    def __init__(
        self,
        name: str,
        storage: pybreaker.CircuitBreakerStorage,
        *,
        fail_max: int,
        reset_timeout_seconds: float,
        executor: Executor,
    ) -> None:
        self.name = name
        self._executor = executor
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout_seconds,
            exclude=[_is_neutral],
            state_storage=storage,
            listeners=[_StateListener()],
            name=name,
        )
        # The state it starts in (possibly open, as shared by other replicas).
        record_state(METRICS_SERVICE, name, str(self._breaker.current_state))

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half-open`` (as the shared state says now; blocking)."""
        return str(self._breaker.current_state)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """``await operation()`` if the breaker lets it through, recording the outcome.

        ``CircuitOpenError`` when open (nothing attempted); otherwise the operation's
        own result or exception. A failure that opens the breaker still raises the
        operation's exception.
        """
        loop = asyncio.get_running_loop()
        guard = self._breaker.calling()
        try:
            await loop.run_in_executor(self._executor, guard.__enter__)
        except pybreaker.CircuitBreakerError as exc:
            record_rejection(METRICS_SERVICE, self.name)
            raise CircuitOpenError(self.name) from exc
        try:
            result = await operation()
        except asyncio.CancelledError as exc:
            # Not awaited: a cancelled task should not wait for bookkeeping.
            self._executor.submit(_exit_quietly, guard, exc)
            raise
        except Exception as exc:
            await loop.run_in_executor(self._executor, _exit_quietly, guard, exc)
            raise
        await loop.run_in_executor(self._executor, guard.__exit__, None, None, None)
        return result


def _exit_quietly(guard: Any, exc: BaseException) -> None:
    """Record ``exc`` as the call's outcome; the caller re-raises ``exc`` itself.

    pybreaker raises ``CircuitBreakerError`` from here when this very failure opens
    the breaker: the original error is the more useful one to report.
    """
    try:
        guard.__exit__(type(exc), exc, exc.__traceback__)
    except pybreaker.CircuitBreakerError:
        pass
    except BaseException as other:
        if other is not exc:
            raise
