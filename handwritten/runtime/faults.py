"""Fault flags: make a saga participant fail, hang or answer twice, on demand.

The places are generated from the saga specs (``generated.sagas.fault_points``): one
*fault point* per step action and per compensation, named ``<saga>.<step>`` or
``<saga>.<step>.compensation``, each owned by the participant that performs it. A
*flag* switches a mode on at a point:

- ``fail``: the participant fails the way a real failure would, so the saga's real
  failure path runs (the participant decides what that is, see its hook);
- ``hang``: it answers nothing before the step's timeout (a gRPC handler sleeps
  past it, cancellably; a command is left unanswered);
- ``duplicate``: it performs the effect and answers twice (idempotency on show).

Flags come from two places. ``MC_FAULTS="create_order.process_payment=fail,…"`` is
read at start and applies to every call of this process. The admin endpoint
(``faults_api.py``) keeps flags in Redis, so every replica sees them and they survive
restarts; each expires (``ttlSeconds``), may fire a limited number of ``times`` and
may be scoped by ``match`` (only calls whose correlation id, order id or user id
equal the given ones): on a shared stack, scope your flags. None of this does
anything unless ``MC_FAULTS_ENABLED=true`` (the local stack's default; never set in
production manifests): disabled, ``check`` returns ``None`` without any I/O.

A participant calls ``check`` at the exact place it performs the operation::

    fault = await faults.check(RESERVE_PRODUCTS, orderId=message.order_id)
    if fault is not None and fault.mode == "fail":
        ...  # answer what a real failure answers
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from prometheus_client import Counter
from redis.asyncio import Redis

from generated.sagas.fault_points import FAULT_POINTS
from generated.sagas.types import FaultMode, FaultPoint
from handwritten.runtime.context import correlation_id
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.fault_flags import (
    CORRELATION_ID,
    DEFAULT_TTL_SECONDS,
    MAX_TIMES,
    MAX_TTL_SECONDS,
    MODES,
    FaultFlag,
    FaultFlagError,
    Source,
    applicable,
    match_key,
    new_flag,
    parse_env_flags,
)
from handwritten.runtime.fault_store import KEY_PREFIX, RedisFaultStore, StoredFlag
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.settings import ServiceSettings

__all__ = [
    "CORRELATION_ID",
    "DEFAULT_TTL_SECONDS",
    "KEY_PREFIX",
    "MAX_TIMES",
    "MAX_TTL_SECONDS",
    "MODES",
    "STORE_ERRORS",
    "STORE_RETRY_SECONDS",
    "Fault",
    "FaultFlag",
    "FaultFlagError",
    "FaultSwitchboard",
    "InjectedFaultError",
    "RedisFaultStore",
    "Source",
    "StoredFlag",
    "applicable",
    "flag_json",
    "hang_seconds",
    "inject",
    "match_key",
    "new_flag",
    "open_switchboard",
    "parse_env_flags",
    "point_json",
]

log = get_logger(__name__)

#: A hang lasts twice the step's timeout, and at least this much past it.
MIN_HANG_MARGIN_MS = 1000
#: After the store failed, calls inject nothing from it (and do not wait on it) this long.
STORE_RETRY_SECONDS = 5.0
#: REDIS_UNAVAILABLE also covers uvloop's RuntimeError on a reset connection (tests/chaos).
STORE_ERRORS = REDIS_UNAVAILABLE

T = TypeVar("T")

FAULTS_INJECTED = Counter(
    "saga_faults_injected",
    "Faults injected at saga fault points (fault flags), by point and mode.",
    ["point", "mode"],
    registry=REGISTRY,
)


class InjectedFaultError(RuntimeError):
    """Raised by a participant's ``fail`` where a real failure is an exception."""


def hang_seconds(point: FaultPoint) -> float:
    """How long a hang lasts: past the step's timeout by a margin, so the caller gives up."""
    margin = max(point.timeout_ms, MIN_HANG_MARGIN_MS)
    return (point.timeout_ms + margin) / 1000


@dataclass(frozen=True)
class Fault:
    """A flag that fired for one call: what the participant must do now."""

    point: FaultPoint
    flag: FaultFlag

    @property
    def mode(self) -> FaultMode:
        return self.flag.mode

    def describe(self) -> str:
        return f"injected fault {self.point.name}={self.mode}"

    async def hang(self) -> None:
        """Sleep past the step's timeout; cancellable (a caller's deadline cancels it)."""
        await asyncio.sleep(hang_seconds(self.point))


async def inject(
    fault: Fault | None,
    effect: Callable[[], Awaitable[T]],
    *,
    fail: Callable[[], Awaitable[T]],
) -> T:
    """Run a participant's ``effect`` the way ``fault`` says and return its answer.

    No fault: the effect. ``fail``: what ``fail`` answers or raises instead (the
    participant's real failure). ``hang``: sleep past the step's timeout first (the
    caller's deadline normally cancels the call; if not, the answer comes late).
    ``duplicate``: the effect twice, answering the second result.
    """
    if fault is None:
        return await effect()
    if fault.mode == "fail":
        return await fail()
    if fault.mode == "hang":
        await fault.hang()
        return await effect()
    await effect()
    return await effect()


# --------------------------------------------------------------------- switchboard


@dataclass
class FaultSwitchboard:
    """The fault points of one participant and the flags switched on at them.

    ``store`` is ``None`` when flags can only come from MC_FAULTS (tests, or no Redis).
    """

    service: str
    enabled: bool
    store: RedisFaultStore | None = None
    env_flags: Sequence[FaultFlag] = ()
    all_points: Mapping[str, FaultPoint] = field(default_factory=lambda: FAULT_POINTS)
    clock: Callable[[], float] = time.time
    _env_fired: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _last_store_warning: float = field(default=0.0, init=False, repr=False)
    _store_skipped_until: float = field(default=0.0, init=False, repr=False)
    _points: dict[str, FaultPoint] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._points = {
            name: point
            for name, point in sorted(self.all_points.items())
            if point.participant == self.service
        }
        self.env_flags = tuple(f for f in self.env_flags if f.point in self._points)

    @classmethod
    def disabled(cls, service: str) -> FaultSwitchboard:
        """A switchboard that never injects anything (the default of every participant)."""
        return cls(service, enabled=False)

    @property
    def points(self) -> Mapping[str, FaultPoint]:
        """The points this service serves (it is their participant), by name."""
        return self._points

    def points_for(self, target: str) -> tuple[FaultPoint, ...]:
        """The points named ``target``, or whose operation is ``target``.

        By operation, a participant needs no saga knowledge: a new step calling an
        operation it already serves gets a working fault point with no change here.
        """
        points = self.points
        if target in points:
            return (points[target],)
        found = tuple(p for p in points.values() if p.operation == target)
        if not found:
            raise ValueError(f"{self.service} serves no fault point named or doing {target!r}")
        return found

    async def check(self, target: str, **subject: object) -> Fault | None:
        """The fault to inject into this call of ``target`` (a point name or an
        operation: gRPC method, command topic, local action), or ``None``.

        ``subject`` says what the participant knows of the call (``orderId=…``,
        ``userId=…``); the correlation id is added from the context. Redis being
        unreachable injects nothing (a warning is logged): faults are a demo aid, never
        a reason for a participant to fail on its own.
        """
        if not self.enabled:
            return None
        points = self.points_for(target)
        values = {key: str(value) for key, value in subject.items() if value is not None}
        current = correlation_id.get()
        if current is not None:
            values[CORRELATION_ID] = current
        for point in points:
            fault = await self._check_point(point, values)
            if fault is not None:
                FAULTS_INJECTED.labels(point.name, fault.mode).inc()
                log.warning(
                    "fault injected",
                    point=point.name,
                    mode=fault.mode,
                    match=dict(fault.flag.match),
                    source=fault.flag.source,
                )
                return fault
        return None

    async def _check_point(self, point: FaultPoint, subject: Mapping[str, str]) -> Fault | None:
        candidates = [f for f in self.env_flags if f.point == point.name]
        if self.store is not None and self.clock() >= self._store_skipped_until:
            try:
                candidates.extend(s.flag for s in await self.store.flags(point.name))
            except STORE_ERRORS as exc:
                self._warn_store(exc)
        for flag in applicable(candidates, subject, self.clock()):
            if flag.source == "env":
                self._env_fired[flag.point] = self._env_fired.get(flag.point, 0) + 1
                return Fault(point, flag)
            assert self.store is not None
            try:
                fired = await self.store.fire(flag)
            except STORE_ERRORS as exc:
                self._warn_store(exc)
                return None
            if fired < 0 or (flag.times is not None and fired > flag.times):
                continue  # removed or used up meanwhile (another call won the race)
            return Fault(point, flag)
        return None

    def _warn_store(self, error: BaseException) -> None:
        now = self.clock()
        # A Redis that does not answer must not slow every call down: skip it a while.
        self._store_skipped_until = now + STORE_RETRY_SECONDS
        if now - self._last_store_warning > 30:
            self._last_store_warning = now
            log.warning("fault flags unreadable (Redis); injecting none", error=repr(error))

    # ------------------------------------------------------------- admin operations

    async def flags(self) -> list[StoredFlag]:
        """Every live flag of this service's points, most specific first."""
        now = self.clock()
        stored = [StoredFlag(f, self._env_fired.get(f.point, 0)) for f in self.env_flags]
        if self.store is not None:
            for name in self.points:
                stored.extend(s for s in await self.store.flags(name) if not s.flag.expired(now))
        return sorted(
            stored,
            key=lambda s: (s.flag.point, -len(s.flag.match), s.flag.source != "api", s.flag.key),
        )

    async def put(
        self,
        point: str,
        mode: str,
        match: Mapping[str, str] | None = None,
        *,
        times: int | None = None,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> FaultFlag:
        """Validate and store a flag (replacing the one with the same point and match)."""
        if self.store is None:
            raise RuntimeError("this switchboard has no store for flags")
        now = self.clock()
        flag = new_flag(
            self.points, point, mode, match, times=times, ttl_seconds=ttl_seconds, now=now
        )
        await self.store.put(flag, now)
        log.warning("fault flag set", point=point, mode=mode, match=dict(flag.match), times=times)
        return flag

    async def remove(self, point: str, match: Mapping[str, str] | None = None) -> bool:
        """Remove the stored flag of ``point`` with exactly ``match``; whether one was set."""
        if self.store is None:
            return False
        removed = await self.store.remove(point, match_key(dict(match or {})))
        if removed:
            log.warning("fault flag cleared", point=point, match=dict(match or {}))
        return removed


async def open_switchboard(
    settings: ServiceSettings, stack: AsyncExitStack, *, redis: Redis | None = None
) -> FaultSwitchboard:
    """The switchboard of ``settings.service_name`` for an app's lifespan.

    Disabled unless ``MC_FAULTS_ENABLED``; enabled, it reads MC_FAULTS (a typo fails
    the start) and keeps flags in Redis (``redis`` or one opened on ``redis_url``).
    """
    service = settings.service_name
    if not settings.mc_faults_enabled:
        if settings.mc_faults.strip():
            log.warning("MC_FAULTS ignored: MC_FAULTS_ENABLED is not true", service=service)
        return FaultSwitchboard.disabled(service)
    env_flags = parse_env_flags(settings.mc_faults)
    if redis is None:
        # Short timeouts: an unreachable Redis must not stall the participant's calls.
        redis = Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
        stack.push_async_callback(redis.aclose)
    switchboard = FaultSwitchboard(
        service, enabled=True, store=RedisFaultStore(redis), env_flags=env_flags
    )
    log.warning(
        "fault flags enabled (never in production)",
        service=service,
        points=sorted(switchboard.points),
        env_flags=[f"{f.point}={f.mode}" for f in switchboard.env_flags],
    )
    return switchboard


def flag_json(stored: StoredFlag) -> dict[str, Any]:
    """A flag as the API's ``FaultFlag`` (specs/openapi/common.yaml)."""
    flag = stored.flag
    expires = None
    if flag.expires_at is not None:
        expires = datetime.fromtimestamp(flag.expires_at, UTC).isoformat(timespec="milliseconds")
    return {
        "point": flag.point,
        "mode": flag.mode,
        "match": dict(flag.match),
        "times": flag.times,
        "fired": stored.fired,
        "expiresAt": expires,
        "source": flag.source,
    }


def point_json(point: FaultPoint) -> dict[str, Any]:
    """A point as the API's ``FaultPoint``."""
    return {
        "name": point.name,
        "saga": point.saga,
        "step": point.step,
        "phase": point.phase,
        "participant": point.participant,
        "transport": point.transport,
        "operation": point.operation,
        "timeoutMs": point.timeout_ms,
        "modes": list(point.modes),
        "matchKeys": list(point.match_keys),
    }
