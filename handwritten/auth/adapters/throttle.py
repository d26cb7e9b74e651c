"""Redis counters of login attempts per account and per client address."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis

from handwritten.auth.domain.throttle import AttemptCount
from handwritten.runtime.failures import REDIS_UNAVAILABLE
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

# Clear the account counter; give the client's counter its attempt back, never
# leaving a key without expiry behind (DECR on a missing key would create one).
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
end
return 1
"""


class RedisLoginAttemptCounter:
    """Fixed-window counters: ``INCR`` + ``EXPIRE NX`` in one ``MULTI``.

    Keys hold a SHA-256 of the e-mail, never the e-mail itself. When Redis is
    unreachable the counter *fails open* (zero attempts, a warning logged): logins
    keep working without throttling, and ``/health/ready`` reports Redis down.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        account_window_seconds: int,
        client_window_seconds: int,
        prefix: str = "auth:login-attempts",
    ) -> None:
        self._redis = redis
        self._account_window = account_window_seconds
        self._client_window = client_window_seconds
        self._prefix = prefix

    def _keys(self, account: str, client: str) -> tuple[str, str]:
        digest = hashlib.sha256(account.encode()).hexdigest()
        return f"{self._prefix}:account:{digest}", f"{self._prefix}:client:{client}"

    async def add_attempt(self, account: str, client: str) -> tuple[AttemptCount, AttemptCount]:
        account_key, client_key = self._keys(account, client)
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(account_key)
                pipe.expire(account_key, self._account_window, nx=True)
                pipe.ttl(account_key)
                pipe.incr(client_key)
                pipe.expire(client_key, self._client_window, nx=True)
                pipe.ttl(client_key)
                results = await pipe.execute()
        except REDIS_UNAVAILABLE as exc:
            log.warning("login throttle unavailable; not throttling", error=str(exc))
            return AttemptCount(0, 0), AttemptCount(0, 0)
        return (
            AttemptCount(int(results[0]), int(results[2])),
            AttemptCount(int(results[3]), int(results[5])),
        )

    async def succeeded(self, account: str, client: str) -> None:
        account_key, client_key = self._keys(account, client)
        try:
            await self._redis.eval(_SUCCEEDED, 2, account_key, client_key)
        except REDIS_UNAVAILABLE as exc:
            log.warning("login throttle unavailable; counters not cleared", error=str(exc))
