"""asyncpg repositories for users and refresh tokens, and the unit of work."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self
from uuid import UUID

import asyncpg

from generated.services.auth.events import AuthEventPublisher
from handwritten.auth.domain.errors import EmailAlreadyRegisteredError
from handwritten.auth.domain.tokens import RefreshToken, RevokeReason
from handwritten.auth.domain.users import User
from handwritten.runtime.outbox import OutboxSender


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        roles=tuple(row["roles"]),
        password_hash=row["password_hash"],
        created_at=row["created_at"],
    )


def _token(row: Any) -> RefreshToken:
    return RefreshToken(
        id=row["id"],
        user_id=row["user_id"],
        family_id=row["family_id"],
        parent_id=row["parent_id"],
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        rotated_at=row["rotated_at"],
        revoked_at=row["revoked_at"],
    )


class PostgresUserRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(self, *, email: str, name: str, password_hash: str, roles: Sequence[str]) -> User:
        try:
            row = await self._db.fetchrow(
                """
                INSERT INTO users (email, name, password_hash, roles)
                VALUES ($1, $2, $3, $4)
                RETURNING id, email, name, roles, password_hash, created_at
                """,
                email,
                name,
                password_hash,
                list(roles),
            )
        except asyncpg.UniqueViolationError as exc:
            raise EmailAlreadyRegisteredError(email) from exc
        return _user(row)

    async def get(self, user_id: UUID) -> User | None:
        row = await self._db.fetchrow(
            "SELECT id, email, name, roles, password_hash, created_at FROM users WHERE id = $1",
            user_id,
        )
        return None if row is None else _user(row)

    async def get_by_email(self, email: str) -> User | None:
        row = await self._db.fetchrow(
            "SELECT id, email, name, roles, password_hash, created_at FROM users WHERE email = $1",
            email,
        )
        return None if row is None else _user(row)

    async def replace_password_hash(self, user_id: UUID, old: str, new: str) -> bool:
        result = await self._db.execute(
            """
            UPDATE users SET password_hash = $3, updated_at = now()
            WHERE id = $1 AND password_hash = $2
            """,
            user_id,
            old,
            new,
        )
        return bool(result == "UPDATE 1")


class PostgresRefreshTokenRepository:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def add(
        self,
        *,
        digest: bytes,
        user_id: UUID,
        family_id: UUID,
        parent_id: UUID | None,
        expires_at: datetime,
        now: datetime,
    ) -> RefreshToken:
        row = await self._db.fetchrow(
            """
            INSERT INTO refresh_tokens
                (token_hash, user_id, family_id, parent_id, expires_at, created_at)
            VALUES ($1, $2, $3, $4, $5, $6)
            RETURNING id, user_id, family_id, parent_id, expires_at, created_at,
                rotated_at, revoked_at
            """,
            digest,
            user_id,
            family_id,
            parent_id,
            expires_at,
            now,
        )
        return _token(row)

    async def get_for_update(self, digest: bytes) -> RefreshToken | None:
        # FOR UPDATE serialises concurrent refreshes of one token: the second waits
        # for the first to commit, then sees the token rotated (a reuse).
        row = await self._db.fetchrow(
            """
            SELECT id, user_id, family_id, parent_id, expires_at, created_at, rotated_at, revoked_at
            FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE
            """,
            digest,
        )
        return None if row is None else _token(row)

    async def mark_rotated(self, token_id: UUID, at: datetime) -> None:
        await self._db.execute(
            "UPDATE refresh_tokens SET rotated_at = $2 WHERE id = $1 AND rotated_at IS NULL",
            token_id,
            at,
        )

    async def revoke_family(self, family_id: UUID, at: datetime, reason: RevokeReason) -> int:
        result = await self._db.execute(
            """
            UPDATE refresh_tokens SET revoked_at = $2, revoke_reason = $3
            WHERE family_id = $1 AND revoked_at IS NULL
            """,
            family_id,
            at,
            str(reason),
        )
        return int(str(result).rsplit(" ", 1)[-1])


class PostgresUnitOfWork:
    """A pooled connection in one transaction, with repositories bound to it."""

    users: PostgresUserRepository
    refresh_tokens: PostgresRefreshTokenRepository
    events: AuthEventPublisher

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None
        self._transaction: Any = None

    async def __aenter__(self) -> Self:
        connection = await self._pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection, self._transaction = connection, transaction
        self.users = PostgresUserRepository(connection)
        self.refresh_tokens = PostgresRefreshTokenRepository(connection)
        self.events = AuthEventPublisher(OutboxSender(connection, "auth"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._connection is not None
        try:
            if exc_type is None:
                await self._transaction.commit()
            else:
                await self._transaction.rollback()
        finally:
            await self._pool.release(self._connection)
            self._connection = self._transaction = None
