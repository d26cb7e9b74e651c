"""Access-token claims and the refresh-token family state machine.

A login starts a *family*; every refresh consumes the presented token (it becomes
``ROTATED``) and issues its child in the same family. A legitimate client only ever
holds the newest token, so a rotated token presented again means two parties hold
copies of it: the whole family is revoked and both must log in again (OAuth 2.0
Security BCP, refresh token rotation with reuse detection)::

    ACTIVE --refresh--> ROTATED --presented again--> family REVOKED (401)
    ACTIVE --logout---> REVOKED (the whole family)
    ACTIVE --time-----> EXPIRED
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from handwritten.auth.domain.errors import RefreshRejection


def access_token_claims(
    *,
    user_id: UUID,
    roles: Iterable[str],
    issuer: str,
    audience: str,
    issued_at: int,
    ttl_seconds: int,
    token_id: str,
) -> dict[str, object]:
    """The registered claims (RFC 7519) plus ``roles`` of an access token.

    ``nbf`` equals ``iat``: the token is valid from the moment it is issued.
    """
    return {
        "iss": issuer,
        "aud": audience,
        "sub": str(user_id),
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": token_id,
        "roles": sorted(set(roles)),
    }


def refresh_token_digest(token: str) -> bytes:
    """What is stored instead of the token: SHA-256 of it.

    Tokens are 256-bit random values, so a fast hash suffices (no dictionary to
    attack); a database leak then yields nothing presentable.
    """
    return hashlib.sha256(token.encode("ascii")).digest()


class RefreshTokenState(StrEnum):
    ACTIVE = "active"
    ROTATED = "rotated"
    REVOKED = "revoked"
    EXPIRED = "expired"


class RevokeReason(StrEnum):
    LOGOUT = "logout"
    REUSE_DETECTED = "reuse_detected"


@dataclass(frozen=True)
class RefreshToken:
    """A stored refresh token (without the token itself, only known to its holder)."""

    id: UUID
    user_id: UUID
    family_id: UUID
    parent_id: UUID | None
    expires_at: datetime
    created_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, now: datetime) -> RefreshTokenState:
        """Revocation wins over rotation, which wins over expiry."""
        if self.revoked_at is not None:
            return RefreshTokenState.REVOKED
        if self.rotated_at is not None:
            return RefreshTokenState.ROTATED
        if now >= self.expires_at:
            return RefreshTokenState.EXPIRED
        return RefreshTokenState.ACTIVE


@dataclass(frozen=True)
class RefreshDecision:
    """What to do with a presented refresh token."""

    rotate: bool
    revoke_family: bool
    rejection: RefreshRejection | None


ROTATE = RefreshDecision(rotate=True, revoke_family=False, rejection=None)


def decide_refresh(token: RefreshToken | None, now: datetime) -> RefreshDecision:
    """Rotate an active token; anything else is refused, and reuse revokes the family."""
    if token is None:
        return RefreshDecision(False, False, RefreshRejection.UNKNOWN)
    state = token.state(now)
    if state is RefreshTokenState.ACTIVE:
        return ROTATE
    if state is RefreshTokenState.ROTATED:
        return RefreshDecision(False, True, RefreshRejection.REUSED)
    if state is RefreshTokenState.REVOKED:
        return RefreshDecision(False, False, RefreshRejection.REVOKED)
    return RefreshDecision(False, False, RefreshRejection.EXPIRED)
