"""Which failures are a transient outage of a dependency rather than a bug.

A lost or refused connection (PostgreSQL's, or any socket's) says nothing about the
request: the same request may well succeed a moment later. HTTP answers it 503 with
Retry-After (``runtime.problems``) and gRPC ``UNAVAILABLE`` (``runtime.grpc_server``),
the statuses clients and the saga retry, instead of 500 / ``INTERNAL``, which they
must not. Redis is best effort everywhere (caches, counters, breaker state): its
adapters catch ``REDIS_UNAVAILABLE`` and carry on without it. Both found by the chaos
tests (tests/chaos: PostgreSQL and Redis connections reset).
"""

from __future__ import annotations

import asyncpg
from redis.exceptions import RedisError

_CONNECTION_LOST = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, ConnectionError)
#: The exception classes a lost connection surfaces as (``connection_lost`` tells
#: whether one really is): handlers registered for these see it first.
CONNECTION_ERROR_TYPES: tuple[type[Exception], ...] = (*_CONNECTION_LOST, asyncpg.InterfaceError)


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc``, or what it was raised from or during, is a lost or refused
    connection (asyncpg raises e.g. an InterfaceError while leaving a transaction
    whose connection died inside it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _CONNECTION_LOST):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


#: What a Redis call raises when Redis cannot be reached: redis-py's errors, socket
#: errors and timeouts, and the RuntimeError uvloop (the services' event loop) raises
#: for a write on a connection the peer has reset ("the handler is closed",
#: MagicStack/uvloop#506), which redis-py does not translate. Catch it only around
#: Redis calls.
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (RedisError, OSError, RuntimeError)


def grpclib_connection_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is grpclib (0.4) starting a call on a connection it has just
    closed but not yet reported lost: its ``Connection`` has dropped ``_transport``
    and the call fails with that AttributeError (vmagamedov/grpclib#110). Transient:
    the next call reconnects. Seen when a gRPC server is killed or reset mid-load."""
    return isinstance(exc, AttributeError) and exc.name == "_transport"
