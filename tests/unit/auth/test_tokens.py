"""Access-token claims and the refresh-token family state machine (pure domain)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from handwritten.auth.domain.errors import RefreshRejection
from handwritten.auth.domain.tokens import (
    ROTATE,
    RefreshToken,
    RefreshTokenState,
    access_token_claims,
    decide_refresh,
    refresh_token_digest,
)

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def test_access_token_claims() -> None:
    user_id = uuid.uuid4()
    claims = access_token_claims(
        user_id=user_id,
        roles=("customer", "admin", "customer"),
        issuer="microcommerce-auth",
        audience="microcommerce",
        issued_at=1_700_000_000,
        ttl_seconds=900,
        token_id="abc",
    )
    assert claims == {
        "iss": "microcommerce-auth",
        "aud": "microcommerce",
        "sub": str(user_id),
        "iat": 1_700_000_000,
        "nbf": 1_700_000_000,
        "exp": 1_700_000_900,
        "jti": "abc",
        "roles": ["admin", "customer"],
    }


def test_refresh_token_digest_is_sha256_and_deterministic() -> None:
    assert refresh_token_digest("abc") == refresh_token_digest("abc")
    assert refresh_token_digest("abc") != refresh_token_digest("abd")
    assert len(refresh_token_digest("abc")) == 32


def token(**changes: datetime | None) -> RefreshToken:
    base = RefreshToken(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        family_id=uuid.uuid4(),
        parent_id=None,
        expires_at=NOW + timedelta(days=7),
        created_at=NOW,
    )
    return RefreshToken(**{**base.__dict__, **changes})


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, RefreshTokenState.ACTIVE),
        ({"rotated_at": NOW}, RefreshTokenState.ROTATED),
        ({"revoked_at": NOW}, RefreshTokenState.REVOKED),
        ({"expires_at": NOW}, RefreshTokenState.EXPIRED),
        # revocation wins over rotation, rotation over expiry
        ({"rotated_at": NOW, "revoked_at": NOW}, RefreshTokenState.REVOKED),
        ({"rotated_at": NOW, "expires_at": NOW}, RefreshTokenState.ROTATED),
    ],
)
def test_states(changes: dict[str, datetime], state: RefreshTokenState) -> None:
    assert token(**changes).state(NOW) is state


def test_active_token_rotates() -> None:
    assert decide_refresh(token(), NOW) == ROTATE
    assert ROTATE.rotate and not ROTATE.revoke_family and ROTATE.rejection is None


def test_reuse_of_a_rotated_token_revokes_the_family() -> None:
    decision = decide_refresh(token(rotated_at=NOW - timedelta(minutes=1)), NOW)
    assert not decision.rotate
    assert decision.revoke_family
    assert decision.rejection is RefreshRejection.REUSED


def test_reuse_is_detected_even_after_expiry() -> None:
    decision = decide_refresh(token(rotated_at=NOW, expires_at=NOW - timedelta(days=1)), NOW)
    assert decision.revoke_family


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (None, RefreshRejection.UNKNOWN),
        (token(revoked_at=NOW), RefreshRejection.REVOKED),
        (token(expires_at=NOW - timedelta(seconds=1)), RefreshRejection.EXPIRED),
    ],
)
def test_other_tokens_are_refused_without_touching_the_family(
    candidate: RefreshToken | None, reason: RefreshRejection
) -> None:
    decision = decide_refresh(candidate, NOW)
    assert not decision.rotate
    assert not decision.revoke_family
    assert decision.rejection is reason
