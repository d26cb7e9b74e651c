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
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar, cast, get_args

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from generated.sagas.fault_points import FAULT_POINTS
from generated.sagas.types import FaultMode, FaultPoint
from handwritten.runtime.context import correlation_id
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.settings import ServiceSettings

log = get_logger(__name__)

MODES: tuple[FaultMode, ...] = get_args(FaultMode)
#: The match key every participant knows: the correlation id the saga inherited.
CORRELATION_ID = "correlationId"
DEFAULT_TTL_SECONDS = 600
MAX_TTL_SECONDS = 86_400
MAX_TIMES = 1000
KEY_PREFIX = "mc:faults:"
#: A hang lasts the step's timeout plus this much at least (and twice the timeout at most).
MIN_HANG_MARGIN_MS = 1000
_FIRED = "#fired"
#: After the store failed, calls inject nothing from it (and do not wait on it) this long.
STORE_RETRY_SECONDS = 5.0
STORE_ERRORS = (RedisError, OSError, TimeoutError)

Source = Literal["api", "env"]
T = TypeVar("T")

FAULTS_INJECTED = Counter(
    "saga_faults_injected",
    "Faults injected at saga fault points (fault flags), by point and mode.",
    ["point", "mode"],
    registry=REGISTRY,
)


class FaultFlagError(ValueError):
    """A flag that cannot be set; ``problems`` are ``(field, message)`` pairs."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{name}: {message}" for name, message in self.problems))


class InjectedFaultError(RuntimeError):
    """Raised by a participant's ``fail`` where a real failure is an exception."""


def match_key(match: Mapping[str, str]) -> str:
    """The id of a flag among its point's flags: its match, canonical (``*`` if none)."""
    return "&".join(f"{key}={value}" for key, value in sorted(match.items())) or "*"


@dataclass(frozen=True)
class FaultFlag:
    """One switched-on mode at one point, possibly scoped, limited and expiring."""

    point: str
    mode: FaultMode
    match: tuple[tuple[str, str], ...] = ()
    times: int | None = None
    #: Epoch seconds; ``None`` for a flag from MC_FAULTS (lives as long as the process).
    expires_at: float | None = None
    source: Source = "api"

    @property
    def key(self) -> str:
        return match_key(dict(self.match))

    def matches(self, subject: Mapping[str, str]) -> bool:
        """Whether a call described by ``subject`` is in this flag's scope."""
        return all(subject.get(key) == value for key, value in self.match)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_json(self) -> str:
        return json.dumps(
            {
                "point": self.point,
                "mode": self.mode,
                "match": dict(self.match),
                "times": self.times,
                "expiresAt": self.expires_at,
            },
            sort_keys=True,
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> FaultFlag:
        data = json.loads(text)
        mode = data["mode"]
        if mode not in MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        return cls(
            point=str(data["point"]),
            mode=cast(FaultMode, mode),
            match=tuple(sorted((str(k), str(v)) for k, v in dict(data["match"]).items())),
            times=None if data.get("times") is None else int(data["times"]),
            expires_at=None if data.get("expiresAt") is None else float(data["expiresAt"]),
        )


def new_flag(
    points: Mapping[str, FaultPoint],
    point: str,
    mode: str,
    match: Mapping[str, str] | None = None,
    *,
    times: int | None = None,
    ttl_seconds: int | None = DEFAULT_TTL_SECONDS,
    now: float,
    source: Source = "api",
) -> FaultFlag:
    """A validated flag; ``FaultFlagError`` names every problem (unknown point with the
    valid ones, a mode or match key the point does not offer, bad bounds)."""
    problems: list[tuple[str, str]] = []
    match = dict(match or {})
    fault_point = points.get(point)
    if fault_point is None:
        valid = ", ".join(sorted(points)) or "none"
        problems.append(("point", f"unknown fault point {point!r}; valid points: {valid}"))
    else:
        if mode not in fault_point.modes:
            allowed = ", ".join(fault_point.modes)
            problems.append(("mode", f"{point} offers the modes {allowed}, not {mode!r}"))
        unknown = sorted(set(match) - set(fault_point.match_keys))
        if unknown:
            keys = ", ".join(fault_point.match_keys)
            problems.append(
                ("match", f"{point} can match on {keys} only, not {', '.join(unknown)}")
            )
    if fault_point is None and mode not in MODES:
        problems.append(("mode", f"unknown fault mode {mode!r}; modes: {', '.join(MODES)}"))
    problems.extend(
        (f"match.{key}", "must not be empty") for key, value in match.items() if not value
    )
    if times is not None and not 1 <= times <= MAX_TIMES:
        problems.append(("times", f"must be between 1 and {MAX_TIMES}"))
    if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
        problems.append(("ttlSeconds", f"must be between 1 and {MAX_TTL_SECONDS}"))
    if problems:
        raise FaultFlagError(problems)
    return FaultFlag(
        point=point,
        mode=cast(FaultMode, mode),
        match=tuple(sorted(match.items())),
        times=times,
        expires_at=None if ttl_seconds is None else now + ttl_seconds,
        source=source,
    )


def parse_env_flags(
    text: str, points: Mapping[str, FaultPoint] = FAULT_POINTS
) -> tuple[FaultFlag, ...]:
    """``MC_FAULTS``: ``"<point>=<mode>,<point>=<mode>"`` (blank: none); every call, no expiry.

    A typo must not silently do nothing: an unknown point or mode, a part without
    ``=`` or a point given twice raise ``FaultFlagError``.
    """
    flags: list[FaultFlag] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for index, part in enumerate(p.strip() for p in text.split(",")):
        if not part:
            continue
        point, separator, mode = (s.strip() for s in part.partition("="))
        where = f"MC_FAULTS[{index}]"
        if not separator or not point or not mode:
            problems.append((where, f"{part!r} is not <point>=<mode>"))
            continue
        if point in seen:
            problems.append((where, f"{point} is given twice"))
            continue
        seen.add(point)
        try:
            flags.append(new_flag(points, point, mode, ttl_seconds=None, now=0.0, source="env"))
        except FaultFlagError as exc:
            problems.extend((f"{where}.{name}", message) for name, message in exc.problems)
    if problems:
        raise FaultFlagError(problems)
    return tuple(flags)


def applicable(
    flags: Iterable[FaultFlag], subject: Mapping[str, str], now: float
) -> list[FaultFlag]:
    """The live flags in scope of a call, most specific first (more match keys), a flag
    from the endpoint before one from MC_FAULTS, then by match."""
    live = [flag for flag in flags if not flag.expired(now) and flag.matches(subject)]
    return sorted(live, key=lambda flag: (-len(flag.match), flag.source != "api", flag.key))


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


# ------------------------------------------------------------------------ storage


@dataclass(frozen=True)
class StoredFlag:
    """A flag with how many times it fired so far."""

    flag: FaultFlag
    fired: int


#: Put a flag (resetting its count) and keep the point's hash alive as long as its
#: longest-lived flag: ARGV = field, flag JSON, expiry in ms since the epoch, now in ms.
_PUT = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[1], ARGV[1] .. '#fired')
local wanted = tonumber(ARGV[3]) - tonumber(ARGV[4])
if redis.call('PTTL', KEYS[1]) < wanted then redis.call('PEXPIRE', KEYS[1], wanted) end
return 1
"""
#: Count a firing of a flag that still exists (-1 if it was removed meanwhile); a flag
#: limited to ARGV[2] times is removed by its last firing.
_FIRE = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local fired = redis.call('HINCRBY', KEYS[1], ARGV[1] .. '#fired', 1)
local times = tonumber(ARGV[2])
if times > 0 and fired >= times then redis.call('HDEL', KEYS[1], ARGV[1], ARGV[1] .. '#fired') end
return fired
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisFaultStore:
    """Flags in Redis: one hash per point (``mc:faults:<point>``), one field per match.

    A field holds the flag as JSON, ``<match>#fired`` its count. The hash expires with
    its longest-lived flag; shorter-lived flags are skipped once expired and removed
    when the point is next written.
    """

    def __init__(self, redis: Redis, *, prefix: str = KEY_PREFIX) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, point: str) -> str:
        return f"{self._prefix}{point}"

    async def flags(self, point: str) -> list[StoredFlag]:
        raw = await self._redis.hgetall(self._key(point))
        fields = {_text(name): _text(value) for name, value in raw.items()}
        counts = {
            name.removesuffix(_FIRED): int(value)
            for name, value in fields.items()
            if name.endswith(_FIRED)
        }
        stored = []
        for text, value in fields.items():
            if text.endswith(_FIRED):
                continue
            try:
                flag = FaultFlag.from_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning(
                    "unreadable fault flag ignored", point=point, field=text, error=str(exc)
                )
                continue
            stored.append(StoredFlag(flag, counts.get(text, 0)))
        return stored

    async def put(self, flag: FaultFlag, now: float) -> None:
        if flag.expires_at is None:
            raise ValueError("a stored fault flag needs an expiry")
        key = self._key(flag.point)
        expired = [s.flag.key for s in await self.flags(flag.point) if s.flag.expired(now)]
        if expired:
            await self._redis.hdel(key, *expired, *(f"{k}{_FIRED}" for k in expired))
        await self._redis.eval(
            _PUT, 1, key, flag.key, flag.to_json(), int(flag.expires_at * 1000), int(now * 1000)
        )

    async def remove(self, point: str, key: str) -> bool:
        removed = await self._redis.hdel(self._key(point), key, f"{key}{_FIRED}")
        return int(removed) > 0

    async def fire(self, flag: FaultFlag) -> int:
        """Count a firing; the new count, or -1 when the flag no longer exists."""
        fired = await self._redis.eval(_FIRE, 1, self._key(flag.point), flag.key, flag.times or 0)
        return int(fired)


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
