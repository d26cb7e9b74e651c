"""The idempotency-key store: claim a key atomically, then complete or release it.

Protocol (any transport):

1. ``begin(scope, key, fingerprint)`` before doing any work. Exactly one of the
   concurrent callers with the same ``(scope, key)`` gets a ``Claim`` (an
   ``INSERT … ON CONFLICT DO NOTHING`` decides); the others get the stored
   response to replay (same fingerprint, completed), ``KeyReusedError`` (another
   fingerprint) or ``KeyInFlightError`` (same fingerprint, still running).
2. ``complete(claim, response, connection=…)`` stores the response. Pass the
   connection of the work's own transaction and the response commits if and only
   if the work does: a crash can then never leave work done without its response
   (which a retry would repeat). Completion checks the claim token, so a worker
   whose claim was taken over fails with ``ClaimLostError`` and its transaction
   rolls back instead of doing the work twice.
3. ``release(claim)`` when the work failed unexpectedly: the key is free again
   and a retry runs the work.

Keys are kept for ``ttl`` after their response (at least 24 h by configuration);
``purge_expired`` deletes older rows, and an expired key may be claimed afresh. A
claim left in flight by a crashed worker blocks its key for ``in_flight_timeout``,
after which a retry of the *same* request may take it over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from handwritten.runtime.db import migrate
from handwritten.runtime.logging import get_logger

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COMPONENT = "idempotency"
log = get_logger(__name__)

#: How often ``begin`` re-reads a key that changed under it (released, purged).
_BEGIN_ATTEMPTS = 5


async def migrate_idempotency(connection: asyncpg.Connection) -> list[str]:
    """Create or update the ``idempotency_keys`` table in this database."""
    return await migrate(connection, MIGRATIONS, component=COMPONENT)


class IdempotencyError(Exception):
    """Base class of the idempotency outcomes that are not a claim or a replay."""


class KeyReusedError(IdempotencyError):
    """The key was already used for a different request (HTTP 422)."""


class KeyInFlightError(IdempotencyError):
    """The first request with this key is still being processed (HTTP 409)."""


class ClaimLostError(IdempotencyError):
    """The claim is no longer ours (taken over after ``in_flight_timeout``)."""


@dataclass(frozen=True)
class StoredResponse:
    """A response as stored and replayed: status, body bytes, replayable headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class Claim:
    """The right to do the work of ``(scope, key)``; ``completed`` once stored."""

    scope: str
    key: str
    token: uuid.UUID
    completed: bool = field(default=False)


def fingerprint(*parts: str | bytes) -> str:
    """sha256 (hex) of ``parts``, length-prefixed so boundaries cannot shift."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(f"{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def canonical_json(body: bytes) -> bytes:
    """``body`` re-serialised with sorted keys and no spaces (raw bytes if not JSON).

    Two bodies that differ only in key order or whitespace are the same request.
    """
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class IdempotencyStore:
    """Idempotency keys in one service database (see the module docstring)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        ttl: dt.timedelta = dt.timedelta(hours=24),
        in_flight_timeout: dt.timedelta = dt.timedelta(minutes=1),
    ) -> None:
        if ttl <= dt.timedelta(0) or in_flight_timeout <= dt.timedelta(0):
            raise ValueError("ttl and in_flight_timeout are positive")
        self._pool = pool
        self.ttl = ttl
        self.in_flight_timeout = in_flight_timeout

    async def begin(self, scope: str, key: str, request_fingerprint: str) -> Claim | StoredResponse:
        """A claim on the key, or the stored response to replay.

        Raises ``KeyReusedError`` or ``KeyInFlightError`` (see the module docstring).
        """
        async with self._pool.acquire() as connection:
            for _ in range(_BEGIN_ATTEMPTS):
                token = uuid.uuid4()
                claimed = await connection.fetchval(
                    "INSERT INTO idempotency_keys"
                    " (scope, key, fingerprint, claim_token, state, expires_at)"
                    " VALUES ($1, $2, $3, $4, 'in_flight', now() + $5::interval)"
                    " ON CONFLICT (scope, key) DO NOTHING RETURNING true",
                    scope,
                    key,
                    request_fingerprint,
                    token,
                    self.ttl,
                )
                if claimed:
                    return Claim(scope, key, token)
                if await self._take_over(connection, scope, key, request_fingerprint, token):
                    return Claim(scope, key, token)
                row = await connection.fetchrow(
                    "SELECT fingerprint, state, response_status, response_headers::text AS headers,"
                    " response_body FROM idempotency_keys WHERE scope = $1 AND key = $2",
                    scope,
                    key,
                )
                if row is None:
                    continue  # released or purged since the insert: claim it again
                if row["fingerprint"] != request_fingerprint:
                    raise KeyReusedError(f"idempotency key {key!r} was used for another request")
                if row["state"] == "completed":
                    return StoredResponse(
                        status=row["response_status"],
                        body=bytes(row["response_body"]),
                        headers=tuple(
                            (str(name), str(value)) for name, value in json.loads(row["headers"])
                        ),
                    )
                raise KeyInFlightError(f"a request with idempotency key {key!r} is in flight")
        raise KeyInFlightError(f"idempotency key {key!r} keeps changing; retry later")

    async def _take_over(
        self,
        connection: asyncpg.Connection,
        scope: str,
        key: str,
        request_fingerprint: str,
        token: uuid.UUID,
    ) -> bool:
        """Claim an expired key, or a stale in-flight claim of the same request.

        One statement, so the row lock decides between concurrent takers; a worker
        still holding the old token then fails to complete (``ClaimLostError``).
        """
        taken = await connection.fetchval(
            "UPDATE idempotency_keys SET fingerprint = $3, claim_token = $4,"
            " state = 'in_flight', response_status = NULL, response_headers = NULL,"
            " response_body = NULL, claimed_at = now(), completed_at = NULL,"
            " expires_at = now() + $5::interval"
            " WHERE scope = $1 AND key = $2 AND (expires_at <= now() OR"
            " (state = 'in_flight' AND fingerprint = $3 AND claimed_at <= now() - $6::interval))"
            " RETURNING true",
            scope,
            key,
            request_fingerprint,
            token,
            self.ttl,
            self.in_flight_timeout,
        )
        if taken:
            log.info("idempotency key taken over (expired or stale claim)", key=key)
        return taken is True

    async def complete(
        self,
        claim: Claim,
        response: StoredResponse,
        *,
        connection: asyncpg.Connection | None = None,
    ) -> None:
        """Store ``response`` for the claimed key (in ``connection``'s transaction if given).

        ``ClaimLostError`` when the claim was taken over: inside the work's
        transaction that rolls the work back.
        """
        query = (
            "UPDATE idempotency_keys SET state = 'completed', response_status = $4,"
            " response_headers = $5::text::jsonb, response_body = $6, completed_at = now(),"
            " expires_at = now() + $7::interval"
            " WHERE scope = $1 AND key = $2 AND claim_token = $3 AND state = 'in_flight'"
        )
        args = (
            claim.scope,
            claim.key,
            claim.token,
            response.status,
            json.dumps([list(header) for header in response.headers]),
            response.body,
            self.ttl,
        )
        if connection is None:
            async with self._pool.acquire() as own:
                status: str = await own.execute(query, *args)
        else:
            status = await connection.execute(query, *args)
        if status != "UPDATE 1":
            raise ClaimLostError(f"the claim on idempotency key {claim.key!r} was lost")
        claim.completed = True

    async def release(self, claim: Claim) -> None:
        """Give the key up (the work failed): a retry with it runs the work again.

        A no-op once the response is stored or the claim was taken over.
        """
        async with self._pool.acquire() as connection:
            await connection.execute(
                "DELETE FROM idempotency_keys"
                " WHERE scope = $1 AND key = $2 AND claim_token = $3 AND state = 'in_flight'",
                claim.scope,
                claim.key,
                claim.token,
            )

    async def purge_expired(self) -> int:
        """Delete the keys whose retention ended; returns how many."""
        async with self._pool.acquire() as connection:
            status: str = await connection.execute(
                "DELETE FROM idempotency_keys WHERE expires_at < now()"
            )
        return int(status.split()[-1])
