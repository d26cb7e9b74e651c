"""Fault flags kept in Redis: shared by every replica, surviving restarts, expiring."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from handwritten.runtime.fault_flags import FaultFlag
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

KEY_PREFIX = "mc:faults:"
_FIRED = "#fired"


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
