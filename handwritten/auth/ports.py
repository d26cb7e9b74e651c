"""What the application service needs from the outside world (implemented in
``adapters``; tests may substitute fakes)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self
from uuid import UUID

from generated.services.auth.events import AuthEventPublisher
from handwritten.auth.domain.keys import SigningKeyInfo
from handwritten.auth.domain.throttle import AttemptCount
from handwritten.auth.domain.tokens import RefreshToken, RevokeReason
from handwritten.auth.domain.users import User


class UserRepository(Protocol):
    async def add(self, *, email: str, name: str, password_hash: str, roles: Sequence[str]) -> User:
        """Insert a user; ``EmailAlreadyRegisteredError`` when the e-mail is taken."""
        ...

    async def get(self, user_id: UUID) -> User | None: ...

    async def get_by_email(self, email: str) -> User | None: ...

    async def replace_password_hash(self, user_id: UUID, old: str, new: str) -> bool:
        """Swap the hash if it is still ``old`` (a concurrent change wins)."""
        ...


class RefreshTokenRepository(Protocol):
    async def add(
        self,
        *,
        digest: bytes,
        user_id: UUID,
        family_id: UUID,
        parent_id: UUID | None,
        expires_at: datetime,
        now: datetime,
    ) -> RefreshToken: ...

    async def get_for_update(self, digest: bytes) -> RefreshToken | None:
        """The token with this digest, locked until the transaction ends."""
        ...

    async def mark_rotated(self, token_id: UUID, at: datetime) -> None: ...

    async def revoke_family(self, family_id: UUID, at: datetime, reason: RevokeReason) -> int:
        """Revoke every not yet revoked token of the family; returns how many."""
        ...


class UnitOfWork(Protocol):
    """One database transaction: commits when the block succeeds, else rolls back."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def events(self) -> AuthEventPublisher:
        """Events written to the transactional outbox: published only if this commits."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        ...


class LoginAttemptCounter(Protocol):
    async def add_attempt(self, account: str, client: str) -> tuple[AttemptCount, AttemptCount]:
        """Count one attempt for the account and the client address."""
        ...

    async def succeeded(self, account: str, client: str) -> None:
        """Clear the account's failures and take the attempt back from the client's."""
        ...


class TokenSigner(Protocol):
    async def sign(self, claims: Mapping[str, object]) -> str:
        """A compact RS256 JWT with the current key's ``kid`` in its header."""
        ...


class SigningKeyStore(Protocol):
    async def ensure_signing_key(self) -> SigningKeyInfo:
        """The active key, created first when there is none (or rotation is due)."""
        ...

    async def rotate(self, *, force: bool) -> SigningKeyInfo | None:
        """Activate a new key when due (or ``force``); ``None`` when nothing changed."""
        ...

    async def jwks(self) -> list[dict[str, str]]:
        """The public keys to publish, active first."""
        ...
