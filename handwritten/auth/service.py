"""The auth application service: one method per use case.

Each method that writes runs in one database transaction (a ``UnitOfWork``); slow
work (argon2, key generation) happens outside it so no connection is held for it.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from generated.models.events import UserRegisteredPayload
from handwritten.auth.admins import AdminOutcome, create_admin
from handwritten.auth.domain.errors import (
    InvalidCredentialsError,
    InvalidRegistrationError,
    LoginThrottledError,
    RefreshRejection,
    RefreshTokenRejectedError,
    UnknownUserError,
)
from handwritten.auth.domain.throttle import LoginThrottlePolicy
from handwritten.auth.domain.tokens import (
    RevokeReason,
    access_token_claims,
    decide_refresh,
    refresh_token_digest,
)
from handwritten.auth.domain.users import (
    CUSTOMER_ROLES,
    User,
    account_violations,
    normalise_email,
)
from handwritten.auth.ports import (
    LoginAttemptCounter,
    PasswordHasher,
    TokenSigner,
    UnitOfWork,
)
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_refresh_token() -> str:
    """256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class TokenSettings:
    issuer: str
    audience: str
    access_ttl_seconds: int
    refresh_ttl_seconds: int


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


class AuthService:
    def __init__(
        self,
        *,
        unit_of_work: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        attempts: LoginAttemptCounter,
        throttle: LoginThrottlePolicy,
        signer: TokenSigner,
        tokens: TokenSettings,
        dummy_password_hash: str,
        clock: Callable[[], datetime] = utc_now,
        token_factory: Callable[[], str] = new_refresh_token,
    ) -> None:
        self._uow = unit_of_work
        self._hasher = hasher
        self._attempts = attempts
        self._throttle = throttle
        self._signer = signer
        self._tokens = tokens
        self._dummy_hash = dummy_password_hash
        self._clock = clock
        self._new_token = token_factory

    # -- register -------------------------------------------------------------------
    async def register(self, *, email: str, password: str, name: str) -> User:
        """A new customer; ``InvalidRegistrationError`` or ``EmailAlreadyRegisteredError``."""
        email = normalise_email(email)
        violations = account_violations(email, password, name)
        if violations:
            raise InvalidRegistrationError(violations)
        password_hash = await self._hasher.hash(password)
        async with self._uow() as uow:
            user = await uow.users.add(
                email=email, name=name.strip(), password_hash=password_hash, roles=CUSTOMER_ROLES
            )
            # Same transaction: the event exists if and only if the user does.
            await uow.events.users_registered(
                UserRegisteredPayload(
                    user_id=user.id, email=user.email, name=user.name, registered_at=user.created_at
                )
            )
        log.info("user registered", user_id=str(user.id))
        return user

    # -- login ----------------------------------------------------------------------
    async def login(self, *, email: str, password: str, client: str) -> IssuedTokens:
        """A token pair for valid credentials.

        Raises ``LoginThrottledError`` before looking at the password when the account or
        the client address is over its limit, and ``InvalidCredentialsError`` for an
        unknown e-mail or a wrong password alike (an unknown e-mail still costs one
        argon2 verification, so timing does not tell them apart either).
        """
        email = normalise_email(email)
        account, address = await self._attempts.add_attempt(email, client)
        decision = self._throttle.decide(account, address)
        if not decision.allowed:
            log.info("login throttled", client=client, retry_after=decision.retry_after_seconds)
            raise LoginThrottledError(decision.retry_after_seconds)
        async with self._uow() as uow:
            user = await uow.users.get_by_email(email)
        if user is None:
            await self._hasher.verify(self._dummy_hash, password)
            raise InvalidCredentialsError
        if not await self._hasher.verify(user.password_hash, password):
            log.info("login failed", user_id=str(user.id), client=client)
            raise InvalidCredentialsError
        await self._attempts.succeeded(email, client)
        new_hash = None
        if self._hasher.needs_rehash(user.password_hash):
            new_hash = await self._hasher.hash(password)
        refresh_token = self._new_token()
        now = self._clock()
        async with self._uow() as uow:
            if new_hash is not None:
                await uow.users.replace_password_hash(user.id, user.password_hash, new_hash)
                log.info("password rehashed with current parameters", user_id=str(user.id))
            await uow.refresh_tokens.add(
                digest=refresh_token_digest(refresh_token),
                user_id=user.id,
                family_id=uuid.uuid4(),
                parent_id=None,
                expires_at=now + timedelta(seconds=self._tokens.refresh_ttl_seconds),
                now=now,
            )
        return await self._issue(user, refresh_token, now)

    # -- refresh --------------------------------------------------------------------
    async def refresh(self, refresh_token: str) -> IssuedTokens:
        """Rotate ``refresh_token`` into a new pair; ``RefreshTokenRejectedError`` otherwise.

        The token row is read ``FOR UPDATE``: of two concurrent refreshes with one
        token, the second waits for the first to commit and then finds the token
        rotated, which is a reuse, so it revokes the family (including the pair the
        first one just received) and answers 401. One request wins, and a client
        that raced itself has to log in again; that is the price of detecting theft.
        """
        digest = refresh_token_digest(refresh_token)
        child = self._new_token()
        now = self._clock()
        user = None
        async with self._uow() as uow:
            token = await uow.refresh_tokens.get_for_update(digest)
            decision = decide_refresh(token, now)
            if token is not None and decision.revoke_family:
                revoked = await uow.refresh_tokens.revoke_family(
                    token.family_id, now, RevokeReason.REUSE_DETECTED
                )
                log.warning(
                    "refresh token reuse detected: family revoked",
                    user_id=str(token.user_id),
                    family_id=str(token.family_id),
                    revoked=revoked,
                )
            elif token is not None and decision.rotate:
                user = await uow.users.get(token.user_id)
                if user is not None:
                    await uow.refresh_tokens.mark_rotated(token.id, now)
                    await uow.refresh_tokens.add(
                        digest=refresh_token_digest(child),
                        user_id=user.id,
                        family_id=token.family_id,
                        parent_id=token.id,
                        expires_at=now + timedelta(seconds=self._tokens.refresh_ttl_seconds),
                        now=now,
                    )
        # Outside the transaction: a family revocation is committed before answering.
        if decision.rejection is not None:
            raise RefreshTokenRejectedError(decision.rejection)
        if user is None:  # the account was deleted (its tokens go with it)
            raise RefreshTokenRejectedError(RefreshRejection.UNKNOWN)
        return await self._issue(user, child, now)

    # -- logout ---------------------------------------------------------------------
    async def logout(self, refresh_token: str) -> None:
        """Revoke the token's family; unknown or already revoked tokens are fine."""
        now = self._clock()
        async with self._uow() as uow:
            token = await uow.refresh_tokens.get_for_update(refresh_token_digest(refresh_token))
            if token is not None:
                await uow.refresh_tokens.revoke_family(token.family_id, now, RevokeReason.LOGOUT)

    # -- current user ---------------------------------------------------------------
    async def current_user(self, user_id: str) -> User:
        """The user a verified token names; ``UnknownUserError`` when it is gone."""
        try:
            key = UUID(user_id)
        except ValueError as exc:
            raise UnknownUserError(user_id) from exc
        async with self._uow() as uow:
            user = await uow.users.get(key)
        if user is None:
            raise UnknownUserError(user_id)
        return user

    # -- admin seeding --------------------------------------------------------------
    async def seed_admin(self, *, email: str, password: str, name: str) -> bool:
        """Create the configured admin unless the e-mail exists; True when created.

        Idempotent and safe with several replicas starting at once. An existing
        account is never modified (in particular never promoted to admin); a password
        below the policy is only warned about (see ``admins.create_admin``).
        """
        outcome = await create_admin(
            self._uow, self._hasher, email=email, password=password, name=name, strict=False
        )
        return outcome is AdminOutcome.CREATED

    # -- helpers --------------------------------------------------------------------
    async def _issue(self, user: User, refresh_token: str, now: datetime) -> IssuedTokens:
        issued_at = int(now.timestamp())
        claims = access_token_claims(
            user_id=user.id,
            roles=user.roles,
            issuer=self._tokens.issuer,
            audience=self._tokens.audience,
            issued_at=issued_at,
            ttl_seconds=self._tokens.access_ttl_seconds,
            token_id=uuid.uuid4().hex,
        )
        return IssuedTokens(
            access_token=await self._signer.sign(claims),
            refresh_token=refresh_token,
            expires_in=self._tokens.access_ttl_seconds,
        )
